package dynamodb_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestLogLayoutIsTheTables: the log layout is chosen when a table is set
// up; a driver opened later uses the table's, and one asked for the other
// layout fails with ErrInvalidArgument and writes nothing.
func TestLogLayoutIsTheTables(t *testing.T) {
	client := newClient(t, nil)
	for _, tc := range []struct {
		name        string
		setUp       dynamodb.LogLayout
		open        dynamodb.LogLayout
		want        dynamodb.LogLayout
		contradicts bool
	}{
		{"head by default", "", "", dynamodb.LogHead, false},
		{"indexed kept", dynamodb.LogIndexed, "", dynamodb.LogIndexed, false},
		{"indexed asked again", dynamodb.LogIndexed, dynamodb.LogIndexed, dynamodb.LogIndexed, false},
		{"head asked of indexed", dynamodb.LogIndexed, dynamodb.LogHead, "", true},
		{"indexed asked of head", dynamodb.LogHead, dynamodb.LogIndexed, "", true},
		{"indexed asked of a default table", "", dynamodb.LogIndexed, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := indexedOptions()
			opts.Log = tc.setUp
			opts.NoOrderer = true // no lease item, so the table holds only what opening wrote
			first := newDriver(t, client, opts)
			require.Equal(t, tc.setUp == dynamodb.LogIndexed, first.Log() == dynamodb.LogIndexed)
			before := countItems(t, client, first.Table())
			opts.Log = tc.open
			d, err := dynamodb.New(t.Context(), client, first.Table(), opts)
			if tc.contradicts {
				require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
				require.Equal(t, before, countItems(t, client, first.Table()), "items after the refused open")
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() { d.Close() })
			require.Equal(t, tc.want, d.Log())
		})
	}
}

// countItems returns the number of items in table (a strongly consistent
// Scan).
func countItems(t testing.TB, client *awsdynamodb.Client, table string) int32 {
	t.Helper()
	out, err := client.Scan(t.Context(), &awsdynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true), Select: "COUNT"})
	require.NoError(t, err)
	return out.Count
}

// TestIndexedLogCatchesUp: with no orderer running, appends to an indexed
// table go on (they succeed with a zero position once OrderTimeout passes,
// and stream reads see them without positions) and the global log stays
// empty; a driver with the orderer then places every one of them, in
// version order per stream, each append's events contiguous, and the
// positions stream reads return are those of the log.
func TestIndexedLogCatchesUp(t *testing.T) {
	client := newClient(t, nil)
	opts := indexedOptions()
	opts.NoOrderer = true
	opts.OrderTimeout = -1
	w, wd := newStore(t, client, opts)
	ctx := t.Context()
	streams := []string{"Order-" + uuid.NewString()[:8], "Cart-" + uuid.NewString()[:8]}
	for round := range 3 {
		for _, s := range streams {
			evs := make([]eventstore.Event, 1+round)
			for i := range evs {
				evs[i] = eventstore.Event{ID: uuid.New(), Type: fmt.Sprintf("E%d", 1+round), Data: []byte(`{}`)}
			}
			res, err := w.Append(ctx, s, eventstore.Any, evs...)
			require.NoError(t, err)
			require.True(t, res.Position.IsZero(), "no orderer ran: want a zero position, got %s", res.Position)
		}
	}
	for ev, err := range w.ReadStream(ctx, streams[0], eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		require.True(t, ev.Position.IsZero(), "version %d not placed yet: want a zero position, got %s", ev.Version, ev.Position)
	}
	for _, err := range w.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		t.Fatal("the log holds an event no orderer placed")
	}

	o, err := dynamodb.New(ctx, client, wd.Table(), indexedOptions())
	require.NoError(t, err)
	ordered := eventstore.New(o, eventstore.Options{})
	t.Cleanup(func() { ordered.Close() })
	var log []eventstore.RecordedEvent
	require.Eventually(t, func() bool {
		log = log[:0]
		for ev, err := range ordered.ReadAll(ctx, eventstore.ReadAllOptions{}) {
			require.NoError(t, err)
			log = append(log, ev)
		}
		return len(log) == 12
	}, 30*time.Second, 20*time.Millisecond, "the orderer did not place the 12 events")
	last := map[string]uint64{}
	at := map[string]eventstore.Position{}
	for i := 0; i < len(log); {
		ev := log[i]
		// An append of round r holds r events of type "Er", contiguous.
		n := int(ev.Type[1] - '0')
		for j := range n {
			require.Less(t, i+j, len(log), "the append at %s is cut off", ev.Position)
			e := log[i+j]
			require.Equal(t, uint64(i+j+1), e.Position.Commit, "the log is not dense")
			require.Equal(t, ev.StreamID, e.StreamID, "the append of %s at %s is not contiguous", ev.StreamID, ev.Position)
			require.Equal(t, last[e.StreamID]+1, e.Version, "%s out of version order in the log", e.StreamID)
			last[e.StreamID] = e.Version
			at[fmt.Sprintf("%s/%d", e.StreamID, e.Version)] = e.Position
		}
		i += n
	}
	for _, s := range streams {
		n := 0
		for ev, err := range w.ReadStream(ctx, s, eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			require.Equal(t, at[fmt.Sprintf("%s/%d", s, ev.Version)], ev.Position, "%s version %d", s, ev.Version)
			n++
		}
		require.Equal(t, 6, n)
	}
}

