package shred_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/shred"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newKey returns a random key of n bytes.
func newKey(n int) []byte {
	k := make([]byte, n)
	rand.Read(k)
	return k
}

// TestKeyStore runs the key store rules on every driver that keeps keys.
func TestKeyStore(t *testing.T) {
	for _, b := range storetest.KeyStores() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := b.Open(t)
			ctx := t.Context()

			t.Run("create, load, delete", func(t *testing.T) {
				_, ok, err := s.LoadKey(ctx, "s-1")
				require.NoError(t, err)
				require.False(t, ok, "a key before any was created")

				k1, k2 := newKey(49), newKey(49)
				got, err := s.CreateKey(ctx, "s-1", k1)
				require.NoError(t, err)
				require.Equal(t, k1, got)
				got, err = s.CreateKey(ctx, "s-1", k2)
				require.NoError(t, err)
				require.Equal(t, k1, got, "a second create returns the first key")
				got, ok, err = s.LoadKey(ctx, "s-1")
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, k1, got)

				require.NoError(t, s.DeleteKey(ctx, "s-1"))
				_, ok, err = s.LoadKey(ctx, "s-1")
				require.NoError(t, err)
				require.False(t, ok, "the key is still there after DeleteKey")
				require.NoError(t, s.DeleteKey(ctx, "s-1"), "deleting a missing key")
				got, err = s.CreateKey(ctx, "s-1", k2)
				require.NoError(t, err)
				require.Equal(t, k2, got, "a new key after a delete")
			})

			t.Run("racing creators agree", func(t *testing.T) {
				const n = 8
				var wg sync.WaitGroup
				gate := make(chan struct{})
				got := make([][]byte, n)
				errs := make([]error, n)
				for i := range n {
					wg.Go(func() {
						<-gate
						got[i], errs[i] = s.CreateKey(ctx, "s-race", newKey(49))
					})
				}
				close(gate)
				wg.Wait()
				for i := range n {
					require.NoError(t, errs[i])
					require.Equal(t, got[0], got[i], "creator %d got another key", i)
				}
			})

			t.Run("listing", func(t *testing.T) {
				for _, sub := range []string{"list-c", "list-a", "list-e", "list-b", "list-d"} {
					_, err := s.CreateKey(ctx, sub, newKey(16))
					require.NoError(t, err)
				}
				var all []string
				after := ""
				for {
					page, err := s.KeySubjects(ctx, after, 2)
					require.NoError(t, err)
					all = append(all, page...)
					if len(page) < 2 {
						break
					}
					after = page[len(page)-1]
				}
				var listed []string
				for _, sub := range all {
					if len(sub) > 5 && sub[:5] == "list-" {
						listed = append(listed, sub)
					}
				}
				assert.Equal(t, []string{"list-a", "list-b", "list-c", "list-d", "list-e"}, listed)
				_, err := s.KeySubjects(ctx, "", 0)
				require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
			})

			t.Run("keys are not in the log", func(t *testing.T) {
				_, err := s.CreateKey(ctx, "s-hidden", newKey(49))
				require.NoError(t, err)
				for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
					require.NoError(t, err)
					t.Errorf("ReadAll returned %q v%d", ev.StreamID, ev.Version)
				}
				page, err := s.ListStreams(ctx, eventstore.ListStreamsOptions{})
				if !errors.Is(err, eventstore.ErrNotSupported) {
					require.NoError(t, err)
					assert.Empty(t, page.Streams, "a key shows as a stream")
				}
			})

			t.Run("invalid input", func(t *testing.T) {
				for _, sub := range []string{"", "$system", "a\x00b", string(bytes.Repeat([]byte("x"), 256))} {
					_, _, err := s.LoadKey(ctx, sub)
					require.ErrorIs(t, err, eventstore.ErrInvalidArgument, "subject %q", sub)
				}
				_, err := s.CreateKey(ctx, "s-2", nil)
				require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
				_, err = s.CreateKey(ctx, "s-2", make([]byte, driver.MaxKeySize+1))
				require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
			})

			t.Run("shredding", func(t *testing.T) {
				sh := newShredder(t, s, 0)
				stream := "Customer-" + uuid.NewString()
				for _, sub := range []string{"shred-1", "shred-2"} {
					ev, err := sh.Seal(ctx, stream, event(t, "CustomerRegistered", CustomerRegistered{CustomerID: sub, Name: "Name of " + sub, Plan: "gold"}))
					require.NoError(t, err)
					_, err = s.Append(ctx, stream, eventstore.Any, ev)
					require.NoError(t, err)
				}
				require.NoError(t, sh.Forget(ctx, "shred-1"))
				var erased []bool
				for ev, err := range sh.OpenAll(ctx, s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{})) {
					require.NoError(t, err)
					erased = append(erased, shred.Erased(ev))
					assert.NotContains(t, string(ev.Data), "Name of shred-1")
				}
				assert.Equal(t, []bool{true, false}, erased)
			})

			t.Run("appended to another stream than sealed for", func(t *testing.T) {
				sh := newShredder(t, s, 0)
				ev, err := sh.Seal(ctx, "Customer-"+uuid.NewString(), event(t, "CustomerRegistered", CustomerRegistered{CustomerID: "shred-3", Name: "Eve", Plan: "gold"}))
				require.NoError(t, err)
				other := "Customer-" + uuid.NewString()
				_, err = s.Append(ctx, other, eventstore.NoStream, ev)
				require.NoError(t, err)
				n := 0
				for _, err := range sh.OpenAll(ctx, s.ReadStream(ctx, other, eventstore.ReadStreamOptions{})) {
					require.ErrorIs(t, err, shred.ErrTampered)
					n++
				}
				require.Equal(t, 1, n, "the read yields the event's error once")
			})
		})
	}
}

