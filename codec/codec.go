package codec

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"

	"github.com/eventkit/eventstore"
)

// Registry maps Go types to event types and schema versions, and holds the
// upcasters between versions. Set it up with [Register] and
// [Registry.Upcast]; it is safe for concurrent use once set up, and a
// registration made while it is in use takes effect for later calls.
type Registry struct {
	ser         Serializer
	transforms  []Transform
	passUnknown bool

	mu sync.RWMutex // protects everything below
	// Entries are never modified once in the maps: a change replaces them.
	byName map[string]*entry
	byType map[reflect.Type]*entry
	// checked is false when a registration changed since the last check of
	// every upcaster chain; checkErr is that check's result.
	checked  bool
	checkErr error
}

// entry is one registered type. It is immutable.
type entry struct {
	name    string
	goType  reflect.Type
	version int
	// meta is the metadata of an encoded event without caller metadata.
	meta []byte
	// up[i] turns version i+1 into i+2; nil where missing.
	up     []Upcaster
	decode func(s Serializer, data []byte) (any, error)
}

// Option configures a [Registry].
type Option func(*Registry)

// WithSerializer makes s encode and decode payloads instead of the default
// [JSON]. Events are appended with s's content type.
func WithSerializer(s Serializer) Option { return func(r *Registry) { r.ser = s } }

// WithTransform adds t, a byte-level layer under the codec (encryption, for
// crypto-shredding): t.Seal runs on every encoded event after marshalling,
// and t.Open on every event read before its schema version is looked at
// and it is upcast. With several transforms, Seal runs in the order they
// were given and Open in the reverse order.
func WithTransform(t Transform) Option {
	return func(r *Registry) { r.transforms = append(r.transforms, t) }
}

// PassThroughUnknownTypes makes every read path deliver an event whose
// type is not registered as a [Message] with a nil Value and no error,
// instead of failing with an *[UnknownTypeError]: a projection or
// subscription then goes on past event types it does not handle. Events of
// a registered type stored at a newer schema version than registered still
// fail with an *[UnknownVersionError], since skipping them would lose data
// the reader is meant to handle.
func PassThroughUnknownTypes() Option { return func(r *Registry) { r.passUnknown = true } }

