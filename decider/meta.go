package decider

import (
	"encoding/json"

	"github.com/google/uuid"
)

// Meta identifies a command to the events it produces. Every event a command
// produces records, in its metadata, [eventstore.MetadataCausationID] = ID
// and [eventstore.MetadataCorrelationID] = CorrelationID, so a chain of
// commands and events can be followed back to the request that began it
// (read them with [eventstore.CausationID] and [eventstore.CorrelationID]).
//
// A command carries its Meta by embedding it (or by having a CommandMeta
// method, see [Identified]); a command that carries none, or an empty ID,
// is given a new random UUID. An empty CorrelationID means ID: the command
// starts a new chain.
type Meta struct {
	ID            string
	CorrelationID string
}

// CommandMeta returns m, so a command type that embeds Meta is [Identified].
func (m Meta) CommandMeta() Meta { return m }

// Identified is a command that carries its IDs.
type Identified interface {
	CommandMeta() Meta
}

// metaOf returns cmd's IDs, filling in the missing ones.
func metaOf(cmd any) Meta {
	var m Meta
	if c, ok := cmd.(Identified); ok {
		m = c.CommandMeta()
	}
	if m.ID == "" {
		m.ID = uuid.NewString()
	}
	if m.CorrelationID == "" {
		m.CorrelationID = m.ID
	}
	return m
}

// metadata returns event metadata that records m's IDs.
func (m Meta) metadata() []byte {
	b, _ := json.Marshal(struct { // strings only: it cannot fail
		Correlation string `json:"$correlationId"`
		Causation   string `json:"$causationId"`
	}{m.CorrelationID, m.ID})
	return b
}
