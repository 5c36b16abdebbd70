package kurrentdbtest

import (
	"context"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// readPage is how many records a subscription takes from the log at once,
// as the server's enumerators read in pages of 32.
const readPage = 32

type readCall = grpc.ServerStreamingServer[api.ReadResp]

// Read is Streams.Read: a read of a stream or of $all with a count, or a
// subscription to either.
func (svc *streamsService) Read(req *api.ReadReq, call readCall) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "options are required")
	}
	if o.GetUuidOption() == nil {
		return status.Error(codes.InvalidArgument, "uuid_option is required")
	}
	_, isStream := o.StreamOption.(*api.ReadReq_Options_Stream)
	_, isAll := o.StreamOption.(*api.ReadReq_Options_All)
	_, isCount := o.CountOption.(*api.ReadReq_Options_Count)
	_, isSub := o.CountOption.(*api.ReadReq_Options_Subscription)
	_, noFilter := o.FilterOption.(*api.ReadReq_Options_NoFilter)
	_, hasFilter := o.FilterOption.(*api.ReadReq_Options_Filter)
	forwards := o.ReadDirection == api.ReadReq_Options_Forwards
	backwards := o.ReadDirection == api.ReadReq_Options_Backwards
	r := &reader{log: svc.log, call: call, ctx: call.Context(), opts: o, stringIDs: o.GetUuidOption().GetString_() != nil}
	switch {
	case isStream && isCount && (forwards || backwards) && noFilter:
		return r.readStream(o.GetStream(), o.GetCount(), backwards)
	case isAll && isCount && (forwards || backwards) && (noFilter || hasFilter):
		f, err := newFilter(o.GetFilter())
		if err != nil {
			return err
		}
		return r.readAll(o.GetAll(), o.GetCount(), backwards, f)
	case isStream && isSub && forwards && noFilter:
		return r.subscribeStream(o.GetStream())
	case isAll && isSub && forwards && (noFilter || hasFilter):
		f, err := newFilter(o.GetFilter())
		if err != nil {
			return err
		}
		return r.subscribeAll(o.GetAll(), f)
	}
	return status.Errorf(codes.InvalidArgument, "The combination of %T, %T, %s and %T is invalid.",
		o.StreamOption, o.CountOption, o.ReadDirection, o.FilterOption)
}

type reader struct {
	log       *store
	call      readCall
	ctx       context.Context
	opts      *api.ReadReq_Options
	stringIDs bool
}

// event sends one record, resolving a link when asked to.
func (r *reader) event(rec *record) error {
	ev := &api.ReadResp_ReadEvent{Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: rec.pos}}
	ev.Event = r.recorded(rec)
	if r.opts.ResolveLinks && rec.typ == "$>" {
		ev.Link = ev.Event
		ev.Event = nil
		if target := r.log.resolve(rec); target != nil {
			ev.Event = r.recorded(target)
		}
	}
	return r.call.Send(&api.ReadResp{Content: &api.ReadResp_Event{Event: ev}})
}

func (r *reader) recorded(rec *record) *api.ReadResp_ReadEvent_RecordedEvent {
	ct := "application/octet-stream"
	if rec.json {
		ct = "application/json"
	}
	id := structuredUUID(rec.id)
	if r.stringIDs {
		id = stringUUID(rec.id)
	}
	return &api.ReadResp_ReadEvent_RecordedEvent{
		Id:               id,
		StreamIdentifier: streamID(rec.stream),
		StreamRevision:   uint64(rec.number),
		PreparePosition:  rec.pos,
		CommitPosition:   rec.pos,
		Metadata:         map[string]string{"type": rec.typ, "created": strconv.FormatInt(rec.created, 10), "content-type": ct},
		CustomMetadata:   rec.meta,
		Data:             rec.data,
	}
}

// resolve returns the event a link ("N@stream") points at, if it exists.
func (s *store) resolve(link *record) *record {
	num, stream, ok := strings.Cut(string(link.data), "@")
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[stream]
	if st == nil || n < 0 || n > st.last() {
		return nil
	}
	return st.events[n]
}

