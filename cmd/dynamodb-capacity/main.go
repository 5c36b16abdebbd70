// Command dynamodb-capacity estimates, on paper, what one DynamoDB table of
// the dynamodb driver takes: appends per second and the delay until an
// event is in the global log, for 1 to 1,000 writer processes, in the head
// layout (every append writes the next log entry, so all writers race for
// one key) and in the indexed layout (`log=indexed`: a single-event append
// is one PutItem of its event, marked unplaced in a sparse global index (or,
// -orderer inbox, a transaction of its stream's items and an inbox entry),
// and one orderer, chosen by a lease,
// places appends in the log in passes of one transaction, batching log
// entries; -orderer streams models an orderer reading the table's DynamoDB
// Stream instead). docs/dynamodb.md ("Capacity planning") explains the
// model and its output for the defaults; DynamoDB Local cannot show any of
// these limits.
//
//	go run ./cmd/dynamodb-capacity [flags]
//
// Inputs (flags, defaults in brackets). DynamoDB and the table:
//
//	-partition-wcu   write units per second of one partition [1000]
//	-partition-rcu   read units per second of one partition [3000]
//	-table-wcu       write units per second of the table (account quota) [40000]
//	-tx-cost         write units per KB of an item in a transaction [2]
//	-event-bytes     an event item, keys and index entry included [500];
//	                 write units count whole KB (1 KB units, rounded up)
//	-tx-rtt          round trip of a TransactWriteItems [15ms]
//	-read-rtt        round trip of a strongly consistent read or GetRecords [5ms]
//	-writers         writer processes, one append in flight each [1,2,4,8,10,20,50,100,200,500,1000]
//
// The head layout:
//
//	-log-entry-bytes a log entry of one event [100]
//	-lost-race-cost  share of a cancelled transaction's write units charged [1]
//	-max-head-races  lost races before the driver gives an append up [100]
//
// The indexed layout's orderer, and its batching:
//
//	-orderer         index (the driver's), inbox (the driver's in a table
//	                 without the index of unplaced events) or streams [index]
//	-batch           appends per log entry the orderer writes at most [100;
//	                 the index orderer's transaction takes 97, the inbox's 48]
//	-entry-base      fixed bytes of a log entry the orderer writes [50]
//	-entry-per-event bytes such an entry adds per event [70]
//
// The driver's orderer (index or inbox):
//
//	-inbox-shards    inbox partitions, or the index's [8]
//	-inbox-bytes     an inbox entry, or an index entry [150]
//	-pass-items      items of one transaction at most [100]
//	-pass-rtt        round trip of the orderer's transaction of up to 100 items [25ms]
//	-order-poll      the longest the idle orderer waits to look again [100ms]
//	-position-poll   how often an append from another process looks for its position [50ms]
//	-pass-txns       transactions a pass sends in a row after one read [8]
//
// An orderer reading the table's DynamoDB Stream (-orderer streams):
//
//	-getrecords      GetRecords calls per second per shard [5]
//	-shard-read-bytes bytes per second one shard returns [2 MiB]
//	-records-per-call records per GetRecords at most [1000]
//	-record-bytes    a record of an event [600]
//	-record-delay    from a commit until its record is readable [250ms]
//	-min-shards      partitions (and shards) of a new table [4]
//	-put-rtt         round trip of the orderer's PutItem of a log entry [8ms]
//	-entry-cost      write units per KB of a log entry, 1 PutItem, 2 transaction [1]
//
// And -json prints JSON instead of tables.
//
// Output goes to stdout; a bad flag exits with status 2.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, prints the model's output to stdout and returns the
// exit status.
func run(args []string, stdout, stderr io.Writer) int {
	in := DefaultInputs()
	fs := flag.NewFlagSet("dynamodb-capacity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Float64Var(&in.PartitionWCU, "partition-wcu", in.PartitionWCU, "write units per second of one partition")
	fs.Float64Var(&in.PartitionRCU, "partition-rcu", in.PartitionRCU, "read units per second of one partition")
	fs.Float64Var(&in.TableWCU, "table-wcu", in.TableWCU, "write units per second of the table (account quota)")
	fs.Float64Var(&in.TxCost, "tx-cost", in.TxCost, "write units per KB of an item in a transaction")
	fs.IntVar(&in.EventBytes, "event-bytes", in.EventBytes, "bytes of an event item, keys and index entry included")
	fs.IntVar(&in.LogEntryBytes, "log-entry-bytes", in.LogEntryBytes, "bytes of a head-layout log entry of one event")
	fs.IntVar(&in.EntryBase, "entry-base", in.EntryBase, "fixed bytes of a log entry the orderer writes")
	fs.IntVar(&in.EntryPerEvent, "entry-per-event", in.EntryPerEvent, "bytes a log entry the orderer writes adds per event")
	fs.IntVar(&in.RecordBytes, "record-bytes", in.RecordBytes, "bytes of a DynamoDB Streams record of an event")
	fs.DurationVar(&in.TxRTT, "tx-rtt", in.TxRTT, "round trip of a TransactWriteItems")
	fs.DurationVar(&in.ReadRTT, "read-rtt", in.ReadRTT, "round trip of a strongly consistent read or a GetRecords")
	fs.DurationVar(&in.PutRTT, "put-rtt", in.PutRTT, "round trip of the orderer's PutItem of a log entry")
	fs.Float64Var(&in.LostRaceCost, "lost-race-cost", in.LostRaceCost, "share of a cancelled transaction's write units charged (0-1)")
	fs.IntVar(&in.MaxHeadRaces, "max-head-races", in.MaxHeadRaces, "lost races before the head layout gives an append up")
	fs.Float64Var(&in.GetRecordsPerSec, "getrecords", in.GetRecordsPerSec, "GetRecords calls per second per Streams shard")
	fs.Float64Var(&in.ShardReadBytes, "shard-read-bytes", in.ShardReadBytes, "bytes per second one Streams shard returns")
	fs.IntVar(&in.RecordsPerCall, "records-per-call", in.RecordsPerCall, "records one GetRecords returns at most")
	fs.DurationVar(&in.RecordDelay, "record-delay", in.RecordDelay, "from a commit until its Streams record is readable")
	fs.IntVar(&in.MinShards, "min-shards", in.MinShards, "partitions (and Streams shards) of a new table")
	fs.IntVar(&in.Batch, "batch", in.Batch, "events per log entry the orderer writes at most")
	fs.Float64Var(&in.EntryCost, "entry-cost", in.EntryCost, "streams orderer: write units per KB of a log entry it writes (1 PutItem, 2 transaction)")
	fs.StringVar(&in.Orderer, "orderer", in.Orderer, "the indexed layout's orderer: index (the driver's), inbox (the driver's in a table without the index of unplaced events) or streams (a DynamoDB Streams reader)")
	fs.IntVar(&in.InboxShards, "inbox-shards", in.InboxShards, "inbox partitions")
	fs.IntVar(&in.InboxBytes, "inbox-bytes", in.InboxBytes, "bytes of an inbox entry")
	fs.IntVar(&in.PassItems, "pass-items", in.PassItems, "items of one transaction at most")
	fs.DurationVar(&in.PassRTT, "pass-rtt", in.PassRTT, "round trip of the orderer's transaction of up to -pass-items items")
	fs.DurationVar(&in.OrderPoll, "order-poll", in.OrderPoll, "the longest the idle orderer waits before it looks at the inbox again")
	fs.DurationVar(&in.PositionPoll, "position-poll", in.PositionPoll, "how often an append from another process looks for its position at most")
	fs.IntVar(&in.PassTxns, "pass-txns", in.PassTxns, "transactions one pass of the orderer sends in a row after one read")
	fs.BoolVar(&in.KnownStreams, "known-streams", in.KnownStreams, "position=async writers append to streams they wrote from version 1 (no by_id lookup)")
	writersFlag := fs.String("writers", "1,2,4,8,10,20,50,100,200,500,1000", "writer processes, comma-separated")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dynamodb-capacity: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	writers, err := parseWriters(*writersFlag)
	if err == nil {
		err = in.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "dynamodb-capacity: %v\n", err)
		return 2
	}
	rep := model(in, writers)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "dynamodb-capacity: %v\n", err)
			return 1
		}
		return 0
	}
	printReport(stdout, in, rep)
	return 0
}

