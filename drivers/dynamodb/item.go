package dynamodb

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

// The item layout. Every item of the table has a string partition key "pk"
// and a number sort key "sk"; docs/dynamodb.md draws the layout.
//
//	event        pk = stream ID              sk = version (1, 2, …)
//	log entry    pk = "$log#" + partition    sk = position of its first event
//	layout       pk = "$layout"              sk = 0
//	snapshot     pk = "$snapshot#" + stream  sk = 0
//	checkpoint   pk = "$checkpoints#" + shard sk = hash of the name
//	lease        pk = "$lease#" + group      sk = hash of the lease's key
//	inbox        pk = "$inbox#" + shard      sk = arrival key (indexed layout)
//	log head     pk = "$loghead"             sk = 0 (indexed layout)
//	tag item     pk = "$tag#" + tag          sk = position of its log entry's first event (see tagindex.go)
//	listed stream pk = "$retention"          sk = hash of the stream ID (see retained.go)
//	checkpoint of the earlier layout (read and deleted, no longer written)
//	             pk = "$checkpoint#" + name  sk = 0
//
// A checkpoint's shard (0 … 15) and sort key come from the SHA-256 of its
// name (see checkpointKey), so the checkpoints of a table are listed with
// one Query per shard. Stream IDs and subscription names never start with
// "$", so the system items cannot collide with a stream. The local secondary index "by_id"
// (pk, id) finds an event of a stream by its ID with a strongly consistent
// query; only event items carry "id", so the index holds nothing else.
const (
	attrPK = "pk"
	attrSK = "sk"

	// Event items.
	attrID      = "id"  // B, 16 bytes: the event ID, the index's sort key
	attrType    = "t"   // S
	attrContent = "ct"  // N, driver.ContentType; absent for JSON
	attrData    = "d"   // B; absent when empty
	attrMeta    = "m"   // B; absent when empty
	attrMetaCT  = "mct" // N, driver.ContentType of the metadata; absent for JSON (only an import writes it)
	attrAt      = "at"  // N, recorded time in microseconds since the Unix epoch
	attrPos     = "p"   // N, position (Commit) in the global log
	attrTags    = "tg"  // L of S, the event's tags in order; absent when none

	// Log entries: one per append or import, covering positions sk … sk+n-1.
	attrStream  = "s"  // S, the stream appended to
	attrVersion = "v"  // N, version of the append's first event
	attrCount   = "n"  // N, number of events
	attrTypes   = "ty" // L of S, the events' types in order (for filters)
	// attrEntryTags lists, per event of the entry in order, its tags (an L
	// of S each, empty when none), for reads by query; absent when no event
	// of the entry has tags.
	attrEntryTags = "tt" // L of L of S
	// An import of several runs (consecutive events of one stream) has, in
	// place of s and v, one element per run, in position order:
	attrRunStreams  = "rs" // L of S, the run's stream
	attrRunVersions = "rv" // L of N, the version of the run's first event
	attrRunCounts   = "rn" // L of N, the run's number of events

	// The layout item.
	attrLayout = "layout" // N, layoutVersion
	attrBucket = "bucket" // N, positions per log partition
	// attrLogLayout is the log layout (LogLayout); absent means LogHead.
	attrLogLayout = "log" // S

	// Inbox items (see order.go) carry a log entry's attributes (s, v, n,
	// ty or rs, rv, rn) and:
	attrBytes = "b" // N, the estimated bytes of the append's event items

	// The head of an indexed log.
	attrNext = "next" // N, the next free position

	// An event item of a single-event append to an indexed table of item
	// layout 2, until the orderer places it (see unplaced.go): the keys of
	// the sparse global secondary index indexUnplaced, and attrBytes.
	attrUnplacedShard   = "ub" // N, the index's partition (0 … unplacedShards-1)
	attrUnplacedArrival = "ua" // N, the arrival key, as an inbox item's sort key

	// The layout item's checkpoint layout: absent in a table from before
	// checkpointLayout, which may hold checkpoints of the earlier layout not
	// copied yet; checkpointLayout once every one has been copied (see
	// copyEarlierCheckpoints), and from the start in a table set up since.
	attrCheckpoints = "checkpoints" // N

	// Snapshots (attrVersion, attrData) and checkpoints (attrName, attrPos,
	// attrPrepare).
	attrPrepare = "pp" // N
	attrName    = "cn" // S, the checkpoint's name

	// Leases (and attrPos, attrPrepare for the position saved).
	attrLeaseKey   = "lk" // S, the lease's key within its group
	attrOwner      = "o"  // S, the holder; absent once released
	attrGeneration = "g"  // N, grants to a new holder
	attrExpires    = "e"  // N, expiry in nanoseconds since the Unix epoch

	indexByID = "by_id"
	// indexUnplaced is the sparse global secondary index (ub, ua) of the
	// events not placed yet of single-event appends (indexed layout, item
	// layout 2), projecting the type, tags and estimated bytes.
	indexUnplaced = "unplaced"

	logPrefix        = "$log#"
	layoutPK         = "$layout"
	snapshotPrefix   = "$snapshot#"
	checkpointPrefix = "$checkpoints#"
	// earlierCheckpointPrefix is the partition key prefix of a checkpoint
	// of the earlier layout, one item per name with sort key 0.
	earlierCheckpointPrefix = "$checkpoint#"
	leasePrefix             = "$lease#"
	// inboxPrefix is the partition key prefix of the inbox of an indexed
	// table: one partition per shard (0 … inboxShards-1).
	inboxPrefix = "$inbox#"
	// logHeadPK is the partition key of the head of an indexed log: the
	// orderer's progress (sort key 0).
	logHeadPK = "$loghead"
)

