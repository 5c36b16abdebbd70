package codec_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/internal/storetest"
)

// Transferred is the benchmark's event: about 100 bytes of JSON.
type Transferred struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Cents     int64  `json:"cents"`
	Currency  string `json:"currency"`
	Reference string `json:"reference"`
}

// transferredV1 is Transferred at version 1, before Currency existed.
type transferredV1 struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Cents     int64  `json:"cents"`
	Reference string `json:"reference"`
}

var transfer = Transferred{From: "Account-alice", To: "Account-bob", Cents: 12345, Currency: "EUR", Reference: "invoice 2026-0042"}

func benchRegistry(b *testing.B) *codec.Registry {
	r := codec.New()
	if err := codec.Register[Transferred](r, "Transferred", codec.SchemaVersion(2)); err != nil {
		b.Fatal(err)
	}
	if err := r.Upcast("Transferred", 1, codec.UpcastJSON(func(v transferredV1) (Transferred, error) {
		return Transferred{From: v.From, To: v.To, Cents: v.Cents, Currency: "EUR", Reference: v.Reference}, nil
	})); err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkSQLite compares the typed layer with raw bytes on SQLite, as
// sibling sub-benchmarks of one run (run with -count to interleave them):
//
//   - append/batch=N/typed: Encode N values, then Append them;
//     …/raw: Append N events whose Data was marshalled once, before the
//     loop (the strictest baseline: no encoding at all); …/raw+marshal:
//     json.Marshal each value, then Append, what code without the codec
//     pays to append a value.
//   - read/typed: ReadStream of 1000 events through the Registry (Decode:
//     version marker, json.Unmarshal into the Go type); read/raw: the
//     Store's ReadStream of the same events, bytes untouched;
//     read/raw+unmarshal: the Store's ReadStream plus json.Unmarshal of
//     each event, what code without the codec pays to get a value;
//     read/typed-upcast: 1000 events stored at version 1, each upcast.
//
// Results and the ratios are in docs/benchmarks.md ("Typed events").
// loop runs op b.N times, each handling events events, and reports
// events/s and the process's CPU time per op (cpu-ns/op: less disturbed
// than wall time by other processes on a shared machine; it includes the
// garbage collector's work).
func loop(b *testing.B, events int, op func()) {
	c0 := cpuTime()
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
	if c := cpuTime() - c0; c > 0 {
		b.ReportMetric(float64(c/time.Nanosecond)/float64(b.N), "cpu-ns/op")
	}
}

func BenchmarkSQLite(b *testing.B) {
	ctx := b.Context()
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("append/batch=%d", n), func(b *testing.B) {
			b.Run("typed", func(b *testing.B) {
				s, r := storetest.SQLite(b), benchRegistry(b)
				evs := make([]eventstore.Event, n)
				i := 0
				loop(b, n, func() {
					i++
					stream := fmt.Sprint("Account-", i)
					for j := range evs {
						ev, err := r.Encode(ctx, stream, transfer)
						if err != nil {
							b.Fatal(err)
						}
						evs[j] = ev
					}
					if _, err := s.Append(ctx, stream, eventstore.NoStream, evs...); err != nil {
						b.Fatal(err)
					}
				})
			})
			b.Run("raw+marshal", func(b *testing.B) {
				s := storetest.SQLite(b)
				evs := make([]eventstore.Event, n)
				i := 0
				loop(b, n, func() {
					for j := range evs {
						data, err := json.Marshal(transfer)
						if err != nil {
							b.Fatal(err)
						}
						evs[j] = eventstore.Event{Type: "Transferred", Data: data}
					}
					i++
					if _, err := s.Append(ctx, fmt.Sprint("Account-", i), eventstore.NoStream, evs...); err != nil {
						b.Fatal(err)
					}
				})
			})
			b.Run("raw", func(b *testing.B) {
				s := storetest.SQLite(b)
				data, err := json.Marshal(transfer)
				if err != nil {
					b.Fatal(err)
				}
				evs := make([]eventstore.Event, n)
				i := 0
				loop(b, n, func() {
					for j := range evs {
						evs[j] = eventstore.Event{Type: "Transferred", Data: data}
					}
					i++
					if _, err := s.Append(ctx, fmt.Sprint("Account-", i), eventstore.NoStream, evs...); err != nil {
						b.Fatal(err)
					}
				})
			})
		})
	}

	b.Run("read", func(b *testing.B) {
		const events = 1000
		s, r := storetest.SQLite(b), benchRegistry(b)
		v1, err := json.Marshal(transferredV1{From: transfer.From, To: transfer.To, Cents: transfer.Cents, Reference: transfer.Reference})
		if err != nil {
			b.Fatal(err)
		}
		for k := range events / 100 {
			cur := make([]eventstore.Event, 100)
			old := make([]eventstore.Event, 100)
			for j := range cur {
				if cur[j], err = r.Encode(ctx, "Account-1", transfer); err != nil {
					b.Fatal(err)
				}
				old[j] = eventstore.Event{Type: "Transferred", Data: v1}
			}
			expected := eventstore.StreamExists
			if k == 0 {
				expected = eventstore.NoStream
			}
			if _, err := s.Append(ctx, "Account-current", expected, cur...); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Append(ctx, "Account-old", expected, old...); err != nil {
				b.Fatal(err)
			}
		}
		count := func(b *testing.B, got int) {
			if got != events {
				b.Fatalf("read %d events, want %d", got, events)
			}
		}
		typed := func(stream string) func(b *testing.B) {
			return func(b *testing.B) {
				loop(b, events, func() {
					got := 0
					for m, err := range r.ReadStream(ctx, s, stream, eventstore.ReadStreamOptions{}) {
						if err != nil {
							b.Fatal(err)
						}
						if m.Value.(Transferred).Cents != transfer.Cents {
							b.Fatal("wrong value")
						}
						got++
					}
					count(b, got)
				})
			}
		}
		b.Run("typed", typed("Account-current"))
		b.Run("raw", func(b *testing.B) {
			loop(b, events, func() {
				got := 0
				for ev, err := range s.ReadStream(ctx, "Account-current", eventstore.ReadStreamOptions{}) {
					if err != nil {
						b.Fatal(err)
					}
					if len(ev.Data) == 0 {
						b.Fatal("no data")
					}
					got++
				}
				count(b, got)
			})
		})
		b.Run("raw+unmarshal", func(b *testing.B) {
			loop(b, events, func() {
				got := 0
				for ev, err := range s.ReadStream(ctx, "Account-current", eventstore.ReadStreamOptions{}) {
					if err != nil {
						b.Fatal(err)
					}
					var v Transferred
					if err := json.Unmarshal(ev.Data, &v); err != nil || v.Cents != transfer.Cents {
						b.Fatal("wrong value", err)
					}
					got++
				}
				count(b, got)
			})
		})
		b.Run("typed-upcast", typed("Account-old"))
	})
}