// TestIndexedHolderPlacesDirectly: the driver holding the orderer's lease
// writes its appends straight into the log (placed, no inbox entry), yet an
// append whose stream's previous version waits in the inbox (written by a
// process without the orderer) does not overtake it; and a holder whose
// lease was taken writes nothing into the log.
func TestIndexedHolderPlacesDirectly(t *testing.T) {
	client := newClient(t, nil)
	holder, hd := newStore(t, client, indexedOptions())
	ctx := t.Context()
	warm := 0
	require.Eventually(t, func() bool {
		warm++
		_, err := holder.Append(ctx, "Warm-"+uuid.NewString()[:8], eventstore.NoStream, eventstore.NewEvent("E", []byte(`{}`)))
		require.NoError(t, err)
		return dynamodb.DirectAppends(hd) > 0
	}, 20*time.Second, 10*time.Millisecond, "the holder of the lease never placed an append directly")

	wopts := indexedOptions()
	wopts.NoOrderer = true
	wopts.OrderTimeout = -1
	wd, err := dynamodb.New(ctx, client, hd.Table(), wopts)
	require.NoError(t, err)
	w := eventstore.New(wd, eventstore.Options{})
	t.Cleanup(func() { w.Close() })
	streams := make([]string, 20)
	for i := range streams {
		streams[i] = "Order-" + uuid.NewString()[:8]
		_, err := w.Append(ctx, streams[i], eventstore.NoStream, eventstore.NewEvent("E1", []byte(`{}`)))
		require.NoError(t, err)
		res, err := holder.Append(ctx, streams[i], eventstore.Exact(1), eventstore.NewEvent("E2", []byte(`{}`)))
		require.NoError(t, err)
		require.False(t, res.Position.IsZero(), "%s: the holder's append was not placed", streams[i])
	}
	before := dynamodb.DirectAppends(hd)
	for _, s := range streams {
		res, err := holder.Append(ctx, s, eventstore.Exact(2), eventstore.NewEvent("E3", []byte(`{}`)))
		require.NoError(t, err)
		require.False(t, res.Position.IsZero())
	}
	require.Greater(t, dynamodb.DirectAppends(hd), before, "appends after placed versions should be placed directly")

	var prev eventstore.Position
	last := map[string]uint64{}
	for ev, err := range holder.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		require.Equal(t, prev.Commit+1, ev.Position.Commit, "the log is not dense")
		prev = ev.Position
		require.Equal(t, last[ev.StreamID]+1, ev.Version, "%s out of version order in the log", ev.StreamID)
		last[ev.StreamID] = ev.Version
	}
	for _, s := range streams {
		require.Equal(t, uint64(3), last[s], "%s: not all placed", s)
	}

	// Fencing: another owner takes the lease; the holder, still believing
	// it holds it, writes nothing into the log.
	_, err = client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{
		TableName: aws.String(hd.Table()), Key: dynamodb.LeaseKey("$orderer", "log"),
		UpdateExpression:          aws.String("SET o = :o, e = :e ADD g :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: "thief"}, ":e": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(time.Hour).UnixNano(), 10)}, ":one": &types.AttributeValueMemberN{Value: "1"}},
	})
	require.NoError(t, err)
	stolen := dynamodb.DirectAppends(hd)
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = holder.Append(sctx, "Fenced-"+uuid.NewString()[:8], eventstore.NoStream, eventstore.NewEvent("E", []byte(`{}`)))
	if err != nil {
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	require.Equal(t, stolen, dynamodb.DirectAppends(hd), "a holder that lost its lease placed an append")
	n := 0
	for _, err := range holder.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		n++
	}
	require.Equal(t, warm+3*len(streams), n, "events in the log")
}
