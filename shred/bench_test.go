package shred_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/shred"
	"github.com/google/uuid"
)

// BenchmarkSealOpen measures the cost per event of sealing and opening,
// with the subject's key cached (the common case), for a payload of about
// 120 bytes with two protected fields and for the same payload protected
// whole; raw is the baseline of the same work without shredding (an event
// of a type with no rule, which Seal and Open pass through). Results are in
// docs/gdpr.md.
func BenchmarkSealOpen(b *testing.B) {
	data := []byte(`{"customerId":"c-42","name":"Ada Lovelace","email":"ada@example.com","plan":"gold","seats":12,"country":"GB"}`)
	rules := map[string]shred.Rule{
		"fields": {Subject: "customerId", Fields: []string{"name", "email"}},
		"whole":  {Subject: "customerId"},
	}
	sh, err := shred.New(shred.Options{Keys: &shred.MemoryKeys{}, Rules: rules})
	if err != nil {
		b.Fatal(err)
	}
	for _, typ := range []string{"raw", "fields", "whole"} {
		ev := eventstore.Event{ID: uuid.New(), Type: typ, Data: data}
		sealed, err := sh.Seal(b.Context(), "Customer-42", ev)
		if err != nil {
			b.Fatal(err)
		}
		rec := eventstore.RecordedEvent{StreamID: "Customer-42", Version: 1, ID: sealed.ID, Type: typ, Data: sealed.Data}
		b.Run("seal/"+typ, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sh.Seal(b.Context(), "Customer-42", ev); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("open/"+typ, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sh.Open(b.Context(), rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// An erased event: the key is gone and its ID is remembered as such.
	ev := eventstore.Event{ID: uuid.New(), Type: "fields", Data: data}
	sealed, err := sh.Seal(b.Context(), "Customer-42", ev)
	if err != nil {
		b.Fatal(err)
	}
	if err := sh.Forget(b.Context(), "c-42"); err != nil {
		b.Fatal(err)
	}
	rec := eventstore.RecordedEvent{StreamID: "Customer-42", Version: 1, ID: sealed.ID, Type: "fields", Data: sealed.Data}
	b.Run("open/erased", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sh.Open(b.Context(), rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
