package kurrentdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

var _ driver.MultiAppender = (*Driver)(nil)

// AppendMulti implements [driver.MultiAppender] with the server's
// AppendRecords (KurrentDB 26.1 and later): one request holding every
// record, in order, and one consistency check per expectation other than
// Any, written as one transaction whose events are contiguous in $all in
// the request's order. On a server without AppendRecords (the client
// finds no "appendrecords" among the server's features, or the call is
// Unimplemented) it returns an error matching [eventstore.ErrNotSupported]
// and nothing is sent: separate appends never stand in for it.
//
// The server reports every failed check with the stream's actual state,
// which becomes the *[eventstore.AppendConflictError]; a soft-deleted or
// tombstoned stream's actual version is read afterwards. Retries are
// recognised by the server from the event IDs (in its index for streams
// with an exact expectation, from its bounded cache of recent IDs for
// Any), and compared with what was written as [Driver.Append] does, per
// stream. As for Append, an Exact(n) expectation whose stream already
// holds the first event ID among its latest versions up to n is a retry
// at the wrong version: that stream conflicts.
//
// What the v2 API cannot carry is refused before anything is sent, with
// an error matching ErrNotSupported: an event type the server's schema
// name rule rejects (anything but Unicode letters, digits and "_.$:-", in
// NFC), and two streams whose names differ only in case (the server takes
// them for one). The request travels in one gRPC message, so besides
// MaxAppendSize it must fit in the server's 16 MiB message limit
// ([eventstore.ErrBatchTooLarge]).
func (d *Driver) AppendMulti(ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
	plan, err := d.planMulti(req)
	if err != nil {
		return driver.MultiAppendResult{}, err
	}
	if held, err := d.heldMulti(ctx, plan); err != nil {
		return driver.MultiAppendResult{}, wrapError(ctx, err)
	} else if len(held) > 0 {
		return driver.MultiAppendResult{}, d.conflictByReading(ctx, req, held)
	}
	for _, ps := range plan.streams {
		if len(ps.ids) > 0 {
			ps.known, ps.unanswered = d.ids.before(ps.name, ps.ids[0])
		}
	}
	res, err := call(ctx, d, plan.strong, func(c *kdb.Client) (*kdb.AppendRecordsResponse, error) {
		return c.AppendRecords(ctx, plan.records, plan.checks...)
	})
	if err != nil {
		return driver.MultiAppendResult{}, d.multiError(ctx, req, plan, err)
	}
	out := driver.MultiAppendResult{
		Position: driver.Position{Commit: uint64(res.Position), Prepare: uint64(res.Position)},
		Versions: make(map[string]uint64, len(plan.streams)),
	}
	byName := map[string]*plannedStream{}
	for _, ps := range plan.streams {
		byName[ps.name] = ps
	}
	for _, r := range res.Responses {
		ps, ok := byName[r.Stream]
		if !ok || r.StreamRevision < 0 || len(ps.ids) == 0 {
			return driver.MultiAppendResult{}, fmt.Errorf("kurrentdb: the server answered a multi-stream append with revision %d of stream %q, which it did not write", r.StreamRevision, r.Stream)
		}
		out.Versions[ps.stream] = versionOf(uint64(r.StreamRevision))
	}
	for _, ps := range plan.streams {
		if len(ps.ids) == 0 {
			continue
		}
		version, ok := out.Versions[ps.stream]
		if !ok || version < uint64(len(ps.ids)) {
			return driver.MultiAppendResult{}, fmt.Errorf("kurrentdb: the server answered a multi-stream append without a fitting revision of stream %q", ps.stream)
		}
		first := version - uint64(len(ps.ids)) + 1
		if first <= ps.known || ps.unanswered {
			one := driver.AppendRequest{Stream: ps.stream, Events: ps.events}
			if err := d.checkRetry(ctx, ps.name, one, first); err != nil {
				var m *driver.RetryMismatchError
				if errors.As(err, &m) && m.Index >= 0 && m.Index < len(ps.records) {
					m.Index = ps.records[m.Index] // count records, not the stream's events
				}
				return driver.MultiAppendResult{}, err
			}
			d.ids.answered(ps.name, ps.ids[0])
		}
		d.ids.learn(ps.name, first, ps.ids)
	}
	return out, nil
}

