package main

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Inputs are the model's parameters: DynamoDB's limits and prices, item
// sizes and round trips. The defaults (DefaultInputs) are DynamoDB's
// documented limits and round trips typical of a client in the table's
// region; each is a flag of the command.
type Inputs struct {
	PartitionWCU float64 // write units per second one partition takes (1,000)
	PartitionRCU float64 // read units per second one partition takes (3,000; a strongly consistent read of up to 4 KB is one)
	TableWCU     float64 // write units per second the whole table may take (the account's per-table quota, 40,000 by default on demand)
	TxCost       float64 // write units per KB of an item in a TransactWriteItems (2)

	EventBytes    int // an event item, keys, index entry and all; write units count 1 KB units of it
	LogEntryBytes int // a head-layout log entry of a one-event append
	EntryBase     int // the indexed layout: fixed bytes of a log entry the orderer writes
	EntryPerEvent int // the indexed layout: bytes a log entry adds per event it places (stream ID, version, type)
	RecordBytes   int // a DynamoDB Streams record of an event item

	TxRTT   time.Duration // round trip of a TransactWriteItems
	ReadRTT time.Duration // round trip of a strongly consistent Query or GetItem (the by_id lookup, a read of the head, a GetRecords)
	PutRTT  time.Duration // round trip of a conditional PutItem (a log entry the orderer writes)

	LostRaceCost float64 // share of its write units a transaction cancelled by a lost race is charged (1: all, as a failed conditional write)
	MaxHeadRaces int     // lost races after which the head layout's driver gives an append up (100)

	GetRecordsPerSec float64       // GetRecords calls per second per Streams shard (5)
	ShardReadBytes   float64       // bytes per second one Streams shard returns (2 MB)
	RecordsPerCall   int           // records one GetRecords returns at most (1,000)
	RecordDelay      time.Duration // from a commit until its record can be read from the stream
	MinShards        int           // Streams shards (table partitions) of a new table; more come with its write rate

	Batch     int     // the indexed layout: events the orderer places with one log entry at most
	EntryCost float64 // streams orderer: write units per KB of a log entry it writes (1: a PutItem; 2 if it writes them in transactions)

	// Orderer is how the indexed layout's orderer finds appends:
	// OrdererIndex (the driver's, in a table with the global index of
	// unplaced events: a single-event append is one PutItem of its event,
	// marked unplaced, and the orderer places them in passes of one
	// transaction), OrdererInbox (the driver's in an indexed table without
	// the index: each append also writes an inbox entry in its
	// transaction) or OrdererStreams (it reads the table's DynamoDB Stream;
	// the design the driver did not take).
	Orderer      string
	InboxShards  int           // inbox partitions (8); with OrdererIndex, the index's partitions
	InboxBytes   int           // an inbox entry
	PassItems    int           // items of one transaction at most (100): a pass's lease check, head, log entry, and per single-event append the inbox deletion and the position
	PassRTT      time.Duration // round trip of the orderer's transaction of up to PassItems items
	PassTxns     int           // transactions one pass sends in a row after one read, while appends wait (8)
	OrderPoll    time.Duration // the longest the idle orderer waits before it looks at the inbox again
	PositionPoll time.Duration // how often an append from a process not holding the lease looks for its position at most

	// KnownStreams: the writers append to streams they wrote from version
	// 1 on (an aggregate per process), so an append at position=async
	// sends no by_id lookup and no read of the previous version
	// (drivers/dynamodb/known.go): its cycle is its write, the stream's
	// retention read running beside it.
	KnownStreams bool
}

// The orderers IndexedLayout models.
const (
	OrdererIndex   = "index"
	OrdererInbox   = "inbox"
	OrdererStreams = "streams"
)

