package driver

import "context"

// StreamLister is an optional Driver capability: listing the streams a
// store holds, for browsing (eventstore.Store.ListStreams, the console of
// evs serve). Without it, Store.ListStreams returns
// eventstore.ErrNotSupported.
type StreamLister interface {
	// ListStreams returns up to req.Limit streams whose IDs start with
	// req.Prefix (every stream when it is empty), each with its current
	// version, continuing after the page that returned req.Cursor ("" for
	// the first page). Across the pages of one listing each stream that
	// existed before the first page and still exists after the last one
	// comes exactly once; a stream created meanwhile may or may not. A page
	// may hold fewer than req.Limit streams while more follow; Next is ""
	// only after the last page. Drivers with an index ordered by bytes
	// return streams by ID in byte order; others document their order.
	//
	// The cursor is the driver's own string. A cursor it did not hand out
	// fails with an error matching eventstore.ErrInvalidCursor.
	ListStreams(ctx context.Context, req ListStreamsRequest) (StreamPage, error)
}

// ListStreamsRequest selects one page of streams; see [StreamLister].
type ListStreamsRequest struct {
	Prefix string // only streams whose ID starts with it; "" for all
	Cursor string // Next of the previous page; "" for the first page
	Limit  int    // at least 1; the Store caps it at MaxListStreams
}

// StreamInfo is one stream as a listing reports it.
type StreamInfo struct {
	ID      string
	Version uint64 // the stream's version (as StreamVersion), at least 1
}

// StreamPage is one page of a stream listing.
type StreamPage struct {
	Streams []StreamInfo
	Next    string // the cursor of the next page; "" after the last page
}

// MaxListStreams is the most streams one ListStreams page may ask for.
const MaxListStreams = 1000
