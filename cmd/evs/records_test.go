package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sharedScheme opens memory drivers shared by host name, so that several
// evs runs of one test see the same store ("sharedmem://NAME"): a memory
// driver's Close keeps its events. The SQLite driver appends to several
// streams once its support lands; until then these tests need memory.
const sharedScheme = "sharedmem"

var sharedStores = struct {
	sync.Mutex
	drivers map[string]*memory.Driver
}{drivers: map[string]*memory.Driver{}}

func init() {
	eventstore.Register(sharedScheme, func(_ context.Context, u *url.URL, _ driver.OpenOptions) (driver.Driver, error) {
		sharedStores.Lock()
		defer sharedStores.Unlock()
		d := sharedStores.drivers[u.Host]
		if d == nil {
			d = memory.New()
			sharedStores.drivers[u.Host] = d
		}
		return d, nil
	})
}

// sharedURL returns the URL of a memory store of t's own.
func sharedURL(t *testing.T) string {
	return sharedScheme + "://" + strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
}

func TestAppendRecords(t *testing.T) {
	u := sharedURL(t)
	mustEVS(t, "", "append", "--url", u, "Account-bob", "--type", "Opened", "--expected", "no-stream", "{}")
	file := filepath.Join(t.TempDir(), "transfer.jsonl")
	require.NoError(t, os.WriteFile(file, []byte(`{"expect": {"Account-alice": "no-stream", "Account-bob": 1}}

{"stream": "Account-alice", "type": "Opened", "data": {"owner": "Alice"}}
{"stream": "Account-alice", "type": "Debited", "data": {"amount": 30}, "tags": ["transfer:t1"], "id": "6e5b7f0e-5c7e-4e55-9d8b-0f5a1f0c2a91"}
{"stream": "Account-bob", "type": "Credited", "data": {"amount": 30}, "tags": ["transfer:t1"], "metadata": {"$correlationId": "t1"}}
{"stream": "Photos-1", "type": "PhotoAdded", "data_base64": "R0lGODlh"}
`), 0o644))
	out := mustEVS(t, "", "append", "--url", u, "--records", file)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 5, out)
	assert.Equal(t, "appended 4 events to 3 streams atomically, position 5/0", lines[0])
	assert.Regexp(t, `^  Opened to Account-alice: version 1, id [0-9a-f-]{36}$`, lines[1])
	assert.Equal(t, "  Debited to Account-alice: version 2, id 6e5b7f0e-5c7e-4e55-9d8b-0f5a1f0c2a91", lines[2])
	assert.Regexp(t, `^  Credited to Account-bob: version 2, id `, lines[3])
	assert.Regexp(t, `^  PhotoAdded to Photos-1: version 1, id `, lines[4])

	read := mustEVS(t, "", "read", "--url", u, "Account-bob", "--json")
	assert.Contains(t, read, `"type":"Credited","content_type":"json","data":{"amount":30},"metadata":{"$correlationId":"t1"}`)
	assert.Contains(t, read, `"tags":["transfer:t1"]`)
	assert.Contains(t, mustEVS(t, "", "read", "--url", u, "Account-alice"), `Debited  `)
	assert.Contains(t, mustEVS(t, "", "read", "--url", u, "Account-alice"), `{"amount":30}  tags=["transfer:t1"]`)

	// The same file again: both accounts moved, and the error names both.
	r := evs(t, "", "append", "--url", u, "--records", file)
	assert.Equal(t, exitFailure, r.code)
	assert.Equal(t, `evs: append to several streams: append conflict: "Account-alice": want no-stream, have 2; "Account-bob": want 1, have 2 (nothing was written; read the streams for their current versions and decide again)`+"\n", r.stderr)
	assert.Len(t, strings.Split(mustEVS(t, "", "read", "--url", u, "Account-alice"), "\n"), 3, "nothing written")
}