// checkpointLayout is the checkpoint layout this driver writes: one item per
// name in checkpointShards partitions, recorded in the layout item.
const checkpointLayout = 2

// checkpointShards is how many partitions hold the checkpoints: a partition
// key takes about 1,000 writes per second, and subscriptions save their
// checkpoints after every page they handle. Part of the layout: never change.
const checkpointShards = 16

// layoutVersion is the version of the item layout this driver writes in
// a head table and in an indexed table without the index indexUnplaced; a
// table with another one than it or layoutUnplaced is refused.
const layoutVersion = 1

// layoutUnplaced is the item layout of an indexed table set up with the
// index indexUnplaced: a single-event append may be one PutItem of its
// event item, marked unplaced, instead of a transaction with an inbox
// item (see unplaced.go). Drivers from before it refuse such a table, as
// their orderer would never place those events.
const layoutUnplaced = 2

// defaultLogBucketSize is how many positions one log partition covers: the
// partition of an entry is its first position divided by it. A
// partition of a table with a local secondary index holds at most 10 GB, and
// a log entry takes at most ~26 KB (~100 bytes for a single event), so a
// partition never comes near the limit.
const defaultLogBucketSize = 1_000_000

// DynamoDB's limits.
const (
	maxItemSize   = 400 << 10 // bytes per item, counting attribute names and an index entry
	maxTxnItems   = 100       // items per TransactWriteItems
	maxTxnSize    = 4 << 20   // bytes of items per TransactWriteItems
	maxBatchGet   = 100       // keys per BatchGetItem
	maxBatchWrite = 25        // requests per BatchWriteItem
)

// eventItemOverhead bounds what an event item holds besides its data and
// metadata: attribute names, a 255-byte stream ID and event type, numbers
// (at most 21 bytes each), the ID, and the by_id index entry (keys and the
// 100 bytes DynamoDB adds), with room to spare.
const eventItemOverhead = 1536

// maxLogItemSize bounds a log entry: names, keys, a 255-byte stream ID and
// up to 100 event types of 255 bytes.
const maxLogItemSize = 32 << 10

// eventItemSize estimates the bytes an event item counts towards the
// transaction's 4 MB: never less than DynamoDB counts.
func eventItemSize(e driver.Event) int {
	return len(e.Data) + len(e.Metadata) + eventItemOverhead + tagsBytes(e.Tags)
}

// logItemSize estimates the size of the log entry of an append.
func logItemSize(stream string, events []driver.Event) int {
	n := 128 + len(stream)
	for _, e := range events {
		n += len(e.Type) + 8 + tagsBytes(e.Tags)
	}
	return n
}

// runsLogItemSize estimates the size of the log entry of an import of runs:
// per run, its stream ID, two numbers of at most 21 bytes and the lists'
// element overhead.
func runsLogItemSize(runs []run) int {
	n := 128
	for _, r := range runs {
		n += len(r.stream) + 48
		for _, e := range r.events {
			n += len(e.Type) + 8 + tagsBytes(e.Tags)
		}
	}
	return n
}

func str(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }

func num(n uint64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatUint(n, 10)}
}

func bin(b []byte) *types.AttributeValueMemberB { return &types.AttributeValueMemberB{Value: b} }

// key returns the primary key of an item.
func key(pk string, sk uint64) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: num(sk)}
}

// logPK returns the partition key of the log entries of a log partition.
func logPK(bucket uint64) string { return logPrefix + strconv.FormatUint(bucket, 10) }

