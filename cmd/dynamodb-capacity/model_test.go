package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The expected values below are worked out by hand from DefaultInputs:
// partition 1,000 WCU/s and 3,000 RCU/s, table 40,000 WCU/s, transactions
// ×2, event items of 500 B (1 WCU), head log entries of 100 B (1 WCU,
// 1 RCU), orderer entries of 50 + 70 B per event, Streams records of 600 B,
// round trips: transaction 15 ms, read 5 ms, put 8 ms; lost races charged
// in full, 100 races at most; Streams 5 GetRecords/s, 2 MiB/s and 1,000
// records per call per shard, records readable 250 ms after the commit,
// 4 shards at least; the orderer places up to 100 events per entry with a
// PutItem (×1).

func TestCapacityMeanPause(t *testing.T) {
	cases := []struct {
		name     string
		writers  int
		maxRaces int
		want     time.Duration
	}{
		{"OneWriterNeverRaces", 1, 100, 0},
		// One lost race: a pause of up to 1 ms, 0.5 ms on average.
		{"TwoWriters", 2, 100, 500 * time.Microsecond},
		// Races 1, 2, 3: (0.5 + 1 + 1.5) / 3 = 1 ms.
		{"FourWriters", 4, 100, time.Millisecond},
		// Races 1…19: (0.5 + 1 + … + 5 = 27.5, then 9 × 5 = 45) / 19 = 72.5/19 ms.
		{"PausesStopGrowingAt10ms", 20, 100, 72500 * time.Microsecond / 19},
		// Races 1…3 only: (0.5 + 1 + 1.5) / 3 = 1 ms.
		{"AtMostMaxRaces", 50, 3, time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, meanPause(tc.writers, tc.maxRaces))
		})
	}
}

func TestCapacityHead(t *testing.T) {
	in := DefaultInputs()
	cases := []struct {
		name      string
		in        Inputs
		writers   int
		appends   float64
		bound     string
		perCommit float64
		giveUp    float64
	}{
		// 1 / (5 + 15 ms) = 50/s; the partition would take 1,000 / (1 × 2 × 1) = 500.
		{"OneWriter", in, 1, 50, BoundRoundTrips, 2, 0},
		// Period 5 + 15 + 1 (mean pause) = 21 ms: 47.62/s; partition writes
		// 1,000 / (4 × 2) = 125/s, reads 3,000 / 3 = 1,000/s. Gives up
		// with (3/4)^100 = 3.2e-13.
		{"FourWriters", in, 4, 1 / 0.021, BoundRoundTrips, 8, math.Pow(0.75, 100)},
		// Period 23.8 ms would allow 42/s; the partition takes 1,000 /
		// (20 × 2) = 25 commits/s. (19/20)^100 = 0.59 % give up.
		{"TwentyWritersFillThePartition", in, 20, 25, BoundLogWrites, 40, math.Pow(0.95, 100)},
		// 1,000 / (100 × 2) = 5/s; 0.99^100 = 36.6 % give up.
		{"HundredWriters", in, 100, 5, BoundLogWrites, 200, math.Pow(0.99, 100)},
		// 1,000 / 2,000 = 0.5/s; 0.999^100 = 90.5 % give up.
		{"ThousandWriters", in, 1000, 0.5, BoundLogWrites, 2000, math.Pow(0.999, 100)},
		// Lost races free: 1,000 writers are bound by the reads of the
		// head, 3,000 / 999 = 3.003/s (writes: 1,000 / 2 = 500/s).
		{"LostRacesFree", with(in, func(in *Inputs) { in.LostRaceCost = 0 }), 1000, 3000.0 / 999, BoundLogReads, 2, math.Pow(0.999, 100)},
		// A 1,500-byte log entry is 2 WCU: 1,000 / (4 × 2 × 2) = 62.5/s
		// with 4 writers, above the 47.62 of the round trips.
		{"LargerEntries", with(in, func(in *Inputs) { in.LogEntryBytes = 1500 }), 4, 1 / 0.021, BoundRoundTrips, 16, math.Pow(0.75, 100)},
		// DynamoDB Local: round trips of 1.5 and 0.8 ms, about 800 small
		// transactions/s (1,600 WCU at ×2). 1 writer: 1 / 2.3 ms = 434.8/s;
		// 4 writers: 1,600 / 8 = 200/s (measured: 432 and 178).
		{"DynamoDBLocalOne", local(in), 1, 1 / 0.0023, BoundRoundTrips, 2, 0},
		{"DynamoDBLocalFour", local(in), 4, 200, BoundLogWrites, 8, math.Pow(0.75, 100)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := HeadLayout(tc.in, tc.writers)
			assert.InDelta(t, tc.appends, h.Appends, 1e-6, "appends/s")
			assert.Equal(t, tc.bound, h.Bound)
			assert.InDelta(t, tc.perCommit, h.PerCommit, 1e-9, "log WCU per commit")
			assert.InDelta(t, tc.giveUp, h.GiveUp, 1e-12, "gives up")
		})
	}
}

