package migrate_test

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
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// openSQLite opens (or reopens) a SQLite store at path. The caller closes it;
// a cleanup closes it too (a second Close is a no-op).
func openSQLite(t testing.TB, path string) *eventstore.Store {
	t.Helper()
	d, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

// newSQLite returns an empty SQLite store in t's temporary directory.
func newSQLite(t testing.TB) *eventstore.Store {
	t.Helper()
	return openSQLite(t, filepath.Join(t.TempDir(), "events.db"))
}

// newPostgres returns an empty PostgreSQL store in a fresh schema of the test
// server (internal/testenv: skipped without one, failed under CI=true); the
// schema is dropped when t ends.
func newPostgres(t testing.TB) *eventstore.Store {
	t.Helper()
	return postgresStorage(t)()
}

// postgresStorage makes a fresh schema on the test server, dropped when t
// ends, and returns a func that opens a new Store on it, as a restarted
// process would. Each Store is closed when t ends, if not before.
func postgresStorage(t testing.TB) func() *eventstore.Store {
	t.Helper()
	schema, _ := testenv.PostgresSchema(t, "test_migrate")
	pool, err := pgxpool.New(t.Context(), testenv.MustHavePostgres(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return func() *eventstore.Store {
		d, err := postgres.New(t.Context(), pool, postgres.Options{Schema: schema})
		require.NoError(t, err)
		s := eventstore.New(d, eventstore.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// newKurrentDB returns an empty KurrentDB store on an in-process double of
// the server (internal/kurrentdbtest), as the driver's own tests use: a
// 26.1 server, which has AppendRecords, so Copy appends several streams'
// events at once.
func newKurrentDB(t testing.TB) *eventstore.Store {
	t.Helper()
	return kurrentDBStore(t, kurrentdbtest.Start(t, kurrentdbtest.Options{ServerVersion: "26.1.0"}))
}

// newKurrentDBWithoutMulti is newKurrentDB on a 25.1 server, without
// AppendRecords: Copy appends run by run.
func newKurrentDBWithoutMulti(t testing.TB) *eventstore.Store {
	t.Helper()
	return kurrentDBStore(t, kurrentdbtest.Start(t, kurrentdbtest.Options{ServerVersion: "25.1.0"}))
}

func kurrentDBStore(t testing.TB, srv *kurrentdbtest.Server) *eventstore.Store {
	t.Helper()
	d, err := kurrentdb.Open(t.Context(), srv.URL(), kurrentdb.Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

// newDynamoDB returns an empty DynamoDB store on a fresh table of the test
// server (DynamoDB Local through internal/testenv: skipped without one,
// failed under CI=true); the table is deleted when t ends.
func newDynamoDB(t testing.TB) *eventstore.Store {
	t.Helper()
	endpoint := testenv.MustHaveDynamoDB(t)
	client := awsdynamodb.New(awsdynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	var b [6]byte
	rand.Read(b[:])
	table := "test-migrate-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
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
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}
