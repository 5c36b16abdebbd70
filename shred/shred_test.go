package shred_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/shred"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// CustomerRegistered protects two fields of its subject.
type CustomerRegistered struct {
	shred.Erasure
	CustomerID string `json:"customerId" shred:"subject"`
	Name       string `json:"name" shred:"pii"`
	Email      string `json:"email,omitempty" shred:"pii"`
	Plan       string `json:"plan"`
}

// AddressChanged is protected whole: it has no pii field.
type AddressChanged struct {
	shred.Erasure
	CustomerID string `json:"customerId" shred:"subject"`
	Street     string `json:"street"`
}

// rules returns the rules of the test's event types.
func rules(t testing.TB) map[string]shred.Rule {
	t.Helper()
	reg, err := shred.RuleOf[CustomerRegistered]()
	require.NoError(t, err)
	addr, err := shred.RuleOf[AddressChanged]()
	require.NoError(t, err)
	return map[string]shred.Rule{"CustomerRegistered": reg, "AddressChanged": addr}
}

// newShredder returns a Shredder over keys with the test's rules.
func newShredder(t testing.TB, keys shred.KeyStore, ttl time.Duration) *shred.Shredder {
	t.Helper()
	sh, err := shred.New(shred.Options{Keys: keys, Rules: rules(t), CacheTTL: ttl})
	require.NoError(t, err)
	return sh
}

// event returns a JSON event of type typ with v marshalled as its data.
func event(t testing.TB, typ string, v any) eventstore.Event {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return eventstore.Event{ID: uuid.New(), Type: typ, Data: b, Metadata: []byte(`{"by":"test"}`)}
}

// recorded returns ev as a store would record it.
func recorded(ev eventstore.Event) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{StreamID: "Customer-1", Version: 1, ID: ev.ID, Type: ev.Type,
		ContentType: ev.ContentType, Data: ev.Data, Metadata: ev.Metadata}
}

func TestRuleOf(t *testing.T) {
	r, err := shred.RuleOf[CustomerRegistered]()
	require.NoError(t, err)
	assert.Equal(t, shred.Rule{Subject: "customerId", Fields: []string{"name", "email"}}, r)
	r, err = shred.RuleOf[*AddressChanged]()
	require.NoError(t, err)
	assert.Equal(t, shred.Rule{Subject: "customerId"}, r, "no pii field: the whole data")

	type noSubject struct {
		Name string `shred:"pii"`
	}
	type twoSubjects struct {
		A string `shred:"subject"`
		B string `shred:"subject"`
	}
	type intSubject struct {
		A int `shred:"subject"`
	}
	type badTag struct {
		A string `shred:"subject"`
		B string `shred:"secret"`
	}
	type skipped struct {
		A string `shred:"subject"`
		B string `json:"-" shred:"pii"`
	}
	for name, f := range map[string]func() (shred.Rule, error){
		"not a struct":    shred.RuleOf[string],
		"no subject":      shred.RuleOf[noSubject],
		"two subjects":    shred.RuleOf[twoSubjects],
		"int subject":     shred.RuleOf[intSubject],
		"unknown tag":     shred.RuleOf[badTag],
		"field not coded": shred.RuleOf[skipped],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f()
			require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
		})
	}
}

func TestNewRejectsBadRules(t *testing.T) {
	for name, r := range map[string]shred.Rule{
		"no subject":         {Fields: []string{"a"}},
		"subject protected":  {Subject: "s", Fields: []string{"s"}},
		"field twice":        {Subject: "s", Fields: []string{"a", "a"}},
		"envelope field":     {Subject: "s", Fields: []string{"$shred"}},
		"empty field":        {Subject: "s", Fields: []string{""}},
		"envelope subject":   {Subject: "$shred"},
		"bad event type key": {Subject: "s"},
	} {
		t.Run(name, func(t *testing.T) {
			typ := "T"
			if name == "bad event type key" {
				typ = "$T"
			}
			_, err := shred.New(shred.Options{Keys: &shred.MemoryKeys{}, Rules: map[string]shred.Rule{typ: r}})
			require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
		})
	}
	_, err := shred.New(shred.Options{})
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument, "no key store")
}

