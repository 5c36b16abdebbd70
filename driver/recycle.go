package driver

import "sync"

// PageRecycler is an optional Driver capability: the driver reuses the
// arrays of the pages it returned. Once the Store has handed out every
// event of a page from ReadStream, ReadAll, ReadAllScan or ReadQuery (as
// copies), it gives the page back with RecyclePage, and the driver may
// overwrite the array's elements for a later page. So a driver that
// implements it returns from those methods only arrays it keeps no other
// use of. The bytes the events' Data and Metadata point to are the
// caller's now: a driver must not reuse them. The Store gives back each
// page at most once, and never longer than the driver returned it (a
// surplus the Store dropped it clears first).
//
// A page of thousands of events freshly allocated and zeroed on every read
// cost PostgreSQL log reads about a tenth of their rate
// (docs/benchmarks.md, "Reusing read pages").
type PageRecycler interface {
	RecyclePage(events []RecordedEvent)
}

// PagePool keeps the page arrays a driver got back through RecyclePage
// for its next pages. The zero value is ready; it is safe for concurrent
// use, and what it keeps the garbage collector may drop at any time
// (sync.Pool).
type PagePool struct{ pool sync.Pool }

// minPooledPage is the smallest array a PagePool keeps: smaller ones cost
// less to allocate than to keep.
const minPooledPage = 64

// Get returns an empty slice with room for n events: a kept array when one
// is large enough, else a new one. A nil pool always allocates.
func (p *PagePool) Get(n int) []RecordedEvent {
	if p != nil && n >= minPooledPage {
		if kept, ok := p.pool.Get().(*[]RecordedEvent); ok {
			if cap(*kept) >= n {
				return (*kept)[:0]
			}
			p.pool.Put(kept)
		}
	}
	return make([]RecordedEvent, 0, n)
}

// Put keeps the array of events for a later Get, after clearing the events
// so that it holds on to no event's bytes. The driver filled events by
// appending (Page): the elements past its length were never written. A nil
// pool keeps nothing.
func (p *PagePool) Put(events []RecordedEvent) {
	if p == nil || cap(events) < minPooledPage {
		return
	}
	clear(events)
	events = events[:0]
	p.pool.Put(&events)
}
