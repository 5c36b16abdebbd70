package dynamodb

import (
	"context"
	"math/rand/v2"
	"time"
)

// Back-off between tries of a request that DynamoDB throttled or failed
// transiently: exponential from backoffBase, capped at backoffMax, with
// jitter (a random half of each step), so that clients throttled together
// do not come back together.
const (
	backoffBase = 25 * time.Millisecond
	backoffMax  = 2 * time.Second
)

// backoffDelay returns the wait before try number attempt+1 (attempt ≥ 1).
func backoffDelay(attempt int) time.Duration {
	d := backoffMax
	if attempt < 16 {
		d = min(backoffBase<<(attempt-1), backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call runs one DynamoDB request, op, trying it again while it fails with a
// retryable error (see classRetry), at most d.maxAttempts times in all. It
// returns op's last error, wrapped by the caller.
func (d *Driver) call(ctx context.Context, name string, op func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil || classify(err) != classRetry || attempt >= d.maxAttempts {
			return err
		}
		d.retrying(name, attempt, err)
		if err := sleep(ctx, backoffDelay(attempt)); err != nil {
			return err
		}
	}
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