// readStream answers a stream read with a count.
func (r *reader) readStream(so *api.ReadReq_Options_StreamOptions, count uint64, backwards bool) error {
	name := string(so.GetStreamIdentifier().GetStreamName())
	if count == 0 {
		return status.Error(codes.Unknown, "count should be positive")
	}
	s := r.log
	s.streamReads.Add(1)
	s.mu.Lock()
	lo, hi, st := s.readable(name)
	var recs []*record
	switch st {
	case readDeleted:
		s.mu.Unlock()
		return streamDeleted(r.ctx, name)
	case readNotFound:
		s.mu.Unlock()
		return r.call.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: streamID(name)}}})
	}
	events := s.streams[name].events
	var from int64
	switch rev := so.RevisionOption.(type) {
	case *api.ReadReq_Options_StreamOptions_Start:
		from = 0
	case *api.ReadReq_Options_StreamOptions_End:
		if !backwards {
			s.mu.Unlock()
			return status.Error(codes.Unknown, "fromEventNumber: reading forwards from the end")
		}
		from = hi
	case *api.ReadReq_Options_StreamOptions_Revision:
		from = int64(min(rev.Revision, uint64(tombstoneNumber)))
	default:
		s.mu.Unlock()
		return status.Error(codes.InvalidArgument, "revision_option is required")
	}
	if backwards {
		for n := min(from, hi); n >= lo && uint64(len(recs)) < count; n-- {
			recs = append(recs, events[n])
		}
	} else {
		for n := max(from, lo); n <= hi && uint64(len(recs)) < count; n++ {
			recs = append(recs, events[n])
		}
	}
	s.mu.Unlock()
	for _, rec := range recs {
		if err := r.event(rec); err != nil {
			return err
		}
		s.streamEvents.Add(1)
	}
	return nil
}

// allFrom parses where a read of $all starts.
func allFrom(ao *api.ReadReq_Options_AllOptions) (pos [2]uint64, start, end bool, err error) {
	switch p := ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		return pos, true, false, nil
	case *api.ReadReq_Options_AllOptions_End:
		return pos, false, true, nil
	case *api.ReadReq_Options_AllOptions_Position:
		c, pr := p.Position.GetCommitPosition(), p.Position.GetPreparePosition()
		if c < pr {
			return pos, false, false, status.Error(codes.Unknown, "The commit position cannot be less than the prepare position")
		}
		return [2]uint64{c, pr}, false, false, nil
	}
	return pos, false, false, status.Error(codes.InvalidArgument, "all_option is required")
}

// readAll answers a read of $all with a count. Forwards it starts at the
// position, inclusive; backwards it returns records that end at or before
// it, so the record at the position is excluded.
func (r *reader) readAll(ao *api.ReadReq_Options_AllOptions, count uint64, backwards bool, f *filter) error {
	if count == 0 {
		return status.Error(codes.Unknown, "count should be positive")
	}
	from, start, end, err := allFrom(ao)
	if err != nil {
		return err
	}
	s := r.log
	s.mu.Lock()
	var recs []*record
	keep := func(rec *record) bool {
		if !defaultHidden(rec) && f.match(rec) {
			recs = append(recs, rec)
		}
		return uint64(len(recs)) < count
	}
	if backwards {
		hi := len(s.log)
		switch {
		case start:
			hi = 0
		case !end:
			hi = sort.Search(len(s.log), func(i int) bool { return !endsBy(s.log[i], from) })
		}
		for i := hi - 1; i >= 0 && keep(s.log[i]); i-- {
		}
	} else if !end {
		i := 0
		if !start {
			i = s.firstAfter(from[0], from[1], true)
		}
		for ; i < len(s.log) && keep(s.log[i]); i++ {
		}
	}
	s.mu.Unlock()
	for _, rec := range recs {
		if err := r.event(rec); err != nil {
			return err
		}
	}
	return nil
}

