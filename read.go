package eventstore

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/eventkit/eventstore/driver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// nextPage reads the page after the one before it, at most limit events;
// more reports that another page may follow.
type nextPage func(ctx context.Context, limit int) (page []driver.RecordedEvent, more bool, err error)

// pagedRead is the frame every paged read shares: each range has its own
// span and duration metric, validates (open), then yields the pages next
// returns until the caller's limit or the end, and wraps a failure in
// "eventstore: <what>: …". open returns a fresh cursor, so ranging again
// reads again.
func (s *Store) pagedRead(ctx context.Context, op string, what readName, limit int, attrs func([]attribute.KeyValue) []attribute.KeyValue,
	open func() (nextPage, error)) iter.Seq2[RecordedEvent, error] {
	return func(yield func(RecordedEvent, error) bool) {
		ctx := ctx // each range has its own span
		start, n, span := time.Now(), 0, trace.Span(nil)
		if tr := s.tel.activeTracer(); tr != nil {
			var buf [2]attribute.KeyValue
			ctx, span = s.tel.start(ctx, tr, op, trace.SpanKindClient, attrs(buf[:0]))
		}
		ctx = s.tel.withDriverRetries(ctx, op)
		var failed error
		defer func() {
			s.tel.observe(ctx, op, start)
			if span != nil {
				end(span, failed, attrCount.Int(n))
			}
		}()
		fail := func(err error) {
			failed = err
			yield(RecordedEvent{}, fmt.Errorf("eventstore: %s: %w", what, err))
		}
		next, err := open()
		if err == nil && limit < 0 {
			err = invalid(ErrInvalidArgument, "negative limit %d", limit)
		}
		if err != nil {
			fail(err)
			return
		}
		remaining := limit
		for {
			pageLimit := s.pageSize
			if limit > 0 && remaining < pageLimit {
				pageLimit = remaining
			}
			page, more, err := next(ctx, pageLimit)
			if err != nil {
				fail(err)
				return
			}
			for _, ev := range page {
				n++
				if !yield(recordedFromDriver(ev), nil) {
					s.recycle(page)
					return
				}
			}
			remaining -= len(page)
			s.recycle(page)
			if !more || (limit > 0 && remaining == 0) {
				return
			}
		}
	}
}

// readName names a read in its errors: the operation and, for a stream
// read, the stream.
type readName struct{ op, stream string }

func (r readName) String() string {
	if r.stream == "" {
		return r.op
	}
	return fmt.Sprintf("%s %q", r.op, r.stream)
}

// guarded runs one driver page read under the Store's close guard, after a
// last look at the context.
func guarded[T any](s *Store, ctx context.Context, read func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if err := s.acquire(); err != nil {
		return zero, err
	}
	defer s.release()
	return read()
}

// limitPage returns the first limit events of a page the driver returned:
// one that returns more than asked must not break the paging. The surplus
// is cleared when the page may go back to the driver (see recycle).
func (s *Store) limitPage(page []driver.RecordedEvent, limit int) []driver.RecordedEvent {
	if len(page) <= limit {
		return page
	}
	if s.recycler != nil {
		clear(page[limit:])
	}
	return page[:limit]
}

// recycle gives a page back to a driver that reuses its array
// (driver.PageRecycler), once every event of it has been handed out as a
// copy.
func (s *Store) recycle(page []driver.RecordedEvent) {
	if s.recycler != nil && cap(page) > 0 {
		s.recycler.RecyclePage(page)
	}
}
