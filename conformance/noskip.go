package conformance

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/eventkit/eventstore"
)

// The generic no-skip rule (DESIGN.md "No skipping"). Drivers add their own
// test that holds a write transaction open after it took its position; this
// one only lets concurrent writers and a reader race.

const (
	noSkipWriters = 8
	noSkipBatches = 40 // per writer, of 1 to 3 events
	noSkipPage    = 7  // events per read, so the reader reads often
)

func testNoSkip(t *testing.T, f *fixture) {
	gate := make(chan struct{})
	done := make(chan struct{})
	streams := make([]string, noSkipWriters)
	batches := make([][][][16]byte, noSkipWriters) // writer → batch → event IDs; each written by its writer only
	var wg sync.WaitGroup
	for w := range noSkipWriters {
		streams[w] = stream(fmt.Sprintf("Writer%d", w))
		wg.Go(func() {
			<-gate
			var version uint64
			for i := range noSkipBatches {
				evs := events(1+(i+w)%3, "Written")
				if _, err := f.store.Append(f.ctx, streams[w], eventstore.Exact(version), evs...); err != nil {
					t.Errorf("writer %d: append batch %d of %d events to %q at Exact(%d): %v", w, i, len(evs), streams[w], version, err)
					return
				}
				version += uint64(len(evs))
				ids := make([][16]byte, len(evs))
				for j, e := range evs {
					ids[j] = e.ID
				}
				batches[w] = append(batches[w], ids)
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	// The writers end by themselves; if the reader fails first, wait for them
	// so they do not outlive the rule.
	t.Cleanup(func() { <-done })

	var last eventstore.Position
	seen := map[[16]byte]int{}
	var read []eventstore.RecordedEvent
	close(gate)
	for {
		finished := false
		select {
		case <-done:
			finished = true
		default:
		}
		n := 0
		for ev, err := range f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{After: last, Limit: noSkipPage}) {
			if err != nil {
				t.Fatalf("reading after %s while %d writers append: %v", last, noSkipWriters, err)
			}
			if !last.Less(ev.Position) {
				t.Fatalf("reading after %s while %d writers append: got %s, not after everything seen before (no skipping)",
					last, noSkipWriters, describeOne(ev))
			}
			last = ev.Position
			seen[ev.ID]++
			read = append(read, ev)
			n++
		}
		if finished && n == 0 {
			break // the writers were done before this read began, and it found nothing new
		}
		if n == 0 {
			runtime.Gosched()
		}
	}
	if t.Failed() {
		return
	}

	doing := fmt.Sprintf("%d writers appended %d batches each while a reader read after the last position it had seen", noSkipWriters, noSkipBatches)
	total := 0
	for w := range batches {
		for i, ids := range batches[w] {
			for j, id := range ids {
				total++
				switch n := seen[id]; n {
				case 1:
				case 0:
					t.Errorf("%s: event %d of batch %d of writer %d (%q) was never seen: the reader skipped it", doing, j, i, w, streams[w])
				default:
					t.Errorf("%s: event %d of batch %d of writer %d (%q) was seen %d times", doing, j, i, w, streams[w], n)
				}
			}
		}
	}
	if len(read) != total {
		t.Errorf("%s: wrote %d events, read %d", doing, total, len(read))
	}

	// What the reader saw piece by piece is the log as it now reads whole,
	// where each batch is contiguous and each stream in version order.
	log := f.readAll()
	sameEvents(t, doing+": compare what it read with reading the whole log afterwards", read, log)
	index := map[[16]byte]int{}
	for i, ev := range log {
		index[ev.ID] = i
	}
	for w := range batches {
		var version uint64
		for i, ids := range batches[w] {
			first := index[ids[0]]
			for j, id := range ids {
				k, ok := index[id]
				if !ok {
					continue // reported above
				}
				if k != first+j {
					t.Errorf("%s: batch %d of writer %d is not contiguous in the log: event %d is at index %d, event 0 at %d", doing, i, w, j, k, first)
				}
				version++
				if ev := log[k]; ev.StreamID != streams[w] || ev.Version != version {
					t.Errorf("%s: event %d of batch %d of writer %d: want %q version %d, got %s", doing, j, i, w, streams[w], version, describeOne(ev))
				}
			}
		}
	}
}