// endsBy reports whether a record ends at or before a position, which is
// how a backwards read of $all bounds what it returns.
func endsBy(rec *record, pos [2]uint64) bool {
	e := rec.end()
	return e < pos[0] || (e == pos[0] && e <= pos[1])
}

// subscribeStream serves a subscription to one stream: confirmation,
// catch-up from the revision after the one given (exclusive), caught_up,
// then live events. A tombstone ends it with stream-deleted.
func (r *reader) subscribeStream(so *api.ReadReq_Options_StreamOptions) error {
	name := string(so.GetStreamIdentifier().GetStreamName())
	s := r.log
	s.mu.Lock()
	st := s.streams[name]
	if st != nil && st.tombstone != nil {
		s.mu.Unlock()
		return streamDeleted(r.ctx, name) // before the confirmation
	}
	var next int64
	switch rev := so.RevisionOption.(type) {
	case *api.ReadReq_Options_StreamOptions_Start:
	case *api.ReadReq_Options_StreamOptions_End:
		next = st.last() + 1
	case *api.ReadReq_Options_StreamOptions_Revision:
		next = int64(min(rev.Revision, uint64(tombstoneNumber-1))) + 1
	default:
		s.mu.Unlock()
		return status.Error(codes.InvalidArgument, "revision_option is required")
	}
	s.mu.Unlock()
	if err := r.confirm(); err != nil {
		return err
	}
	caughtUp := false
	for {
		s.mu.Lock()
		lo, hi, rs := s.readable(name)
		var recs []*record
		var tomb *record
		if rs == readOK {
			next = max(next, lo)
			for n := next; n <= hi && len(recs) < readPage; n++ {
				recs = append(recs, s.streams[name].events[n])
			}
		}
		if rs == readDeleted && next > s.streams[name].last() {
			tomb = s.streams[name].tombstone
		}
		last := s.streams[name].last()
		changed := s.changed
		s.mu.Unlock()
		for _, rec := range recs {
			if err := r.event(rec); err != nil {
				return err
			}
			next = rec.number + 1
		}
		if len(recs) > 0 {
			continue
		}
		if tomb != nil {
			if err := r.event(tomb); err != nil {
				return err
			}
			return streamDeleted(r.ctx, name)
		}
		if !caughtUp {
			cu := &api.ReadResp_CaughtUp{}
			if !s.opts.EmptyCaughtUp {
				cu.Timestamp = timestamppb.Now()
				if last >= 0 {
					cu.StreamRevision = &last
				}
			}
			if err := r.call.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: cu}}); err != nil {
				return err
			}
			caughtUp = true
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
}

// subscribeAll serves a subscription to $all: confirmation, catch-up after
// the position given (exclusive), caught_up, then live events in log order.
// A filtered one is served by subscribeAllFiltered.
func (r *reader) subscribeAll(ao *api.ReadReq_Options_AllOptions, f *filter) error {
	from, start, end, err := allFrom(ao)
	if err != nil {
		return err
	}
	if f != nil {
		return r.subscribeAllFiltered(from, start, end, f)
	}
	s := r.log
	s.mu.Lock()
	next := 0 // index into the log of the next record to consider
	switch {
	case end:
		next = len(s.log)
	case !start:
		next = s.firstAfter(from[0], from[1], false)
	}
	s.mu.Unlock()
	if err := r.confirm(); err != nil {
		return err
	}
	caughtUp := false
	for {
		s.mu.Lock()
		recs := s.log[next:min(len(s.log), next+readPage)]
		var lastPos *api.ReadResp_Position
		if n := len(s.log); n > 0 {
			p := s.log[n-1].pos
			lastPos = &api.ReadResp_Position{CommitPosition: p, PreparePosition: p}
		}
		changed := s.changed
		s.mu.Unlock()
		for _, rec := range recs {
			next++
			if defaultHidden(rec) {
				continue
			}
			if err := r.event(rec); err != nil {
				return err
			}
		}
		if len(recs) > 0 {
			continue
		}
		if !caughtUp {
			cu := &api.ReadResp_CaughtUp{}
			if !s.opts.EmptyCaughtUp {
				cu.Timestamp = timestamppb.Now()
				cu.Position = lastPos
			}
			if err := r.call.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: cu}}); err != nil {
				return err
			}
			caughtUp = true
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
}

