package postgres

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
)

// groupAppendSQL appends the batches of several appends to distinct streams
// in one statement, so one transaction, one commit and one round trip: per
// append ($1–$4: stream, expectation kind, expected version, first event
// ID) what appendSQL does for one, and per event ($5 the append's index,
// 1-based, $6 its ordinal in the append, $7–$11 as appendSQL's $5–$9, $12
// its append's recorded time) the insert. One row per append, in order:
// the version it saw, the version of
// the retried event (or NULL), and the position and version of its last
// event written (or NULLs). A 23505 from a concurrent append fails the
// whole statement; each append then runs on its own.
const groupAppendSQL = `WITH a AS (
	SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::uuid[]) WITH ORDINALITY AS a(stream, kind, expected, first_id, ai)
), cur AS (
	SELECT a.ai, greatest(b.v, coalesce(m.last, 0)) AS v,
		CASE WHEN m.deleted AND b.v <= m.last THEN 0 ELSE greatest(b.v, coalesce(m.last, 0)) END AS act,
		(SELECT max(version) FILTER (WHERE stream_id = a.stream) FROM {{schema}}.events WHERE event_id = a.first_id AND starts_append) AS dup
	FROM a CROSS JOIN LATERAL (SELECT coalesce(max(version), 0) AS v FROM {{schema}}.events WHERE stream_id = a.stream) b
		LEFT JOIN {{schema}}.stream_marks m ON m.stream_id = a.stream
), ok AS (
	SELECT a.ai, a.stream, cur.v FROM a JOIN cur USING (ai)
	WHERE cur.dup IS NULL AND CASE a.kind WHEN 1 THEN true WHEN 2 THEN cur.act > 0 ELSE cur.act = a.expected END
), ins AS (
	INSERT INTO {{schema}}.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at, starts_append)
	SELECT x.tx_id, ok.stream, ok.v + e.k, e.id, e.typ, e.ct, e.data, e.meta, e.at, e.k = 1
	FROM ok
		JOIN unnest($5::bigint[], $6::bigint[], $7::uuid[], $8::text[], $9::smallint[], $10::bytea[], $11::bytea[], $12::timestamptz[]) WITH ORDINALITY AS e(ai, k, id, typ, ct, data, meta, at, ord) ON e.ai = ok.ai,
		(SELECT pg_current_xact_id()::text::bigint + (SELECT xid_offset FROM {{schema}}.meta LIMIT 1) AS tx_id) x
	ORDER BY e.ord
	RETURNING stream_id, tx_id, seq, version
), last AS (
	SELECT DISTINCT ON (stream_id) stream_id, tx_id, seq, version FROM ins ORDER BY stream_id, version DESC
)
SELECT cur.act, cur.dup, last.tx_id, last.seq, last.version
FROM a JOIN cur USING (ai) LEFT JOIN last ON last.stream_id = a.stream
ORDER BY a.ai`

