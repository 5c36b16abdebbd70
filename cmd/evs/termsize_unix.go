//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// fileWidth returns the width in columns of the terminal f is, from the
// TIOCGWINSZ ioctl.
func fileWidth(f *os.File) (int, error) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, err
	}
	return int(ws.Col), nil
}
