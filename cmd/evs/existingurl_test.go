package main

import "testing"

func TestExistingURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sqlite:events.db", "sqlite:events.db?must_exist=true"},
		{"sqlite:///tmp/e.db?synchronous=normal", "sqlite:///tmp/e.db?synchronous=normal&must_exist=true"},
		{"sqlite:///tmp/e.db?", "sqlite:///tmp/e.db?must_exist=true"},
		{"postgres://u:pw@h/db?sslmode=disable&", "postgres://u:pw@h/db?sslmode=disable&must_exist=true"},
		{"dynamodb://t?must_exist=false", "dynamodb://t?must_exist=false"}, // the user's choice stands
		{"sqlite:e.db?a=%zz", "sqlite:e.db?a=%zz"},                         // malformed: Open reports it
		{"sqlite:e.db#frag", "sqlite:e.db#frag"},                           // a fragment: the driver reports it
		{"memory://", "memory://?must_exist=true"},
	}
	for _, tc := range tests {
		if got := existingURL(tc.in); got != tc.want {
			t.Errorf("existingURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