// DefaultInputs returns the documented defaults of every input.
func DefaultInputs() Inputs {
	return Inputs{
		PartitionWCU: 1000, PartitionRCU: 3000, TableWCU: 40000, TxCost: 2,
		EventBytes: 500, LogEntryBytes: 100, EntryBase: 50, EntryPerEvent: 70, RecordBytes: 600,
		TxRTT: 15 * time.Millisecond, ReadRTT: 5 * time.Millisecond, PutRTT: 8 * time.Millisecond,
		LostRaceCost: 1, MaxHeadRaces: 100,
		GetRecordsPerSec: 5, ShardReadBytes: 2 << 20, RecordsPerCall: 1000, RecordDelay: 250 * time.Millisecond, MinShards: 4,
		Batch: 100, EntryCost: 1,
		Orderer: OrdererIndex, InboxShards: 8, InboxBytes: 150, PassItems: 100, PassRTT: 25 * time.Millisecond, PassTxns: 8,
		OrderPoll: 100 * time.Millisecond, PositionPoll: 50 * time.Millisecond,
	}
}

// Validate reports the first input out of its range.
func (in Inputs) Validate() error {
	positive := []struct {
		name string
		v    float64
	}{
		{"partition-wcu", in.PartitionWCU}, {"partition-rcu", in.PartitionRCU}, {"table-wcu", in.TableWCU}, {"tx-cost", in.TxCost},
		{"event-bytes", float64(in.EventBytes)}, {"log-entry-bytes", float64(in.LogEntryBytes)},
		{"entry-per-event", float64(in.EntryPerEvent)}, {"record-bytes", float64(in.RecordBytes)},
		{"tx-rtt", float64(in.TxRTT)}, {"read-rtt", float64(in.ReadRTT)}, {"put-rtt", float64(in.PutRTT)},
		{"max-head-races", float64(in.MaxHeadRaces)}, {"getrecords", float64(in.GetRecordsPerSec)},
		{"shard-read-bytes", in.ShardReadBytes}, {"records-per-call", float64(in.RecordsPerCall)},
		{"min-shards", float64(in.MinShards)}, {"batch", float64(in.Batch)}, {"entry-cost", in.EntryCost},
		{"inbox-shards", float64(in.InboxShards)}, {"inbox-bytes", float64(in.InboxBytes)}, {"pass-rtt", float64(in.PassRTT)},
		{"order-poll", float64(in.OrderPoll)}, {"position-poll", float64(in.PositionPoll)}, {"pass-txns", float64(in.PassTxns)},
	}
	for _, p := range positive {
		if !(p.v > 0) {
			return fmt.Errorf("-%s must be positive", p.name)
		}
	}
	switch {
	case in.EntryBase < 0:
		return errors.New("-entry-base must not be negative")
	case in.RecordDelay < 0:
		return errors.New("-record-delay must not be negative")
	case !(in.LostRaceCost >= 0 && in.LostRaceCost <= 1):
		return errors.New("-lost-race-cost must be between 0 and 1")
	case in.Orderer != OrdererIndex && in.Orderer != OrdererInbox && in.Orderer != OrdererStreams:
		return fmt.Errorf("-orderer must be %s, %s or %s", OrdererIndex, OrdererInbox, OrdererStreams)
	case in.PassItems < 5:
		return errors.New("-pass-items must be 5 or more")
	}
	return nil
}

// Bounds name what limits a rate.
const (
	BoundRoundTrips   = "round trips"            // writers wait for answers: more writers would go faster
	BoundLogWrites    = "log partition writes"   // the write units of the partition holding the log
	BoundLogReads     = "log partition reads"    // the read units of the partition holding the log
	BoundTable        = "table write quota"      // the table's write units
	BoundStreams      = "stream reads"           // GetRecords calls or bytes of the Streams shards
	BoundOrdererTrips = "orderer round trips"    // one log entry in flight at a time
	BoundInbox        = "inbox partition writes" // the write units of the inbox partitions (or of the index of unplaced events)
)