func TestSealOpen(t *testing.T) {
	ctx := t.Context()
	sh := newShredder(t, &shred.MemoryKeys{}, 0)
	for _, tc := range []struct {
		name   string
		ev     eventstore.Event
		sealed bool     // Seal changes the data
		secret []string // plaintext the sealed data must not hold
	}{
		{"fields", event(t, "CustomerRegistered", CustomerRegistered{CustomerID: "c-1", Name: "Ada Lovelace", Email: "ada@example.com", Plan: "gold"}),
			true, []string{"Ada Lovelace", "ada@example.com"}},
		{"some fields absent", event(t, "CustomerRegistered", CustomerRegistered{CustomerID: "c-1", Name: "Ada Lovelace", Plan: "gold"}),
			true, []string{"Ada Lovelace"}},
		{"whole data", event(t, "AddressChanged", AddressChanged{CustomerID: "c-1", Street: "12 Analytical Row"}),
			true, []string{"12 Analytical Row"}},
		{"no protected field present", eventstore.Event{ID: uuid.New(), Type: "CustomerRegistered", Data: []byte(`{"customerId":"c-1","plan":"gold"}`)},
			false, nil},
		{"type without a rule", eventstore.Event{ID: uuid.New(), Type: "OrderPlaced", Data: []byte(`{"name":"Ada Lovelace"}`)},
			false, nil},
		{"type without a rule, $shred nested", eventstore.Event{ID: uuid.New(), Type: "OrderPlaced", Data: []byte(`{"note":{"$shred":1},"s":"$shred"}`)},
			false, nil},
		{"formatting of other members kept", eventstore.Event{ID: uuid.New(), Type: "CustomerRegistered",
			Data: []byte(`{"customerId":"c-1","name":"Ada Lovelace","plan":{"tier": "gold", "seats": [1, 2]}}`)},
			true, []string{"Ada Lovelace"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := sh.Seal(ctx, "Customer-1", tc.ev)
			require.NoError(t, err)
			assert.Equal(t, tc.ev.ID, sealed.ID)
			assert.Equal(t, tc.sealed, !bytes.Equal(sealed.Data, tc.ev.Data), "sealed: %s", sealed.Data)
			assert.True(t, json.Valid(sealed.Data), "sealed data is JSON: %s", sealed.Data)
			for _, s := range tc.secret {
				assert.NotContains(t, string(sealed.Data), s)
			}
			opened, err := sh.Open(ctx, recorded(sealed))
			require.NoError(t, err)
			assert.JSONEq(t, string(tc.ev.Data), string(opened.Data))
			assert.Equal(t, string(tc.ev.Metadata), string(opened.Metadata))
			assert.False(t, shred.Erased(opened))
		})
	}

	t.Run("whole data round-trips byte for byte", func(t *testing.T) {
		ev := eventstore.Event{ID: uuid.New(), Type: "AddressChanged", Data: []byte(` { "street" : "x",  "customerId":"c-1" } `)}
		sealed, err := sh.Seal(ctx, "Customer-1", ev)
		require.NoError(t, err)
		opened, err := sh.Open(ctx, recorded(sealed))
		require.NoError(t, err)
		assert.Equal(t, string(ev.Data), string(opened.Data))
	})
	t.Run("a zero ID is filled in", func(t *testing.T) {
		ev := event(t, "AddressChanged", AddressChanged{CustomerID: "c-1", Street: "x"})
		ev.ID = uuid.Nil
		sealed, err := sh.Seal(ctx, "Customer-1", ev)
		require.NoError(t, err)
		require.NotEqual(t, uuid.Nil, sealed.ID)
		_, err = sh.Open(ctx, recorded(sealed))
		require.NoError(t, err)
	})
}