// BenchmarkCodec measures the layer alone, without a store, against the
// encoding/json calls it wraps: encode/typed is Encode, encode/json is
// json.Marshal; decode/typed is Decode of a current-version event,
// decode/json is json.Unmarshal into the Go type; decode/upcast is Decode
// of a version 1 event (one UpcastJSON step).
func BenchmarkCodec(b *testing.B) {
	ctx := b.Context()
	r := benchRegistry(b)
	cur, err := r.Encode(ctx, "Account-1", transfer)
	if err != nil {
		b.Fatal(err)
	}
	v1, _ := json.Marshal(transferredV1{From: transfer.From, To: transfer.To, Cents: transfer.Cents, Reference: transfer.Reference})
	stored := eventstore.RecordedEvent{StreamID: "Account-1", Version: 1, Type: cur.Type, Data: cur.Data, Metadata: cur.Metadata}
	old := eventstore.RecordedEvent{StreamID: "Account-1", Version: 1, Type: cur.Type, Data: v1}
	b.Run("encode/typed", func(b *testing.B) {
		loop(b, 1, func() {
			if _, err := r.Encode(ctx, "Account-1", transfer); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("encode/json", func(b *testing.B) {
		loop(b, 1, func() {
			if _, err := json.Marshal(transfer); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("decode/typed", func(b *testing.B) {
		loop(b, 1, func() {
			if _, err := r.Decode(ctx, stored); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("decode/json", func(b *testing.B) {
		loop(b, 1, func() {
			var v Transferred
			if err := json.Unmarshal(stored.Data, &v); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("decode/upcast", func(b *testing.B) {
		loop(b, 1, func() {
			if _, err := r.Decode(ctx, old); err != nil {
				b.Fatal(err)
			}
		})
	})
}
