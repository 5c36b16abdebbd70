package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDCB runs the program and checks what it prints. It runs on the memory
// store: the other drivers gain multi-stream appends and reads by query as
// their support lands, and join the table then.
func TestDCB(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(t.Context(), []string{"--url", "memory://"}, &out), "output so far:\n%s", out.String())
	want := `opened memory://
1. unique usernames
   user 1 registered "ada"
   user 2 refused: "ada": username taken
   user 3 registered "bob"
   8 clients raced for "eve": 1 registered it, 7 were refused
2. a transfer between two accounts
   stale transfer refused: Account-alice expected at 1, is at 2
   stale transfer refused: Account-bob expected at 1, is at 2
   decided again: alice has 30, wants to send 50: insufficient funds
   alice: 30
   bob: 90
3. course capacity
   10 students raced for 3 seats: 3 enrolled, 7 found the course full
`
	assert.Equal(t, want, out.String())
}
