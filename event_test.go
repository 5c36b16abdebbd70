package eventstore_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/stretchr/testify/assert"
)

func TestContentTypeString(t *testing.T) {
	for _, tc := range []struct {
		c    eventstore.ContentType
		want string
	}{
		{eventstore.JSON, "json"},
		{eventstore.Binary, "binary"},
		{2, "ContentType(2)"},
		{12, "ContentType(12)"},
		{255, "ContentType(255)"},
	} {
		assert.Equal(t, tc.want, tc.c.String())
	}
}
