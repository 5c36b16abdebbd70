package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxRand returns the largest value rand.Int64N could: n-1.
func maxRand(n int64) int64 { return n - 1 }

func TestDelayBounds(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		attempt int
		bound   time.Duration // the exclusive upper bound of Delay
	}{
		{"first try waits up to Base", Policy{Base: 2 * time.Millisecond, Max: 64 * time.Millisecond}, 1, 2 * time.Millisecond},
		{"doubles after each try", Policy{Base: 2 * time.Millisecond, Max: 64 * time.Millisecond}, 3, 8 * time.Millisecond},
		{"reaches the cap", Policy{Base: 2 * time.Millisecond, Max: 64 * time.Millisecond}, 6, 64 * time.Millisecond},
		{"cap holds after it", Policy{Base: 2 * time.Millisecond, Max: 64 * time.Millisecond}, 7, 64 * time.Millisecond},
		{"cap holds for huge attempts", Policy{Base: 25 * time.Millisecond, Max: 2 * time.Second}, 1 << 30, 2 * time.Second},
		{"cap not a power-of-two multiple of Base", Policy{Base: 25 * time.Millisecond, Max: 30 * time.Millisecond}, 2, 30 * time.Millisecond},
		{"zero Max means Base", Policy{Base: 5 * time.Millisecond}, 4, 5 * time.Millisecond},
		{"zero policy does not wait", Policy{}, 3, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gotN int64 = -1
			p := tc.p
			p.randN = func(n int64) int64 { gotN = n; return maxRand(n) }
			d := p.Delay(tc.attempt)
			if tc.bound == 0 {
				assert.Zero(t, d)
				return
			}
			assert.Equal(t, int64(tc.bound), gotN, "jitter drawn from [0, bound)")
			assert.Equal(t, tc.bound-1, d, "the largest delay stays below the bound")
			p.randN = func(int64) int64 { return 0 }
			assert.Zero(t, p.Delay(tc.attempt), "full jitter: the smallest delay is zero")
		})
	}
}

// The real random source stays within bounds too.
func TestDelayRandomWithinBounds(t *testing.T) {
	p := Policy{Base: time.Millisecond, Max: 16 * time.Millisecond}
	for attempt := 1; attempt <= 10; attempt++ {
		for range 100 {
			d := p.Delay(attempt)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.Less(t, d, p.bound(attempt))
			require.LessOrEqual(t, d, p.Max)
		}
	}
}

func TestMore(t *testing.T) {
	tests := []struct {
		name     string
		attempts int
		attempt  int
		want     bool
	}{
		{"below the limit", 3, 2, true},
		{"at the limit", 3, 3, false},
		{"one try only", 1, 1, false},
		{"no limit", 0, 1000, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Policy{Attempts: tc.attempts}.More(tc.attempt))
		})
	}
}

var errTransient = errors.New("transient")

func TestDo(t *testing.T) {
	errPermanent := errors.New("permanent")
	tests := []struct {
		name      string
		attempts  int
		results   []error // op's result per try; after the last, nil
		cancelAt  int     // cancel ctx during the wait after this try (0: never)
		want      error
		wantTries int
		wantWaits []int // the attempt numbers Wait was called with
	}{
		{"success at once", 5, nil, 0, nil, 1, nil},
		{"success after transient failures", 5, []error{errTransient, errTransient}, 0, nil, 3, []int{1, 2}},
		{"permanent error is not retried", 5, []error{errPermanent}, 0, errPermanent, 1, nil},
		{"attempt limit", 3, []error{errTransient, errTransient, errTransient, errTransient}, 0, errTransient, 3, []int{1, 2}},
		{"ctx done during a wait", 10, []error{errTransient, errTransient, errTransient}, 2, context.Canceled, 2, []int{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			observed := 0
			ctx, cancel := context.WithCancel(WithObserver(t.Context(), func(context.Context) { observed++ }))
			defer cancel()
			var waits []int
			var delays []time.Duration
			p := Policy{Base: time.Millisecond, Max: 4 * time.Millisecond, Attempts: tc.attempts}
			p.randN = maxRand
			p.sleep = func(ctx context.Context, d time.Duration) error {
				delays = append(delays, d)
				waits = append(waits, len(waits)+1)
				if len(waits) == tc.cancelAt {
					cancel()
				}
				return ctx.Err()
			}
			tries := 0
			var retried []int
			err := p.Do(ctx, func(context.Context) error {
				tries++
				if tries <= len(tc.results) {
					return tc.results[tries-1]
				}
				return nil
			}, func(err error) bool { return errors.Is(err, errTransient) }, func(attempt int, err error) {
				retried = append(retried, attempt)
				assert.ErrorIs(t, err, errTransient)
			})
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
			assert.Equal(t, tc.wantTries, tries, "tries")
			assert.Equal(t, tc.wantWaits, waits, "waits")
			assert.Equal(t, tc.wantWaits, retried, "onRetry calls")
			assert.Equal(t, len(tc.wantWaits), observed, "observer calls: one per wait")
			for i, d := range delays {
				assert.Equal(t, p.bound(i+1)-1, d, "delay after try %d", i+1)
			}
		})
	}
}

func TestSleepStopsOnDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// An hour: the test would time out if Sleep did not return at once.
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
	require.ErrorIs(t, Sleep(ctx, 0), context.Canceled)
	require.NoError(t, Sleep(t.Context(), 0))
}

func TestWaitStopsOnDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	p := Policy{Base: time.Hour, randN: maxRand}
	go func() { done <- p.Wait(ctx, 1) }()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after ctx was cancelled")
	}
}
