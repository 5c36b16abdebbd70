package codec

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/eventkit/eventstore"
)

// Sentinel errors. Match them with [errors.Is]; the typed errors below carry
// the details and match their sentinel.
var (
	// ErrUnknownType reports an event type, or a Go type, that is not
	// registered. The error is also an *[UnknownTypeError].
	ErrUnknownType = errors.New("unknown event type")

	// ErrUnknownVersion reports a stored schema version the registry
	// cannot decode: newer than the registered version (written by newer
	// code), or a marker that is not an integer of at least 1. The error is
	// also an *[UnknownVersionError].
	ErrUnknownVersion = errors.New("unknown schema version")

	// ErrMissingUpcaster reports a registered type whose schema version n
	// lacks one of the upcasters 1→2, …, n-1→n. The error is also a
	// *[MissingUpcasterError].
	ErrMissingUpcaster = errors.New("missing upcaster")

	// ErrDuplicate reports a registration that repeats an event type name,
	// a Go type, or an upcaster. It also matches
	// [eventstore.ErrInvalidArgument].
	ErrDuplicate error = &registrationError{"already registered"}
)

// registrationError is a sentinel that also matches
// eventstore.ErrInvalidArgument.
type registrationError struct{ msg string }

func (e *registrationError) Error() string { return e.msg }

func (e *registrationError) Is(target error) bool { return target == eventstore.ErrInvalidArgument }

// UnknownTypeError reports an event type (on decode) or a Go type (on
// encode) the registry does not know. It matches [ErrUnknownType].
type UnknownTypeError struct {
	EventType string       // the stored event type; empty on encode
	GoType    reflect.Type // the Go type given to Encode; nil on decode
}

func (e *UnknownTypeError) Error() string {
	if e.GoType != nil {
		return fmt.Sprintf("Go type %s is not registered: %v", e.GoType, ErrUnknownType)
	}
	return fmt.Sprintf("event type %q is not registered: %v", e.EventType, ErrUnknownType)
}

// Is reports whether target is ErrUnknownType.
func (e *UnknownTypeError) Is(target error) bool { return target == ErrUnknownType }

// UnknownVersionError reports a stored schema version that the registry
// cannot decode. It matches [ErrUnknownVersion].
type UnknownVersionError struct {
	EventType string
	Version   int    // the stored version; 0 when the marker is not a valid version
	Marker    string // the stored marker, when it is not a valid version
	Latest    int    // the registered (latest) version of EventType
}

func (e *UnknownVersionError) Error() string {
	if e.Version == 0 {
		return fmt.Sprintf("event type %q: %v: schema version marker %s is not an integer of at least 1", e.EventType, ErrUnknownVersion, e.Marker)
	}
	return fmt.Sprintf("event type %q: %v %d: the latest registered version is %d (written by newer code?)", e.EventType, ErrUnknownVersion, e.Version, e.Latest)
}

// Is reports whether target is ErrUnknownVersion.
func (e *UnknownVersionError) Is(target error) bool { return target == ErrUnknownVersion }

// MissingUpcasterError reports a registered event type at schema version
// Latest without an upcaster from version From to From+1. It matches
// [ErrMissingUpcaster].
type MissingUpcasterError struct {
	EventType string
	From      int
	Latest    int
}

func (e *MissingUpcasterError) Error() string {
	return fmt.Sprintf("event type %q is registered at schema version %d: %v from version %d to %d",
		e.EventType, e.Latest, ErrMissingUpcaster, e.From, e.From+1)
}

// Is reports whether target is ErrMissingUpcaster.
func (e *MissingUpcasterError) Is(target error) bool { return target == ErrMissingUpcaster }
