package shred

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// The envelope, version 2 (docs/gdpr.md). A sealed event's data is a JSON
// object with one member more, "$shred", at the end:
//
//	{"name":null,"email":null,"customer":"c-42",
//	 "$shred":{"v":2,"s":"c-42","k":"<key ID>","n":"<nonce>","f":["name","email"],"c":"<ciphertext>"}}
//
// v is the format version; s the subject; k the 16-byte ID of the subject's
// key; n the 12-byte GCM nonce; f the protected fields, whose values in
// the data are null and whose plaintext, the JSON object of those fields,
// is c (ciphertext and GCM tag). Without f the whole data was protected:
// the object holds only "$shred", and c is the original data byte for
// byte. Bytes are standard base64 (encoding/json's []byte).
//
// The additional data binds the ciphertext to its event: see
// additionalData. Version 1 (sealed before the stream was bound) has the
// same fields and does not bind the stream; Open still reads it, Seal
// writes version 2.
const (
	envelopeField   = "$shred"
	envelopeVersion = 2
	keyIDSize       = 16
	nonceSize       = 12
)

// envelope is the "$shred" member of a sealed event's data.
type envelope struct {
	V int      `json:"v"`
	S string   `json:"s"`
	K []byte   `json:"k"`
	N []byte   `json:"n"`
	F []string `json:"f,omitempty"`
	C []byte   `json:"c"`
}

// ErrBadEnvelope reports an event whose "$shred" member is not an envelope
// this version of the package can read (a newer format version, a
// malformed one). Nothing was decrypted.
var ErrBadEnvelope = errors.New("shred: bad envelope")

// ErrTampered reports a ciphertext that does not authenticate under its
// subject's key: it was altered, or moved from another event or stream (the
// event's stream, ID, type, subject and fields are bound to it). It is not
// an erasure.
var ErrTampered = errors.New("shred: ciphertext does not authenticate (altered or moved from another event)")

// additionalData is the GCM additional data of an envelope of format
// version v: a fixed label naming v, the event ID, and length-prefixed the
// stream (from version 2 on), the event type, the subject, the key ID and
// the protected fields ("" alone for the whole data), so a ciphertext opens
// only in the event it was sealed in. Version 1's is the same without the
// stream.
func additionalData(v int, stream string, id uuid.UUID, eventType, subject string, kid []byte, fields []string) []byte {
	b := make([]byte, 0, 64+len(stream)+len(eventType)+len(subject))
	b = append(b, "eventstore/shred v"...)
	b = strconv.AppendInt(b, int64(v), 10)
	b = append(b, 0)
	b = append(b, id[:]...)
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	if v >= 2 {
		str(stream)
	}
	str(eventType)
	str(subject)
	str(string(kid))
	if fields == nil {
		str("")
	}
	for _, f := range fields {
		str(f)
	}
	return b
}

// member is one member of a JSON object, in order.
type member struct {
	name  string
	value json.RawMessage
}

// parseObject returns the members of a JSON object in their order, their
// values as they are written; ok is false when data is not one valid JSON
// object. It checks data with json.Valid, then walks its top level
// without decoding the values.
func parseObject(data []byte) (members []member, ok bool) {
	if !json.Valid(data) {
		return nil, false
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return nil, false
	}
	members = make([]member, 0, 8)
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return members, true
	}
	for {
		end := skipValue(data, i) // the name, a string
		name := data[i+1 : end-1]
		var n string
		if bytes.IndexByte(name, '\\') < 0 {
			n = string(name)
		} else if json.Unmarshal(data[i:end], &n) != nil {
			return nil, false
		}
		i = skipSpace(data, end)
		i = skipSpace(data, i+1) // past ':'
		end = skipValue(data, i)
		members = append(members, member{n, json.RawMessage(data[i:end])})
		i = skipSpace(data, end)
		if data[i] == '}' {
			return members, true
		}
		i = skipSpace(data, i+1) // past ','
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON value starting at i.
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		for i++; ; i++ {
			switch data[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch data[i] {
			case '"':
				i = skipValue(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	default: // a number, true, false or null
		for i < len(data) && !strings.ContainsRune(",}] \t\n\r", rune(data[i])) {
			i++
		}
		return i
	}
}

// appendObject appends the JSON object of members to b.
func appendObject(b []byte, members []member) []byte {
	b = append(b, '{')
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, m.name)
		b = append(b, ':')
		b = append(b, m.value...)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// withErased returns metadata (empty or a JSON object) with the member
// "$erased": true added at the end.
func withErased(metadata []byte) []byte {
	const flag = `"` + MetadataErased + `":true}`
	m := bytes.TrimRight(metadata, " \t\r\n")
	if len(m) == 0 || m[len(m)-1] != '}' {
		return []byte("{" + flag)
	}
	out := bytes.TrimRight(m[:len(m)-1], " \t\r\n")
	out = append([]byte(nil), out...)
	if out[len(out)-1] != '{' {
		out = append(out, ',')
	}
	return append(out, flag...)
}

// badEnvelope is ErrBadEnvelope with a reason.
func badEnvelope(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadEnvelope, fmt.Sprintf(format, args...))
}