// wcu is the write units of one write of an item of n bytes (1 KB units).
func wcu(n int) float64 { return math.Max(1, math.Ceil(float64(n)/1024)) }

// rcu is the read units of a strongly consistent read of n bytes (4 KB units).
func rcu(n int) float64 { return math.Max(1, math.Ceil(float64(n)/4096)) }

// ceil rounds x up, forgiving float error just above a whole number.
func ceil(x float64) float64 { return math.Ceil(x - 1e-9) }

// Head is the head layout (today's) with a number of writer processes,
// each with one append in flight: every append is a transaction writing the
// log entry at the next position, so all of them contend for one key.
type Head struct {
	Writers   int
	Appends   float64       // appends per second, all writers together
	Bound     string        // what limits Appends
	Period    time.Duration // time from one commit to the next at best: a round of the race
	PerCommit float64       // write units of the log partition per commit: the winner's and the losers' transactions
	GiveUp    float64       // share of appends that lose MaxHeadRaces races in a row and fail
}

// meanPause is the mean random pause after a lost race for w racing
// writers. The driver pauses up to min(k, 10) ms after its k-th lost race
// (uniformly, so half that on average), and a writer among w loses w-1
// races on average before it wins (each race it wins with odds 1/w): the
// mean over k = 1…w-1 (at most MaxHeadRaces).
func meanPause(w, maxRaces int) time.Duration {
	races := min(w-1, maxRaces)
	if races <= 0 {
		return 0
	}
	var sum time.Duration
	for k := 1; k <= races; k++ {
		sum += time.Duration(min(k, 10)) * time.Millisecond / 2
	}
	return sum / time.Duration(races)
}

// HeadLayout models the head layout for w writers. One commit takes at
// least a by_id lookup and a transaction (ReadRTT + TxRTT), and with
// several writers a lost race's read of the head and pause too: one commit
// per period. In the worst case every writer sends a transaction for the
// same position each round; one wins, and each of the others is charged
// (LostRaceCost) on the log's partition and reads the head again there. So
// per commit the partition takes (1 + LostRaceCost·(w-1))·TxCost·wcu(log
// entry) write units and (w-1)·rcu(log entry) read units. Appends/s is the
// least of the three bounds; GiveUp is (1-1/w)^MaxHeadRaces.
func HeadLayout(in Inputs, w int) Head {
	h := Head{Writers: w}
	h.Period = in.ReadRTT + in.TxRTT
	if w > 1 {
		h.Period += meanPause(w, in.MaxHeadRaces)
	}
	h.Appends, h.Bound = 1/h.Period.Seconds(), BoundRoundTrips
	h.PerCommit = (1 + in.LostRaceCost*float64(w-1)) * in.TxCost * wcu(in.LogEntryBytes)
	if r := in.PartitionWCU / h.PerCommit; r < h.Appends {
		h.Appends, h.Bound = r, BoundLogWrites
	}
	if w > 1 {
		if r := in.PartitionRCU / (float64(w-1) * rcu(in.LogEntryBytes)); r < h.Appends {
			h.Appends, h.Bound = r, BoundLogReads
		}
		h.GiveUp = math.Pow(1-1/float64(w), float64(in.MaxHeadRaces))
	}
	return h
}

// Orderer is what one orderer can place in the log of the indexed layout.
type Orderer struct {
	Shards    int           // Streams shards (the inbox orderer: inbox shards) it reads
	PerEntry  int           // events one log entry places at most
	EntryWCU  float64       // write units of a full log entry
	EntryTime time.Duration // one entry written: its round trip, or its share of the partition's write units if longer (the inbox orderer: one pass)
	Events    float64       // events per second it can place at most
	Bound     string        // what limits Events
}