func TestCapacityOrderer(t *testing.T) {
	in := DefaultInputs()
	cases := []struct {
		name      string
		in        Inputs
		shards    int
		entryWCU  float64
		entryTime time.Duration
		events    float64
		bound     string
	}{
		// 50 + 100 × 70 = 7,050 B = 7 WCU, 7 ms of the partition's 1,000
		// WCU/s, less than the 8 ms round trip: 100 / 8 ms = 12,500/s.
		// Streams: 4 × min(5 × 1,000, 2 MiB / 600 = 3,495) = 13,981/s.
		{"Batch100", in, 4, 7, 8 * time.Millisecond, 12500, BoundOrdererTrips},
		// 120 B = 1 WCU: 1 / 8 ms = 125/s.
		{"NoBatching", with(in, func(in *Inputs) { in.Batch = 1 }), 4, 1, 8 * time.Millisecond, 125, BoundOrdererTrips},
		// In transactions (×2) an entry of 7 WCU takes 14 ms of the
		// partition: 100 / 14 ms = 7,142.9/s.
		{"EntriesInTransactions", with(in, func(in *Inputs) { in.EntryCost = 2 }), 4, 7, 14 * time.Millisecond, 100 / 0.014, BoundLogWrites},
		// A 1 ms round trip: 100,000/s by round trips, 14,286 by writes
		// (7 ms per entry), 13,981 by the 4 shards' 2 MiB/s of 600-byte
		// records: 4 × 2,097,152 / 600.
		{"StreamsBound", with(in, func(in *Inputs) { in.PutRTT = time.Millisecond }), 4, 7, 7 * time.Millisecond, 4 * 2097152.0 / 600, BoundStreams},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := OrdererCapacity(tc.in, tc.shards)
			assert.Equal(t, tc.shards, o.Shards)
			assert.InDelta(t, tc.entryWCU, o.EntryWCU, 1e-9, "entry WCU")
			assert.Equal(t, tc.entryTime, o.EntryTime)
			assert.InDelta(t, tc.events, o.Events, 1e-6, "events/s")
			assert.Equal(t, tc.bound, o.Bound)
		})
	}
}

