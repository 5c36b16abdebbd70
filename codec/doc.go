// Package codec appends and reads typed events: Go types registered under
// event type names with a schema version, encoded by a pluggable
// [Serializer] (JSON by default), and upcast from older schema versions on
// every read path.
//
//	reg := codec.New()
//	codec.Register[OrderPlaced](reg, "OrderPlaced", codec.SchemaVersion(2))
//	reg.Upcast("OrderPlaced", 1, upcastV1) // version 1 → 2
//	ev, err := reg.Encode(ctx, "Order-42", OrderPlaced{…})
//	_, err = store.Append(ctx, "Order-42", eventstore.NoStream, ev)
//	for m, err := range reg.ReadStream(ctx, store, "Order-42", eventstore.ReadStreamOptions{}) {
//		placed := m.Value.(OrderPlaced) // upcast to version 2
//	}
//
// # Schema versions
//
// An event's schema version is stored in its metadata under
// [eventstore.MetadataSchemaVersion] ("$schemaVersion", a JSON integer),
// inserted first in the object with the caller's metadata bytes following
// unchanged ([Registry.EncodeMetadata]). An event without the marker is at
// version 1, so events appended before the codec was used, or by other
// code, decode as version 1. The version is not part of the event type, so
// subscriptions, queries and read models that filter by event type see
// every version of it.
//
// # Upcasting
//
// [Registry.Upcast] registers an [Upcaster] from version n to n+1; a type
// registered at version n needs the whole chain 1→2, …, n-1→n, which is
// checked at the first use after a registration (and by [Registry.Check]).
// One function, [Registry.Decode], runs the chain, and every read path of
// the package runs Decode: [Registry.ReadStream], [Registry.ReadAll],
// [Registry.ReadQuery], subscriptions through [Registry.Handler] and
// projections through [Registry.Projection]. Upcasting happens only when
// reading: stored events keep their bytes, and package migrate copies them
// as stored.
//
// # Errors
//
// An event type that is not registered gives an *[UnknownTypeError]
// ([ErrUnknownType]), unless the registry was made with
// [PassThroughUnknownTypes], which hands such events over with a nil
// Value. A stored version newer than the registered one gives an
// *[UnknownVersionError] ([ErrUnknownVersion]); a gap in an upcaster chain
// a *[MissingUpcasterError] ([ErrMissingUpcaster]). Registering a name, Go
// type or upcaster twice matches [ErrDuplicate].
//
// # Transforms
//
// A [Transform] ([WithTransform]) works on bytes under the codec: Seal runs
// after marshalling, told the stream the event is encoded for, and Open
// before upcasting, on the event as read from its stream. Crypto-shredding
// plugs in there, and binds each sealed event to its stream: append an
// encoded event to the stream it was encoded for, as it is (Encode gives it
// a new random ID, which the transform may bind too).
package codec
