package eventstore_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eventkit/eventstore"
	"github.com/stretchr/testify/assert"
)

func TestValidateStreamID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"simple", "Order-42", true},
		{"no dash", "Order", true},
		{"unicode", "Bestellung-Größe-🛒", true},
		{"sql metacharacters", `'; DROP TABLE events;-- %_"\`, true},
		{"255 bytes", strings.Repeat("a", 255), true},
		{"dollar inside", "a$b", true},
		{"space", "a b", true},
		{"empty", "", false},
		{"256 bytes", strings.Repeat("a", 256), false},
		{"leading dollar", "$all", false},
		{"invalid utf8", "a\xffb", false},
		{"nul", "a\x00b", false},
		{"newline", "a\nb", false},
		{"tab", "a\tb", false},
		{"del", "a\x7fb", false},
		{"c1 control", "a\u0085b", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := eventstore.ValidateStreamID(tc.id)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, eventstore.ErrInvalidStreamID)
			assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
			assert.ErrorIs(t, eventstore.ValidateEventType(tc.id), eventstore.ErrInvalidEventType)
		})
	}
}

func FuzzValidateStreamID(f *testing.F) {
	for _, s := range []string{"Order-1", "", "$x", "a\x00", "\xff", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := eventstore.ValidateStreamID(s)
		valid := s != "" && len(s) <= 255 && utf8.ValidString(s) && s[0] != '$' && !strings.ContainsFunc(s, isControl)
		if valid != (err == nil) {
			t.Fatalf("ValidateStreamID(%q) = %v, want valid=%v", s, err, valid)
		}
		if err != nil && !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Fatalf("ValidateStreamID(%q) error %v does not match ErrInvalidArgument", s, err)
		}
	})
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

func TestCategory(t *testing.T) {
	for id, want := range map[string]string{"Order-42": "Order", "Order": "Order", "Order-42-x": "Order", "-x": "", "a-": "a"} {
		assert.Equal(t, want, eventstore.Category(id), id)
	}
}

func TestExpectedVersion(t *testing.T) {
	tests := []struct {
		exp    eventstore.ExpectedVersion
		str    string
		accept []uint64
		reject []uint64
	}{
		{eventstore.Any, "any", []uint64{0, 1, 9}, nil},
		{eventstore.NoStream, "no-stream", []uint64{0}, []uint64{1, 5}},
		{eventstore.ExpectedVersion{}, "no-stream", []uint64{0}, []uint64{1}},
		{eventstore.Exact(0), "no-stream", []uint64{0}, []uint64{1}},
		{eventstore.StreamExists, "stream-exists", []uint64{1, 7}, []uint64{0}},
		{eventstore.Exact(3), "3", []uint64{3}, []uint64{0, 2, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.str, func(t *testing.T) {
			assert.Equal(t, tc.str, tc.exp.String())
			for _, v := range tc.accept {
				assert.True(t, tc.exp.Matches(v), "%s should accept version %d", tc.exp, v)
			}
			for _, v := range tc.reject {
				assert.False(t, tc.exp.Matches(v), "%s should reject version %d", tc.exp, v)
			}
		})
	}
	assert.Equal(t, eventstore.NoStream, eventstore.Exact(0))
}
