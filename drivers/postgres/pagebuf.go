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
type pageBuilder struct {
	driver.Page
	limit   int
	counted bool // allocated at the statement's count
}

func newPageBuilder(limit, maxBytes int) *pageBuilder {
	return &pageBuilder{Page: driver.NewPage(limit, maxBytes), limit: limit}
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
	b.Events = make([]driver.RecordedEvent, 0, max(0, min(b.limit, n)))
}

// events returns the page: when it was not counted and holds less than a
// quarter of its room, a copy at its size.
func (b *pageBuilder) events() []driver.RecordedEvent {
	if !b.counted && len(b.Events) < cap(b.Events)/4 {
		b.Events = append([]driver.RecordedEvent(nil), b.Events...)
	}
	return b.Events
}
