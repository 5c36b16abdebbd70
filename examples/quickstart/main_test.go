package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuickstart runs the program on each backend that needs no server and
// checks what it prints: the same program, only the URL differs.
func TestQuickstart(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"memory", []string{"--url", "memory://"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			require.NoError(t, run(t.Context(), tc.args, &out))
			got := out.String()
			assert.Contains(t, got, "insufficient funds")
			assert.Contains(t, got, "conflict (want 2, have 3)")
			assert.Contains(t, got, "27 events read without the snapshot, 2 with it")
			assert.True(t, strings.HasSuffix(got, "final balances:\n"+
				"   Account-alice      17440.00\n"+
				"   Account-bob          175.00\n"), "output ends with the final balances:\n%s", got)
		})
	}
}

func TestQuickstartBadURL(t *testing.T) {
	var out strings.Builder
	err := run(t.Context(), []string{"--url", "postgres://user:s3cret@db.invalid/x"}, &out)
	require.Error(t, err)
	assert.NotContains(t, err.Error()+out.String(), "s3cret")
}
