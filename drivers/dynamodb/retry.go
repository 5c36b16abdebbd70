package dynamodb

import (
	"context"
	"time"

	"github.com/eventkit/eventstore/internal/errkind"
	"github.com/eventkit/eventstore/internal/retry"
)

// backoff is the wait between tries of a request that DynamoDB throttled or
// failed transiently: up to 25 ms after the first try, doubling to at most
// 2 s, with full jitter, so that clients throttled together do not come
// back together. Options.MaxAttempts bounds the tries.
var backoff = retry.Policy{Base: 25 * time.Millisecond, Max: 2 * time.Second}

// sleep waits for d or until ctx is done.
var sleep = retry.Sleep

// call runs one DynamoDB request, op, trying it again while it fails with a
// retryable error (see retryable), at most d.maxAttempts times in all. It
// returns op's last error, wrapped by the caller, and marked with
// eventstore.ErrTransient when it may pass (see transient) and ctx is not
// done.
func (d *Driver) call(ctx context.Context, name string, op func(ctx context.Context) error) error {
	p := backoff
	p.Attempts = d.maxAttempts
	err := p.Do(ctx, op,
		retryable,
		func(attempt int, err error) { d.retrying(name, attempt, err) })
	if err != nil && ctx.Err() == nil && transient(err) {
		return errkind.Transient(err)
	}
	return err
}

// retrying reports a retried request to the test hook and, from the third
// try on, to the logger: an operator acts on sustained throttling.
func (d *Driver) retrying(name string, attempt int, err error) {
	if d.retryHook != nil {
		d.retryHook(name, err)
	}
	if attempt >= 2 {
		d.logger.Warn("dynamodb: retrying request", "driver", "dynamodb", "table", d.table, "op", name, "attempt", attempt+1, "error", err)
	}
}
