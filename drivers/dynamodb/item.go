package dynamodb

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/google/uuid"
)

// The item layout. Every item of the table has a string partition key "pk"
// and a number sort key "sk"; docs/dynamodb.md draws the layout.
//
//	event        pk = stream ID              sk = version (1, 2, …)
//	log entry    pk = "$log#" + partition    sk = position of the append's first event
//	layout       pk = "$layout"              sk = 0
//	snapshot     pk = "$snapshot#" + stream  sk = 0
//	checkpoint   pk = "$checkpoint#" + name  sk = 0
//
// Stream IDs and subscription names never start with "$", so the system
// items cannot collide with a stream. The local secondary index "by_id"
// (pk, id) finds an event of a stream by its ID with a strongly consistent
// query; only event items carry "id", so the index holds nothing else.
const (
	attrPK = "pk"
	attrSK = "sk"

	// Event items.
	attrID      = "id" // B, 16 bytes: the event ID, the index's sort key
	attrType    = "t"  // S
	attrContent = "ct" // N, eventstore.ContentType; absent for JSON
	attrData    = "d"  // B; absent when empty
	attrMeta    = "m"  // B; absent when empty
	attrAt      = "at" // N, recorded time in microseconds since the Unix epoch
	attrPos     = "p"  // N, position (Commit) in the global log

	// Log entries: one per append, covering positions sk … sk+n-1.
	attrStream  = "s"  // S, the stream appended to
	attrVersion = "v"  // N, version of the append's first event
	attrCount   = "n"  // N, number of events
	attrTypes   = "ty" // L of S, the events' types in order (for filters)

	// The layout item.
	attrLayout = "layout" // N, layoutVersion
	attrBucket = "bucket" // N, positions per log partition

	// Snapshots (attrVersion, attrData) and checkpoints (attrPos, attrPrepare).
	attrPrepare = "pp" // N

	indexByID = "by_id"

	logPrefix        = "$log#"
	layoutPK         = "$layout"
	snapshotPrefix   = "$snapshot#"
	checkpointPrefix = "$checkpoint#"
)

// layoutVersion is the version of the item layout this driver reads and
// writes; a table with another one is refused.
const layoutVersion = 1

// defaultLogBucketSize is how many positions one log partition covers: the
// partition of an entry is its first position divided by it. A
// partition of a table with a local secondary index holds at most 10 GB, and
// a log entry takes at most ~26 KB (~100 bytes for a single event), so a
// partition never comes near the limit.
const defaultLogBucketSize = 1_000_000

// DynamoDB's limits.
const (
	maxItemSize = 400 << 10 // bytes per item, counting attribute names and an index entry
	maxTxnItems = 100       // items per TransactWriteItems
	maxTxnSize  = 4 << 20   // bytes of items per TransactWriteItems
	maxBatchGet = 100       // keys per BatchGetItem
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
func eventItemSize(e eventstore.Event) int {
	return len(e.Data) + len(e.Metadata) + eventItemOverhead
}

// logItemSize estimates the size of the log entry of an append.
func logItemSize(stream string, events []eventstore.Event) int {
	n := 128 + len(stream)
	for _, e := range events {
		n += len(e.Type) + 4
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

// eventItem encodes an event at a version and position.
func eventItem(stream string, version, pos uint64, e eventstore.Event, at time.Time) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		attrPK:   str(stream),
		attrSK:   num(version),
		attrID:   bin(e.ID[:]),
		attrType: str(e.Type),
		attrAt:   num(uint64(at.UnixMicro())),
		attrPos:  num(pos),
	}
	if e.ContentType != eventstore.JSON {
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
	return item
}

// logItem encodes the log entry of an append whose first event has position start.
func logItem(bucket, start uint64, stream string, first uint64, events []eventstore.Event) map[string]types.AttributeValue {
	typs := make([]types.AttributeValue, len(events))
	for i, e := range events {
		typs[i] = str(e.Type)
	}
	return map[string]types.AttributeValue{
		attrPK:      str(logPK(bucket)),
		attrSK:      num(start),
		attrStream:  str(stream),
		attrVersion: num(first),
		attrCount:   num(uint64(len(events))),
		attrTypes:   &types.AttributeValueMemberL{Value: typs},
	}
}

// logEntry is a decoded log item: the append of events first…first+count-1
// of stream at positions start … start+count-1.
type logEntry struct {
	start  uint64
	stream string
	first  uint64
	count  uint64
	types  []string
}

// last returns the position of the entry's last event.
func (e logEntry) last() uint64 { return e.start + e.count - 1 }

func decodeLogEntry(item map[string]types.AttributeValue) (logEntry, error) {
	var e logEntry
	var err error
	if e.start, err = getNum(item, attrSK); err != nil {
		return e, err
	}
	if e.stream, err = getStr(item, attrStream); err != nil {
		return e, err
	}
	if e.first, err = getNum(item, attrVersion); err != nil {
		return e, err
	}
	if e.count, err = getNum(item, attrCount); err != nil {
		return e, err
	}
	if e.start == 0 || e.count == 0 || e.count > maxTxnItems || e.first == 0 {
		return e, fmt.Errorf("log entry at position %d: bad count %d or version %d", e.start, e.count, e.first)
	}
	l, ok := item[attrTypes].(*types.AttributeValueMemberL)
	if !ok || uint64(len(l.Value)) != e.count {
		return e, fmt.Errorf("log entry at position %d: want %d event types", e.start, e.count)
	}
	e.types = make([]string, len(l.Value))
	for i, v := range l.Value {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return e, fmt.Errorf("log entry at position %d: event type %d is not a string", e.start, i)
		}
		e.types[i] = s.Value
	}
	return e, nil
}

// decodeEvent decodes an event item.
func decodeEvent(item map[string]types.AttributeValue) (eventstore.RecordedEvent, error) {
	var ev eventstore.RecordedEvent
	var err error
	if ev.StreamID, err = getStr(item, attrPK); err != nil {
		return ev, err
	}
	if ev.Version, err = getNum(item, attrSK); err != nil {
		return ev, err
	}
	if ev.Position.Commit, err = getNum(item, attrPos); err != nil {
		return ev, err
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
		ev.ContentType = eventstore.ContentType(ct)
	}
	if b, ok := item[attrData].(*types.AttributeValueMemberB); ok {
		ev.Data = b.Value // the SDK decoded a fresh slice for us
	}
	if b, ok := item[attrMeta].(*types.AttributeValueMemberB); ok {
		ev.Metadata = b.Value
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