// genericPlanSQL makes the group statement that follows it in the same
// transaction use the generic plan of its prepared statement. Left to
// choose, PostgreSQL plans it afresh for its parameters on every run (a
// custom plan knows the arrays' lengths, so it always looks cheaper than
// the generic one), and planning that statement took 0.4–2.6 ms where
// running it took about 1 ms; the generic plan is made once per connection
// (TestAppendPlans checks it).
const genericPlanSQL = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`

// groupInflight is how many append statements of one driver run at once
// before further appends wait and go together in one statement (0 turns
// grouping off). BenchmarkGroupCommit settled on 1: with 8 clients it
// raised appends from 73–84% to 91–104% of the minimal table's rate and
// left 1 client as it was. More statements run while appends wait too long
// (groupLaunchFactor). Re-measured over loads (session 11): 1 beats no
// grouping at the machine's own load and loses to it beside busy loops; 2
// is within the noise of 1 (docs/postgres.md, "Group commit"). A variable
// for that benchmark.
var groupInflight = 1

// groupMax caps the appends of one group statement, and groupMaxBytes the
// size of an append that may wait for a group (its events' data, metadata
// and types): a larger one runs at once on its own, so that a big append
// neither holds small ones back nor makes a group statement too big.
const (
	groupMax      = 64
	groupMaxBytes = 64 << 10
)

// groupWaitMax bounds how long an append waits for the statements running
// before it: after that it leads the appends waiting with it in a group of
// their own, so an append blocked on a lock (a concurrent append to its
// stream from another process) holds appends to other streams back by at
// most this much.
const groupWaitMax = 50 * time.Millisecond

// groupLaunchFactor sets when waiting appends stop waiting for a statement
// slot: once an append has waited groupLaunchFactor times as long as the
// fastest recent append statement took (grouper.fast), it leads the queue
// in a group of its own, beyond groupInflight statements. On a machine
// whose CPUs other work keeps busy a statement in flight often waits for a
// CPU, and with one statement in flight every appender waits with it.
// BenchmarkGroupCommit, 8 clients, load average 20–27 on 2 cores, five
// runs: one statement in flight 65–72% of the minimal table, none grouped
// 68–103%, this wait 74–95% (a factor of 1 gave 74–102%, of 4 67–71%, two
// runs each). When statements run at their usual speed the slot frees
// first and nothing changes.
const groupLaunchFactor = 2

// groupLaunchFixed, when set by tests, replaces the adaptive wait.
var groupLaunchFixed time.Duration

// grouper groups concurrent appends (see groupInflight).
type grouper struct {
	mu       sync.Mutex // protects everything below
	inflight int
	queue    []*member
	// fast follows the fastest recent statement that wrote: lowered at
	// once by a faster one, raised by 1/64 of the difference by a slower
	// one. Statements that wrote nothing (a failed expectation) commit no
	// WAL and would make it too short.
	fast time.Duration
}

// observe records how long an append statement (single or grouped) that
// wrote events took.
func (g *grouper) observe(took time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fast == 0 || took < g.fast {
		g.fast = took
	} else {
		g.fast += (took - g.fast) / 64
	}
}

// launchAfter is how long an append queued now waits before it leads a
// group of its own. Called with mu held.
func (g *grouper) launchAfter() time.Duration {
	if groupLaunchFixed > 0 {
		return groupLaunchFixed
	}
	if g.fast == 0 {
		return groupWaitMax
	}
	return min(groupLaunchFactor*g.fast, groupWaitMax)
}

// member is one append waiting in a grouper's queue.
type member struct {
	req  driver.AppendRequest
	args []any
	// lead receives the group this member runs, itself first.
	lead chan []*member
	// done is closed once res and err are set by the group's leader;
	// errGroup in err means: run on your own.
	done chan struct{}
	res  driver.AppendResult
	err  error
}

// errGroup tells a member its group statement failed: it runs on its own.
var errGroup = &groupFailed{}

type groupFailed struct{}

func (*groupFailed) Error() string { return "postgres: group append failed" }

// appendGrouped runs a first attempt of an append: at once when fewer than
// groupInflight statements run, otherwise in the next group.
func (d *Driver) appendGrouped(ctx context.Context, req driver.AppendRequest, args []any) (driver.AppendResult, error) {
	g := &d.group
	g.mu.Lock()
	if g.inflight < groupInflight {
		g.inflight++
		g.mu.Unlock()
		start := time.Now()
		res, err := d.appendOnce(ctx, req, args, false)
		if err == nil {
			g.observe(time.Since(start))
		}
		d.handOff()
		return res, err
	}
	m := &member{req: req, args: args, lead: make(chan []*member, 1), done: make(chan struct{})}
	g.queue = append(g.queue, m)
	timer := time.NewTimer(g.launchAfter())
	g.mu.Unlock()
	defer timer.Stop()
	select {
	case batch := <-m.lead:
		d.runGroup(ctx, batch)
		d.handOff()
	case <-m.done:
	case <-ctx.Done():
		if g.leave(m) {
			return driver.AppendResult{}, ctx.Err()
		}
		d.awaitGroup(ctx, m)
	case <-timer.C:
		// The statements running hold us back (waiting for a CPU or a
		// lock, or a big append): lead the queue in one more statement.
		if batch := g.launch(m); batch != nil {
			d.runGroup(ctx, batch)
			d.handOff()
		} else {
			d.awaitGroup(ctx, m)
		}
	}
	<-m.done
	if m.err == errGroup {
		return d.appendOnce(ctx, req, args, false)
	}
	return m.res, m.err
}

// leave takes m out of the queue, and reports false if a group has taken it
// meanwhile.
func (g *grouper) leave(m *member) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, q := range g.queue {
		if q == m {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			return true
		}
	}
	return false
}

// launch takes m and the appends queued with it as the next group, led by
// m, in a statement slot of its own; nil if a group has taken m meanwhile.
func (g *grouper) launch(m *member) []*member {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Contains(g.queue, m) {
		return nil
	}
	g.inflight++
	return g.takeGroup(m)
}

// awaitGroup waits for the group that took m: it runs it if m leads.
func (d *Driver) awaitGroup(ctx context.Context, m *member) {
	select {
	case batch := <-m.lead:
		d.runGroup(ctx, batch)
		d.handOff()
	case <-m.done:
	}
}

// handOff passes the statement slot of an append that finished to the next
// group, led by its first member, or frees it: when none waits, or when
// more than groupInflight statements run (slots taken by launch are given
// back, and the queue's own waits launch again if statements stay slow).
func (d *Driver) handOff() {
	g := &d.group
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 || g.inflight > groupInflight {
		g.inflight--
		return
	}
	batch := g.takeGroup(g.queue[0])
	batch[0].lead <- batch
}

// takeGroup takes lead and up to groupMax-1 further appends out of the
// queue, at most one per stream, in queue order. Called with mu held.
func (g *grouper) takeGroup(lead *member) []*member {
	batch := []*member{lead}
	streams := map[string]bool{lead.req.Stream: true}
	var rest []*member
	for _, m := range g.queue {
		switch {
		case m == lead:
		case len(batch) < groupMax && !streams[m.req.Stream]:
			streams[m.req.Stream] = true
			batch = append(batch, m)
		default:
			rest = append(rest, m)
		}
	}
	g.queue = rest
	return batch
}

// runGroup runs batch as one statement and sets each member's outcome.
func (d *Driver) runGroup(ctx context.Context, batch []*member) {
	start := time.Now()
	defer func() {
		for _, m := range batch {
			if m.err == nil {
				d.group.observe(time.Since(start))
				break
			}
		}
		for _, m := range batch {
			close(m.done)
		}
	}()
	if len(batch) == 1 {
		m := batch[0]
		m.res, m.err = d.appendOnce(ctx, m.req, m.args, false)
		return
	}
	var (
		streams  []string
		kinds    []int32
		expected []int64
		firsts   [][16]byte
		ais, ks  []int64
		ids      [][16]byte
		types    []string
		cts      []int16
		data     [][]byte
		meta     [][]byte
		at       []time.Time
	)
	for i, m := range batch {
		a := m.args
		streams = append(streams, m.req.Stream)
		kinds = append(kinds, int32(a[1].(int)))
		expected = append(expected, a[2].(int64))
		firsts = append(firsts, a[3].([16]byte))
		for k := range m.req.Events {
			ais = append(ais, int64(i+1))
			ks = append(ks, int64(k+1))
			at = append(at, m.req.RecordedAt)
		}
		ids = append(ids, a[4].([][16]byte)...)
		types = append(types, a[5].([]string)...)
		cts = append(cts, a[6].([]int16)...)
		data = append(data, a[7].([][]byte)...)
		meta = append(meta, a[8].([][]byte)...)
	}
	fail := func() {
		for _, m := range batch {
			m.err = errGroup
		}
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		fail()
		return
	}
	defer conn.Release()
	// One round trip and one implicit transaction (the batch ends in one
	// Sync): the plan setting, local to the transaction, then the group.
	b := &pgx.Batch{}
	b.Queue(genericPlanSQL)
	b.Queue(d.sql.groupAppend, streams, kinds, expected, firsts, ais, ks, ids, types, cts, data, meta, at)
	br := conn.SendBatch(ctx, b)
	type outcome struct {
		current          int64
		dup              *int64
		txID, seq, lastV *int64
	}
	var outs []outcome
	var o outcome
	_, err = br.Exec()
	if err == nil {
		var rows pgx.Rows
		rows, err = br.Query()
		if err == nil {
			_, err = pgx.ForEachRow(rows, []any{&o.current, &o.dup, &o.txID, &o.seq, &o.lastV}, func() error {
				outs = append(outs, o)
				return nil
			})
		}
	}
	// Close reads to the end of the transaction: its error is the commit's.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil || len(outs) != len(batch) {
		fail()
		return
	}
	var maxTx int64
	for i, m := range batch {
		o := outs[i]
		if o.txID != nil {
			maxTx = max(maxTx, *o.txID)
			m.res = driver.AppendResult{
				Version:  uint64(*o.lastV),
				Position: driver.Position{Commit: uint64(*o.txID), Prepare: uint64(*o.seq)},
			}
			continue
		}
		mismatch := &eventstore.WrongExpectedVersionError{Stream: m.req.Stream, Expected: eventstore.ExpectedVersion(m.req.Expected), Actual: uint64(o.current)}
		if o.dup == nil {
			m.err = mismatch
			continue
		}
		if m.req.Expected.Kind() == driver.ExpectExact && uint64(*o.dup) != m.req.Expected.Version()+1 {
			m.err = mismatch
			continue
		}
		m.err = errGroup // a retry, rare: checked on its own
	}
	if maxTx != 0 && notifyMode == notifyAfterCommit {
		d.notifier.announce(maxTx)
	}
}