// OrdererCapacity models one orderer reading the table's stream from
// shards shards and writing one log entry per Batch events, one entry at a
// time (each entry is at the positions after the previous one). An entry
// of Batch events is EntryBase + Batch·EntryPerEvent bytes; it takes
// max(PutRTT, EntryCost·wcu(entry)/PartitionWCU), so the orderer places at
// most Batch/EntryTime events per second. Reading the stream, each shard
// serves at most min(GetRecordsPerSec·RecordsPerCall, ShardReadBytes /
// RecordBytes) records per second.
func OrdererCapacity(in Inputs, shards int) Orderer {
	o := Orderer{Shards: shards, PerEntry: in.Batch}
	o.EntryWCU = wcu(in.EntryBase + in.Batch*in.EntryPerEvent)
	o.EntryTime = max(in.PutRTT, time.Duration(in.EntryCost*o.EntryWCU/in.PartitionWCU*float64(time.Second)))
	o.Events = float64(in.Batch) / o.EntryTime.Seconds()
	o.Bound = BoundOrdererTrips
	if o.EntryTime > in.PutRTT {
		o.Bound = BoundLogWrites
	}
	perShard := math.Min(in.GetRecordsPerSec*float64(in.RecordsPerCall), in.ShardReadBytes/float64(in.RecordBytes))
	if r := float64(shards) * perShard; r < o.Events {
		o.Events, o.Bound = r, BoundStreams
	}
	return o
}

// Delay is how long an event takes from its append's commit into the log
// of the indexed layout while the orderer keeps up.
type Delay struct {
	Cycle   time.Duration // one round of the orderer: poll the stream, write the entries
	Entries int           // log entries written per round
	Typical time.Duration // an event arriving mid-round, written mid-way through the entries
	Worst   time.Duration // one just missing a poll, written in the round's last entry
}

// LogDelay models the delay at rate events per second, with entries taking
// entry each. The orderer polls each shard at most GetRecordsPerSec times
// a second: a round lasts P = 1/GetRecordsPerSec, or longer when reading
// (ReadRTT) and writing its n = ⌈rate·T/Batch⌉ entries takes longer, T =
// (ReadRTT + entry)/(1 - rate·entry/Batch) (the entries of one more event
// than arrived, to cover rounding up). An event waits for its record
// (RecordDelay), for the next poll (T/2 typically, T at worst), for the
// read, and for its entry ((n+1)/2 entries typically, n at worst). ok is
// false when the orderer cannot keep up at that rate (rate·entry ≥ Batch).
func LogDelay(in Inputs, rate float64, entry time.Duration) (d Delay, ok bool) {
	load := rate * entry.Seconds() / float64(in.Batch)
	if load >= 1 {
		return Delay{}, false
	}
	p := time.Duration(float64(time.Second) / in.GetRecordsPerSec)
	entries := func(t time.Duration) int { return int(ceil(rate * t.Seconds() / float64(in.Batch))) }
	d.Cycle = p
	if in.ReadRTT+time.Duration(entries(p))*entry > p {
		d.Cycle = time.Duration(float64(in.ReadRTT+entry) / (1 - load))
	}
	d.Entries = entries(d.Cycle)
	d.Typical = in.RecordDelay + d.Cycle/2 + in.ReadRTT + time.Duration(d.Entries+1)*entry/2
	d.Worst = in.RecordDelay + d.Cycle + in.ReadRTT + time.Duration(d.Entries)*entry
	return d, true
}

// Indexed is the indexed layout with a number of writer processes, each
// with one append in flight.
type Indexed struct {
	Writers   int
	Appends   float64 // appends per second, all writers together
	Bound     string  // what limits Appends
	AppendWCU float64 // write units of one append
	Orderer   Orderer
	Log       float64 // events per second placed in the log
	KeepsUp   bool    // the orderer places events as fast as they are appended: the delay is bounded
	Behind    float64 // when it does not keep up: events per second the log falls further behind (Appends - Log)
	Delay     Delay   // when it keeps up
}

