package postgres

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Reads decode the event columns of a row from their binary wire format
// themselves instead of through pgx's Scan: Scan looks up a plan and goes
// through an interface per column, which is most of the client's CPU in a
// long read, and on a small machine the client's CPU is taken from the
// server. The fast path needs pgx's default extended protocol, which asks for
// binary results of these types; with any other format (the simple protocol,
// for example) reads fall back to Scan.

// eventOIDs are the types of eventColumns, in order.
var eventOIDs = [...]uint32{
	pgtype.Int8OID, pgtype.Int8OID, pgtype.TextOID, pgtype.Int8OID, pgtype.UUIDOID,
	pgtype.TextOID, pgtype.Int2OID, pgtype.ByteaOID, pgtype.ByteaOID, pgtype.TimestamptzOID,
	pgtype.TextArrayOID, pgtype.Int2OID,
}

// binaryColumns reports whether fds are columns of the types oids in binary
// format. pgx asks for text columns in text format, which is the same bytes.
func binaryColumns(fds []pgconn.FieldDescription, oids ...uint32) bool {
	if len(fds) != len(oids) {
		return false
	}
	for i, fd := range fds {
		if fd.DataTypeOID != oids[i] || fd.Format != pgx.BinaryFormatCode && fd.DataTypeOID != pgtype.TextOID {
			return false
		}
	}
	return true
}

// eventDecoder decodes eventColumns in binary format. Consecutive rows of
// one stream (or type) share one string instead of allocating their own.
//
// The data and metadata of the events it decodes are carved from shared
// chunks (payload), not allocated one by one: each event's Data and
// Metadata are capped slices, so appending to one reallocates and never
// writes into a neighbour, but a caller keeping one event's Data keeps its
// chunk, at most payloadChunk bytes, alive.
type eventDecoder struct {
	stream, typ string
	chunk       []byte // the unused rest of the current chunk
	next        int    // the size of the next chunk
}

// payloadChunk is the largest chunk of eventDecoder; a payload larger than
// an eighth of it gets an allocation of its own. Chunks start at
// payloadFirst bytes and double, so a page of a few events takes little.
const (
	payloadChunk = 64 << 10
	payloadFirst = 1 << 10
)

// payload returns n bytes for an event's data and metadata: from the
// current chunk, a new one, or an allocation of their own.
func (d *eventDecoder) payload(n int) []byte {
	if n > payloadChunk/8 {
		return make([]byte, n)
	}
	if len(d.chunk) < n || d.chunk == nil {
		d.next = min(max(d.next*2, payloadFirst), payloadChunk)
		d.chunk = make([]byte, max(d.next, n))
	}
	b := d.chunk[:n:n]
	d.chunk = d.chunk[n:]
	return b
}

var errBadValue = errors.New("postgres: unexpected column value in an event row")

// pgEpochMicros is 2000-01-01 UTC, PostgreSQL's timestamp epoch, in
// microseconds since the Unix epoch.
const pgEpochMicros = 946_684_800_000_000

func (d *eventDecoder) decode(v [][]byte, ev *driver.RecordedEvent) error {
	if len(v) != len(eventOIDs) || len(v[0]) != 8 || len(v[1]) != 8 || len(v[3]) != 8 ||
		len(v[4]) != 16 || len(v[6]) != 2 || len(v[9]) != 8 || v[2] == nil || v[5] == nil || v[7] == nil || v[8] == nil {
		return errBadValue
	}
	if string(v[2]) != d.stream {
		d.stream = string(v[2])
	}
	if string(v[5]) != d.typ {
		d.typ = string(v[5])
	}
	// Data and metadata share one slice of a chunk (payload).
	buf := d.payload(len(v[7]) + len(v[8]))
	nd := copy(buf, v[7])
	copy(buf[nd:], v[8])
	*ev = driver.RecordedEvent{
		StreamID: d.stream,
		Version:  binary.BigEndian.Uint64(v[3]),
		Position: driver.Position{
			Commit:  binary.BigEndian.Uint64(v[0]),
			Prepare: binary.BigEndian.Uint64(v[1]),
		},
		ID:          [16]byte(v[4]),
		Type:        d.typ,
		ContentType: driver.ContentType(int16(binary.BigEndian.Uint16(v[6]))),
		Data:        buf[:nd:nd],
		Metadata:    buf[nd:],
		RecordedAt:  time.UnixMicro(int64(binary.BigEndian.Uint64(v[9])) + pgEpochMicros).UTC(),
	}
	if v[11] != nil {
		if len(v[11]) != 2 {
			return errBadValue
		}
		ev.MetadataContentType = driver.ContentType(int16(binary.BigEndian.Uint16(v[11])))
	}
	if v[10] != nil {
		tags, err := decodeTextArray(v[10])
		if err != nil {
			return err
		}
		ev.Tags = tags
	}
	return nil
}