// eventItem encodes an event at a version and position (0: none yet).
// mct is the metadata's content type, JSON but for an import.
func eventItem(stream string, version, pos uint64, e driver.Event, at time.Time, mct driver.ContentType) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		attrPK:   str(stream),
		attrSK:   num(version),
		attrID:   bin(e.ID[:]),
		attrType: str(e.Type),
		attrAt:   num(uint64(at.UnixMicro())),
	}
	if pos > 0 { // 0: an indexed table's orderer sets it
		item[attrPos] = num(pos)
	}
	if e.ContentType != driver.JSON {
		item[attrContent] = num(uint64(e.ContentType))
	}
	// DynamoDB accepts empty binary values, but an absent attribute is
	// smaller and reads back as empty too.
	if len(e.Data) > 0 {
		item[attrData] = bin(e.Data)
	}
	if len(e.Metadata) > 0 {
		item[attrMeta] = bin(e.Metadata)
	}
	if mct != driver.JSON {
		item[attrMetaCT] = num(uint64(mct))
	}
	if len(e.Tags) > 0 {
		item[attrTags] = strList(e.Tags)
	}
	return item
}

// strList encodes a list of strings.
func strList(ss []string) *types.AttributeValueMemberL {
	l := make([]types.AttributeValue, len(ss))
	for i, s := range ss {
		l[i] = str(s)
	}
	return &types.AttributeValueMemberL{Value: l}
}

// setEntryTags adds to a log entry the tags of its events, when one has any.
func setEntryTags(item map[string]types.AttributeValue, events []driver.Event) {
	if !slices.ContainsFunc(events, func(e driver.Event) bool { return len(e.Tags) > 0 }) {
		return
	}
	l := make([]types.AttributeValue, len(events))
	for i, e := range events {
		l[i] = strList(e.Tags)
	}
	item[attrEntryTags] = &types.AttributeValueMemberL{Value: l}
}

// logItem encodes the log entry of an append whose first event has position start.
func logItem(bucket, start uint64, stream string, first uint64, events []driver.Event) map[string]types.AttributeValue {
	typs := make([]types.AttributeValue, len(events))
	for i, e := range events {
		typs[i] = str(e.Type)
	}
	item := map[string]types.AttributeValue{
		attrPK:      str(logPK(bucket)),
		attrSK:      num(start),
		attrStream:  str(stream),
		attrVersion: num(first),
		attrCount:   num(uint64(len(events))),
		attrTypes:   &types.AttributeValueMemberL{Value: typs},
	}
	setEntryTags(item, events)
	return item
}

// runsLogItem encodes the log entry of an import of several runs whose
// first event has position start. It has no "s" and "v" attributes, so a
// driver from before imports fails to decode it instead of misreading it.
func runsLogItem(bucket, start uint64, runs []run) map[string]types.AttributeValue {
	var typs, streams, versions, counts []types.AttributeValue
	var all []driver.Event
	for _, r := range runs {
		streams = append(streams, str(r.stream))
		versions = append(versions, num(r.first))
		counts = append(counts, num(uint64(len(r.events))))
		for _, e := range r.events {
			typs = append(typs, str(e.Type))
		}
		all = append(all, r.events...)
	}
	item := map[string]types.AttributeValue{
		attrPK:          str(logPK(bucket)),
		attrSK:          num(start),
		attrCount:       num(uint64(len(typs))),
		attrTypes:       &types.AttributeValueMemberL{Value: typs},
		attrRunStreams:  &types.AttributeValueMemberL{Value: streams},
		attrRunVersions: &types.AttributeValueMemberL{Value: versions},
		attrRunCounts:   &types.AttributeValueMemberL{Value: counts},
	}
	setEntryTags(item, all)
	return item
}

// entryItem encodes the log entry of runs whose first event has position
// start: an append's (one run) or an import's.
func entryItem(bucket, start uint64, runs []run) map[string]types.AttributeValue {
	if len(runs) == 1 {
		return logItem(bucket, start, runs[0].stream, runs[0].first, runs[0].events)
	}
	return runsLogItem(bucket, start, runs)
}

// entryPuts returns the items that write the log entry of runs at
// position start: its put, on condition that no entry has that key (see
// commit.go), then its tag items (see tagindex.go).
func (d *Driver) entryPuts(start uint64, runs []run) []types.TransactWriteItem {
	tags := d.tagItems(start, runs)
	items := make([]types.TransactWriteItem, 0, 1+len(tags))
	items = append(items, types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(d.table), Item: entryItem(start/d.bucketSize, start, runs), ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}})
	return append(items, tags...)
}

