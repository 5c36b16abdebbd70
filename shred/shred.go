package shred

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/google/uuid"
)

// MetadataErased is the key [Shredder.Open] sets to true, both in the
// metadata and in the data, of an event whose protected data was erased
// (see [Erased] and [Erasure]).
const MetadataErased = "$erased"

// Erasure marks a typed event whose protected data was erased: embed it in
// a struct decoded from opened data (by package codec, say), and Erased is
// true when [Shredder.Open] erased the event. It is never encoded while
// false, and Seal refuses data where it is true.
type Erasure struct {
	Erased bool `json:"$erased,omitempty"`
}

// DefaultCacheTTL is how long a Shredder keeps a subject's key in memory
// when [Options.CacheTTL] is zero.
const DefaultCacheTTL = 30 * time.Second

// maxCached bounds the keys (and erased key IDs) a Shredder remembers; past
// it the cache is emptied and refilled from the key store.
const maxCached = 10000

// Options configure a [Shredder].
type Options struct {
	// Keys holds the subjects' keys; required. An *eventstore.Store whose
	// driver keeps keys is one.
	Keys KeyStore
	// Rules maps event types to how they are sealed; events of other
	// types are appended in plain text. Open needs no rules: an envelope
	// says what it holds.
	Rules map[string]Rule
	// CacheTTL is the longest a key read from Keys is used without reading
	// it again: zero means [DefaultCacheTTL], a negative value no cache.
	// Forget drops the subject's key from this Shredder's cache at once;
	// other Shredders (other processes) may use it until theirs expires.
	CacheTTL time.Duration
}

// A Shredder seals and opens events of data subjects and forgets subjects.
// It is safe for concurrent use.
type Shredder struct {
	keys  KeyStore
	rules map[string]Rule
	ttl   time.Duration

	mu    sync.Mutex // protects everything below
	cache map[string]cachedKey
	// dead holds key IDs known to be deleted: a key ID is never reused,
	// so once a subject's stored key is another (or none), events sealed
	// under it stay erased for good and need no lookup.
	dead map[deadKey]struct{}
}

// subjectKey is a subject's key ready for use.
type subjectKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

type cachedKey struct {
	key     *subjectKey
	expires time.Time
}

type deadKey struct {
	subject string
	id      [keyIDSize]byte
}

// New returns a Shredder. Errors: [eventstore.ErrInvalidArgument] when
// opts.Keys is nil or a rule is invalid (no subject field, a protected
// field listed twice or equal to the subject field, a bad event type).
func New(opts Options) (*Shredder, error) {
	if opts.Keys == nil {
		return nil, fmt.Errorf("shred: no key store: %w", eventstore.ErrInvalidArgument)
	}
	for t, r := range opts.Rules {
		if err := r.validate(t); err != nil {
			return nil, fmt.Errorf("shred: %w", err)
		}
	}
	s := &Shredder{
		keys:  opts.Keys,
		rules: maps.Clone(opts.Rules),
		ttl:   opts.CacheTTL,
		cache: map[string]cachedKey{},
		dead:  map[deadKey]struct{}{},
	}
	if s.ttl == 0 {
		s.ttl = DefaultCacheTTL
	}
	for t, r := range s.rules {
		r.Fields = slices.Clone(r.Fields)
		s.rules[t] = r
	}
	return s, nil
}