func TestCapacityLogDelay(t *testing.T) {
	in := DefaultInputs()
	ms := time.Millisecond
	cases := []struct {
		name    string
		in      Inputs
		rate    float64
		entry   time.Duration
		ok      bool
		cycle   time.Duration
		entries int
		typical time.Duration
		worst   time.Duration
	}{
		// Polls every 200 ms; 50 events a round fit one entry. Typical:
		// 250 + 100 + 5 + 1 × 8 = 363 ms; worst: 250 + 200 + 5 + 8 = 463.
		{"Light", in, 50, 8 * ms, true, 200 * ms, 1, 363 * ms, 463 * ms},
		// 10,000/s: 2,000 events, 20 entries a round; 5 + 20 × 8 = 165 ms
		// fits the 200 ms. Typical: 250 + 100 + 5 + 10.5 × 8 = 439 ms;
		// worst: 250 + 200 + 5 + 160 = 615 ms.
		{"Busy", in, 10000, 8 * ms, true, 200 * ms, 20, 439 * ms, 615 * ms},
		// A 50 ms read: 50 + 20 × 8 = 210 ms > 200, so the round is (50 +
		// 8) / (1 - 10,000 × 8 ms / 100 = 0.2) = 290 ms, 29 entries.
		// Typical: 250 + 145 + 50 + 15 × 8 = 565 ms; worst: 250 + 290 + 50
		// + 29 × 8 = 822 ms.
		{"RoundsStretch", with(in, func(in *Inputs) { in.ReadRTT = 50 * ms }), 10000, 8 * ms, true, 290 * ms, 29, 565 * ms, 822 * ms},
		// 12,500/s at 8 ms per 100 events is all the orderer can do.
		{"AtCapacity", in, 12500, 8 * ms, false, 0, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := LogDelay(tc.in, tc.rate, tc.entry)
			require.Equal(t, tc.ok, ok, "keeps up")
			assert.Equal(t, tc.cycle, d.Cycle, "cycle")
			assert.Equal(t, tc.entries, d.Entries, "entries")
			assert.Equal(t, tc.typical, d.Typical, "typical")
			assert.Equal(t, tc.worst, d.Worst, "worst")
		})
	}
}

// TestCapacityIndexedStreams: the indexed layout with an orderer reading
// the table's stream.
func TestCapacityIndexedStreams(t *testing.T) {
	in := DefaultInputs()
	in.Orderer = OrdererStreams
	cases := []struct {
		name      string
		in        Inputs
		writers   int
		appends   float64
		bound     string
		shards    int
		log       float64
		keepsUp   bool
		behind    float64
		typicalMS float64
	}{
		// 1 / (5 + 15 ms) = 50/s, 4 WCU each (2 items × 1 WCU × 2): 200
		// WCU/s, 4 shards. Delay as TestCapacityLogDelay/Light.
		{"OneWriter", in, 1, 50, BoundRoundTrips, 4, 50, true, 0, 363},
		// 100 × 50 = 5,000/s, 20,000 WCU/s: 20 shards. 1,000 events, 10
		// entries a round: 250 + 100 + 5 + 5.5 × 8 = 399 ms.
		{"HundredWriters", in, 100, 5000, BoundRoundTrips, 20, 5000, true, 0, 399},
		// 50,000/s wanted; the table takes 40,000 / 4 = 10,000/s: 40
		// shards. Delay as TestCapacityLogDelay/Busy.
		{"ThousandWriters", in, 1000, 10000, BoundTable, 40, 10000, true, 0, 439},
		// Without batching the orderer places 125/s: 10 writers append
		// 500/s and the log falls 375/s further behind.
		{"UnbatchedOrdererFallsBehind", with(in, func(in *Inputs) { in.Batch = 1 }), 10, 500, BoundRoundTrips, 4, 125, false, 375, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := IndexedLayout(tc.in, tc.writers)
			assert.InDelta(t, tc.appends, x.Appends, 1e-6, "appends/s")
			assert.Equal(t, tc.bound, x.Bound)
			assert.Equal(t, 4.0, x.AppendWCU, "WCU per append")
			assert.Equal(t, tc.shards, x.Orderer.Shards, "shards")
			assert.InDelta(t, tc.log, x.Log, 1e-6, "log events/s")
			assert.Equal(t, tc.keepsUp, x.KeepsUp, "keeps up")
			assert.InDelta(t, tc.behind, x.Behind, 1e-6, "behind")
			assert.InDelta(t, tc.typicalMS, float64(x.Delay.Typical)/float64(time.Millisecond), 1e-9, "typical delay")
		})
	}
}

