package sqlite

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/eventkit/eventstore/driver"
)

// The driver's own SQL, for the …/raw twins of bench_test.go.
const (
	QueryHead           = queryHead
	QueryInsertAppend   = queryInsertAppend
	QueryStreamForwards = queryStreamForwards
	QueryAllForwards    = queryAllForwards
	QueryMultiHeads     = queryMultiHeads
	QueryImportAppends  = queryImportAppends
	QueryInsertTags     = queryInsertTags
)

// InsertTaggedQuery returns the driver's INSERT of rows events with tags.
func InsertTaggedQuery(rows int) string { return insertTaggedQuery(rows) }

// ConditionQuery returns the driver's append condition for q after the
// position after (q has at least one item and at most 32).
func ConditionQuery(q driver.Query, after int64) (string, []any) {
	items, _ := queryItems(q)
	return conditionQuery(items, after)
}

// InsertRows are the row counts of the driver's multi-row INSERTs.
var InsertRows = insertRows

// InsertQuery returns the driver's INSERT of rows events.
func InsertQuery(rows int) string { return insertQuery(rows) }

// CancelAfter is a context that is cancelled at the n-th call of Done, so a
// loop over n cancels an append at every step.
type CancelAfter struct {
	context.Context
	n    atomic.Int64
	once sync.Once
	done chan struct{}
}

// NewCancelAfter returns a CancelAfter done at the n-th call of Done.
func NewCancelAfter(n int64) *CancelAfter {
	c := &CancelAfter{Context: context.Background(), done: make(chan struct{})}
	c.n.Store(n)
	return c
}

func (c *CancelAfter) Done() <-chan struct{} {
	if c.n.Add(-1) < 0 {
		c.once.Do(func() { close(c.done) })
	}
	return c.done
}

func (c *CancelAfter) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}