// plannedStream is one stream of a multi-stream append.
type plannedStream struct {
	stream, name string // user stream, KurrentDB stream
	expected     driver.ExpectedVersion
	events       []driver.Event // its records' events, in order
	ids          []uuid.UUID
	records      []int // indexes in the request of its records
	known        uint64
	unanswered   bool
}

// multiPlan is a multi-stream append as the client sends it.
type multiPlan struct {
	streams []*plannedStream // in the order of req.Expect
	records []kdb.AppendRecord
	checks  []kdb.ConsistencyCheck
	strong  bool // every written stream has an exact expectation
}

// schemaName is the server's rule for a record's schema name, which holds
// the event type (SchemaNameValidator).
var schemaName = regexp.MustCompile(`^[\p{L}\p{N}_.$:-]+$`)

// metadataKey is the record property that carries an event's metadata, so
// that it comes back byte for byte (see unwrapMetadata).
const metadataKey = "eventstore.metadata"

// v2RecordOverhead is what the driver counts per record besides data,
// metadata, type and stream name when it sizes the request's gRPC message:
// the record ID, the property key and the protobuf framing.
const v2RecordOverhead = 128

// planMulti builds the request and checks what the v2 API and the server's
// limits allow.
func (d *Driver) planMulti(req driver.MultiAppendRequest) (*multiPlan, error) {
	plan := &multiPlan{strong: true}
	byStream := map[string]*plannedStream{}
	folded := map[string]string{}
	for _, e := range req.Expect {
		name := d.streamName(e.Stream)
		if other, ok := folded[strings.ToUpper(name)]; ok {
			return nil, fmt.Errorf("kurrentdb: streams %q and %q differ only in case, which AppendRecords takes for one stream: %w", other, e.Stream, eventstore.ErrNotSupported)
		}
		folded[strings.ToUpper(name)] = e.Stream
		ps := &plannedStream{stream: e.Stream, name: name, expected: e.Expected}
		plan.streams = append(plan.streams, ps)
		byStream[e.Stream] = ps
		if e.Expected.Kind() != driver.ExpectAny {
			plan.checks = append(plan.checks, kdb.StreamStateCheck{Stream: name, ExpectedState: streamState(e.Expected)})
		}
	}
	total, message := 0, 0
	plan.records = make([]kdb.AppendRecord, len(req.Records))
	for i, r := range req.Records {
		e := r.Event
		if !schemaName.MatchString(e.Type) || !norm.NFC.IsNormalString(e.Type) {
			return nil, fmt.Errorf("kurrentdb: event type %q: AppendRecords accepts only Unicode letters, digits and \"_.$:-\" in a type: %w", e.Type, eventstore.ErrNotSupported)
		}
		ps := byStream[r.Stream]
		ps.events = append(ps.events, e)
		ps.ids = append(ps.ids, e.ID)
		ps.records = append(ps.records, i)
		ct := kdb.ContentTypeJson
		if e.ContentType == driver.Binary {
			ct = kdb.ContentTypeBinary
		}
		meta := wrapMetadata(e.Metadata)
		plan.records[i] = kdb.AppendRecord{Stream: ps.name, Record: kdb.EventData{
			EventID: e.ID, EventType: e.Type, ContentType: ct, Data: e.Data, Metadata: meta,
		}}
		size := recordSize(e, ct == kdb.ContentTypeBinary)
		if size > d.opts.MaxAppendEventSize {
			return nil, fmt.Errorf("kurrentdb: record %d: %w: %d bytes as AppendRecords counts them, over the server's limit of %d",
				i, eventstore.ErrEventTooLarge, size, d.opts.MaxAppendEventSize)
		}
		total += size
		message += len(e.Data) + len(meta) + len(e.Type) + len(ps.name) + v2RecordOverhead
	}
	for _, ps := range plan.streams {
		if len(ps.ids) > 0 && ps.expected.Kind() != driver.ExpectExact {
			plan.strong = false
		}
	}
	if total > d.opts.MaxAppendSize {
		return nil, fmt.Errorf("kurrentdb: %w: %d bytes as AppendRecords counts them, over the server's MaxAppendSize of %d",
			eventstore.ErrBatchTooLarge, total, d.opts.MaxAppendSize)
	}
	if message > maxMessageSize-eventOverhead {
		return nil, fmt.Errorf("kurrentdb: %w: about %d bytes in one AppendRecords message, over the server's message limit of %d",
			eventstore.ErrBatchTooLarge, message, maxMessageSize)
	}
	return plan, nil
}