// The inbox orderer's values below: a pass places min(Batch, (100 - 3) /
// 2) = 48 appends with two 5 ms reads and a 25 ms transaction, 35 ms; its
// log entry is 50 + 48 × 70 = 3,410 B, 4 WCU; an inbox entry is 150 B, 1
// WCU. An append costs 2 × (1 + 2) in its transaction and 2 × (1 + 1) in
// the orderer's, plus 2 × (2 + 4) / 48 of a pass: 10.25 WCU. A writer's
// cycle is the lookup, the transaction, half a 50 ms position poll and a
// read (50 ms), plus the log's delay.

func TestCapacityInboxOrderer(t *testing.T) {
	in := DefaultInputs()
	in.Orderer = OrdererInbox
	cases := []struct {
		name     string
		in       Inputs
		perEntry int
		entryWCU float64
		events   float64
		bound    string
	}{
		// 8 transactions of 48 after two reads: 384 / (10 + 200 ms) =
		// 1,828.6/s; the inbox would take 8 × 1,000 / (2 × 2 × 1) =
		// 2,000/s.
		{"Defaults", in, 48, 4, 384 / 0.21, BoundOrdererTrips},
		// 10 appends per transaction, an entry of 750 B: 80 / 210 ms = 381/s.
		{"Batch10", with(in, func(in *Inputs) { in.Batch = 10 }), 10, 1, 80 / 0.21, BoundOrdererTrips},
		// One transaction per pass, as before: 48 / 35 ms = 1,371.4/s.
		{"OneTransactionPerPass", with(in, func(in *Inputs) { in.PassTxns = 1 }), 48, 4, 48 / 0.035, BoundOrdererTrips},
		// A 5 ms transaction: 384 / 50 ms = 7,680/s, more than the inbox's 2,000.
		{"InboxBound", with(in, func(in *Inputs) { in.PassRTT = 5 * time.Millisecond }), 48, 4, 2000, BoundInbox},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := InboxOrderer(tc.in)
			assert.Equal(t, tc.perEntry, o.PerEntry)
			assert.InDelta(t, tc.entryWCU, o.EntryWCU, 1e-9, "entry WCU")
			assert.InDelta(t, tc.events, o.Events, 1e-6, "appends/s")
			assert.Equal(t, tc.bound, o.Bound)
		})
	}
	assert.InDelta(t, 10.25, InboxAppendWCU(in, InboxOrderer(in)), 1e-9, "WCU per append")
}

func TestCapacityInboxDelay(t *testing.T) {
	in := DefaultInputs()
	in.Orderer = OrdererInbox
	ms := time.Millisecond
	cases := []struct {
		name           string
		rate           float64
		typical, worst time.Duration
	}{
		// Idle: the next look within min(100 ms, 1/rate) (half typically,
		// 100 ms at worst), then a 35 ms pass.
		{"NoAppends", 0, 85 * ms, 135 * ms},
		{"OneEvery135ms", 1 / 0.135, 85 * ms, 135 * ms},
		// One every 50 ms: 25 + 35 = 60 ms.
		{"OneEvery50ms", 20, 60 * ms, 135 * ms},
		// 100/s: 3.5 appends per pass, passes back to back: 17.5 + 35 ms,
		// at worst 35 + 35.
		{"BackToBack", 100, 52500 * time.Microsecond, 70 * ms},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := InboxDelay(in, InboxOrderer(in), tc.rate)
			assert.Equal(t, tc.typical, d.Typical, "typical")
			assert.Equal(t, tc.worst, d.Worst, "worst")
		})
	}
}