// TestKurrentDBKeepsNoKeys: the KurrentDB driver has no key store, so its
// Store says so and a Shredder over it fails to seal instead of writing
// plain text.
func TestKurrentDBKeepsNoKeys(t *testing.T) {
	s := storetest.KurrentDB(t)
	_, _, err := s.LoadKey(t.Context(), "s-1")
	require.ErrorIs(t, err, eventstore.ErrNotSupported)
	_, err = s.CreateKey(t.Context(), "s-1", newKey(49))
	require.ErrorIs(t, err, eventstore.ErrNotSupported)
	require.ErrorIs(t, s.DeleteKey(t.Context(), "s-1"), eventstore.ErrNotSupported)

	sh := newShredder(t, s, 0)
	_, err = sh.Seal(t.Context(), "Customer-1", event(t, "CustomerRegistered", CustomerRegistered{CustomerID: "c-1", Name: "Ada"}))
	require.ErrorIs(t, err, eventstore.ErrNotSupported)
}

// TestKeyStoreClosed: after Close the key calls fail with ErrClosed.
func TestKeyStoreClosed(t *testing.T) {
	s := eventstore.New(memory.New(), eventstore.Options{})
	require.NoError(t, s.Close())
	_, _, err := s.LoadKey(t.Context(), "s-1")
	require.ErrorIs(t, err, eventstore.ErrClosed)
}

// TestSQLiteDeleteKeyLeavesNoBytes: after DeleteKey the key's bytes are in
// none of SQLite's files (secure_delete, then a WAL truncation).
func TestSQLiteDeleteKeyLeavesNoBytes(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	d, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Options{})
	require.NoError(t, err)
	s := storetest.Wrap(t, d)
	key, other := newKey(49), newKey(49)
	_, err = s.CreateKey(ctx, "s-1", key)
	require.NoError(t, err)
	_, err = s.CreateKey(ctx, "s-2", other)
	require.NoError(t, err)
	scan := func() (keyFound, otherFound bool) {
		t.Helper()
		files, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f.Name()))
			require.NoError(t, err)
			keyFound = keyFound || bytes.Contains(b, key[8:40])
			otherFound = otherFound || bytes.Contains(b, other[8:40])
		}
		return keyFound, otherFound
	}
	found, _ := scan()
	require.True(t, found, "the key is not in the files before the delete: the scan is blind")
	// Move the key from the WAL into the database file, where a plain
	// delete would leave its bytes in a free page.
	db, err := sql.Open("sqlite3", filepath.Join(dir, "events.db"))
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	b, err := os.ReadFile(filepath.Join(dir, "events.db"))
	require.NoError(t, err)
	require.True(t, bytes.Contains(b, key[8:40]), "the checkpoint did not move the key into the database file")
	require.NoError(t, s.DeleteKey(ctx, "s-1"))
	found, otherFound := scan()
	assert.False(t, found, "the deleted key's bytes are still in the files")
	assert.True(t, otherFound, "the other key is gone too")
	require.NoError(t, s.Close())
	found, _ = scan()
	assert.False(t, found, "the deleted key's bytes are in the files after Close")
}

// TestKeyStoreErrorsHoldNoKeyBytes: a key store call that fails (here a
// cancelled context on a real driver, and invalid input) has no key bytes
// in its error.
func TestKeyStoreErrorsHoldNoKeyBytes(t *testing.T) {
	key := newKey(49)
	for _, b := range storetest.KeyStores()[:2] { // memory and sqlite: they need no server
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.CreateKey(ctx, "s-1", key)
			require.Error(t, err)
			_, err2 := s.CreateKey(t.Context(), "$bad", key)
			require.Error(t, err2)
			for _, e := range []error{err, err2} {
				for _, enc := range []string{string(key[:8]), hex.EncodeToString(key[:8]), fmt.Sprint(key[:4])} {
					assert.NotContains(t, e.Error(), enc)
				}
			}
		})
	}
}
