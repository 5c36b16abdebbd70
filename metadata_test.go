package eventstore_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/stretchr/testify/assert"
)

func TestSchemaVersion(t *testing.T) {
	tests := []struct {
		name string
		md   string
		want int
		ok   bool
	}{
		{"empty", ``, 0, false},
		{"no key", `{"$correlationId":"c"}`, 0, false},
		{"first", `{"$schemaVersion":3,"a":1}`, 3, true},
		{"last", `{"a":1, "$schemaVersion" : 12}`, 12, true},
		{"escaped key", `{"\u0024schemaVersion":2}`, 2, true},
		{"zero", `{"$schemaVersion":0}`, 0, false},
		{"string", `{"$schemaVersion":"2"}`, 0, false},
		{"fraction", `{"$schemaVersion":2.5}`, 0, false},
		{"not an object", `[{"$schemaVersion":2}]`, 0, false},
		{"other case", `{"$SchemaVersion":2}`, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := eventstore.SchemaVersion([]byte(tc.md))
			assert.Equal(t, tc.want, n)
			assert.Equal(t, tc.ok, ok)
		})
	}
}
