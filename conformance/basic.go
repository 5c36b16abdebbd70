package conformance

import (
	"bytes"
	"testing"

	"github.com/eventkit/eventstore"
)

func init() { ruleSets = append(ruleSets, basicRules) }

func basicRules() []rule {
	return []rule{
		{name: "AppendThenReadStream", run: func(t *testing.T, f *fixture) {
			s := stream("")
			evs := events(3, "Happened")
			res := f.mustAppend(s, eventstore.NoStream, evs...)
			if res.Version != 3 {
				t.Errorf("append 3 events to a new stream: want result version 3, got %d", res.Version)
			}
			got := f.readStream(s)
			if len(got) != 3 {
				t.Fatalf("read a stream of 3 events: got %d events", len(got))
			}
			for i, ev := range got {
				if ev.Version != uint64(i+1) || ev.ID != evs[i].ID || ev.StreamID != s || ev.Type != "Happened" || !bytes.Equal(ev.Data, evs[i].Data) {
					t.Errorf("event %d: want version %d id %s data %s, got version %d id %s stream %q type %q data %s",
						i, i+1, evs[i].ID, evs[i].Data, ev.Version, ev.ID, ev.StreamID, ev.Type, ev.Data)
				}
			}
			if got[2].Position != res.Position {
				t.Errorf("append result position %s differs from the last event's position %s", res.Position, got[2].Position)
			}
		}},
	}
}