// IndexedLayout models the indexed layout for w writers, with the orderer
// in.Orderer: the driver's inbox (see inboxLayout), or a reader of the
// table's stream, modelled here. An append is a
// by_id lookup and a transaction of the version check and the event put on
// the stream's own partition (ReadRTT + TxRTT; no race), costing
// TxCost·2·wcu(event) write units (the check is charged as a write of the
// stream's previous event). Writers add up until the table's write quota:
// Appends = min(w/(ReadRTT + TxRTT), TableWCU/AppendWCU). The table has
// max(MinShards, ⌈Appends·AppendWCU/PartitionWCU⌉) partitions, and as many
// Streams shards. The orderer places min(Appends, its capacity) events per
// second; past its capacity the log falls behind and its delay grows
// without bound (appends go on).
func IndexedLayout(in Inputs, w int) Indexed {
	if in.Orderer != OrdererStreams {
		return inboxLayout(in, w)
	}
	x := Indexed{Writers: w}
	x.AppendWCU = in.TxCost * 2 * wcu(in.EventBytes)
	x.Appends, x.Bound = float64(w)/(in.ReadRTT+in.TxRTT).Seconds(), BoundRoundTrips
	if r := in.TableWCU / x.AppendWCU; r < x.Appends {
		x.Appends, x.Bound = r, BoundTable
	}
	shards := max(in.MinShards, int(ceil(x.Appends*x.AppendWCU/in.PartitionWCU)))
	x.Orderer = OrdererCapacity(in, shards)
	x.Log = math.Min(x.Appends, x.Orderer.Events)
	x.Behind = x.Appends - x.Log
	if x.Appends < x.Orderer.Events {
		x.Delay, x.KeepsUp = LogDelay(in, x.Appends, x.Orderer.EntryTime)
	}
	return x
}

// LogReadEvents is how many events per second of log entries the log's
// partition serves to all its readers together, with strongly consistent
// reads of entries of EntryPerEvent bytes per event (a Query of many
// entries is charged their bytes in 4 KB units).
func LogReadEvents(in Inputs) float64 {
	return in.PartitionRCU * 4096 / float64(in.EntryPerEvent)
}

// InboxOrderer models the orderer of the driver's indexed layout. A pass
// reads the inbox shards (in parallel; with OrdererIndex one Scan of the
// index) and the positions of the appends' previous versions (ReadRTT
// each), then sends one transaction (PassRTT) of a lease check, the head,
// one log entry and, per single-event append, its event's position and
// (OrdererInbox) the deletion of its inbox entry: PassItems-3 appends at
// most (97; OrdererInbox: (PassItems-3)/2, 48), or Batch if fewer. While
// appends wait, a pass sends PassTxns such transactions in a row after its
// reads, so it places at most PassTxns·PerEntry appends per 2·ReadRTT +
// PassTxns·PassRTT (EntryTime is a pass of one transaction, what an
// append waits for when the orderer keeps up). With OrdererInbox
// an append writes and deletes its inbox entry in one of InboxShards
// partitions, 2·TxCost·wcu(inbox) write units there; with OrdererIndex its
// event's entry is written to and removed from one of InboxShards
// partitions of the index, 2·wcu(inbox) (index writes are not
// transactional): the inbox (index) takes InboxShards·PartitionWCU/(that)
// appends per second.
func InboxOrderer(in Inputs) Orderer {
	perAppend, inboxWCU := 2, 2*in.TxCost*wcu(in.InboxBytes)
	if in.Orderer == OrdererIndex {
		perAppend, inboxWCU = 1, 2*wcu(in.InboxBytes)
	}
	o := Orderer{Shards: in.InboxShards, PerEntry: min(in.Batch, (in.PassItems-3)/perAppend)}
	o.EntryWCU = wcu(in.EntryBase + o.PerEntry*in.EntryPerEvent)
	o.EntryTime = 2*in.ReadRTT + in.PassRTT
	full := 2*in.ReadRTT + time.Duration(in.PassTxns)*in.PassRTT
	o.Events, o.Bound = float64(in.PassTxns*o.PerEntry)/full.Seconds(), BoundOrdererTrips
	if r := float64(in.InboxShards) * in.PartitionWCU / inboxWCU; r < o.Events {
		o.Events, o.Bound = r, BoundInbox
	}
	return o
}