// logEntry is a decoded log item: the events of an append (one run) or an
// import (one or more runs) at positions start … start+count-1.
type logEntry struct {
	start uint64
	count uint64
	types []string
	tags  [][]string // per event; nil when no event has tags
	runs  []logRun   // in position order; their counts add up to count
}

// logRun is a run of a log entry: events first … first+count-1 of stream,
// at consecutive positions from the entry's start plus offset.
type logRun struct {
	stream string
	first  uint64
	count  uint64
	offset uint64
}

// last returns the position of the entry's last event.
func (e logEntry) last() uint64 { return e.start + e.count - 1 }

// event returns the stream and version of the entry's i-th event.
func (e logEntry) event(i uint64) (string, uint64) {
	r := e.runs[0]
	if len(e.runs) > 1 {
		k, _ := slices.BinarySearchFunc(e.runs, i, func(r logRun, i uint64) int { return cmp.Compare(r.offset+r.count-1, i) })
		r = e.runs[k]
	}
	return r.stream, r.first + i - r.offset
}

func decodeLogEntry(item map[string]types.AttributeValue) (logEntry, error) {
	var e logEntry
	var err error
	if e.start, err = getNum(item, attrSK); err != nil {
		return e, err
	}
	if e.count, err = getNum(item, attrCount); err != nil {
		return e, err
	}
	if e.start == 0 || e.count == 0 || e.count > maxTxnItems {
		return e, fmt.Errorf("log entry at position %d: bad count %d", e.start, e.count)
	}
	if e.types, err = getStrs(item, attrTypes); err != nil {
		return e, err
	}
	if uint64(len(e.types)) != e.count {
		return e, fmt.Errorf("log entry at position %d: want %d event types", e.start, e.count)
	}
	if e.tags, err = getEntryTags(item); err != nil {
		return e, fmt.Errorf("log entry at position %d: %w", e.start, err)
	}
	if e.tags != nil && uint64(len(e.tags)) != e.count {
		return e, fmt.Errorf("log entry at position %d: want %d events' tags", e.start, e.count)
	}
	if _, multi := item[attrRunStreams]; !multi {
		r := logRun{count: e.count}
		if r.stream, err = getStr(item, attrStream); err != nil {
			return e, err
		}
		if r.first, err = getNum(item, attrVersion); err != nil {
			return e, err
		}
		if r.first == 0 {
			return e, fmt.Errorf("log entry at position %d: version 0", e.start)
		}
		e.runs = []logRun{r}
		return e, nil
	}
	streams, err := getStrs(item, attrRunStreams)
	if err != nil {
		return e, err
	}
	versions, err := getNums(item, attrRunVersions)
	if err != nil {
		return e, err
	}
	counts, err := getNums(item, attrRunCounts)
	if err != nil {
		return e, err
	}
	if len(streams) == 0 || len(versions) != len(streams) || len(counts) != len(streams) {
		return e, fmt.Errorf("log entry at position %d: %d run streams, %d versions, %d counts", e.start, len(streams), len(versions), len(counts))
	}
	e.runs = make([]logRun, len(streams))
	offset := uint64(0)
	for i := range streams {
		if versions[i] == 0 || counts[i] == 0 || counts[i] > e.count-offset {
			return e, fmt.Errorf("log entry at position %d: run %d has version %d and count %d", e.start, i, versions[i], counts[i])
		}
		e.runs[i] = logRun{stream: streams[i], first: versions[i], count: counts[i], offset: offset}
		offset += counts[i]
	}
	if offset != e.count {
		return e, fmt.Errorf("log entry at position %d: runs of %d events, want %d", e.start, offset, e.count)
	}
	return e, nil
}

// getStrs decodes a list of strings.
func getStrs(item map[string]types.AttributeValue, name string) ([]string, error) {
	l, ok := item[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil, fmt.Errorf("item without list attribute %q", name)
	}
	out := make([]string, len(l.Value))
	for i, v := range l.Value {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return nil, fmt.Errorf("attribute %q: element %d is not a string", name, i)
		}
		out[i] = s.Value
	}
	return out, nil
}

// getEntryTags decodes a log entry's tags per event; nil when it has none.
func getEntryTags(item map[string]types.AttributeValue) ([][]string, error) {
	v, has := item[attrEntryTags]
	if !has {
		return nil, nil
	}
	l, ok := v.(*types.AttributeValueMemberL)
	if !ok {
		return nil, fmt.Errorf("attribute %q is not a list", attrEntryTags)
	}
	out := make([][]string, len(l.Value))
	for i, v := range l.Value {
		var err error
		if out[i], err = getStrs(map[string]types.AttributeValue{attrEntryTags: v}, attrEntryTags); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		if len(out[i]) == 0 {
			out[i] = nil
		}
	}
	return out, nil
}