func TestAppendRecordsJSONAndStdin(t *testing.T) {
	u := sharedURL(t)
	in := `{"stream":"A-1","type":"T","data":1}` + "\n" + `{"stream":"B-1","type":"T"}` + "\n" + `{"stream":"A-1","type":"T","data":"x"}`
	out := mustEVS(t, in, "append", "--url", u, "--records", "-", "--expect", "A-1=no-stream", "--expect", "C-1=no-stream", "--json")
	assert.Regexp(t, `^\{"position":"3/0","events":\[\{"stream":"A-1","version":1,"id":"[0-9a-f-]{36}"\},\{"stream":"B-1","version":1,"id":"[^"]+"\},\{"stream":"A-1","version":2,"id":"[^"]+"\}\]\}\n$`, out)
	assert.Contains(t, mustEVS(t, "", "read", "--url", u, "A-1"), `"x"`)
}

func TestAppendRecordsCondition(t *testing.T) {
	u := sharedURL(t)
	register := `{"condition": {"query": [{"types": ["UserRegistered"], "tags": ["username:ada"]}]}}
{"stream": "User-1", "type": "UserRegistered", "tags": ["username:ada"]}
`
	mustEVS(t, register, "append", "--url", u, "--records", "-")
	r := evs(t, strings.Replace(register, "User-1", "User-2", 1), "append", "--url", u, "--records", "-")
	assert.Equal(t, exitFailure, r.code)
	assert.Equal(t, "evs: append to several streams: append conflict: an event matches the append condition (nothing was written; read the streams for their current versions and decide again)\n", r.stderr)
	after := `{"condition": {"query": [{"tags": ["username:ada"]}], "after": "1/0"}}
{"stream": "User-3", "type": "Renamed", "tags": ["username:ada"]}
`
	mustEVS(t, after, "append", "--url", u, "--records", "-")
}

