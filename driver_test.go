package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	_ "github.com/eventkit/eventstore/drivers/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegisterPanics(t *testing.T) {
	opener := func(context.Context, *url.URL, driver.OpenOptions) (driver.Driver, error) {
		return nil, errors.New("unused")
	}
	assert.PanicsWithValue(t, "eventstore: Register opener is nil", func() { eventstore.Register("test-nil", nil) })
	// The registry is global: a fresh scheme per run keeps -count=N working.
	scheme := fmt.Sprintf("test-dup-%d", time.Now().UnixNano())
	eventstore.Register(strings.ToUpper(scheme), opener)
	assert.Panics(t, func() { eventstore.Register(scheme, opener) }, "schemes are case-insensitive")
	assert.Contains(t, eventstore.Schemes(), scheme)
}

func TestOpenUnknownScheme(t *testing.T) {
	_, err := eventstore.Open(t.Context(), "nosuch://user:s3cret@host/db")
	require.Error(t, err)
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "memory", "the error lists the registered schemes")
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestOpenMalformedURLHidesPassword(t *testing.T) {
	_, err := eventstore.Open(t.Context(), "memory://user:s3cret@[::1")
	require.Error(t, err)
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestOpenDriverErrorHidesPassword(t *testing.T) {
	_, err := eventstore.Open(t.Context(), "MEMORY://user:s3cret@somehost")
	require.Error(t, err, "memory:// takes no host")
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	assert.False(t, strings.Contains(err.Error(), "s3cret"), "error %q leaks the password", err)
}

func TestOpenMemory(t *testing.T) {
	s, err := eventstore.Open(t.Context(), "memory://")
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	v, err := s.StreamVersion(t.Context(), "Order-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), v)
}

// A URL whose scheme no driver has may hold its password where no URL parser
// looks for one: a keyword/value connection string, or a URL without "//".
func TestOpenUnknownSchemeHidesPassword(t *testing.T) {
	for _, raw := range []string{
		"host=localhost user=app password=s3cret dbname=events",
		"app:s3cret@localhost/events",
		"nosuch:app:s3cret@localhost/events",
	} {
		t.Run(raw, func(t *testing.T) {
			_, err := eventstore.Open(t.Context(), raw)
			require.Error(t, err)
			assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
			assert.NotContains(t, err.Error(), "s3cret")
			assert.Contains(t, err.Error(), "unknown scheme")
		})
	}
}

func TestOpenRejectsFragment(t *testing.T) {
	// memory:// would accept the fragment; the postgres driver would hand
	// it to pgx, which reads "db#&password=s3cret" as the database name
	// and prints it when the connection fails.
	for _, raw := range []string{"memory://#x", "memory://#", "postgres://127.0.0.1:1/db?schema=a#&password=s3cret"} {
		_, err := eventstore.Open(t.Context(), raw)
		require.Error(t, err, raw)
		assert.ErrorIs(t, err, eventstore.ErrInvalidArgument, raw)
		assert.NotContains(t, err.Error(), "s3cret")
	}
}