func TestCapacityIndexedInbox(t *testing.T) {
	in := DefaultInputs()
	in.Orderer = OrdererInbox
	cases := []struct {
		name      string
		in        Inputs
		writers   int
		appends   float64
		bound     string
		typicalMS float64
		worstMS   float64
	}{
		// 1/rate is over 100 ms: the look waits 50 ms; cycle 50 + 50 + 35
		// = 135 ms: 7.41/s.
		{"OneWriter", in, 1, 1 / 0.135, BoundRoundTrips, 85, 135},
		// Under 100 ms between appends: rate = 2 / (0.085 + 1/(2·rate)),
		// so rate = 1.5 / 0.085 = 17.65/s; delay 1/(2·rate) + 35 = 63.33 ms.
		{"TwoWriters", in, 2, 1.5 / 0.085, BoundRoundTrips, 1000/(2*(1.5/0.085)) + 35, 135},
		// Passes back to back: cycle 50 + 17.5 + 35 = 102.5 ms: 97.56/s.
		{"TenWriters", in, 10, 10 / 0.1025, BoundRoundTrips, 52.5, 70},
		// 9,756/s wanted; the orderer places 1,828.6/s (the table would
		// take 40,000 / 10.25 = 3,902). The cycle becomes 1,000 / 1,828.6
		// = 546.875 ms, of which 496.875 waiting for the log; worst a pass
		// (35 ms) more.
		{"ThousandWriters", in, 1000, 384 / 0.21, BoundOrdererTrips, 546.875 - 50, 546.875 - 50 + 35},
		// A table quota of 10,000 WCU/s: 975.61/s; cycle 1.025 s.
		{"TableQuota", with(in, func(in *Inputs) { in.TableWCU = 10000 }), 1000, 10000 / 10.25, BoundTable, 975, 1010},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := IndexedLayout(tc.in, tc.writers)
			assert.InDelta(t, tc.appends, x.Appends, 1e-6, "appends/s")
			assert.Equal(t, tc.bound, x.Bound)
			assert.InDelta(t, 10.25, x.AppendWCU, 1e-9, "WCU per append")
			assert.Equal(t, 8, x.Orderer.Shards, "inbox shards")
			assert.True(t, x.KeepsUp, "appends wait for the log")
			assert.InDelta(t, x.Appends, x.Log, 1e-9, "log events/s")
			assert.InDelta(t, tc.typicalMS, float64(x.Delay.Typical)/float64(time.Millisecond), 1e-5, "typical delay")
			assert.InDelta(t, tc.worstMS, float64(x.Delay.Worst)/float64(time.Millisecond), 1e-5, "worst delay")
		})
	}
}

// TestCapacityLogReads: 3,000 RCU × 4,096 B / 70 B per event = 175,543/s.
func TestCapacityLogReads(t *testing.T) {
	assert.InDelta(t, 3000*4096.0/70, LogReadEvents(DefaultInputs()), 1e-9)
}

