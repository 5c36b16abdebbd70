package postgres

import (
	"github.com/eventkit/eventstore/driver"
)

// pageBuilder gathers the events of a read page (driver.Page), allocated
// once at its size when the statement counted the page's rows (its head
// row). A log page that no byte bound can cut is not counted (pageRows):
// then the page is allocated at its limit, what a page of the log holds
// unless it reaches the log's end, and a page that ends well short of it
// is copied to its size, so that a reader does not keep room for 4,096
// events for a few. Growing the page from a guess instead took several
// allocations and copies for a page of 4,096 events; gathering it in a
// pooled scratch slice and copying it out cost a third of the client's
// CPU of a log read (docs/benchmarks.md, "PostgreSQL reads, session 11").
//
// The page's array comes from the driver's pool (driver.PagePool) of pages
// the Store gave back (RecyclePage) when one is large enough.
type pageBuilder struct {
	driver.Page
	pool    *driver.PagePool
	limit   int
	counted bool // allocated at the statement's count
}

func newPageBuilder(pool *driver.PagePool, limit, maxBytes int) *pageBuilder {
	return &pageBuilder{Page: driver.NewPage(limit, maxBytes), pool: pool, limit: limit}
}

// size allocates the page for n events (n < 0: not counted, the limit),
// before its first event; later calls do nothing.
func (b *pageBuilder) size(n int) {
	if b.Events != nil {
		return
	}
	b.counted = n >= 0
	if n < 0 {
		n = b.limit
	}
	b.Events = b.pool.Get(max(0, min(b.limit, n)))
}

// events returns the page: when it was not counted and holds less than a
// quarter of its room, a copy at its size.
func (b *pageBuilder) events() []driver.RecordedEvent {
	if !b.counted && len(b.Events) < cap(b.Events)/4 {
		room := b.Events
		b.Events = append([]driver.RecordedEvent(nil), room...)
		b.pool.Put(room)
	}
	return b.Events
}

// RecyclePage implements [driver.PageRecycler]: the array of a page the
// Store has handed out goes to the pool for a later page.
func (d *Driver) RecyclePage(events []driver.RecordedEvent) { d.pages.Put(events) }