// recordSize is how the server measures a record against its limits: the
// data, the properties as a protobuf Struct, the type's UTF-8 bytes.
func recordSize(e driver.Event, binary bool) int {
	props := map[string]*structpb.Value{}
	if len(e.Metadata) > 0 {
		props[metadataKey] = structpb.NewStringValue(string(e.Metadata))
	}
	if binary {
		props["$schema.format"] = structpb.NewStringValue("Bytes")
	}
	return len(e.Data) + proto.Size(&structpb.Struct{Fields: props}) + len(e.Type)
}

// wrapMetadata turns an event's metadata into what the v2 API carries, a
// JSON object of strings: {"eventstore.metadata": "<the metadata>"}.
func wrapMetadata(meta []byte) []byte {
	if len(meta) == 0 {
		return nil
	}
	b, _ := json.Marshal(map[string]string{metadataKey: string(meta)})
	return b
}

// unwrapMetadata returns the metadata of an event as it was appended. An
// event written through the v2 API reads back, through the v1 API, with
// its properties rendered as JSON and the server's "$schema.name" and
// "$schema.format" added: such metadata (those keys and at most the
// driver's own, with the event's type) is unwrapped; anything else is the
// metadata as stored.
func unwrapMetadata(meta []byte, eventType string) []byte {
	if len(meta) == 0 || meta[0] != '{' || !bytes.Contains(meta, []byte(`"$schema.name"`)) {
		return meta
	}
	var props map[string]string
	if json.Unmarshal(meta, &props) != nil || props["$schema.name"] != eventType {
		return meta
	}
	for k := range props {
		if k != "$schema.name" && k != "$schema.format" && k != metadataKey {
			return meta
		}
	}
	if v, ok := props[metadataKey]; ok {
		return []byte(v)
	}
	return nil
}

// heldMulti returns the streams whose Exact(n) expectation (n ≥ 1) meets
// their first event ID among their latest versions up to n (see idIn), or
// that are missing or soft-deleted, which the server would recreate at
// their last revision (as Append refuses, see retention.go).
func (d *Driver) heldMulti(ctx context.Context, plan *multiPlan) (map[string]bool, error) {
	var held map[string]bool
	for _, ps := range plan.streams {
		if len(ps.ids) == 0 || ps.expected.Kind() != driver.ExpectExact || ps.expected.Version() == 0 {
			continue
		}
		found, missing, err := d.idIn(ctx, ps.name, ps.expected.Version(), len(ps.ids), ps.ids[0])
		if err != nil {
			return nil, err
		}
		if found || missing {
			if held == nil {
				held = map[string]bool{}
			}
			held[ps.stream] = true
		}
	}
	return held, nil
}