// TestAppendRecordsBadInput feeds hostile and mistaken records files:
// each fails with a message naming the line and the problem, and writes
// nothing.
func TestAppendRecordsBadInput(t *testing.T) {
	rec := `{"stream":"A-1","type":"T"}` + "\n"
	tests := []struct {
		name  string
		in    string
		args  []string
		code  int
		error string
	}{
		{"empty", "", nil, exitFailure, `stdin: no records`},
		{"only headers", `{"expect":{"A-1":0}}` + "\n", nil, exitFailure, `stdin: no records`},
		{"not JSON", rec + "stream=A-1\n", nil, exitFailure, `stdin line 2: not a JSON object of a record or a header: invalid character 's'`},
		{"array", "[1,2]\n", nil, exitFailure, `stdin line 1: not a JSON object of a record or a header`},
		{"two objects", rec[:len(rec)-1] + " {}\n", nil, exitFailure, `stdin line 1: more than one JSON value on the line`},
		{"unknown key", `{"stream":"A-1","type":"T","tag":["x"]}` + "\n", nil, exitFailure, `stdin line 1: not a JSON object of a record or a header: json: unknown field "tag"`},
		{"repeated key", `{"stream":"A-1","type":"T","stream":"B-1"}` + "\n", nil, exitFailure, `stdin line 1: key "stream" repeats`},
		{"invalid UTF-8", "{\"stream\":\"A-\xff\",\"type\":\"T\"}\n", nil, exitFailure, `stdin line 1: not valid UTF-8`},
		{"no stream", `{"type":"T"}` + "\n", nil, exitFailure, `stdin line 1: a record needs a "stream"`},
		{"no type", `{"stream":"A-1"}` + "\n", nil, exitFailure, `stdin line 1: the record for "A-1" needs a "type"`},
		{"system stream", `{"stream":"$all","type":"T"}` + "\n", nil, exitFailure, `stdin line 1: invalid stream id: stream id "$all" starts with "$"`},
		{"control character in type", `{"stream":"A-1","type":"T\u001b[31m"}` + "\n", nil, exitFailure, `stdin line 1: invalid event type`},
		{"empty tag", `{"stream":"A-1","type":"T","tags":[""]}` + "\n", nil, exitFailure, `stdin line 1: invalid tag: tag is empty`},
		{"bad id", `{"stream":"A-1","type":"T","id":"42"}` + "\n", nil, exitFailure, `stdin line 1: "id" "42" is not a UUID`},
		{"data and base64", `{"stream":"A-1","type":"T","data":1,"data_base64":"AA=="}` + "\n", nil, exitFailure, `stdin line 1: both "data" and "data_base64"`},
		{"bad base64", `{"stream":"A-1","type":"T","data_base64":"%%"}` + "\n", nil, exitFailure, `stdin line 1: "data_base64" is not standard base64`},
		{"metadata not an object", `{"stream":"A-1","type":"T","metadata":[1]}` + "\n", nil, exitFailure, `stdin line 1: "metadata" is not a JSON object`},
		{"header after record", rec + `{"expect":{"A-1":0}}` + "\n", nil, exitFailure, `stdin line 2: the "expect" header comes after a record: headers go first`},
		{"two expect headers", `{"expect":{"A-1":0}}` + "\n" + `{"expect":{"B-1":0}}` + "\n" + rec, nil, exitFailure, `stdin line 2: a second "expect" header`},
		{"record with a header", `{"stream":"A-1","type":"T","expect":{"A-1":0}}` + "\n", nil, exitFailure, `stdin line 1: a record line cannot also hold "expect" or "condition"`},
		{"bad expected version", `{"expect":{"A-1":-1}}` + "\n" + rec, nil, exitFailure, `stdin line 1: "expect" of "A-1": -1: want a version number or one of "any", "no-stream", "stream-exists"`},
		{"bad expected word", `{"expect":{"A-1":"none"}}` + "\n" + rec, nil, exitFailure, `stdin line 1: "expect" of "A-1": "none": want any, no-stream, stream-exists or a version number`},
		{"repeated expect stream", `{"expect":{"A-1":0,"A-1":1}}` + "\n" + rec, nil, exitFailure, `stdin line 1: "expect": key "A-1" repeats`},
		{"condition without query", `{"condition":{}}` + "\n" + rec, nil, exitFailure, `stdin line 1: "condition" needs a "query"`},
		{"empty query item", `{"condition":{"query":[{}]}}` + "\n" + rec, nil, exitFailure, `stdin line 1: "condition" query item 0 has neither "types" nor "tags"`},
		{"bad after", `{"condition":{"query":[],"after":"x"}}` + "\n" + rec, nil, exitFailure, `stdin line 1: "condition" "after" "x": want a position such as 42/0`},
		{"empty object", "{}\n", nil, exitFailure, `stdin line 1: an empty object`},
		{"line too long", `{"stream":"A-1","type":"T","data":"` + strings.Repeat("x", maxRecordLine) + `"}` + "\n", nil, exitFailure, `stdin line 1: over the limit of 8388608 bytes per line`},
		{"expect flag and header", `{"expect":{"A-1":0}}` + "\n" + rec, []string{"--expect", "A-1=1"}, exitUsage, `--expect "A-1=1": a second expectation for stream "A-1"`},
		{"bad expect flag", rec, []string{"--expect", "A-1"}, exitUsage, `invalid --expect "A-1": want STREAM=E`},
		{"stream argument", rec, []string{"A-1"}, exitUsage, `--records takes no STREAM or DATA argument`},
		{"type flag", rec, []string{"--type", "T"}, exitUsage, `--type is for one event`},
		{"expect without records", "", []string{"A-1", "--type", "T", "--expect", "A-1=0"}, exitUsage, `--expect goes with --records`},
		{"check-only any", `{"expect":{"B-1":"any"}}` + "\n" + rec, nil, exitFailure, `evs: append to several streams: invalid version: stream "B-1" is only checked`},
		{"too many tags", `{"stream":"A-1","type":"T","tags":[` + strings.Repeat(`"t",`, 40) + `"u"]}` + "\n", nil, exitFailure, `invalid tag`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := sharedURL(t)
			args := []string{"append", "--url", u}
			if tc.name != "expect without records" {
				args = append(args, "--records", "-")
			}
			r := evs(t, tc.in, append(args, tc.args...)...)
			assert.Equal(t, tc.code, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, tc.error)
			assert.Empty(t, r.stdout)
			assert.Empty(t, mustEVS(t, "", "read", "--url", u, "A-1"), "nothing written")
		})
	}
}

func TestAppendRecordsMissingFile(t *testing.T) {
	r := evs(t, "", "append", "--url", sharedURL(t), "--records", filepath.Join(t.TempDir(), "missing.jsonl"))
	assert.Equal(t, exitFailure, r.code)
	assert.Contains(t, r.stderr, "evs: read records: open ")
	assert.Contains(t, r.stderr, "missing.jsonl: no such file or directory")
}
