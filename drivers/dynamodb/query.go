package dynamodb

import (
	"context"

	"github.com/eventkit/eventstore/driver"
)

// ReadQuery implements [driver.QueryReader] as a forward ReadAll does (see
// ReadAll), selecting the events by q.Query from the log entries, which
// carry every event's type and tags: only matching events are fetched.
// It stops at the first position no visible log entry covers, and at an
// event of a visible entry not visible yet, so it never returns an event
// while a lower position may still appear: the position of a page's last
// event is a safe AppendCondition.After.
//
// The scan reads every log entry after q.After (about 80 bytes per
// single-event append, 1 read unit per 4 KB): a query that matches rarely
// over a long log, after the zero position, reads the whole log.
func (d *Driver) ReadQuery(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	s := newSelector(driver.AllQuery{After: q.After, Limit: q.Limit, MaxBytes: q.MaxBytes})
	s.query = &q.Query
	s, err := d.scanForward(ctx, s, 0)
	if err != nil {
		return nil, err
	}
	page := driver.NewPage(q.Limit, q.MaxBytes)
	if _, err := d.fetchPage(ctx, s.keys, &page, q.MaxBytes); err != nil {
		return nil, err
	}
	if n := len(page.Events); n > 0 {
		d.rememberCut(s, page.Events[n-1].Position.Commit+1)
	}
	return page.Events, nil
}