func TestSealRejects(t *testing.T) {
	sh := newShredder(t, &shred.MemoryKeys{}, 0)
	for _, tc := range []struct {
		name string
		ev   eventstore.Event
	}{
		{"not an object", eventstore.Event{Type: "CustomerRegistered", Data: []byte(`["c-1"]`)}},
		{"not JSON", eventstore.Event{Type: "CustomerRegistered", Data: []byte(`{"customerId":`)}},
		{"binary", eventstore.Event{Type: "CustomerRegistered", ContentType: eventstore.Binary, Data: []byte(`{"customerId":"c-1"}`)}},
		{"no subject", eventstore.Event{Type: "CustomerRegistered", Data: []byte(`{"name":"Ada"}`)}},
		{"subject not a string", eventstore.Event{Type: "CustomerRegistered", Data: []byte(`{"customerId":7,"name":"Ada"}`)}},
		{"subject empty", eventstore.Event{Type: "CustomerRegistered", Data: []byte(`{"customerId":"","name":"Ada"}`)}},
		{"member twice", eventstore.Event{Type: "CustomerRegistered", Data: []byte(`{"customerId":"c-1","name":"Ada","name":"Bob"}`)}},
		{"envelope member", eventstore.Event{Type: "CustomerRegistered", Data: []byte(`{"customerId":"c-1","$shred":{}}`)}},
		{"erased member", eventstore.Event{Type: "CustomerRegistered", Data: []byte(`{"customerId":"c-1","$erased":true}`)}},
		{"envelope in a type without a rule", eventstore.Event{Type: "Comment", Data: []byte(`{"text":"hi","$shred":{"v":2}}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sh.Seal(t.Context(), "Customer-1", tc.ev)
			require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
		})
	}
}

func TestForget(t *testing.T) {
	ctx := t.Context()
	keys := &shred.MemoryKeys{}
	sh := newShredder(t, keys, 0)
	seal := func(typ string, v any) eventstore.RecordedEvent {
		t.Helper()
		ev, err := sh.Seal(ctx, "Customer-1", event(t, typ, v))
		require.NoError(t, err)
		return recorded(ev)
	}
	ada := seal("CustomerRegistered", CustomerRegistered{CustomerID: "c-1", Name: "Ada Lovelace", Email: "ada@example.com", Plan: "gold"})
	adaAddr := seal("AddressChanged", AddressChanged{CustomerID: "c-1", Street: "12 Analytical Row"})
	bob := seal("CustomerRegistered", CustomerRegistered{CustomerID: "c-2", Name: "Bob", Plan: "free"})

	require.NoError(t, sh.Forget(ctx, "c-1"))
	require.NoError(t, sh.Forget(ctx, "c-1"), "forgetting twice")
	require.ErrorIs(t, sh.Forget(ctx, ""), eventstore.ErrInvalidArgument)

	// A Shredder that never cached the key sees the same.
	for name, s := range map[string]*shred.Shredder{"same": sh, "fresh": newShredder(t, keys, 0)} {
		t.Run(name, func(t *testing.T) {
			got, err := s.Open(ctx, ada)
			require.NoError(t, err, "erasure is not an error")
			assert.True(t, shred.Erased(got))
			assert.JSONEq(t, `{"customerId":"c-1","name":null,"email":null,"plan":"gold","$erased":true}`, string(got.Data))
			assert.JSONEq(t, `{"by":"test","$erased":true}`, string(got.Metadata))
			var v CustomerRegistered
			require.NoError(t, json.Unmarshal(got.Data, &v))
			assert.Equal(t, CustomerRegistered{Erasure: shred.Erasure{Erased: true}, CustomerID: "c-1", Plan: "gold"}, v)

			got, err = s.Open(ctx, adaAddr)
			require.NoError(t, err)
			assert.True(t, shred.Erased(got))
			assert.JSONEq(t, `{"$erased":true}`, string(got.Data))

			got, err = s.Open(ctx, bob)
			require.NoError(t, err)
			assert.False(t, shred.Erased(got))
			assert.JSONEq(t, `{"customerId":"c-2","name":"Bob","plan":"free"}`, string(got.Data))
		})
	}

	// The subject comes back with a new key; the old events stay erased.
	again := seal("CustomerRegistered", CustomerRegistered{CustomerID: "c-1", Name: "Ada King", Plan: "gold"})
	got, err := sh.Open(ctx, again)
	require.NoError(t, err)
	assert.JSONEq(t, `{"customerId":"c-1","name":"Ada King","plan":"gold"}`, string(got.Data))
	got, err = sh.Open(ctx, ada)
	require.NoError(t, err)
	assert.True(t, shred.Erased(got))
}

func TestTampered(t *testing.T) {
	ctx := t.Context()
	sh := newShredder(t, &shred.MemoryKeys{}, 0)
	sealTo := func(name string) eventstore.Event {
		ev, err := sh.Seal(ctx, "Customer-1", event(t, "CustomerRegistered", CustomerRegistered{CustomerID: "c-1", Name: name, Plan: "gold"}))
		require.NoError(t, err)
		return ev
	}
	a, b := sealTo("Ada"), sealTo("Bob")
	envelope := func(ev eventstore.Event) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(ev.Data, &m))
		return m
	}
	for _, tc := range []struct {
		name   string
		ev     eventstore.RecordedEvent
		target error
	}{
		{"moved to another event", func() eventstore.RecordedEvent {
			r := recorded(b)
			r.Data = a.Data // Ada's ciphertext under Bob's event ID
			return r
		}(), shred.ErrTampered},
		{"another event type", func() eventstore.RecordedEvent {
			r := recorded(a)
			r.Type = "CustomerImported"
			return r
		}(), shred.ErrTampered},
		{"ciphertext altered", func() eventstore.RecordedEvent {
			m := envelope(a)
			var env map[string]any
			require.NoError(t, json.Unmarshal(m["$shred"], &env))
			c, _ := base64.StdEncoding.DecodeString(env["c"].(string))
			c[0] ^= 1
			env["c"] = c
			m["$shred"], _ = json.Marshal(env)
			r := recorded(a)
			r.Data, _ = json.Marshal(m)
			return r
		}(), shred.ErrTampered},
		{"protected field list changed", func() eventstore.RecordedEvent {
			r := recorded(a)
			r.Data = bytes.Replace(a.Data, []byte(`"f":["name"]`), []byte(`"f":["name","plan"]`), 1)
			return r
		}(), shred.ErrTampered},
		{"moved to another stream", func() eventstore.RecordedEvent {
			r := recorded(a)
			r.StreamID = "Customer-2"
			return r
		}(), shred.ErrTampered},
		{"moved to another stream, format version 1 claimed", func() eventstore.RecordedEvent {
			r := recorded(a)
			r.StreamID = "Customer-2"
			r.Data = bytes.Replace(a.Data, []byte(`"v":2`), []byte(`"v":1`), 1)
			return r
		}(), shred.ErrTampered},
		{"newer format version", func() eventstore.RecordedEvent {
			r := recorded(a)
			r.Data = bytes.Replace(a.Data, []byte(`"v":2`), []byte(`"v":3`), 1)
			return r
		}(), shred.ErrBadEnvelope},
		{"malformed envelope", func() eventstore.RecordedEvent {
			r := recorded(a)
			r.Data = []byte(`{"customerId":"c-1","$shred":{"v":1,"s":"c-1","k":"AA==","n":"AA==","c":"AA=="}}`)
			return r
		}(), shred.ErrBadEnvelope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sh.Open(ctx, tc.ev)
			require.ErrorIs(t, err, tc.target)
		})
	}
}

// TestOpenEnvelopeV1: events sealed in envelope format version 1, before
// the stream was bound (testdata/envelope-v1.json, written by the package at
// commit 09fbfcc), still open, in whatever stream they are read from, and
// are erased by Forget like any other.
func TestOpenEnvelopeV1(t *testing.T) {
	ctx := t.Context()
	raw, err := os.ReadFile(filepath.Join("testdata", "envelope-v1.json"))
	require.NoError(t, err)
	var golden struct {
		Subject string
		Key     []byte
		Events  []struct {
			Name, Type, Data, Metadata string
			ID                         uuid.UUID
		}
	}
	require.NoError(t, json.Unmarshal(raw, &golden))
	keys := &shred.MemoryKeys{}
	_, err = keys.CreateKey(ctx, golden.Subject, golden.Key)
	require.NoError(t, err)
	sh := newShredder(t, keys, 0)
	want := map[string]string{
		"fields": `{"customerId":"c-1","name":"Ada Lovelace","email":"ada@example.com","plan":"gold"}`,
		"whole":  `{"customerId":"c-1","street":"12 Analytical Row"}`,
	}
	stored := make([]eventstore.RecordedEvent, len(golden.Events))
	for i, g := range golden.Events {
		require.Contains(t, g.Data, `"v":1`, "%s: the golden event is not of format version 1", g.Name)
		stored[i] = eventstore.RecordedEvent{StreamID: "Customer-1", Version: uint64(i + 1), ID: g.ID, Type: g.Type,
			ContentType: eventstore.JSON, Data: []byte(g.Data), Metadata: []byte(g.Metadata)}
		for _, stream := range []string{"Customer-1", "Elsewhere-7"} {
			ev := stored[i]
			ev.StreamID = stream
			got, err := sh.Open(ctx, ev)
			require.NoError(t, err, "%s in %s", g.Name, stream)
			assert.JSONEq(t, want[g.Name], string(got.Data), "%s in %s", g.Name, stream)
		}
		moved := stored[i]
		moved.ID = uuid.New()
		_, err := sh.Open(ctx, moved)
		require.ErrorIs(t, err, shred.ErrTampered, "%s: version 1 still binds the event ID", g.Name)
	}
	require.NoError(t, sh.Forget(ctx, golden.Subject))
	for i, ev := range stored {
		got, err := sh.Open(ctx, ev)
		require.NoError(t, err)
		assert.True(t, shred.Erased(got), "%s: not erased", golden.Events[i].Name)
		assert.NotContains(t, string(got.Data), "Ada")
		assert.NotContains(t, string(got.Data), "Analytical")
	}
}

// flakyKeys is a key store whose calls fail with err while it is set.
type flakyKeys struct {
	shred.KeyStore
	err error
}

func (f *flakyKeys) LoadKey(ctx context.Context, subject string) ([]byte, bool, error) {
	if f.err != nil {
		return nil, false, f.err
	}
	return f.KeyStore.LoadKey(ctx, subject)
}

func TestKeyStoreFailureIsNotErasure(t *testing.T) {
	ctx := t.Context()
	keys := &flakyKeys{KeyStore: &shred.MemoryKeys{}}
	sh := newShredder(t, keys, -1) // no cache: every Open asks the key store
	ev, err := sh.Seal(ctx, "Customer-1", event(t, "CustomerRegistered", CustomerRegistered{CustomerID: "c-1", Name: "Ada", Plan: "gold"}))
	require.NoError(t, err)

	keys.err = fmt.Errorf("connection reset: %w", eventstore.ErrTransient)
	_, err = sh.Open(ctx, recorded(ev))
	require.ErrorIs(t, err, eventstore.ErrTransient, "a failing key store is an error, not an erasure")
	_, err = sh.Seal(ctx, "Customer-1", event(t, "CustomerRegistered", CustomerRegistered{CustomerID: "c-9", Name: "Eve"}))
	require.ErrorIs(t, err, eventstore.ErrTransient)

	keys.err = nil
	got, err := sh.Open(ctx, recorded(ev))
	require.NoError(t, err)
	assert.False(t, shred.Erased(got), "the failure was not remembered as an erasure")
}

// fixedKeys returns the same stored bytes for every subject.
type fixedKeys struct {
	shred.MemoryKeys
	raw []byte
}

func (f *fixedKeys) LoadKey(context.Context, string) ([]byte, bool, error) {
	return bytes.Clone(f.raw), true, nil
}

func TestErrorsHoldNoKeyBytes(t *testing.T) {
	ctx := t.Context()
	// A key store that hands out a key record that is almost right (a
	// wrong version byte) and one of the wrong size.
	secret := bytes.Repeat([]byte{0xA5, 0x5A, 0x3C, 0xC3}, 12)
	for name, raw := range map[string][]byte{
		"wrong version": append([]byte{9}, secret...),
		"wrong size":    secret,
	} {
		t.Run(name, func(t *testing.T) {
			sh := newShredder(t, &fixedKeys{raw: raw}, 0)
			_, err := sh.Seal(ctx, "Customer-1", event(t, "CustomerRegistered", CustomerRegistered{CustomerID: "c-1", Name: "Ada"}))
			require.Error(t, err)
			msg := err.Error()
			for _, enc := range []string{string(secret[:8]), hex.EncodeToString(secret[:8]), base64.StdEncoding.EncodeToString(secret[:9]), fmt.Sprint(secret[:4])} {
				assert.NotContains(t, msg, enc)
			}
		})
	}
}

func TestKeyCacheTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		keys := &shred.MemoryKeys{}
		writer := newShredder(t, keys, 0)
		reader := newShredder(t, keys, 0) // another process, with its own cache
		ev, err := writer.Seal(ctx, "Customer-1", event(t, "CustomerRegistered", CustomerRegistered{CustomerID: "c-1", Name: "Ada"}))
		require.NoError(t, err)
		got, err := reader.Open(ctx, recorded(ev))
		require.NoError(t, err)
		require.False(t, shred.Erased(got))

		require.NoError(t, writer.Forget(ctx, "c-1"))
		got, err = reader.Open(ctx, recorded(ev))
		require.NoError(t, err)
		assert.False(t, shred.Erased(got), "the reader's cached key is used until it expires")

		time.Sleep(shred.DefaultCacheTTL + time.Second)
		got, err = reader.Open(ctx, recorded(ev))
		require.NoError(t, err)
		assert.True(t, shred.Erased(got), "after the TTL the reader reads the key store again")

		uncached := newShredder(t, keys, -1)
		got, err = uncached.Open(ctx, recorded(ev))
		require.NoError(t, err)
		assert.True(t, shred.Erased(got))
	})
}
