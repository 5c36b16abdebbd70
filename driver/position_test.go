package driver_test

import (
	"encoding/json"
	"testing"

	"github.com/eventkit/eventstore/driver"
)

// TestPositionText checks the text form drivers store checkpoints in: it is
// the form eventstore.Position uses, and JSON carries it as a string.
func TestPositionText(t *testing.T) {
	for _, p := range []driver.Position{{}, {Commit: 1042}, {Commit: 1<<64 - 1, Prepare: 7}} {
		b, err := json.Marshal(struct{ P driver.Position }{p})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"P":"` + p.String() + `"}`; string(b) != want {
			t.Fatalf("json of %v: want %s, got %s", p, want, b)
		}
		var back struct{ P driver.Position }
		if err := json.Unmarshal(b, &back); err != nil || back.P != p {
			t.Fatalf("json round trip of %v: got %v, %v", p, back.P, err)
		}
	}
	for _, bad := range []string{"", "1", "1/", "/1", "01/1", "+1/0", "1/2/3", "-1/0", "18446744073709551616/0"} {
		if _, err := driver.ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%q): want an error, got nil", bad)
		}
	}
}
