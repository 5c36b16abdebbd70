// Package listcheck holds the driver tests of Store.ListStreams that go
// beyond the conformance rules: the order of a listing and a listing taken
// while streams are appended to and created. Drivers call them from their
// own tests against their real server.
package listcheck

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/eventkit/eventstore"
)

// Category returns a category name no other test uses.
func Category() string {
	var b [6]byte
	rand.Read(b[:])
	return "Lc" + hex.EncodeToString(b[:])
}

// ListAll pages through a listing and returns its streams in the order
// listed, failing t on a stream listed twice or a page longer than asked.
func ListAll(t testing.TB, s *eventstore.Store, opts eventstore.ListStreamsOptions) []eventstore.StreamInfo {
	t.Helper()
	var out []eventstore.StreamInfo
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			t.Fatalf("ListStreams(%+v): over 10,000 pages; the cursor does not move", opts)
		}
		page, err := s.ListStreams(t.Context(), opts)
		if err != nil {
			t.Fatalf("ListStreams(%+v): %v", opts, err)
		}
		if opts.Limit > 0 && len(page.Streams) > opts.Limit {
			t.Errorf("ListStreams(%+v): %d streams on a page of at most %d", opts, len(page.Streams), opts.Limit)
		}
		for _, st := range page.Streams {
			if seen[st.ID] {
				t.Errorf("ListStreams(%+v): stream %q listed twice", opts, st.ID)
			}
			seen[st.ID] = true
			out = append(out, st)
		}
		if page.Next == "" {
			return out
		}
		opts.Cursor = page.Next
	}
}

// orderSuffixes make stream IDs whose byte order differs from any
// linguistic order: upper case before lower case, digits compared as text,
// punctuation, and code points of two, three and four bytes.
var orderSuffixes = []string{"b", "B", "a", "Z", "_x", "-x", ".x", "1", "10", "9", "é", "e", "€", "😀", "ab", "a-b", "aB"}

// ByteOrder writes streams of a category whose IDs sort differently in
// byte order and in linguistic orders, and checks that a listing by
// category, in pages of 1, 3 and 100, returns them by ID in byte order.
func ByteOrder(t *testing.T, s *eventstore.Store) {
	cat := Category()
	var want []string
	for _, suffix := range orderSuffixes {
		id := cat + "-" + suffix
		if _, err := s.Append(t.Context(), id, eventstore.NoStream, eventstore.NewEvent("Listed", nil)); err != nil {
			t.Fatalf("Append(%q): %v", id, err)
		}
		want = append(want, id)
	}
	slices.Sort(want)
	for _, limit := range []int{1, 3, 100} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			var got []string
			for _, st := range ListAll(t, s, eventstore.ListStreamsOptions{Category: cat, Limit: limit}) {
				got = append(got, st.ID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ListStreams(Category %q, Limit %d):\n got %q\nwant %q (byte order)", cat, limit, got, want)
			}
		})
	}
}

// DuringAppends writes n streams of a category, then lists the category in
// pages of limit while writers append to those streams and create new ones
// of the category: every stream written before comes exactly once, with a
// version at least the one it had, and no stream comes twice.
func DuringAppends(t *testing.T, s *eventstore.Store, n, limit int) {
	cat := Category()
	before := map[string]uint64{}
	for i := range n {
		id := fmt.Sprintf("%s-%04d", cat, i)
		events := make([]eventstore.Event, i%3+1)
		for j := range events {
			events[j] = eventstore.NewEvent("Listed", nil)
		}
		if _, err := s.Append(t.Context(), id, eventstore.NoStream, events...); err != nil {
			t.Fatalf("Append(%q): %v", id, err)
		}
		before[id] = uint64(len(events))
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopWriters := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriters() // also when the listing fails t
	var mu sync.Mutex   // protects writeErr
	var writeErr error
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Alternate: a new stream between the existing ones, and an
				// event on an existing one.
				var err error
				if i%2 == 0 {
					id := fmt.Sprintf("%s-%04d-new-%d-%d", cat, (i*37)%n, w, i)
					_, err = s.Append(t.Context(), id, eventstore.NoStream, eventstore.NewEvent("Listed", nil))
				} else {
					id := fmt.Sprintf("%s-%04d", cat, (i*53+w)%n)
					_, err = s.Append(t.Context(), id, eventstore.Any, eventstore.NewEvent("Listed", nil))
				}
				if err != nil {
					mu.Lock()
					writeErr = err
					mu.Unlock()
					return
				}
			}
		})
	}
	listed := ListAll(t, s, eventstore.ListStreamsOptions{Category: cat, Limit: limit})
	stopWriters()
	if writeErr != nil {
		t.Fatalf("a concurrent append failed: %v", writeErr)
	}
	got := map[string]uint64{}
	for _, st := range listed {
		got[st.ID] = st.Version
	}
	for id, v := range before {
		switch g, ok := got[id]; {
		case !ok:
			t.Errorf("stream %q, written before the listing, is not listed (%d listed)", id, len(listed))
		case g < v:
			t.Errorf("stream %q: listed at version %d, below the %d it had before the listing", id, g, v)
		}
	}
}