// tfPos is a position in the transaction log as the server's subscription
// code keeps it: (commit, prepare), compared in that order. An event's is
// (pos, pos); a catch-up page starts at (end of the previous record, 0).
type tfPos struct{ commit, prepare uint64 }

func (a tfPos) less(b tfPos) bool {
	return a.commit < b.commit || (a.commit == b.commit && a.prepare < b.prepare)
}

func recPos(rec *record) tfPos { return tfPos{rec.pos, rec.pos} }

// Server defaults of filtered subscriptions.
const (
	// readBatch is how many matching events one catch-up page holds at
	// most (Enumerator.DefaultReadBatchSize).
	readBatch = 32
	// defaultWindow is the search window when the request asks for
	// count: how many events a catch-up page considers at most.
	defaultWindow = 32
)

// subscribeAllFiltered serves a filtered subscription to $all as
// Enumerator.AllSubscriptionFiltered does, checkpoints included.
//
// Catch-up reads pages from the last position sent (the first from the
// start position, inclusive): a page considers at most window events and
// holds at most readBatch matching ones. Matching events after the last
// position sent are sent. The checkpoint is the last event sent, or the
// start of the page when that is later and the page considered something:
// a position (p, 0) where p is where the previous page's last event ended,
// so it lags a page behind what was considered. Every multiplier × window
// considered events it is sent, and once more when catch-up reaches the
// end (a checkpoint not after the last one sent is dropped), then
// caught_up with it as position. Live, the server counts every event
// committed after the subscription began and sends a checkpoint at the
// event that completes each interval, at that event's position; live
// events and checkpoints before what catch-up sent are skipped. The live
// buffer never overflows here, so the subscription never falls behind.
func (r *reader) subscribeAllFiltered(from [2]uint64, start, end bool, f *filter) error {
	fo := r.opts.GetFilter()
	if fo.CheckpointIntervalMultiplier == 0 {
		return status.Error(codes.Unknown, "checkpointIntervalMultiplier must be greater than 0")
	}
	window := uint32(defaultWindow)
	if m, ok := fo.Window.(*api.ReadReq_Options_FilterOptions_Max); ok {
		window = m.Max
	}
	interval := int(fo.CheckpointIntervalMultiplier * window)
	s := r.log
	s.mu.Lock()
	liveFrom := len(s.log) // records from here on were committed after subscribing
	var lastIndexed tfPos
	if liveFrom > 0 {
		lastIndexed = recPos(s.log[liveFrom-1])
	}
	s.mu.Unlock()
	if err := r.confirm(); err != nil {
		return err
	}

	// checkpoint is the position of the last event or checkpoint sent
	// towards the client; none before anything (HeadOfTf).
	var checkpoint tfPos
	has := !start
	switch {
	case end:
		checkpoint = lastIndexed
	case !start:
		checkpoint = tfPos{from[0], from[1]}
	}
	var sentCheckpoint tfPos // the last checkpoint sent, deduplicated
	sentAny := false
	sendCheckpoint := func() error {
		if !has || (sentAny && !sentCheckpoint.less(checkpoint)) {
			return nil
		}
		sentCheckpoint, sentAny = checkpoint, true
		return r.call.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
			CommitPosition: checkpoint.commit, PreparePosition: checkpoint.prepare, Timestamp: timestamppb.Now(),
		}}})
	}
	send := func(rec *record) error {
		if err := r.event(rec); err != nil {
			return err
		}
		checkpoint, has = recPos(rec), true
		return nil
	}

	if !(end || (has && !checkpoint.less(lastIndexed))) {
		// Catch-up, page by page.
		page := checkpoint // HeadOfTf reads from (0, 0)
		counter := 0
		for {
			s.mu.Lock()
			i := s.firstAfter(page.commit, page.prepare, true)
			next, considered, atEnd := page, 0, false
			var matched []*record
			for len(matched) < readBatch && considered < int(window) {
				if i >= len(s.log) {
					atEnd = true
					break
				}
				rec := s.log[i]
				i++
				considered++
				if !defaultHidden(rec) && f.match(rec) {
					matched = append(matched, rec)
				}
				next = tfPos{rec.end(), 0}
			}
			s.mu.Unlock()
			for _, rec := range matched {
				if !has || checkpoint.less(recPos(rec)) {
					if err := send(rec); err != nil {
						return err
					}
				}
			}
			if (!has || checkpoint.less(page)) && page.less(next) {
				checkpoint, has = page, true
			}
			counter += considered
			if atEnd {
				if !has && (tfPos{}).less(next) {
					checkpoint, has = tfPos{}, true // FirstRecordOfTf
				}
				if err := sendCheckpoint(); err != nil {
					return err
				}
				break
			}
			if counter >= interval {
				counter %= interval
				if err := sendCheckpoint(); err != nil {
					return err
				}
			}
			page = next
		}
	}

	cu := &api.ReadResp_CaughtUp{}
	if !s.opts.EmptyCaughtUp {
		cu.Timestamp = timestamppb.Now()
		if has {
			cu.Position = &api.ReadResp_Position{CommitPosition: checkpoint.commit, PreparePosition: checkpoint.prepare}
		}
	}
	if err := r.call.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: cu}}); err != nil {
		return err
	}

	// Live: every event committed since subscribing, in order.
	live, counter := liveFrom, 0
	for {
		s.mu.Lock()
		recs := s.log[live:]
		changed := s.changed
		s.mu.Unlock()
		for _, rec := range recs {
			live++
			p := recPos(rec)
			if !defaultHidden(rec) && f.match(rec) && (!has || checkpoint.less(p)) {
				if err := send(rec); err != nil {
					return err
				}
			}
			if counter++; counter >= interval {
				counter = 0
				if !has || !p.less(checkpoint) {
					checkpoint, has = p, true
					if err := sendCheckpoint(); err != nil {
						return err
					}
				}
			}
		}
		if len(recs) > 0 {
			continue
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
}

func (r *reader) confirm() error {
	return r.call.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{
		Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()},
	}})
}