func TestCapacityCommand(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		status int
		stdout []string // each must appear
		stderr string
	}{
		{"Defaults", nil, 0, []string{"Head layout", "Indexed layout", "marked unplaced", "1000", "orderer round trips", "3,695"}, ""},
		{"Inbox", []string{"-orderer", "inbox"}, 0, []string{"inbox entry", "1,829"}, ""},
		{"Async", nil, 0, []string{"position=async", "615", "falls behind 305/s"}, ""},
		{"Streams", []string{"-orderer", "streams"}, 0, []string{"DynamoDB Stream", "table write quota", "12,500"}, ""},
		{"BadOrderer", []string{"-orderer", "kinesis"}, 2, nil, "-orderer must be index, inbox or streams"},
		{"Writers", []string{"-writers", "3"}, 0, []string{"\n        3 "}, ""},
		{"BadWriters", []string{"-writers", "1,x"}, 2, nil, `-writers: "x" is not a positive number`},
		{"BadInput", []string{"-batch", "0"}, 2, nil, "-batch must be positive"},
		{"UnknownFlag", []string{"-nope"}, 2, nil, "flag provided but not defined"},
		{"Argument", []string{"extra"}, 2, nil, `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tc.status, run(tc.args, &stdout, &stderr), "exit status; stderr: %s", &stderr)
			for _, s := range tc.stdout {
				assert.Contains(t, stdout.String(), s)
			}
			if tc.stderr != "" {
				assert.Contains(t, stderr.String(), tc.stderr)
			} else {
				assert.Empty(t, stderr.String())
			}
		})
	}

	t.Run("JSON", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 0, run([]string{"-json", "-orderer", "inbox", "-writers", "1,1000"}, &stdout, &stderr), stderr.String())
		var rep struct {
			Head    []map[string]any `json:"head"`
			Indexed []map[string]any `json:"indexed"`
		}
		require.NoError(t, json.NewDecoder(strings.NewReader(stdout.String())).Decode(&rep))
		require.Len(t, rep.Head, 2)
		require.Len(t, rep.Indexed, 2)
		assert.InDelta(t, 0.5, rep.Head[1]["appends_per_s"], 1e-9)
		assert.InDelta(t, 384/0.21, rep.Indexed[1]["appends_per_s"], 1e-9)
		assert.InDelta(t, 496.875, rep.Indexed[1]["log_delay_typical_ms"], 1e-5)
	})
}

// with returns in changed by edit.
func with(in Inputs, edit func(*Inputs)) Inputs {
	edit(&in)
	return in
}

// local returns in with DynamoDB Local's round trips and throughput.
func local(in Inputs) Inputs {
	in.TxRTT, in.ReadRTT, in.PartitionWCU = 1500*time.Microsecond, 800*time.Microsecond, 1600
	return in
}

func TestCapacityIndexOrderer(t *testing.T) {
	in := DefaultInputs()
	require.Equal(t, OrdererIndex, in.Orderer)
	cases := []struct {
		name     string
		in       Inputs
		perEntry int
		entryWCU float64
		events   float64
		bound    string
	}{
		// One item per append: 8 × 97 / (10 + 8 × 25 ms) = 3,695.2/s, an
		// entry of 50 + 97 × 70 = 6,840 B (7 WCU); the index would take
		// 8 × 1,000 / (1 + 1) = 4,000/s.
		{"Defaults", in, 97, 7, 776 / 0.21, BoundOrdererTrips},
		// A 5 ms transaction: 776 / 50 ms = 15,520/s, more than the index's 4,000.
		{"IndexBound", with(in, func(in *Inputs) { in.PassRTT = 5 * time.Millisecond }), 97, 7, 4000, BoundInbox},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := InboxOrderer(tc.in)
			assert.Equal(t, tc.perEntry, o.PerEntry)
			assert.InDelta(t, tc.entryWCU, o.EntryWCU, 1e-9, "entry WCU")
			assert.InDelta(t, tc.events, o.Events, 1e-6, "appends/s")
			assert.Equal(t, tc.bound, o.Bound)
		})
	}
	// PutItem 1 + index entry 1, position 2 + index removal 1, and the
	// pass's share 2 × (2 + 7) / 97.
	assert.InDelta(t, 5+18.0/97, InboxAppendWCU(in, InboxOrderer(in)), 1e-9, "WCU per append")
	// One writer: lookup, meta and previous version reads (15 ms), the
	// put (8 ms), half a position poll (25 ms), and the idle orderer's
	// look and pass (85 ms): 1 / 133 ms.
	x := IndexedLayout(in, 1)
	assert.InDelta(t, 1/0.133, x.Appends, 1e-6, "appends/s")
}

func TestCapacityAsync(t *testing.T) {
	in := DefaultInputs()
	ms := time.Millisecond
	cases := []struct {
		name           string
		in             Inputs
		writers        int
		appends        float64
		bound          string
		keepsUp        bool
		typical, worst time.Duration
		behind         float64
	}{
		// The lookup (5 ms, the other reads beside it) and the PutItem
		// (8 ms): 1 / 13 ms = 76.9/s. 1/rate = 13 ms < a 35 ms pass:
		// passes back to back; T = 10 ms / (1 - 76.9 × 0.025 / 97) =
		// 10.2 ms, below a pass, so 35 ms: typical 52.5 ms, worst 70.
		{"OneWriter", in, 1, 1 / 0.013, BoundRoundTrips, true, 52500 * time.Microsecond, 70 * ms, 0},
		// 8 / 13 ms = 615.4/s; T = 10 / (1 - 615.4 × 0.025 / 97) =
		// 11.89 ms, still below a pass: 52.5 / 70 ms.
		{"EightWriters", in, 8, 8 / 0.013, BoundRoundTrips, true, 52500 * time.Microsecond, 70 * ms, 0},
		// Writers of their own streams: the PutItem alone (8 ms, the
		// retention read beside it): 8 / 8 ms = 1,000/s; T = 10 / (1 -
		// 1,000 × 0.025 / 97) = 13.5 ms, below a pass: 52.5 / 70 ms.
		{"EightWritersKnownStreams", with(in, func(in *Inputs) { in.KnownStreams = true }), 8, 1000, BoundRoundTrips, true, 52500 * time.Microsecond, 70 * ms, 0},
		// 50 / 13 ms = 3,846/s wanted, the orderer takes 3,695.2/s: the
		// log falls behind by 151/s.
		{"FiftyWriters", in, 50, 50 / 0.013, BoundRoundTrips, false, 0, 0, 50/0.013 - 776/0.21},
		// The index takes 8 × 1,000 / 2 = 4,000/s.
		{"IndexBound", in, 1000, 4000, BoundInbox, false, 0, 0, 4000 - 776/0.21},
		// A 50 ms transaction: the orderer takes 776 / 410 ms =
		// 1,892.7/s; at 20 writers,
		// 1,538.5/s: T = 10 / (1 - 1,538.5 × 0.05 / 97) = 48.3 ms, below a
		// 60 ms pass: 90 / 120 ms.
		{"SlowPasses", with(in, func(in *Inputs) { in.PassRTT = 50 * ms }), 20, 20 / 0.013, BoundRoundTrips, true, 90 * ms, 120 * ms, 0},
		// A 150 ms transaction: 6 writers, 461.5/s; one pass of one
		// transaction is 160 ms, T = 10 / (1 - 461.5 × 0.15 / 97) =
		// 35.0 ms → 160 ms: 240 / 320 ms.
		{"VerySlowPasses", with(in, func(in *Inputs) { in.PassRTT = 150 * ms }), 6, 6 / 0.013, BoundRoundTrips, true, 240 * ms, 320 * ms, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := AsyncLayout(tc.in, tc.writers)
			assert.InDelta(t, tc.appends, x.Appends, 1e-6, "appends/s")
			assert.Equal(t, tc.bound, x.Bound)
			assert.Equal(t, tc.keepsUp, x.KeepsUp, "keeps up")
			assert.InDelta(t, tc.behind, x.Behind, 1e-6, "falls behind")
			if tc.keepsUp {
				assert.InDelta(t, float64(tc.typical), float64(x.Delay.Typical), float64(time.Microsecond), "typical delay")
				assert.InDelta(t, float64(tc.worst), float64(x.Delay.Worst), float64(time.Microsecond), "worst delay")
			}
		})
	}
	// Near the orderer's capacity a pass outgrows one transaction's: at
	// 3,500/s, T = 10 / (1 - 3,500 × 0.025 / 97) = 102.1 ms: typical
	// 153.2 ms, worst 204.2 ms.
	d := AsyncDelay(in, InboxOrderer(in), 3500)
	tt := time.Duration(float64(10*ms) / (1 - 3500*0.025/97))
	assert.InDelta(t, float64(tt+tt/2), float64(d.Typical), float64(time.Microsecond), "typical at 3,500/s")
	assert.InDelta(t, float64(2*tt), float64(d.Worst), float64(time.Microsecond), "worst at 3,500/s")
}
