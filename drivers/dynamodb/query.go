package dynamodb

import (
	"context"

	"github.com/eventkit/eventstore/driver"
)

// ReadQuery implements [driver.QueryReader]. When every item of q.Query
// names a tag and the table has the tag index, it reads the tag items of
// those tags after q.After and the last log entry (see tagSearch in
// tagindex.go): what it reads grows with the events carrying the tags, not
// with the log. Otherwise it reads as a forward ReadAll does (see ReadAll),
// selecting the events by q.Query from the log entries, which carry every
// event's type and tags. Either way only matching events are fetched; it
// stops at the end of the last visible log entry, and at an event of a
// visible entry not visible yet, so it never returns an event while a
// lower position may still appear: the position of a page's last event is
// a safe AppendCondition.After.
//
// The log scan reads every log entry after q.After (about 80 bytes per
// single-event append, 1 read unit per 4 KB): a query with an item of
// types only that matches rarely over a long log, after the zero position,
// reads the whole log.
func (d *Driver) ReadQuery(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	if d.tagServed(q.Query) {
		return d.readTagQuery(ctx, q) // no log scan (see tagindex.go)
	}
	// Removed events (see retention.go) are passed over as ReadAll passes
	// them: when they leave a page short, the scan goes on after them.
	page := driver.NewPage(q.Limit, q.MaxBytes)
	after := q.After
	for {
		s := newSelector(driver.AllQuery{After: after, Limit: q.Limit - len(page.Events), MaxBytes: q.MaxBytes})
		s.query = &q.Query
		s, err := d.scanForward(ctx, s, 0)
		if err != nil {
			return nil, err
		}
		had := len(page.Events)
		next, missing, err := d.fetchPage(ctx, s.keys, &page, q.MaxBytes)
		if err != nil {
			return nil, err
		}
		if n := len(page.Events); n > had {
			d.rememberCut(s, page.Events[n-1].Position.Commit+1)
		}
		if page.Full() || missing > 0 || next < len(s.keys) || !s.full() {
			break
		}
		after = driver.Position{Commit: s.keys[len(s.keys)-1].pos}
	}
	return page.Events, nil
}
