package codec_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// backend opens an empty store of one driver for a test.
type backend struct {
	name string
	open func(t testing.TB) *eventstore.Store
}

// backends are the drivers the read-path tests run on: memory, SQLite and
// the KurrentDB double always; PostgreSQL and DynamoDB on the servers
// internal/testenv names (skipped, saying which variable is missing,
// without one; failed under CI=true).
var backends = []backend{
	{"memory", newMemoryStore},
	{"sqlite", newSQLiteStore},
	{"postgres", newPostgresStore},
	{"dynamodb", newDynamoDBStore},
	{"kurrentdb", newKurrentDBStore},
}

// newStore wraps d in a Store closed when t ends.
func newStore(t testing.TB, d driver.Driver) *eventstore.Store {
	t.Helper()
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

func newMemoryStore(t testing.TB) *eventstore.Store {
	t.Helper()
	return newStore(t, memory.New())
}

func newSQLiteStore(t testing.TB) *eventstore.Store {
	t.Helper()
	d, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	require.NoError(t, err)
	return newStore(t, d)
}

func newPostgresStore(t testing.TB) *eventstore.Store {
	t.Helper()
	schema, _ := testenv.PostgresSchema(t, "test_codec")
	pool, err := pgxpool.New(t.Context(), testenv.MustHavePostgres(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	d, err := postgres.New(t.Context(), pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	return newStore(t, d)
}

func newDynamoDBStore(t testing.TB) *eventstore.Store {
	t.Helper()
	endpoint := testenv.MustHaveDynamoDB(t)
	client := awsdynamodb.New(awsdynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	var b [6]byte
	rand.Read(b[:])
	table := "test-codec-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		// t.Context() is done by now: use a bounded context of our own.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := client.DeleteTable(ctx, &awsdynamodb.DeleteTableInput{TableName: aws.String(table)})
		var notFound *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &notFound) {
			t.Errorf("delete table %s: %v", table, err)
		}
	})
	d, err := dynamodb.New(t.Context(), client, table, dynamodb.Options{CreateTable: true})
	require.NoError(t, err)
	return newStore(t, d)
}

func newKurrentDBStore(t testing.TB) *eventstore.Store {
	t.Helper()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	d, err := kurrentdb.Open(t.Context(), srv.URL(), kurrentdb.Options{})
	require.NoError(t, err)
	return newStore(t, d)
}