// InboxAppendWCU is the write units of one single-event append with the
// driver's orderer, and its share of a full pass's lease check, head and
// log entry, TxCost·(2 + entry)/PerEntry. With OrdererInbox:
// TxCost·(wcu(inbox) + 2·wcu(event)) in its own transaction (inbox entry,
// version check, event), TxCost·(wcu(inbox) + wcu(event)) in the
// orderer's (the entry's deletion, the event's position: an update is
// charged the larger of the item before and after). With OrdererIndex:
// wcu(event) + wcu(inbox) for its PutItem and the index entry it adds,
// TxCost·wcu(event) + wcu(inbox) for the position and the index entry's
// removal (the version check is a read, not a write).
func InboxAppendWCU(in Inputs, o Orderer) float64 {
	inbox, event := wcu(in.InboxBytes), wcu(in.EventBytes)
	share := in.TxCost * (2 + o.EntryWCU) / float64(o.PerEntry)
	if in.Orderer == OrdererIndex {
		return event + inbox + in.TxCost*event + inbox + share
	}
	return in.TxCost*(inbox+2*event) + in.TxCost*(inbox+event) + share
}

// InboxDelay is the delay from an append's commit until the inbox orderer
// has placed it, at rate appends per second within its capacity. The
// orderer looks at the inbox at once while passes run back to back (an
// append arrives during every pass: rate·pass ≥ 1), so an append waits for
// the running pass, half of it typically and all of it at worst; otherwise
// it waits for the idle orderer's next look, which backs off up to
// OrderPoll: half of min(OrderPoll, 1/rate) typically, OrderPoll at worst.
// Then one pass places it.
func InboxDelay(in Inputs, o Orderer, rate float64) Delay {
	pass := o.EntryTime
	look, worst := in.OrderPoll/2, in.OrderPoll
	switch {
	case rate*pass.Seconds() >= 1:
		look, worst = pass/2, pass
	case rate > 0:
		look = min(in.OrderPoll, time.Duration(float64(time.Second)/rate)) / 2
	}
	return Delay{Cycle: pass, Entries: 1, Typical: look + pass, Worst: worst + pass}
}

// inboxLayout models the driver's indexed layout for w writers. An append
// returns once its events are placed, so a writer's cycle is the by_id
// lookup, its transaction (OrdererIndex: the read of the previous version
// and its PutItem, PutRTT), the log's delay, and the wait until its driver
// sees the position (PositionPoll/2 typically, then a read): the rate r
// solves r = w/cycle(r), up to the least of the orderer's capacity and the
// table's quota (TableWCU/InboxAppendWCU). At that bound appends queue in
// the inbox: the delay grows until the writers' cycle is w/r, and the
// worst case is a pass more.
func inboxLayout(in Inputs, w int) Indexed {
	o := InboxOrderer(in)
	x := Indexed{Writers: w, Orderer: o, AppendWCU: InboxAppendWCU(in, o), KeepsUp: true}
	limit, bound := o.Events, o.Bound
	if r := in.TableWCU / x.AppendWCU; r < limit {
		limit, bound = r, BoundTable
	}
	fixed := 2*in.ReadRTT + in.TxRTT + in.PositionPoll/2
	if in.Orderer == OrdererIndex {
		fixed = 3*in.ReadRTT + in.PutRTT + in.PositionPoll/2
	}
	rateAt := func(r float64) float64 { return float64(w) / (fixed + InboxDelay(in, o, r).Typical).Seconds() }
	if rateAt(limit) >= limit {
		x.Appends, x.Bound = limit, bound
		x.Delay = InboxDelay(in, o, limit)
		if queued := time.Duration(float64(w)/limit*float64(time.Second)) - fixed; queued > x.Delay.Typical {
			x.Delay.Typical, x.Delay.Worst = queued, queued+o.EntryTime
		}
	} else {
		lo, hi := 0.0, limit
		for range 100 {
			if mid := (lo + hi) / 2; rateAt(mid) > mid {
				lo = mid
			} else {
				hi = mid
			}
		}
		x.Appends, x.Bound = (lo+hi)/2, BoundRoundTrips
		x.Delay = InboxDelay(in, o, x.Appends)
	}
	x.Log = x.Appends
	return x
}

