package errkind

import (
	"fmt"
	"os"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTransient(t *testing.T) {
	native := &os.PathError{Op: "dial", Path: "x", Err: os.ErrDeadlineExceeded}
	err := fmt.Errorf("driver: %w", Transient(native))
	assert.ErrorIs(t, err, eventstore.ErrTransient)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "the native error's chain stays reachable")
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	assert.Same(t, native, pe)
	assert.Equal(t, "driver: "+native.Error(), err.Error(), "the message is unchanged")
	assert.NoError(t, Transient(nil))
	assert.NotErrorIs(t, native, eventstore.ErrTransient)
}