// filter is a server-side filter of $all: ordinal prefixes (OR-ed) or one
// unanchored regular expression, on the stream name or the event type. A
// nil filter keeps everything.
type filter struct {
	onStream bool
	prefixes []string
	re       *regexp.Regexp
}

func newFilter(fo *api.ReadReq_Options_FilterOptions) (*filter, error) {
	if fo == nil {
		return nil, nil
	}
	var e *api.ReadReq_Options_FilterOptions_Expression
	f := &filter{}
	switch x := fo.Filter.(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		f.onStream, e = true, x.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		e = x.EventType
	default:
		return nil, status.Error(codes.InvalidArgument, "filter is required")
	}
	if e.GetRegex() != "" {
		re, err := regexp.Compile(e.GetRegex())
		if err != nil {
			return nil, status.Errorf(codes.Unknown, "invalid regex: %v", err)
		}
		f.re = re
	} else {
		f.prefixes = e.GetPrefix()
	}
	return f, nil
}

func (f *filter) match(rec *record) bool {
	if f == nil {
		return true
	}
	s := rec.typ
	if f.onStream {
		s = rec.stream
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func streamID(name string) *shared.StreamIdentifier {
	return &shared.StreamIdentifier{StreamName: []byte(name)}
}

func stringUUID(id uuid.UUID) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
}
