package eventstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/eventkit/eventstore/driver"
)

// DefaultListStreams is the page size of [Store.ListStreams] when
// ListStreamsOptions.Limit is 0.
const DefaultListStreams = 100

// MaxListStreams is the largest page [Store.ListStreams] returns.
const MaxListStreams = driver.MaxListStreams

// ListStreamsOptions selects one page of a stream listing.
type ListStreamsOptions struct {
	// Prefix keeps the streams whose ID starts with it. Category keeps the
	// streams of one category (see [Category]): the stream named Category
	// itself and those named Category + "-…". At most one of them is set.
	Prefix   string
	Category string
	// Cursor continues a listing: the Next of the previous page, "" for the
	// first. It is only valid with the same Prefix or Category.
	Cursor string
	// Limit is the most streams on the page: 0 for DefaultListStreams, at
	// most MaxListStreams.
	Limit int
}

// StreamInfo is one stream of a listing: its ID and current version (see
// [Store.StreamVersion]).
type StreamInfo = driver.StreamInfo

// StreamPage is one page of a stream listing. Next continues it; it is ""
// after the last page. A page may hold fewer streams than asked for while
// more follow.
type StreamPage struct {
	Streams []StreamInfo
	Next    string
}

// ListStreams returns one page of the streams in the store, for browsing:
// use it to show what a store holds, not to drive business logic (a
// listing is not a snapshot, and on some backends it reads the whole
// store; see each driver's documentation). Across the pages of one listing
// each stream that exists throughout comes exactly once. Memory and SQLite
// list by ID in byte order, PostgreSQL by ID in its column's collation
// (byte order under C, POSIX and C.UTF-8), DynamoDB in table order.
//
// Errors: [ErrInvalidArgument] for a negative or too large Limit, both Prefix
// and Category set, a Category holding "-", or a Prefix or Category that
// no stream ID could start with (it matches [ErrInvalidStreamID] too); [ErrInvalidCursor] for a
// cursor this listing did not hand out; [ErrNotSupported] when the driver
// cannot list streams; [ErrClosed]; the context's error.
func (s *Store) ListStreams(ctx context.Context, opts ListStreamsOptions) (StreamPage, error) {
	wrap := func(err error) error { return fmt.Errorf("eventstore: list streams: %w", err) }
	limit, err := listLimit(opts)
	if err != nil {
		return StreamPage{}, wrap(err)
	}
	req := driver.ListStreamsRequest{Prefix: opts.Prefix, Cursor: opts.Cursor, Limit: limit}
	// A category's listing is the stream named after the category, then the
	// streams with its prefix. Its cursors say that the first is done: they
	// are the driver's cursor after categoryCursor.
	lookUpOwn := false
	if opts.Category != "" {
		req.Prefix = opts.Category + "-"
		switch {
		case opts.Cursor == "":
			lookUpOwn = true
		case strings.HasPrefix(opts.Cursor, categoryCursor):
			req.Cursor = opts.Cursor[len(categoryCursor):]
		default:
			return StreamPage{}, wrap(fmt.Errorf("%w: not a cursor of a category listing", ErrInvalidCursor))
		}
	}
	var out StreamPage
	err = s.do(ctx, func() error {
		if s.lister == nil {
			return ErrNotSupported
		}
		if lookUpOwn {
			v, err := s.driver.StreamVersion(ctx, opts.Category)
			if err != nil {
				return err
			}
			if v > 0 {
				out.Streams = append(out.Streams, StreamInfo{ID: opts.Category, Version: v})
				if req.Limit--; req.Limit == 0 {
					out.Next = categoryCursor
					return nil
				}
			}
		}
		page, err := s.lister.ListStreams(ctx, req)
		if err != nil {
			return err
		}
		out.Streams = append(out.Streams, page.Streams...)
		out.Next = page.Next
		if opts.Category != "" && page.Next != "" {
			out.Next = categoryCursor + page.Next
		}
		return nil
	})
	if err != nil {
		return StreamPage{}, wrap(err)
	}
	return out, nil
}

// categoryCursor begins every cursor of a category's listing.
const categoryCursor = "+"

// listLimit checks the options of a listing and returns its page size.
func listLimit(opts ListStreamsOptions) (int, error) {
	switch {
	case opts.Limit < 0 || opts.Limit > MaxListStreams:
		return 0, fmt.Errorf("%w: limit %d is outside 0..%d", ErrInvalidArgument, opts.Limit, MaxListStreams)
	case opts.Prefix != "" && opts.Category != "":
		return 0, fmt.Errorf("%w: set Prefix or Category, not both", ErrInvalidArgument)
	case strings.Contains(opts.Category, "-"):
		return 0, fmt.Errorf("%w: category %q holds \"-\"", ErrInvalidArgument, opts.Category)
	case opts.Prefix != "":
		if err := ValidateStreamID(opts.Prefix); err != nil {
			return 0, fmt.Errorf("prefix: %w", err)
		}
	case opts.Category != "":
		if err := ValidateStreamID(opts.Category); err != nil {
			return 0, fmt.Errorf("category: %w", err)
		}
	}
	if opts.Limit == 0 {
		return DefaultListStreams, nil
	}
	return opts.Limit, nil
}
