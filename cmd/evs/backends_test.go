package main

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBackends runs one session of commands on each real backend: what one
// command writes, the next one (a new Store, as a new process would open)
// reads, and tail sees events appended through another Store live.
func TestBackends(t *testing.T) {
	backends := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string {
			return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "events.db"))
		}},
		{"postgres", postgresURL},
		{"dynamodb", dynamodbURL},
		{"kurrentdb", kurrentdbURL},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			u := b.url(t)
			var got struct{ Backend string }
			require.NoError(t, json.Unmarshal([]byte(mustEVS(t, "", "init", "--url", u, "--json")), &got))
			assert.Equal(t, b.name, got.Backend)

			mustEVS(t, "", "append", "--url", u, "Order-1", "--type", "Placed", "--expected", "no-stream", `{"total": 10}`)
			mustEVS(t, "\x00binary\xff", "append", "--url", u, "Order-1", "--type", "Scanned", "--expected", "1", "--binary", "-")
			r := evs(t, "", "append", "--url", u, "Order-1", "--type", "Paid", "--expected", "1", "{}")
			assert.Equal(t, exitFailure, r.code)
			assert.Contains(t, r.stderr, "want 1, have 2")

			events := decodeLines[event](t, mustEVS(t, "", "read", "--url", u, "--json", "Order-1"))
			require.Len(t, events, 2)
			assert.Equal(t, `{"total":10}`, string(events[0].Data))
			assert.Equal(t, `"AGJpbmFyef8="`, string(events[1].Data), "binary data as base64")
			assert.Equal(t, "binary", events[1].ContentType)

			// tail: catch up, then see an event appended by another Store.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			out := newLineReader(t)
			code := make(chan int, 1)
			go func() {
				code <- run(ctx, []string{"tail", "--url", u, "--json", "--category", "Order"}, nil, out.w, &strings.Builder{})
			}()
			for i := range 2 {
				ev := decodeLines[event](t, out.next(t, "a stored event"))[0]
				assert.Equal(t, events[i].Position, ev.Position)
			}
			live := decodeLines[appended](t, mustEVS(t, "", "append", "--url", u, "--json", "Order-1", "--type", "Paid", "--expected", "2", "{}"))[0]
			ev := decodeLines[event](t, out.next(t, "the live event"))[0]
			assert.Equal(t, live.Position, ev.Position)
			assert.Equal(t, "Paid", ev.Type)
			cancel()
			assert.Equal(t, exitInterrupted, waitCode(t, code), "Ctrl-C ends tail with status 130")

			// The newest event, without following.
			last := decodeLines[event](t, mustEVS(t, "", "tail", "--url", u, "--json", "--backwards", "--limit", "1"))
			require.Len(t, last, 1)
			assert.Equal(t, live.Position, last[0].Position)

			mustEVS(t, "", "append", "--url", u, "Invoice-1", "--type", "Sent", "{}")
			st := statsOf(t, u)
			assert.Equal(t, 4, st.Events)
			assert.Equal(t, 2, st.Streams)
			assert.Equal(t, []categoryStats{{"Invoice", 1, 1}, {"Order", 1, 3}}, st.Categories)
		})
	}
}

// postgresURL returns the test server's URL with a fresh schema, dropped
// when t ends. Without a server it skips t (fails it under CI=true).
func postgresURL(t *testing.T) string {
	_, url := testenv.PostgresSchema(t, "evs_test")
	return url
}

// dynamodbURL returns a dynamodb:// URL for a fresh table on the test
// server (DynamoDB Local), created by the first command and deleted when t
// ends. Without a server it skips t (fails it under CI=true). The AWS SDK
// takes credentials from the environment: DynamoDB Local accepts any.
func dynamodbURL(t *testing.T) string {
	endpoint := testenv.MustHaveDynamoDB(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	table := storetest.DynamoDBTable(t, storetest.DynamoDBClient(t), "evs-test-")
	q := url.Values{"region": {"us-east-1"}, "endpoint": {endpoint}, "create_table": {"true"}}
	return "dynamodb://" + table + "?" + q.Encode()
}

// kurrentdbURL starts an in-process double of a KurrentDB server
// (internal/kurrentdbtest), stopped when t ends, and returns its URL.
func kurrentdbURL(t *testing.T) string {
	return kurrentdbtest.Start(t, kurrentdbtest.Options{}).URL()
}