// tagsAt returns the tags of the entry's i-th event.
func (e logEntry) tagsAt(i uint64) []string {
	if e.tags == nil {
		return nil
	}
	return e.tags[i]
}

// maxEntryTagsBytes bounds the bytes of the events' tags one log entry
// holds, so that it stays well within an item's 400 KB: an append (or
// multi-stream append) whose tags take more fails with ErrBatchTooLarge,
// and the orderer of an indexed table places appends whose tags together
// take more in separate log entries.
const maxEntryTagsBytes = 256 << 10

// entryTagsBytes is the bytes of a log entry's tags.
func entryTagsBytes(e logEntry) int {
	n := 0
	for _, t := range e.tags {
		n += tagsBytes(t)
	}
	return n
}

// eventsTagsBytes is the bytes of events' tags in a log entry.
func eventsTagsBytes(events []driver.Event) int {
	n := 0
	for _, e := range events {
		n += tagsBytes(e.Tags)
	}
	return n
}

// tagsBytes is the bytes the tags take in an item, with list overhead.
func tagsBytes(tags []string) int {
	n := 0
	for _, t := range tags {
		n += len(t) + 4
	}
	return n
}

// getNums decodes a list of numbers.
func getNums(item map[string]types.AttributeValue, name string) ([]uint64, error) {
	l, ok := item[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil, fmt.Errorf("item without list attribute %q", name)
	}
	out := make([]uint64, len(l.Value))
	for i, v := range l.Value {
		n, ok := v.(*types.AttributeValueMemberN)
		if !ok {
			return nil, fmt.Errorf("attribute %q: element %d is not a number", name, i)
		}
		var err error
		if out[i], err = strconv.ParseUint(n.Value, 10, 64); err != nil {
			return nil, fmt.Errorf("attribute %q: element %d: %w", name, i, err)
		}
	}
	return out, nil
}

// decodeEvent decodes an event item.
func decodeEvent(item map[string]types.AttributeValue) (driver.RecordedEvent, error) {
	var ev driver.RecordedEvent
	var err error
	if ev.StreamID, err = getStr(item, attrPK); err != nil {
		return ev, err
	}
	if ev.Version, err = getNum(item, attrSK); err != nil {
		return ev, err
	}
	if _, placed := item[attrPos]; placed { // absent until the orderer of an indexed table places it
		if ev.Position.Commit, err = getNum(item, attrPos); err != nil {
			return ev, err
		}
	}
	id, ok := item[attrID].(*types.AttributeValueMemberB)
	if !ok || len(id.Value) != len(uuid.UUID{}) {
		return ev, fmt.Errorf("event %q version %d: bad id", ev.StreamID, ev.Version)
	}
	copy(ev.ID[:], id.Value)
	if ev.Type, err = getStr(item, attrType); err != nil {
		return ev, err
	}
	if _, has := item[attrContent]; has {
		ct, err := getNum(item, attrContent)
		if err != nil {
			return ev, err
		}
		ev.ContentType = driver.ContentType(ct)
	}
	if b, ok := item[attrData].(*types.AttributeValueMemberB); ok {
		ev.Data = b.Value // the SDK decoded a fresh slice for us
	}
	if b, ok := item[attrMeta].(*types.AttributeValueMemberB); ok {
		ev.Metadata = b.Value
	}
	if _, has := item[attrMetaCT]; has {
		ct, err := getNum(item, attrMetaCT)
		if err != nil {
			return ev, err
		}
		ev.MetadataContentType = driver.ContentType(ct)
	}
	if _, has := item[attrTags]; has {
		if ev.Tags, err = getStrs(item, attrTags); err != nil {
			return ev, err
		}
	}
	at, err := getNum(item, attrAt)
	if err != nil {
		return ev, err
	}
	ev.RecordedAt = time.UnixMicro(int64(at)).UTC()
	return ev, nil
}

func getStr(item map[string]types.AttributeValue, name string) (string, error) {
	v, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", fmt.Errorf("item without string attribute %q", name)
	}
	return v.Value, nil
}

func getNum(item map[string]types.AttributeValue, name string) (uint64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("item without number attribute %q", name)
	}
	n, err := strconv.ParseUint(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %q: %w", name, err)
	}
	return n, nil
}