// Seal returns ev, an event to append to stream, with its protected data
// encrypted under its subject's key, which it creates on first use. Events
// of a type without a rule, and events that hold none of their rule's
// fields, are returned unchanged, except that no JSON object of any type
// may have a top-level "$shred" member (an envelope forged from user input
// would make Open fail). A zero ev.ID is replaced by a new random one. The
// stream and the ID are bound to the ciphertext: append the returned event
// as it is, to stream (opened in another stream or under another ID, it
// fails with [ErrTampered]).
//
// Errors: [eventstore.ErrInvalidStreamID] for an invalid stream;
// [eventstore.ErrInvalidArgument] when the data is not a JSON object, has
// no valid subject (a string) in the rule's field, repeats a member or
// already has a "$shred" member; the key store's error.
func (s *Shredder) Seal(ctx context.Context, stream string, ev eventstore.Event) (eventstore.Event, error) {
	if err := eventstore.ValidateStreamID(stream); err != nil {
		return eventstore.Event{}, fmt.Errorf("shred: seal %q event: %w", ev.Type, err)
	}
	rule, ok := s.rules[ev.Type]
	if !ok {
		// No envelope may be forged through Seal, so that data from end
		// users cannot make Open fail.
		if ev.ContentType == eventstore.JSON && containsEnvelope(ev.Data) {
			if members, ok := parseObject(ev.Data); ok && slices.ContainsFunc(members, func(m member) bool { return m.name == envelopeField }) {
				return eventstore.Event{}, fmt.Errorf("shred: seal %q event: %w: data has a %q member, which is reserved", ev.Type, eventstore.ErrInvalidPayload, envelopeField)
			}
		}
		return ev, nil
	}
	if ev.ID == uuid.Nil {
		ev.ID = uuid.New()
	}
	fail := func(err error) (eventstore.Event, error) {
		return eventstore.Event{}, fmt.Errorf("shred: seal %q event %s: %w", ev.Type, ev.ID, err)
	}
	invalid := func(format string, args ...any) (eventstore.Event, error) {
		return fail(fmt.Errorf("%w: %s", eventstore.ErrInvalidPayload, fmt.Sprintf(format, args...)))
	}
	if ev.ContentType != eventstore.JSON {
		return invalid("data is %s, not a JSON object", ev.ContentType)
	}
	members, ok := parseObject(ev.Data)
	if !ok {
		return invalid("data is not a JSON object")
	}
	subject, found := "", false
	seen := make(map[string]bool, len(members))
	for _, m := range members {
		switch {
		case seen[m.name]:
			return invalid("member %q appears twice", m.name)
		case m.name == envelopeField || m.name == MetadataErased:
			return invalid("data has a %q member, which is reserved", m.name)
		case m.name == rule.Subject:
			if err := json.Unmarshal(m.value, &subject); err != nil {
				return invalid("subject field %q is not a string", rule.Subject)
			}
			found = true
		}
		seen[m.name] = true
	}
	if !found {
		return invalid("no subject field %q", rule.Subject)
	}
	if err := eventstore.ValidateSubject(subject); err != nil {
		return fail(err)
	}

	var plain []byte
	var fields []string
	if len(rule.Fields) == 0 {
		plain = ev.Data
	} else {
		var protected []member
		for i, m := range members {
			if slices.Contains(rule.Fields, m.name) {
				protected = append(protected, m)
				fields = append(fields, m.name)
				members[i].value = json.RawMessage("null")
			}
		}
		if len(protected) == 0 {
			return ev, nil
		}
		plain = appendObject(nil, protected)
	}

	k, err := s.key(ctx, subject)
	if err != nil {
		return fail(err)
	}
	env := envelope{V: envelopeVersion, S: subject, K: k.id[:], N: make([]byte, nonceSize), F: fields}
	rand.Read(env.N) // never fails (crypto/rand)
	env.C = k.aead.Seal(nil, env.N, plain, additionalData(envelopeVersion, stream, ev.ID, ev.Type, subject, env.K, fields))
	envJSON, err := json.Marshal(env)
	if err != nil {
		return fail(err)
	}
	if fields == nil {
		members = nil
	}
	ev.Data = appendObject(make([]byte, 0, len(ev.Data)+len(envJSON)+16), append(members, member{envelopeField, envJSON}))
	return ev, nil
}

// Open returns ev with its protected data decrypted. An event without an
// envelope (of another type, or sealed by no rule) is returned unchanged.
// When the subject was forgotten, Open returns the event erased, with a nil
// error: the protected fields are null (no other field is left when the
// data was protected whole), the envelope is gone, and both the data and
// the metadata hold "$erased": true ([Erased], [Erasure]).
//
// Errors: the key store's (for instance one matching
// [eventstore.ErrTransient]), never taken for an erasure; [ErrTampered]
// when the ciphertext does not authenticate; [ErrBadEnvelope] for an
// envelope this package cannot read.
func (s *Shredder) Open(ctx context.Context, ev eventstore.RecordedEvent) (eventstore.RecordedEvent, error) {
	members, at, env, err := envelopeOf(ev)
	if err != nil || at < 0 {
		return ev, err
	}
	fail := func(err error) (eventstore.RecordedEvent, error) {
		return eventstore.RecordedEvent{}, openError(ev, err)
	}
	k, err := s.openKey(ctx, env.S, [keyIDSize]byte(env.K))
	if err != nil {
		return fail(err)
	}
	members = slices.Delete(members, at, at+1)
	if k == nil { // erased
		ev.Metadata = withErased(ev.Metadata)
		if env.F == nil {
			members = nil
		}
		ev.Data = appendObject(nil, append(members, member{MetadataErased, json.RawMessage("true")}))
		return ev, nil
	}
	plain, err := k.aead.Open(nil, env.N, env.C, additionalData(env.V, ev.StreamID, ev.ID, ev.Type, env.S, env.K, env.F))
	if err != nil {
		return fail(ErrTampered)
	}
	if env.F == nil {
		ev.Data = plain
		return ev, nil
	}
	values, ok := parseObject(plain)
	if !ok {
		return fail(badEnvelope("the plaintext is not a JSON object"))
	}
	for _, v := range values {
		if i := slices.IndexFunc(members, func(m member) bool { return m.name == v.name }); i >= 0 {
			members[i].value = v.value
		} else {
			members = append(members, v)
		}
	}
	ev.Data = appendObject(make([]byte, 0, len(ev.Data)), members)
	return ev, nil
}

