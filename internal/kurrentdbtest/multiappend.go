package kurrentdbtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"
	v2errors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/errors"
	v2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"golang.org/x/text/unicode/norm"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/structpb"
)

// The v2 streams service (kurrentdb.protocol.v2.streams.StreamsService):
// AppendSession (KurrentDB 25.1, the client's MultiStreamAppend) and
// AppendRecords (26.1, the client's AppendRecords). Both build one core
// WriteEvents of several streams (S:src/KurrentDB.Api.V2/Modules/Streams/
// StreamsService.cs), which the storage writer checks stream by stream and
// commits as one transaction (S:src/KurrentDB.Core/Services/Storage/
// StorageWriterService.cs, VerifyCommitChecks).

// The v2 API's extra expected states and the actual states it reports
// (S:…/Streams/Model/StreamCondition.cs).
const (
	expectDeleted    int64 = -5 // soft-deleted
	expectTombstoned int64 = -6
	actualNotFound   int64 = -1
	actualDeleted    int64 = -5
	actualTombstoned int64 = -6
)

// Versions that introduced the v2 appends.
var (
	appendSessionSince = [2]int{25, 1}
	appendRecordsSince = [2]int{26, 1}
)

// hasMethod reports whether a server of version ("26.1.0", "" for none)
// serves a v2 method introduced in since.
func hasMethod(version string, since [2]int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.SplitN(parts[1], "-", 2)[0])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > since[0] || major == since[0] && minor >= since[1]
}

// streamsV2 serves the v2 streams service; methods the version lacks answer
// Unimplemented.
type streamsV2 struct {
	v2.UnimplementedStreamsServiceServer
	log     *store
	version string
}

// multiStream is one stream of a multi-stream write: its expected state
// and, in the write's order, the IDs of its events.
type multiStream struct {
	name     string
	expected int64
	ids      []uuid.UUID
}

// multiRecord is an event of a multi-stream write and its stream's index.
type multiRecord struct {
	stream int
	p      proposed
}

// failure is one stream whose check failed (a ConsistencyCheckFailure).
type failure struct {
	index            int
	expected, actual int64 // actual as AppendRecords reports it
	current          int64 // the stream's last revision, as AppendSession reports it
}

// multiOutcome is the result of a multi-stream write: the last revision
// of every stream (-1 for none; unused for check-only streams) and the
// position of the write, or the failures.
type multiOutcome struct {
	last     []int64
	pos      uint64
	failures []failure
}

// checkStream is IndexWriter.CheckCommit as a multi-stream write runs it
// for one stream, with the v2 states: a tombstoned stream fails any write
// of events but passes a pure check expecting any, no_stream or
// tombstoned; expecting deleted is checked like any, then fails unless the
// stream is soft-deleted. The second result is the actual state a failure
// reports.
func (s *store) checkStream(ms multiStream) (checkResult, int64) {
	st := s.streams[ms.name]
	if st != nil && st.tombstone != nil {
		if len(ms.ids) == 0 && (ms.expected == expectAny || ms.expected == expectNoStream || ms.expected == expectTombstoned) {
			return checkResult{current: st.last()}, 0
		}
		return checkResult{decision: decideWrongVersion, current: st.last()}, actualTombstoned
	}
	cur := st.last()
	expected := ms.expected
	switch expected {
	case expectDeleted:
		res := s.check(ms.name, expectAny, ms.ids)
		if res.decision == decideWrite && !s.softDeleted(ms.name) {
			return checkResult{decision: decideWrongVersion, current: cur}, cur
		}
		return res, cur
	case expectTombstoned:
		// Expected version long.MaxValue: past any stream's end.
		return checkResult{decision: decideWrongVersion, current: cur}, cur
	}
	res := s.check(ms.name, expected, ms.ids)
	if res.decision == decideDeleted { // stream_exists on a soft-deleted stream
		res.decision = decideWrongVersion
		return res, actualDeleted
	}
	return res, cur
}

