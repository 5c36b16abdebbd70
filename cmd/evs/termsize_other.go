//go:build !unix

package main

import (
	"errors"
	"os"
)

// fileWidth cannot read a terminal's width on this system: terminalWidth
// falls back to $COLUMNS.
func fileWidth(*os.File) (int, error) {
	return 0, errors.ErrUnsupported
}