// parseWriters reads a comma-separated list of positive numbers.
func parseWriters(s string) ([]int, error) {
	var ws []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-writers: %q is not a positive number", f)
		}
		ws = append(ws, n)
	}
	return ws, nil
}

// report is the model's output, as printed with -json (durations in ms).
type report struct {
	Inputs  Inputs       `json:"-"`
	Orderer string       `json:"orderer"`
	Head    []headRow    `json:"head"`
	Indexed []indexedRow `json:"indexed"`
	// Async is the indexed layout with position=async (not for -orderer
	// streams, whose appends never wait).
	Async   []indexedRow `json:"async,omitempty"`
	Batches []batchRow   `json:"orderer_batches"`
	// LogReadEvents is how many events per second of log entries the
	// log's partition serves to all subscriptions together.
	LogReadEvents float64 `json:"log_read_events_per_s"`
}

type headRow struct {
	Writers   int     `json:"writers"`
	Appends   float64 `json:"appends_per_s"`
	Bound     string  `json:"bound"`
	PerWriter float64 `json:"per_writer_per_s"`
	PeriodMS  float64 `json:"commit_period_ms"`
	PerCommit float64 `json:"log_wcu_per_commit"`
	GiveUp    float64 `json:"gives_up"`
}

type indexedRow struct {
	Writers      int     `json:"writers"`
	Appends      float64 `json:"appends_per_s"`
	Bound        string  `json:"bound"`
	Shards       int     `json:"shards"`
	Orderer      float64 `json:"orderer_events_per_s"`
	OrdererBound string  `json:"orderer_bound"`
	Log          float64 `json:"log_events_per_s"`
	KeepsUp      bool    `json:"keeps_up"`
	Behind       float64 `json:"behind_events_per_s,omitempty"`
	TypicalMS    float64 `json:"log_delay_typical_ms,omitempty"`
	WorstMS      float64 `json:"log_delay_worst_ms,omitempty"`
}