// envelopeOf finds ev's envelope: the members of its data, the index of
// the envelope among them (-1 for an event without one) and the envelope.
// A malformed envelope is an error matching [ErrBadEnvelope].
func envelopeOf(ev eventstore.RecordedEvent) (members []member, at int, env envelope, err error) {
	if ev.ContentType != eventstore.JSON || !containsEnvelope(ev.Data) {
		return nil, -1, env, nil
	}
	members, ok := parseObject(ev.Data)
	if !ok {
		return nil, -1, env, nil
	}
	at = slices.IndexFunc(members, func(m member) bool { return m.name == envelopeField })
	if at < 0 {
		return nil, -1, env, nil
	}
	if err := json.Unmarshal(members[at].value, &env); err != nil {
		return nil, -1, env, openError(ev, badEnvelope("%v", err))
	}
	switch {
	case env.V < 1 || env.V > envelopeVersion:
		return nil, -1, env, openError(ev, badEnvelope("format version %d, want 1 to %d", env.V, envelopeVersion))
	case len(env.K) != keyIDSize || len(env.N) != nonceSize || env.S == "":
		return nil, -1, env, openError(ev, badEnvelope("malformed"))
	}
	return members, at, env, nil
}

// openError says which event failed to open.
func openError(ev eventstore.RecordedEvent, err error) error {
	return fmt.Errorf("shred: open event %s of %q at version %d: %w", ev.ID, ev.StreamID, ev.Version, err)
}

// Forget deletes subject's key from the key store, erasing every event
// sealed for it, wherever it was copied. It drops the key from this
// Shredder's cache; other Shredders may still use theirs for up to their
// CacheTTL. An event sealed for the subject after Forget gets a new key.
// Errors: [eventstore.ErrInvalidArgument] for a bad subject, the key
// store's.
func (s *Shredder) Forget(ctx context.Context, subject string) error {
	if err := eventstore.ValidateSubject(subject); err != nil {
		return fmt.Errorf("shred: forget: %w", err)
	}
	s.mu.Lock()
	delete(s.cache, subject)
	s.mu.Unlock()
	if err := s.keys.DeleteKey(ctx, subject); err != nil {
		return fmt.Errorf("shred: forget %q: %w", subject, err)
	}
	// Drop again: an Open or Seal that ran meanwhile may have cached it.
	s.mu.Lock()
	delete(s.cache, subject)
	s.mu.Unlock()
	return nil
}

// Erased reports whether [Shredder.Open] erased ev's protected data: its
// metadata holds "$erased": true.
func Erased(ev eventstore.RecordedEvent) bool {
	if !containsErased(ev.Metadata) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(ev.Metadata, &m) != nil {
		return false
	}
	return string(m[MetadataErased]) == "true"
}

// Handler returns a subscription handler that opens each event before h
// sees it. An error of Open (not an erasure) is the handler's error.
func (s *Shredder) Handler(h eventstore.Handler) eventstore.Handler {
	return func(ctx context.Context, ev eventstore.RecordedEvent) error {
		ev, err := s.Open(ctx, ev)
		if err != nil {
			return err
		}
		return h(ctx, ev)
	}
}

// Projection returns a projection handler that opens each event of a batch
// before h sees them.
func (s *Shredder) Projection(h eventstore.ProjectionHandler) eventstore.ProjectionHandler {
	return func(ctx context.Context, tx *eventstore.Tx, events []eventstore.RecordedEvent) error {
		opened := make([]eventstore.RecordedEvent, len(events))
		for i, ev := range events {
			var err error
			if opened[i], err = s.Open(ctx, ev); err != nil {
				return err
			}
		}
		return h(ctx, tx, opened)
	}
}

