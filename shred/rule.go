package shred

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/eventkit/eventstore"
)

// Rule says how the events of one type are sealed. The event's data must be
// a JSON object.
type Rule struct {
	// Subject is the top-level field of the data that holds the data
	// subject's ID, a JSON string valid as [eventstore.ValidateSubject]
	// says. It stays in plain text: use an opaque ID (a UUID, a customer
	// number), not an e-mail address.
	Subject string
	// Fields are the top-level fields encrypted; fields an event lacks
	// are skipped. Empty: the whole data is encrypted, byte for byte, and
	// the subject field is kept only inside the envelope.
	Fields []string
}

// validate checks r for event type t.
func (r Rule) validate(t string) error {
	if err := eventstore.ValidateEventType(t); err != nil {
		return err
	}
	if r.Subject == "" {
		return fmt.Errorf("rule of %q: no subject field: %w", t, eventstore.ErrInvalidArgument)
	}
	for i, f := range r.Fields {
		switch {
		case f == "" || f == envelopeField:
			return fmt.Errorf("rule of %q: field %q: %w", t, f, eventstore.ErrInvalidArgument)
		case f == r.Subject:
			return fmt.Errorf("rule of %q: the subject field %q cannot be protected (it finds the key): %w", t, f, eventstore.ErrInvalidArgument)
		case slices.Contains(r.Fields[:i], f):
			return fmt.Errorf("rule of %q: field %q listed twice: %w", t, f, eventstore.ErrInvalidArgument)
		}
	}
	if r.Subject == envelopeField {
		return fmt.Errorf("rule of %q: subject field %q: %w", t, r.Subject, eventstore.ErrInvalidArgument)
	}
	return nil
}

// RuleOf returns the rule a struct type's tags describe: the field tagged
// `shred:"subject"` (a string) names the subject, and fields tagged
// `shred:"pii"` are protected, under their JSON names (the `json` tag, as
// encoding/json names them). With no pii field the whole data is
// protected. Only top-level fields count; T (or what it points to) must be
// a struct with exactly one subject field.
func RuleOf[T any]() (Rule, error) {
	t := reflect.TypeFor[T]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return Rule{}, fmt.Errorf("shred: rule of %s: not a struct: %w", t, eventstore.ErrInvalidArgument)
	}
	var r Rule
	for f := range t.Fields() {
		tag, ok := f.Tag.Lookup("shred")
		if !ok {
			continue
		}
		name := jsonName(f)
		if name == "" {
			return Rule{}, fmt.Errorf("shred: rule of %s: field %s is tagged shred but not encoded in JSON: %w", t, f.Name, eventstore.ErrInvalidArgument)
		}
		switch tag {
		case "subject":
			if r.Subject != "" {
				return Rule{}, fmt.Errorf("shred: rule of %s: two subject fields: %w", t, eventstore.ErrInvalidArgument)
			}
			if f.Type.Kind() != reflect.String {
				return Rule{}, fmt.Errorf("shred: rule of %s: subject field %s is a %s, not a string: %w", t, f.Name, f.Type, eventstore.ErrInvalidArgument)
			}
			r.Subject = name
		case "pii":
			r.Fields = append(r.Fields, name)
		default:
			return Rule{}, fmt.Errorf("shred: rule of %s: field %s: unknown tag shred:%q (want subject or pii): %w", t, f.Name, tag, eventstore.ErrInvalidArgument)
		}
	}
	if r.Subject == "" {
		return Rule{}, fmt.Errorf("shred: rule of %s: no field tagged shred:\"subject\": %w", t, eventstore.ErrInvalidArgument)
	}
	return r, nil
}

// jsonName is the name encoding/json gives struct field f in an object,
// "" when it leaves the field out.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() || f.Anonymous {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return f.Name
	}
	return name
}
