package sqlite_test

import (
	"bytes"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sqliteURL returns the sqlite: URL of an absolute path with query q.
func sqliteURL(path, q string) string {
	return (&url.URL{Scheme: "sqlite", Path: path, RawQuery: q}).String()
}

// companions are the files SQLite may create beside a database.
var companions = []string{"-wal", "-shm", "-journal"}

// snapshotFiles returns the contents of path and its companion files, nil
// for those that do not exist.
func snapshotFiles(t testing.TB, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, suffix := range append([]string{""}, companions...) {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		out[suffix] = b
	}
	return out
}

// TestMustExist: with must_exist=true (or Options.MustExist) a missing file,
// or one that holds no event store, fails with ErrStoreNotFound and nothing
// is created or written; a store at an older schema version is refused
// rather than upgraded; an existing store opens and reads its events.
func TestMustExist(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// setup prepares the file at path (or does nothing).
		setup   func(t *testing.T, path string)
		wantErr error // nil: the open succeeds
	}{
		{
			name:    "MissingFile",
			setup:   func(*testing.T, string) {},
			wantErr: eventstore.ErrStoreNotFound,
		},
		{
			name: "EmptyFile",
			setup: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, nil, 0o600))
			},
			wantErr: eventstore.ErrStoreNotFound,
		},
		{
			name: "OtherApplicationsDatabase",
			setup: func(t *testing.T, path string) {
				db := rawDB(t, path)
				_, err := db.Exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada'); PRAGMA user_version = 7")
				require.NoError(t, err)
				require.NoError(t, db.Close())
			},
			wantErr: eventstore.ErrStoreNotFound,
		},
		{
			name: "NotADatabase",
			setup: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("not a database\n"), 300), 0o600))
			},
			wantErr: eventstore.ErrStoreNotFound,
		},
		{
			name: "OlderSchemaVersion",
			setup: func(t *testing.T, path string) {
				s := openStore(t, path, sqlite.Options{})
				_, err := s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
				require.NoError(t, err)
				require.NoError(t, s.Close())
				db := rawDB(t, path)
				_, err = db.Exec("PRAGMA user_version = 1")
				require.NoError(t, err)
				require.NoError(t, db.Close())
			},
			wantErr: sqlite.ErrSchemaVersion,
		},
		{
			name: "ExistingStore",
			setup: func(t *testing.T, path string) {
				s := openStore(t, path, sqlite.Options{})
				_, err := s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{"n":1}`)))
				require.NoError(t, err)
				require.NoError(t, s.Close())
			},
		},
	} {
		for _, how := range []string{"URL", "Options"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(t.TempDir(), "events.db")
				tc.setup(t, path)
				before := snapshotFiles(t, path)
				var s *eventstore.Store
				var err error
				if how == "URL" {
					s, err = eventstore.Open(t.Context(), sqliteURL(path, "must_exist=true"))
				} else {
					var d *sqlite.Driver
					if d, err = sqlite.Open(t.Context(), path, sqlite.Options{MustExist: true}); err == nil {
						s = eventstore.New(d, eventstore.Options{})
					}
				}
				if tc.wantErr != nil {
					require.ErrorIs(t, err, tc.wantErr)
					require.Nil(t, s)
					assert.Equal(t, before, snapshotFiles(t, path), "files created or changed")
					if tc.wantErr == sqlite.ErrSchemaVersion {
						assert.Contains(t, err.Error(), "open it once without must_exist")
					}
					return
				}
				require.NoError(t, err)
				t.Cleanup(func() { s.Close() })
				got := readStream(t, s, "Order-1")
				require.Len(t, got, 1)
				assert.Equal(t, []byte(`{"n":1}`), got[0].Data)
				_, err = s.Append(t.Context(), "Order-1", eventstore.Exact(1), eventstore.NewEvent("Shipped", nil))
				require.NoError(t, err, "must_exist opens a store for writing too")
			})
		}
	}
}

// New over an existing pool honours MustExist too, before it switches the
// file to WAL mode.
func TestNewMustExist(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	db := rawDB(t, path)
	_, err := sqlite.New(t.Context(), db, sqlite.Options{MustExist: true})
	require.ErrorIs(t, err, eventstore.ErrStoreNotFound)
	assert.Equal(t, "delete", pragma(t, db, "journal_mode"), "the file was switched to WAL mode")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "the empty file was written")
}

// A new database file and the -wal and -shm files SQLite creates beside it
// are readable and writable by their owner only; an existing file keeps its
// mode.
func TestNewFileModes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	s := openStore(t, path, sqlite.Options{})
	_, err := s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(path + suffix)
		require.NoError(t, err, "the store is open: %s exists", suffix)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), "mode of events.db%s", suffix)
	}

	existing := filepath.Join(dir, "existing.db")
	require.NoError(t, os.WriteFile(existing, nil, 0o600))
	require.NoError(t, os.Chmod(existing, 0o640))
	openStore(t, existing, sqlite.Options{})
	fi, err := os.Stat(existing)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o640), fi.Mode().Perm(), "an existing file keeps its mode")
}

// The driver reports limits that keep one append from holding the file's
// write lock for long; an append over them fails whole and writes nothing.
func TestAppendLimits(t *testing.T) {
	t.Parallel()
	d, _ := openDriver(t, sqlite.Options{})
	s := eventstore.New(d, eventstore.Options{MaxEventSize: 1 << 30})
	lim := s.Limits()
	assert.Equal(t, eventstore.Limits{MaxEventSize: 32 << 20, MaxAppendEvents: 10_000, MaxAppendSize: 32 << 20}, lim)

	big := func(n, size int) []eventstore.Event {
		evs := make([]eventstore.Event, n)
		for i := range evs {
			evs[i] = eventstore.Event{Type: "Bulk", ContentType: eventstore.Binary, Data: make([]byte, size)}
		}
		return evs
	}
	for _, tc := range []struct {
		name   string
		events []eventstore.Event
		want   error
	}{
		{"TooManyEvents", big(lim.MaxAppendEvents+1, 1), eventstore.ErrBatchTooLarge},
		{"TooManyBytes", big(2, lim.MaxAppendSize/2+1), eventstore.ErrBatchTooLarge},
		{"EventTooLarge", big(1, lim.MaxEventSize+1), eventstore.ErrEventTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Append(t.Context(), "Bulk-"+tc.name, eventstore.Any, tc.events...)
			require.ErrorIs(t, err, tc.want)
			require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
			assert.Empty(t, readAll(t, s, eventstore.ReadAllOptions{}), "nothing written")
		})
	}
	_, err := s.Append(t.Context(), "Bulk-AtTheLimits", eventstore.NoStream, big(lim.MaxAppendEvents, lim.MaxAppendSize/lim.MaxAppendEvents)...)
	require.NoError(t, err, "an append at both limits")
}