// OpenAll opens each event of a read (Store.ReadStream, ReadAll, Query):
// for ev, err := range sh.OpenAll(ctx, s.ReadAll(ctx, opts)).
func (s *Shredder) OpenAll(ctx context.Context, seq iter.Seq2[eventstore.RecordedEvent, error]) iter.Seq2[eventstore.RecordedEvent, error] {
	return func(yield func(eventstore.RecordedEvent, error) bool) {
		for ev, err := range seq {
			if err == nil {
				ev, err = s.Open(ctx, ev)
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// key returns subject's key for sealing, creating it if there is none.
func (s *Shredder) key(ctx context.Context, subject string) (*subjectKey, error) {
	if k := s.cached(subject); k != nil {
		return k, nil
	}
	raw, ok, err := s.keys.LoadKey(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("load key of %q: %w", subject, err)
	}
	if !ok {
		if raw, err = newKeyRecord(); err != nil {
			return nil, err
		}
		if raw, err = s.keys.CreateKey(ctx, subject, raw); err != nil {
			return nil, fmt.Errorf("create key of %q: %w", subject, err)
		}
	}
	k, err := parseKeyRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("key of %q: %w", subject, err)
	}
	s.remember(subject, k)
	return k, nil
}

// openKey returns subject's key with ID id for opening, or nil when that
// key was deleted (the subject forgotten).
func (s *Shredder) openKey(ctx context.Context, subject string, id [keyIDSize]byte) (*subjectKey, error) {
	s.mu.Lock()
	_, dead := s.dead[deadKey{subject, id}]
	s.mu.Unlock()
	if dead {
		return nil, nil
	}
	if k := s.cached(subject); k != nil && k.id == id {
		return k, nil
	}
	raw, ok, err := s.keys.LoadKey(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("load key of %q: %w", subject, err)
	}
	var k *subjectKey
	if ok {
		if k, err = parseKeyRecord(raw); err != nil {
			return nil, fmt.Errorf("key of %q: %w", subject, err)
		}
		s.remember(subject, k)
		if k.id == id {
			return k, nil
		}
	}
	s.mu.Lock()
	if len(s.dead) >= maxCached {
		clear(s.dead)
	}
	s.dead[deadKey{subject, id}] = struct{}{}
	s.mu.Unlock()
	return nil, nil
}

// cached returns subject's key from the cache, nil when absent or expired.
func (s *Shredder) cached(subject string) *subjectKey {
	if s.ttl < 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[subject]
	if !ok || time.Now().After(c.expires) {
		return nil
	}
	return c.key
}

// remember caches subject's key for the TTL.
func (s *Shredder) remember(subject string, k *subjectKey) {
	if s.ttl < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= maxCached {
		clear(s.cache)
	}
	s.cache[subject] = cachedKey{key: k, expires: time.Now().Add(s.ttl)}
}

// A key record, as a key store holds it: the version byte 1, the 16-byte
// key ID and the 32-byte AES-256 key.
const (
	keyRecordVersion = 1
	keyRecordSize    = 1 + keyIDSize + 32
)

// newKeyRecord returns a fresh random key record.
func newKeyRecord() ([]byte, error) {
	raw := make([]byte, keyRecordSize)
	raw[0] = keyRecordVersion
	rand.Read(raw[1:]) // never fails (crypto/rand)
	return raw, nil
}

// parseKeyRecord makes a key ready for use from its record, and zeroes the
// record. Its errors never hold key bytes.
func parseKeyRecord(raw []byte) (*subjectKey, error) {
	defer clear(raw)
	if len(raw) != keyRecordSize || raw[0] != keyRecordVersion {
		return nil, fmt.Errorf("%w: the stored key is not a key record of version %d (%d bytes)", ErrBadEnvelope, keyRecordVersion, len(raw))
	}
	block, err := aes.NewCipher(raw[1+keyIDSize:])
	if err != nil {
		return nil, fmt.Errorf("%w: the stored key is unusable", ErrBadEnvelope)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: the stored key is unusable", ErrBadEnvelope)
	}
	return &subjectKey{id: [keyIDSize]byte(raw[1 : 1+keyIDSize]), aead: aead}, nil
}