// New returns an empty registry with the given options.
func New(opts ...Option) *Registry {
	r := &Registry{
		ser:    JSON{},
		byName: map[string]*entry{},
		byType: map[reflect.Type]*entry{},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// TypeOption configures one registered type.
type TypeOption func(*typeConfig)

type typeConfig struct{ version int }

// SchemaVersion sets the schema version of the registered Go type: the
// version its values are encoded at and old payloads are upcast to. The
// default is 1. A version n above 1 needs the upcasters 1→2, …, n-1→n
// ([Registry.Upcast]).
func SchemaVersion(n int) TypeOption { return func(c *typeConfig) { c.version = n } }

// Register registers the Go type T (not a pointer or interface type) under
// eventType, a valid event type name ([eventstore.ValidateEventType]).
// Values of T are encoded as events of that type; events of that type are
// decoded into values of T.
//
// It fails, matching [ErrDuplicate] (and [eventstore.ErrInvalidArgument]),
// when eventType or T is registered already, and with
// [eventstore.ErrInvalidArgument] for a bad name, type or version.
func Register[T any](r *Registry, eventType string, opts ...TypeOption) error {
	t := reflect.TypeFor[T]()
	c := typeConfig{version: 1}
	for _, o := range opts {
		o(&c)
	}
	if err := eventstore.ValidateEventType(eventType); err != nil {
		return fmt.Errorf("codec: register %s: %w", t, err)
	}
	switch {
	case t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface:
		return fmt.Errorf("codec: register %q: %w: %s is a pointer or interface type: register the type it points to", eventType, eventstore.ErrInvalidArgument, t)
	case c.version < 1:
		return fmt.Errorf("codec: register %q: %w: schema version %d is below 1", eventType, eventstore.ErrInvalidArgument, c.version)
	}
	e := &entry{
		name:    eventType,
		goType:  t,
		version: c.version,
		meta:    append(strconv.AppendInt([]byte(versionPrefix), int64(c.version), 10), '}'),
		up:      make([]Upcaster, c.version-1),
		decode: func(s Serializer, data []byte) (any, error) {
			var v T
			if err := s.Unmarshal(data, &v); err != nil {
				return nil, err
			}
			return v, nil
		},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byName[eventType]; ok {
		return fmt.Errorf("codec: register %s as %q: event type %w for %s", t, eventType, ErrDuplicate, old.goType)
	}
	if old, ok := r.byType[t]; ok {
		return fmt.Errorf("codec: register %s as %q: Go type %w as %q", t, eventType, ErrDuplicate, old.name)
	}
	r.byName[eventType] = e
	r.byType[t] = e
	r.checked = false
	return nil
}

// Upcaster turns the payload of an event at one schema version into the
// payload of the next version. ev is the event as read, with Data at the
// version the upcaster starts from (after earlier upcasters and the
// [Transform]s); it returns the new Data. It runs on every read path, so it
// must be deterministic and free of side effects.
type Upcaster func(ctx context.Context, ev eventstore.RecordedEvent) ([]byte, error)

// Upcast registers up, which turns payloads of eventType at schema version
// from into version from+1. eventType must be registered ([Register]) at a
// version above from. It fails with [eventstore.ErrInvalidArgument] for an
// unknown type, a version out of range or a nil upcaster, and with
// [ErrDuplicate] for a second upcaster from the same version.
//
// Until every upcaster a registered version needs is there, Encode, Decode
// and the read paths fail with a *[MissingUpcasterError]; [Registry.Check]
// reports this at start-up.
func (r *Registry) Upcast(eventType string, from int, up Upcaster) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byName[eventType]
	switch {
	case !ok:
		return fmt.Errorf("codec: upcast %q: %w: %w (register it first)", eventType, eventstore.ErrInvalidArgument, &UnknownTypeError{EventType: eventType})
	case up == nil:
		return fmt.Errorf("codec: upcast %q from version %d: %w: nil upcaster", eventType, from, eventstore.ErrInvalidArgument)
	case e.version == 1:
		return fmt.Errorf("codec: upcast %q from version %d: %w: the type is registered at version 1 and has no upcasters",
			eventType, from, eventstore.ErrInvalidArgument)
	case from < 1 || from >= e.version:
		return fmt.Errorf("codec: upcast %q from version %d: %w: the type is registered at version %d, so an upcaster starts from a version between 1 and %d",
			eventType, from, eventstore.ErrInvalidArgument, e.version, e.version-1)
	case e.up[from-1] != nil:
		return fmt.Errorf("codec: upcast %q from version %d: upcaster %w", eventType, from, ErrDuplicate)
	}
	n := *e
	n.up = slices.Clone(e.up)
	n.up[from-1] = up
	r.byName[eventType] = &n
	r.byType[e.goType] = &n
	r.checked = false
	return nil
}

// Check reports every missing upcaster, as *[MissingUpcasterError]s joined
// with [errors.Join], or nil when each registered type has its full chain.
// Encode, Decode and the read paths run the same check on their first call
// after a registration, and fail with its error: call Check after set-up to
// find a gap at start-up.
func (r *Registry) Check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checkLocked()
}

// checkLocked runs the check if needed. r.mu is held for writing.
func (r *Registry) checkLocked() error {
	if r.checked {
		return r.checkErr
	}
	var errs []error
	names := make([]string, 0, len(r.byName))
	for name := range r.byName {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		e := r.byName[name]
		for i, up := range e.up {
			if up == nil {
				errs = append(errs, &MissingUpcasterError{EventType: name, From: i + 1, Latest: e.version})
			}
		}
	}
	r.checkErr = errors.Join(errs...)
	if r.checkErr != nil {
		r.checkErr = fmt.Errorf("codec: %w", r.checkErr)
	}
	r.checked = true
	return r.checkErr
}

// lookup returns the entry of an event type name (byName) or a Go type,
// after the check of the upcaster chains.
func (r *Registry) lookup(name string, t reflect.Type) (*entry, error) {
	r.mu.RLock()
	if !r.checked {
		r.mu.RUnlock()
		r.mu.Lock()
		err := r.checkLocked()
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
		r.mu.RLock()
	}
	var e *entry
	err := r.checkErr
	if t != nil {
		e = r.byType[t]
	} else {
		e = r.byName[name]
	}
	r.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Types returns the registered event type names with their schema
// versions.
func (r *Registry) Types() map[string]int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := make(map[string]int, len(r.byName))
	for name, e := range r.byName {
		m[name] = e.version
	}
	return m
}
