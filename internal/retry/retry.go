// Package retry is the one back-off policy the drivers use between tries of
// an operation that failed transiently: capped exponential back-off with
// full jitter, a limit on the number of tries, and sleeps that end when the
// context is done.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is capped exponential back-off with full jitter: the wait after try
// number n (1-based) is uniform in [0, min(Base·2^(n-1), Max)), so clients
// that failed together do not come back together. The zero Policy retries
// without waiting and without limit.
type Policy struct {
	Base     time.Duration // the bound of the first wait
	Max      time.Duration // the bound no wait exceeds; zero means Base
	Attempts int           // tries in all; zero means no limit

	// Test hooks: nil means math/rand/v2's Int64N and Sleep.
	randN func(n int64) int64
	sleep func(ctx context.Context, d time.Duration) error
}

// bound returns the upper bound of the wait after try number attempt.
func (p Policy) bound(attempt int) time.Duration {
	hi := max(p.Max, p.Base)
	d := p.Base
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// Delay returns the wait after try number attempt (1-based) failed.
func (p Policy) Delay(attempt int) time.Duration {
	b := p.bound(attempt)
	if b <= 0 {
		return 0
	}
	randN := p.randN
	if randN == nil {
		randN = rand.Int64N
	}
	return time.Duration(randN(int64(b)))
}

// More reports whether another try may follow try number attempt.
func (p Policy) More(attempt int) bool { return p.Attempts <= 0 || attempt < p.Attempts }

// Wait sleeps for Delay(attempt), or until ctx is done, when it returns
// ctx's error. It first tells the observer ctx carries (see WithObserver).
func (p Policy) Wait(ctx context.Context, attempt int) error {
	observe(ctx)
	sleep := p.sleep
	if sleep == nil {
		sleep = Sleep
	}
	return sleep(ctx, p.Delay(attempt))
}

// Do calls op until it succeeds, fails with an error retryable rejects, has
// been tried Attempts times, or ctx is done. Before each wait it calls
// onRetry, if not nil, with the number of the try that failed and its
// error. It returns op's last error, or ctx's error if ctx ended a wait.
func (p Policy) Do(ctx context.Context, op func(ctx context.Context) error, retryable func(error) bool, onRetry func(attempt int, err error)) error {
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil || !retryable(err) || !p.More(attempt) {
			return err
		}
		if onRetry != nil {
			onRetry(attempt, err)
		}
		if err := p.Wait(ctx, attempt); err != nil {
			return err
		}
	}
}

// Sleep waits for d, or until ctx is done, when it returns ctx's error. A
// ctx already done returns at once, even for d ≤ 0.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
