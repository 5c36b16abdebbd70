package eventstore_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPositionString(t *testing.T) {
	tests := []struct {
		name string
		pos  eventstore.Position
		want string
	}{
		{"zero", eventstore.Position{}, "0/0"},
		{"commit only", eventstore.Position{Commit: 42}, "42/0"},
		{"both", eventstore.Position{Commit: 7, Prepare: 3}, "7/3"},
		{"max", eventstore.Position{Commit: ^uint64(0), Prepare: ^uint64(0)}, "18446744073709551615/18446744073709551615"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.pos.String())
			got, err := eventstore.ParsePosition(tc.want)
			require.NoError(t, err)
			assert.Equal(t, tc.pos, got)
		})
	}
}

func TestParsePositionRejects(t *testing.T) {
	for _, s := range []string{"", "/", "1", "1/", "/1", "01/1", "1/01", "+1/0", "-1/0", "1/2/3", " 1/2", "1/2 ", "a/b",
		"18446744073709551616/0", "1.5/0", "0x1/0"} {
		t.Run(s, func(t *testing.T) {
			_, err := eventstore.ParsePosition(s)
			require.Error(t, err)
			assert.ErrorIs(t, err, eventstore.ErrInvalidPosition)
			assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
		})
	}
}

func TestPositionCompare(t *testing.T) {
	a := eventstore.Position{Commit: 1, Prepare: 9}
	b := eventstore.Position{Commit: 2, Prepare: 0}
	c := eventstore.Position{Commit: 2, Prepare: 1}
	assert.Equal(t, -1, a.Compare(b))
	assert.Equal(t, 1, c.Compare(b))
	assert.Equal(t, 0, b.Compare(b))
	assert.True(t, a.Less(b))
	assert.False(t, b.Less(a))
	assert.True(t, eventstore.Position{}.IsZero())
	assert.False(t, a.IsZero())
}

func TestPositionJSON(t *testing.T) {
	type checkpoint struct{ Pos eventstore.Position }
	b, err := json.Marshal(checkpoint{eventstore.Position{Commit: 5, Prepare: 6}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"Pos":"5/6"}`, string(b))
	var got checkpoint
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, eventstore.Position{Commit: 5, Prepare: 6}, got.Pos)
	err = json.Unmarshal([]byte(`{"Pos":"x"}`), &got)
	assert.True(t, errors.Is(err, eventstore.ErrInvalidPosition), "got %v", err)
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"0/0", "42/0", "1/2", "18446744073709551615/1", "01/0", "", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := eventstore.ParsePosition(s)
		if err != nil {
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Fatalf("ParsePosition(%q) error %v does not match ErrInvalidArgument", s, err)
			}
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePosition(%q) = %v, whose String is %q: the form is not canonical", s, p, p.String())
		}
	})
}
