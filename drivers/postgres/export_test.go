package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
)

// Hooks for the external tests (package postgres_test).

// ListenerPID returns the backend PID of d's listening connection, 0 when
// it is not connected.
func ListenerPID(d *Driver) uint32 { return d.listenerPID() }

// SetRetryHook makes d call f with the error before each retried append attempt.
func SetRetryHook(d *Driver, f func(err error)) { d.retryHook = f }

// SetNotifyMode selects where appends send their notification: "in-tx",
// "after-commit" or "never" (see notifyMode). It returns a func restoring the
// previous mode. Not safe while appends run.
func SetNotifyMode(mode string) (restore func()) {
	old := notifyMode
	notifyMode = map[string]int{"in-tx": notifyInTx, "after-commit": notifyAfterCommit, "never": notifyNever}[mode]
	return func() { notifyMode = old }
}

// AppendSQL returns the append statement and its arguments for stream,
// expectation kind (0 exact, 1 any, 2 stream exists) and version, for
// benchmarks that run the driver's own SQL through plain pgx.
func AppendSQL(d *Driver) string { return d.sql.append }

// GroupAppendSQL returns the statement of grouped appends (groupAppendSQL).
func GroupAppendSQL(d *Driver) string { return d.sql.groupAppend }

// ReadStreamSQL returns the forward stream read: $1 stream, $2 from, $3
// limit, $4 the page's bytes; a head row with the row count, then the
// events (see streamPageSQL).
func ReadStreamSQL(d *Driver) string { return d.sql.readStreamFwd }

// ReadAllSQL returns the read of the global log after $1/$2 (limit $3, the
// page's bytes $4) with no filter, as ReadAll sends it.
func ReadAllSQL(d *Driver) string {
	q, _ := d.readAllQuery(driver.AllQuery{After: driver.Position{Commit: 1, Prepare: 1}, Limit: 1, MaxBytes: 1}, false)
	return q
}

// ReadBelowXminSQL returns the log page below pg_snapshot_xmin that
// ReadAll tries first (readBelowXminSQL): $1/$2 after, $3 limit, $4 bytes.
func ReadBelowXminSQL(d *Driver) string { return d.sql.readBelowXmin }

// ReadAllQuery returns the statement and arguments ReadAll (or with scan,
// ReadAllScan) sends for q.
func ReadAllQuery(d *Driver, q driver.AllQuery, scan bool) (string, []any) {
	return d.readAllQuery(q, scan)
}

// ParseConfig is parseConfig for the fuzz test.
func ParseConfig(connString string) (schema string, err error) {
	var opts Options
	_, err = parseConfig(connString, &opts)
	return opts.Schema, err
}

// ScanWindow is how many events of the log a ReadAllScan page that checks
// events one by one examines at most.
const ScanWindow = scanWindow

// SetGroupInflight sets how many append statements run at once before
// appends are grouped (0: never grouped). It returns a func restoring the
// previous value. Not safe while appends run.
func SetGroupInflight(n int) (restore func()) {
	old := groupInflight
	groupInflight = n
	return func() { groupInflight = old }
}

// QueuedAppends returns how many appends of d wait for a group.
func QueuedAppends(d *Driver) int {
	d.group.mu.Lock()
	defer d.group.mu.Unlock()
	return len(d.group.queue)
}

// Notify queues a notification of d for tx and sends it at once, as the
// notifier would, reporting whether it went out (false: no driver listens).
func Notify(ctx context.Context, d *Driver, tx int64) bool {
	d.notifier.mu.Lock()
	d.notifier.pending = max(d.notifier.pending, tx)
	d.notifier.mu.Unlock()
	return d.notifier.send(ctx) == notifyGap
}

// SetGroupLaunch makes queued appends wait wait before they lead a group of
// their own, instead of the adaptive wait (see groupLaunchFactor). It
// returns a func restoring the previous value. Not safe while appends run.
func SetGroupLaunch(wait time.Duration) (restore func()) {
	old := groupLaunchFixed
	groupLaunchFixed = wait
	return func() { groupLaunchFixed = old }
}

// TagLockKeys returns the keys of the shared locks a writer of an event of
// type typ with tag takes.
func TagLockKeys(schema, typ, tag string) []int64 {
	return []int64{tagKey(schema, typ, tag), tagKey(schema, "", tag)}
}

// HoldAppend runs req as Append writes it (the locked write for tagged
// events, the append statement otherwise) in a transaction it leaves open
// once the events hold their positions; commit commits it.
func HoldAppend(ctx context.Context, d *Driver, req driver.AppendRequest) (commit func() error, err error) {
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, err
	}
	commit = func() error { return tx.Commit(context.WithoutCancel(ctx)) }
	if !hasTags(req.Events) {
		n := len(req.Events)
		ids, types, cts, data, meta := make([][16]byte, n), make([]string, n), make([]int16, n), make([][]byte, n), make([][]byte, n)
		for i, e := range req.Events {
			ids[i], types[i], cts[i], data[i], meta[i] = e.ID, e.Type, int16(e.ContentType), nonNil(e.Data), nonNil(e.Metadata)
		}
		kind := int(req.Expected.Kind())
		_, err = tx.Exec(ctx, d.sql.append, req.Stream, kind, clamp(req.Expected.Version()), ids[0], ids, types, cts, data, meta, req.RecordedAt)
	} else {
		w := d.appendWrite(req)
		args, query := d.multiWriteArgs(w)
		var out writeOutcome
		b := &pgx.Batch{}
		scan := d.queueWrite(b, w, query, args, &out)
		if err = tx.SendBatch(ctx, b).Close(); err == nil {
			scan()
			if !out.written() {
				err = fmt.Errorf("held append to %q wrote nothing: %+v", req.Stream, out)
			}
		}
	}
	if err != nil {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the error that matters is err
		return nil, err
	}
	return commit, nil
}

// MultiWriteSQL returns the statement of a locked write (multiWriteSQL)
// with the condition expression cond ("false": none), and the statements
// locking the streams, the events table (for a condition with an item
// without tags: exclusive) and the tags, for the benchmarks' raw twins.
func MultiWriteSQL(d *Driver, cond string, exclusive bool) (write, lockStreams, lockTable, lockTags string) {
	lockTable = d.sql.tagged.lockTable
	if exclusive {
		lockTable = d.sql.tagged.lockTableExclusive
	}
	return strings.Replace(d.sql.tagged.multiWrite, "{{condition}}", cond, 1), lockStreamsSQL, lockTable, lockTagsSQL
}

// ConditionSQL is conditionSQL for d's schema.
func ConditionSQL(d *Driver, cond driver.AppendCondition, args []any) (string, []any) {
	return conditionSQL(quoteIdent(d.schema), cond, args)
}

// LockKeys returns the tag lock keys (sorted) and modes of a write of
// events under cond.
func LockKeys(d *Driver, events []driver.Event, cond *driver.AppendCondition) ([]int64, []bool) {
	p := newLockPlan(d.schema, events, cond)
	return p.keys, p.exclusive
}

// ReadQueryQuery returns ReadQuery's statement and arguments for q.
func ReadQueryQuery(d *Driver, q driver.QueryPage) (string, []any) { return d.readQueryQuery(q) }
