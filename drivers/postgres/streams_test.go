package postgres_test

import (
	"slices"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/listcheck"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestListStreams runs the listing checks on a fresh schema of the test
// database, whose collation (C.UTF-8 where CI runs) orders IDs by bytes.
func TestListStreams(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	var collation string
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT datcollate FROM pg_database WHERE datname = current_database()").Scan(&collation))
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *eventstore.Store)
	}{
		{"ByteOrder", func(t *testing.T, s *eventstore.Store) {
			switch collation {
			case "C", "POSIX", "C.UTF-8", "C.utf8":
			default:
				t.Skipf("the test database's collation is %q: the driver lists in its order, not by bytes (TestListStreamsLinguisticCollation covers it)", collation)
			}
			listcheck.ByteOrder(t, s)
		}},
		{"DuringAppends", func(t *testing.T, s *eventstore.Store) { listcheck.DuringAppends(t, s, 300, 7) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t, pool)
			tc.run(t, s)
		})
	}
}

// TestListStreamsLinguisticCollation gives the stream_id column of a fresh
// schema an ICU collation, whose order is not by bytes and keeps the IDs
// with a prefix apart ("a-b" < "ab" < "a-c"). A listing then comes in the
// collation's order, the server's ORDER BY stream_id, with each stream
// once, and a prefix still matches byte for byte.
func TestListStreamsLinguisticCollation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := newPool(t)
	var icu bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_collation WHERE collname = 'en-x-icu')`).Scan(&icu))
	if !icu {
		t.Skip(`the server has no ICU collation "en-x-icu" (built without ICU)`)
	}
	d := newDriver(t, pool, postgres.Options{})
	_, err := pool.Exec(ctx, `ALTER TABLE `+pgx.Identifier{d.Schema(), "events"}.Sanitize()+` ALTER COLUMN stream_id TYPE text COLLATE "en-x-icu"`)
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })

	for _, id := range []string{"Ling-a-b", "Ling-ab", "Ling-a-c", "Ling-aB", "Ling-B", "Ling-b", "Ling-é", "Ling-e", "Ling-a-", "Ling-a_b", "Ling-a", "Other-a-b"} {
		_, err := s.Append(ctx, id, eventstore.NoStream, eventstore.NewEvent("Listed", nil))
		require.NoError(t, err)
	}
	rows, err := pool.Query(ctx, `SELECT DISTINCT stream_id FROM `+pgx.Identifier{d.Schema(), "events"}.Sanitize()+` WHERE starts_with(stream_id, 'Ling-') ORDER BY stream_id`)
	require.NoError(t, err)
	want, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.False(t, slices.IsSorted(want), "the collation orders %q by bytes: the test needs one that does not", want)

	for _, limit := range []int{1, 2, 100} {
		var got []string
		for _, st := range listcheck.ListAll(t, s, eventstore.ListStreamsOptions{Category: "Ling", Limit: limit}) {
			got = append(got, st.ID)
		}
		require.Equal(t, want, got, "category Ling in pages of %d: want the collation's order", limit)

		got = nil
		for _, st := range listcheck.ListAll(t, s, eventstore.ListStreamsOptions{Prefix: "Ling-a-", Limit: limit}) {
			got = append(got, st.ID)
		}
		slices.Sort(got)
		require.Equal(t, []string{"Ling-a-", "Ling-a-b", "Ling-a-c"}, got, "prefix Ling-a- in pages of %d", limit)
	}
	listcheck.DuringAppends(t, s, 100, 7)
}