// writeMulti checks every stream and then writes every record, in order,
// as one transaction; or writes nothing and returns the failures (every
// failed stream, and any whose events are already written when others
// are not). When every written stream's events are already there, it
// returns the original write's revisions and position. s.mu is held.
func (s *store) writeMulti(streams []multiStream, records []multiRecord) multiOutcome {
	checks := make([]checkResult, len(streams))
	actual := make([]int64, len(streams))
	ok, idempotent, failed, written := 0, 0, 0, 0
	for i, ms := range streams {
		checks[i], actual[i] = s.checkStream(ms)
		if len(ms.ids) > 0 {
			written++
		}
		switch checks[i].decision {
		case decideWrite:
			ok++
		case decideIdempotent:
			idempotent++
		default:
			failed++
		}
	}
	out := multiOutcome{last: make([]int64, len(streams))}
	switch {
	case ok == len(streams):
	case written > 0 && idempotent == written:
		// AlreadyCommitted: the original numbers, at the position of
		// the latest of the streams' last events.
		for i, ms := range streams {
			if len(ms.ids) == 0 {
				continue
			}
			out.last[i] = checks[i].last
			out.pos = max(out.pos, s.streams[ms.name].events[checks[i].last].pos)
		}
		return out
	default:
		for i, ms := range streams {
			if d := checks[i].decision; d != decideWrite {
				a := actual[i]
				if d == decideIdempotent {
					a = checks[i].current
				}
				out.failures = append(out.failures, failure{index: i, expected: ms.expected, actual: a, current: checks[i].current})
			}
		}
		return out
	}
	for i, ms := range streams {
		if checks[i].softDeleted && len(ms.ids) > 0 {
			s.undelete(ms.name, checks[i].current)
		}
		out.last[i] = checks[i].current
	}
	for _, r := range records {
		name := streams[r.stream].name
		st := s.stream(name)
		rec := s.newRecord(name, st.last()+1, r.p.id, r.p.typ, r.p.json, r.p.data, r.p.meta)
		st.events = append(st.events, rec)
		s.cache.put(rec.id, name, rec.number)
		out.last[r.stream] = rec.number
		out.pos = rec.pos
	}
	s.notify()
	return out
}

// schemaName is the rule of SchemaNameValidator: letters, digits and
// "_.$:-", in Unicode NFC.
var schemaName = regexp.MustCompile(`^[\p{L}\p{N}_.$:-]+$`)

// Property keys the server adds to a record's properties
// (S:src/KurrentDB.Api.V2/Modules/Constants.cs).
const (
	schemaNameKey   = "$schema.name"
	schemaFormatKey = "$schema.format"
)

// v2Record is a record once the server has prepared it (PreProcessRecord):
// an ID, the format among its properties unless JSON, and its size as the
// server counts it (data, the properties as a protobuf Struct, the schema
// name's UTF-8 bytes).
type v2Record struct {
	stream string
	id     string
	p      proposed
	size   int
}

// prepareRecord is PreProcessRecord and MapToEvent: it validates a record
// and returns the event the server stores. The event's metadata is what a
// v1 read shows for it: the properties rendered as JSON with the schema
// name and format added (EventRecord.SynthesizeMetadataFromProperties).
func prepareRecord(r *v2.AppendRecord, stream string) (v2Record, error) {
	id := r.GetRecordId()
	if r.RecordId == nil {
		id = uuid.NewString()
	}
	props := map[string]*structpb.Value{}
	for k, v := range r.GetProperties() {
		props[k] = v
	}
	format := r.GetSchema().GetFormat()
	isJSON := format == v2.SchemaFormat_SCHEMA_FORMAT_JSON
	if !isJSON {
		props[schemaFormatKey] = structpb.NewStringValue(formatName(format))
	}
	if r.GetSchema().Id != nil {
		props["$schema.id"] = structpb.NewStringValue(r.GetSchema().GetId())
	}
	invalid := func(msg string) error { return status.Error(codes.InvalidArgument, msg) }
	if stream == "" || stream == "$$" {
		return v2Record{}, invalid("Stream must not be empty or '$$'.")
	}
	parsed, err := uuid.Parse(id)
	if err != nil || parsed == uuid.Nil {
		return v2Record{}, invalid("Record ID must be a valid and non-empty UUID.")
	}
	if format == v2.SchemaFormat_SCHEMA_FORMAT_UNSPECIFIED {
		return v2Record{}, invalid("Schema format must be specified.")
	}
	name := r.GetSchema().GetName()
	if name == "" || !norm.NFC.IsNormalString(name) || !schemaName.MatchString(name) {
		return v2Record{}, invalid(fmt.Sprintf("Schema name can only contain unicode letters, digits, underscores, dashes, periods, colons, and dollar signs. Attempted Value: %s", name))
	}
	for k, v := range props {
		if k == "" {
			return v2Record{}, invalid("Property keys must not be empty.")
		}
		if !hasKind(v) {
			return v2Record{}, invalid("Property values must have a type set.")
		}
	}
	size := len(r.GetData()) + proto.Size(&structpb.Struct{Fields: props}) + len(name)
	return v2Record{
		stream: stream, id: id, size: size,
		p: proposed{id: parsed, typ: name, json: isJSON, data: r.GetData(), meta: renderProperties(props, name, isJSON)},
	}, nil
}