type batchRow struct {
	Batch    int     `json:"batch"`
	EntryWCU float64 `json:"entry_wcu"`
	Events   float64 `json:"events_per_s"`
	Bound    string  `json:"bound"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// model runs the model for each number of writers, and the orderer for
// batches of 1, 10, 25 and 100 events and the -batch given.
func model(in Inputs, writers []int) report {
	rep := report{Inputs: in, Orderer: in.Orderer, LogReadEvents: LogReadEvents(in)}
	for _, w := range writers {
		h := HeadLayout(in, w)
		rep.Head = append(rep.Head, headRow{Writers: w, Appends: h.Appends, Bound: h.Bound,
			PerWriter: h.Appends / float64(w), PeriodMS: ms(h.Period), PerCommit: h.PerCommit, GiveUp: h.GiveUp})
		rep.Indexed = append(rep.Indexed, newIndexedRow(IndexedLayout(in, w)))
		if in.Orderer != OrdererStreams {
			rep.Async = append(rep.Async, newIndexedRow(AsyncLayout(in, w)))
		}
	}
	batches := []int{1, 10, 25, 100}
	switch in.Orderer {
	case OrdererInbox:
		batches[3] = (in.PassItems - 3) / 2
	case OrdererIndex:
		batches[3] = in.PassItems - 3
	}
	if !slices.Contains(batches, in.Batch) {
		batches = append(batches, in.Batch)
	}
	for _, b := range batches {
		bin := in
		bin.Batch = b
		o := InboxOrderer(bin)
		if in.Orderer == OrdererStreams {
			o = OrdererCapacity(bin, in.MinShards)
		}
		if n := len(rep.Batches); n > 0 && rep.Batches[n-1].Batch >= o.PerEntry {
			continue // -batch beyond what a pass takes
		}
		rep.Batches = append(rep.Batches, batchRow{Batch: o.PerEntry, EntryWCU: o.EntryWCU, Events: o.Events, Bound: o.Bound})
	}
	return rep
}

// newIndexedRow is the report of x.
func newIndexedRow(x Indexed) indexedRow {
	row := indexedRow{Writers: x.Writers, Appends: x.Appends, Bound: x.Bound, Shards: x.Orderer.Shards,
		Orderer: x.Orderer.Events, OrdererBound: x.Orderer.Bound, Log: x.Log, KeepsUp: x.KeepsUp}
	if x.KeepsUp {
		row.TypicalMS, row.WorstMS = ms(x.Delay.Typical), ms(x.Delay.Worst)
	} else {
		row.Behind = x.Behind
	}
	return row
}

// printIndexed prints rows of the indexed layout as a table.
func printIndexed(w io.Writer, rows []indexedRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "writers\tappends/s\tshards\torderer/s\tlog events/s\tlog delay typical\tworst\t  bound\t")
	for _, r := range rows {
		delay, worst := "—", fmt.Sprintf("falls behind %s/s", rate(r.Behind))
		if r.KeepsUp {
			delay, worst = fmt.Sprintf("%.0fms", r.TypicalMS), fmt.Sprintf("%.0fms", r.WorstMS)
		}
		bound := r.Bound
		if !r.KeepsUp {
			bound += "; log: " + r.OrdererBound
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t  %s\t\n", r.Writers, rate(r.Appends), r.Shards, rate(r.Orderer), rate(r.Log), delay, worst, bound)
	}
	tw.Flush()
}

// printReport prints rep as tables.
func printReport(w io.Writer, in Inputs, rep report) {
	fmt.Fprintf(w, "Inputs: partition %g WCU/s and %g RCU/s, table %g WCU/s, transactions ×%g; event item %d B, head log entry %d B;\n",
		in.PartitionWCU, in.PartitionRCU, in.TableWCU, in.TxCost, in.EventBytes, in.LogEntryBytes)
	fmt.Fprintf(w, "round trips: transaction %s, read %s, put %s; Streams: %g GetRecords/s and %s/s per shard, record delay %s.\n\n",
		in.TxRTT, in.ReadRTT, in.PutRTT, in.GetRecordsPerSec, bytesString(in.ShardReadBytes), in.RecordDelay)

	fmt.Fprintln(w, "Head layout: every append writes the next log entry (one key for all writers); log delay 0.")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "writers\tappends/s\tper writer/s\tcommit period\tlog WCU/commit\tgives up\t  bound\t")
	for _, r := range rep.Head {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1fms\t%g\t%s\t  %s\t\n", r.Writers, rate(r.Appends), rate(r.PerWriter), r.PeriodMS, r.PerCommit, percent(r.GiveUp), r.Bound)
	}
	tw.Flush()

	switch in.Orderer {
	case OrdererIndex:
		o := InboxOrderer(in)
		fmt.Fprintf(w, "\nIndexed layout: a single-event append is one PutItem of its event, marked unplaced (an index of %d partitions),\n"+
			"and waits for its position; one orderer places up to %d appends per pass (%s: two reads and a transaction of %s).\n", in.InboxShards, o.PerEntry, o.EntryTime, in.PassRTT)
	case OrdererInbox:
		o := InboxOrderer(in)
		fmt.Fprintf(w, "\nIndexed layout: appends write their stream and an inbox entry (%d shards) and wait for their position;\n"+
			"one orderer places up to %d appends per pass (%s: two reads and a transaction of %s).\n", in.InboxShards, o.PerEntry, o.EntryTime, in.PassRTT)
	default:
		fmt.Fprintf(w, "\nIndexed layout, orderer reading the DynamoDB Stream: appends write their stream only;\n"+
			"one orderer places up to %d events per log entry.\n", in.Batch)
	}
	printIndexed(w, rep.Indexed)
	if len(rep.Async) > 0 {
		fmt.Fprintln(w, "\nIndexed layout, position=async: appends return once written and do not wait for their positions;\n"+
			"the log trails them by the delay below (falls behind: the orderer cannot keep up, appends go on).")
		printIndexed(w, rep.Async)
	}

	fmt.Fprintf(w, "\nOne %s orderer by batch (appends per log entry):\n", in.Orderer)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch\tentry WCU\tevents/s\t  bound\t")
	for _, r := range rep.Batches {
		fmt.Fprintf(tw, "%d\t%g\t%s\t  %s\t\n", r.Batch, r.EntryWCU, rate(r.Events), r.Bound)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nThe log's partition serves about %s events/s of log entries to all subscriptions together (strongly consistent reads).\n", rate(rep.LogReadEvents))
}

// rate prints a rate with thousands separators, one decimal below 10 and
// two significant digits below 1.
func rate(r float64) string {
	switch {
	case r < 1:
		return strconv.FormatFloat(r, 'g', 2, 64)
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	s := strconv.FormatFloat(r, 'f', 0, 64)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func percent(f float64) string {
	switch {
	case f == 0:
		return "0"
	case f < 0.0001:
		return "<0.01%"
	}
	return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
}

func bytesString(b float64) string {
	if b >= 1<<20 {
		return strconv.FormatFloat(b/(1<<20), 'g', 3, 64) + " MiB"
	}
	return strconv.FormatFloat(b, 'f', 0, 64) + " B"
}