// AsyncLayout models the indexed layout (OrdererIndex or OrdererInbox)
// with appends that do not wait for their positions (position=async) for
// w writers, each with one append in flight. A writer's cycle is its
// by_id lookup (the read of the previous version runs beside it) and its
// write: with OrdererIndex one PutItem (ReadRTT + PutRTT), with
// OrdererInbox a transaction (ReadRTT + TxRTT); with KnownStreams the
// write alone (the retention read beside it, max(ReadRTT, write)); nothing else waits, so
// Appends = w/cycle up to the table's quota (TableWCU/AppendWCU) and the
// index's (OrdererIndex: InboxShards·PartitionWCU/(2·wcu(index entry))).
// The orderer does not bound the appends; it places min(Appends, its
// capacity) per second. Within its capacity the log trails by AsyncDelay;
// past it the log falls behind by Appends - capacity per second (appends
// go on, unplaced).
func AsyncLayout(in Inputs, w int) Indexed {
	o := InboxOrderer(in)
	x := Indexed{Writers: w, Orderer: o, AppendWCU: InboxAppendWCU(in, o)}
	write := in.TxRTT
	if in.Orderer == OrdererIndex {
		write = in.PutRTT
	}
	cycle := in.ReadRTT + write
	if in.KnownStreams {
		cycle = max(in.ReadRTT, write)
	}
	x.Appends, x.Bound = float64(w)/cycle.Seconds(), BoundRoundTrips
	if r := in.TableWCU / x.AppendWCU; r < x.Appends {
		x.Appends, x.Bound = r, BoundTable
	}
	if in.Orderer == OrdererIndex {
		if r := float64(in.InboxShards) * in.PartitionWCU / (2 * wcu(in.InboxBytes)); r < x.Appends {
			x.Appends, x.Bound = r, BoundInbox
		}
	}
	x.Log = math.Min(x.Appends, o.Events)
	x.Behind = x.Appends - x.Log
	if x.Appends < o.Events {
		x.Delay, x.KeepsUp = AsyncDelay(in, o, x.Appends), true
	}
	return x
}

// AsyncDelay is the log's delay with appends that do not wait, at rate
// appends per second within the orderer's capacity. While passes run back
// to back (rate·EntryTime ≥ 1), a pass reads (2·ReadRTT) and sends ⌈n/
// PerEntry⌉ transactions for the n appends that came during the previous
// pass, so it lasts T = 2·ReadRTT/(1 - rate·PassRTT/PerEntry) (continuous
// in n); an append waits for the end of the running pass (T/2 typically, T
// at worst) and for the next (T). Slower, it is InboxDelay.
func AsyncDelay(in Inputs, o Orderer, rate float64) Delay {
	if rate*o.EntryTime.Seconds() < 1 {
		return InboxDelay(in, o, rate)
	}
	t := time.Duration(float64(2*in.ReadRTT) / (1 - rate*in.PassRTT.Seconds()/float64(o.PerEntry)))
	t = max(t, o.EntryTime)
	return Delay{Cycle: t, Entries: int(ceil(rate * t.Seconds() / float64(o.PerEntry))), Typical: t/2 + t, Worst: 2 * t}
}