func formatName(f v2.SchemaFormat) string {
	switch f {
	case v2.SchemaFormat_SCHEMA_FORMAT_JSON:
		return "Json"
	case v2.SchemaFormat_SCHEMA_FORMAT_PROTOBUF:
		return "Protobuf"
	case v2.SchemaFormat_SCHEMA_FORMAT_AVRO:
		return "Avro"
	case v2.SchemaFormat_SCHEMA_FORMAT_BYTES:
		return "Bytes"
	}
	return "Unspecified"
}

func hasKind(v *structpb.Value) bool {
	switch k := v.GetKind().(type) {
	case nil:
		return false
	case *structpb.Value_StructValue:
		for _, f := range k.StructValue.GetFields() {
			if !hasKind(f) {
				return false
			}
		}
	case *structpb.Value_ListValue:
		for _, f := range k.ListValue.GetValues() {
			if !hasKind(f) {
				return false
			}
		}
	}
	return true
}

// renderProperties writes properties as the server's JsonFormatter does
// ("{ "k": "v", … }"), with the schema name (and, for JSON, the format)
// set. The server keeps the order the properties arrived in, which the Go
// client leaves to map iteration; the double sorts them.
func renderProperties(props map[string]*structpb.Value, name string, isJSON bool) []byte {
	keys := make([]string, 0, len(props))
	for k := range props {
		if k != schemaNameKey && k != schemaFormatKey {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := map[string]*structpb.Value{}
	for k, v := range props {
		vals[k] = v
	}
	vals[schemaNameKey] = structpb.NewStringValue(name)
	if isJSON {
		vals[schemaFormatKey] = structpb.NewStringValue("Json")
		keys = append(keys, schemaNameKey, schemaFormatKey)
	} else {
		keys = append(keys, schemaFormatKey, schemaNameKey)
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		kb, _ := json.Marshal(k)
		vb, err := protojson.Marshal(vals[k])
		if err != nil {
			vb = []byte("null")
		}
		parts[i] = string(kb) + ": " + string(vb)
	}
	return []byte("{ " + strings.Join(parts, ", ") + " }")
}

// sizes applies the server's limits while it prepares records: a record
// over MaxAppendEventSize, or a running total over MaxAppendSize.
func (svc *streamsV2) sizes(recs []v2Record) error {
	lim := svc.log.opts
	total := 0
	for i, r := range recs {
		if lim.MaxAppendEventSize >= 0 && r.size > lim.MaxAppendEventSize {
			return richError(codes.InvalidArgument,
				fmt.Sprintf("The size of record %s (%d bytes) exceeds the maximum allowed size of %d bytes", r.id, r.size, lim.MaxAppendEventSize),
				&v2errors.AppendRecordSizeExceededErrorDetails{Stream: r.stream, RecordId: r.id, Size: int32(r.size), MaxSize: int32(lim.MaxAppendEventSize)})
		}
		total += r.size
		if lim.MaxAppendSize >= 0 && total > lim.MaxAppendSize {
			return richError(codes.Aborted,
				fmt.Sprintf("Transaction size (%d bytes) exceeded the maximum allowed size of %d bytes, after %d record(s).", total, lim.MaxAppendSize, i+1),
				&v2errors.AppendTransactionSizeExceededErrorDetails{Size: int32(total), MaxSize: int32(lim.MaxAppendSize)})
		}
	}
	return nil
}

// richError is a status with one detail, as RpcExceptions.FromError sends.
func richError(code codes.Code, msg string, detail proto.Message) error {
	st, err := status.New(code, msg).WithDetails(protoadapt.MessageV1Of(detail))
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return st.Err()
}

// foldKey is how the v2 API compares stream names within a request:
// OrdinalIgnoreCase.
func foldKey(s string) string { return strings.ToUpper(s) }

// AppendRecords writes records of any streams, interleaved, in the
// request's order, if every check holds; checks may name streams the
// request does not write. Streams are matched case-insensitively within a
// request: a record for "order-1" after a check of "Order-1" goes to
// "Order-1".
func (svc *streamsV2) AppendRecords(ctx context.Context, req *v2.AppendRecordsRequest) (*v2.AppendRecordsResponse, error) {
	if !hasMethod(svc.version, appendRecordsSince) {
		return svc.UnimplementedStreamsServiceServer.AppendRecords(ctx, req)
	}
	if len(req.GetRecords()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "Append records request must contain at least one record.")
	}
	var streams []multiStream
	index := map[string]int{}
	for _, c := range req.GetChecks() {
		ss := c.GetStreamState()
		if ss == nil {
			return nil, status.Error(codes.InvalidArgument, "Each consistency check must specify a type.")
		}
		if ss.GetStream() == "" || ss.GetStream() == "$$" {
			return nil, status.Error(codes.InvalidArgument, "Stream must not be empty or '$$'.")
		}
		if e := ss.GetExpectedState(); e < 0 && !slices.Contains([]int64{expectNoStream, expectStreamExists, expectDeleted, expectTombstoned}, e) {
			return nil, status.Error(codes.InvalidArgument, "Expected state must be positive or one of the allowed constants: NoStream (-1), Exists (-4), Deleted (-5), or Tombstoned (-6). Any (-2) is not allowed.")
		}
		if _, dup := index[foldKey(ss.GetStream())]; dup {
			return nil, status.Error(codes.InvalidArgument, "Each stream can only appear once in consistency checks.")
		}
		index[foldKey(ss.GetStream())] = len(streams)
		streams = append(streams, multiStream{name: ss.GetStream(), expected: ss.GetExpectedState()})
	}
	recs := make([]v2Record, len(req.GetRecords()))
	records := make([]multiRecord, len(recs))
	var written []int // stream indexes in order of first record
	for i, r := range req.GetRecords() {
		rec, err := prepareRecord(r, r.GetStream())
		if err != nil {
			return nil, err
		}
		recs[i] = rec
		j, ok := index[foldKey(rec.stream)]
		if !ok {
			j = len(streams)
			index[foldKey(rec.stream)] = j
			streams = append(streams, multiStream{name: rec.stream, expected: expectAny})
		}
		if len(streams[j].ids) == 0 {
			written = append(written, j)
		}
		streams[j].ids = append(streams[j].ids, rec.p.id)
		records[i] = multiRecord{stream: j, p: rec.p}
	}
	if err := svc.sizes(recs); err != nil {
		return nil, err
	}
	s := svc.log
	s.mu.Lock()
	out := s.writeMulti(streams, records)
	s.mu.Unlock()
	if len(out.failures) > 0 {
		return nil, consistencyViolation(streams, out.failures)
	}
	resp := &v2.AppendRecordsResponse{Position: int64(out.pos)}
	for _, j := range written {
		resp.Revisions = append(resp.Revisions, &v2.StreamRevision{Stream: streams[j].name, Revision: out.last[j]})
	}
	return resp, nil
}

// consistencyViolation is APPEND_CONSISTENCY_VIOLATION: FAILED_PRECONDITION
// with one violation per failed stream.
func consistencyViolation(streams []multiStream, failures []failure) error {
	detail := &v2errors.AppendConsistencyViolationErrorDetails{}
	var msg strings.Builder
	msg.WriteString("Append failed due to consistency violations.\n")
	for _, f := range failures {
		name := streams[f.index].name
		detail.Violations = append(detail.Violations, &v2errors.ConsistencyViolation{
			CheckIndex: int32(f.index),
			Type: &v2errors.ConsistencyViolation_StreamState{StreamState: &v2errors.ConsistencyViolation_StreamStateViolation{
				Stream: name, ExpectedState: f.expected, ActualState: f.actual,
			}},
		})
		fmt.Fprintf(&msg, "\n - Stream '%s': expected state %d, actual state %d.", name, f.expected, f.actual)
	}
	return richError(codes.FailedPrecondition, msg.String(), detail)
}

// AppendSession takes one request per stream (records and an expected
// revision: any when unset), then writes them all, grouped by stream in
// the order the requests came, as one transaction. A stream may appear in
// one request only; a failure names the first failed stream only.
func (svc *streamsV2) AppendSession(call grpc.ClientStreamingServer[v2.AppendRequest, v2.AppendSessionResponse]) error {
	if !hasMethod(svc.version, appendSessionSince) {
		return svc.UnimplementedStreamsServiceServer.AppendSession(call)
	}
	var streams []multiStream
	var records []multiRecord
	var recs []v2Record
	seen := map[string]bool{}
	for {
		req, err := call.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err // the client went away: nothing is written
		}
		if seen[foldKey(req.GetStream())] {
			return richError(codes.Aborted,
				fmt.Sprintf("Stream '%s' already has a different group of messages in this session.", req.GetStream()),
				&v2errors.StreamAlreadyInAppendSessionErrorDetails{Stream: req.GetStream()})
		}
		seen[foldKey(req.GetStream())] = true
		expected := expectAny
		if req.ExpectedRevision != nil {
			expected = req.GetExpectedRevision()
		}
		if expected < 0 && expected != expectAny && expected != expectNoStream && expected != expectStreamExists {
			return status.Error(codes.InvalidArgument, "Expected revision must be positive or one of the allowed constants: NoStream (-1), Any (-2) or Exists (-4).")
		}
		if len(req.GetRecords()) == 0 {
			return status.Error(codes.InvalidArgument, "Stream append request must contain at least one record")
		}
		j := len(streams)
		streams = append(streams, multiStream{name: req.GetStream(), expected: expected})
		for _, r := range req.GetRecords() {
			rec, err := prepareRecord(r, req.GetStream())
			if err != nil {
				return err
			}
			recs = append(recs, rec)
			streams[j].ids = append(streams[j].ids, rec.p.id)
			records = append(records, multiRecord{stream: j, p: rec.p})
		}
		if err := svc.sizes(recs); err != nil {
			return err
		}
	}
	if len(streams) == 0 {
		return status.Error(codes.FailedPrecondition, "Append session started, but no append requests were sent before ending the session.")
	}
	s := svc.log
	s.mu.Lock()
	out := s.writeMulti(streams, records)
	s.mu.Unlock()
	if len(out.failures) > 0 {
		f := out.failures[0]
		name := streams[f.index].name
		if f.actual == actualTombstoned {
			return richError(codes.FailedPrecondition, fmt.Sprintf("Stream '%s' has been tombstoned.", name),
				&v2errors.StreamTombstonedErrorDetails{Stream: name})
		}
		return richError(codes.FailedPrecondition,
			fmt.Sprintf("Append failed due to a revision conflict on stream '%s'. Expected revision: %d. Actual revision: %d.", name, f.expected, f.current),
			&v2errors.StreamRevisionConflictErrorDetails{Stream: name, ExpectedRevision: f.expected, ActualRevision: f.current})
	}
	resp := &v2.AppendSessionResponse{Position: int64(out.pos)}
	for j, ms := range streams {
		resp.Output = append(resp.Output, &v2.AppendResponse{Stream: ms.name, StreamRevision: out.last[j]})
	}
	return call.SendAndClose(resp)
}