// multiError maps a failed AppendRecords call.
func (d *Driver) multiError(ctx context.Context, req driver.MultiAppendRequest, plan *multiPlan, err error) error {
	var ve *kdb.AppendConsistencyViolationError
	switch {
	case hasCode(err, kdb.ErrorCodeUnsupportedFeature):
		return fmt.Errorf("kurrentdb: append to several streams atomically needs AppendRecords (KurrentDB 26.1 or later), which the server does not offer: %w", eventstore.ErrNotSupported)
	case hasCode(err, kdb.ErrorCodeAppendConsistencyViolation) && errors.As(err, &ve):
		return d.violations(ctx, req, ve.Violations, err)
	case hasCode(err, kdb.ErrorCodeAppendTransactionSizeExceeded):
		return fmt.Errorf("kurrentdb: %w: %w", eventstore.ErrBatchTooLarge, err)
	case hasCode(err, kdb.ErrorCodeAppendRecordSizeExceeded):
		return fmt.Errorf("kurrentdb: %w: %w", eventstore.ErrEventTooLarge, err)
	}
	// The server may have written the records: a retry must be compared.
	for _, ps := range plan.streams {
		if len(ps.ids) > 0 {
			d.ids.unanswered(ps.name, ps.ids[0])
		}
	}
	return wrapError(ctx, err)
}

// violations builds the conflict from the server's report: every failed
// check, with the actual revision it reports (read afterwards for a
// deleted or tombstoned stream, which it reports as a state). A stream
// whose expectation holds for the actual version is left out: the server
// names the written streams whose events it already holds beside the
// failed ones, and with Any that is no failure of the expectation.
func (d *Driver) violations(ctx context.Context, req driver.MultiAppendRequest, vs []kdb.ConsistencyViolation, cause error) error {
	user := map[string]driver.StreamExpectation{}
	for _, e := range req.Expect {
		user[d.streamName(e.Stream)] = e
	}
	conflict := &eventstore.AppendConflictError{}
	var all []eventstore.WrongExpectedVersionError
	var errs []error
	for _, v := range vs {
		e, ok := user[v.Stream]
		if !ok {
			return fmt.Errorf("kurrentdb: the server reported a violation on stream %q, which the append does not name: %w", v.Stream, cause)
		}
		wev := eventstore.WrongExpectedVersionError{Stream: e.Stream, Expected: eventstore.ExpectedVersion(e.Expected)}
		switch s := v.ActualState.(type) {
		case kdb.NoStream:
		case kdb.StreamRevision:
			if s.Value <= math.MaxInt64 {
				wev.Actual = versionOf(s.Value)
				break
			}
			actual, err := d.StreamVersion(ctx, e.Stream) // deleted (−5) or tombstoned (−6)
			if err != nil {
				errs = append(errs, fmt.Errorf("kurrentdb: reading the actual version of %q: %w", e.Stream, err))
			}
			wev.Actual = actual
		default:
			return fmt.Errorf("kurrentdb: the server reported stream %q in state %v: %w", v.Stream, v.ActualState, cause)
		}
		all = append(all, wev)
		if !e.Expected.Matches(wev.Actual) {
			conflict.Streams = append(conflict.Streams, wev)
		}
	}
	if len(conflict.Streams) == 0 {
		conflict.Streams = all
	}
	slices.SortFunc(conflict.Streams, func(a, b eventstore.WrongExpectedVersionError) int { return strings.Compare(a.Stream, b.Stream) })
	if len(errs) > 0 {
		return errors.Join(append([]error{conflict}, errs...)...)
	}
	return conflict
}

// conflictByReading builds the conflict of an append the driver refused
// itself: the held streams, and every other stream whose expectation does
// not hold for the version read now.
func (d *Driver) conflictByReading(ctx context.Context, req driver.MultiAppendRequest, held map[string]bool) error {
	conflict := &eventstore.AppendConflictError{}
	for _, e := range req.Expect {
		actual, err := d.StreamVersion(ctx, e.Stream)
		if err != nil {
			return errors.Join(conflict, fmt.Errorf("kurrentdb: reading the actual version of %q: %w", e.Stream, err))
		}
		if held[e.Stream] || !e.Expected.Matches(actual) {
			conflict.Streams = append(conflict.Streams, eventstore.WrongExpectedVersionError{
				Stream: e.Stream, Expected: eventstore.ExpectedVersion(e.Expected), Actual: actual,
			})
		}
	}
	return conflict
}
