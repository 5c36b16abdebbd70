package sqlite_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/eventkit/eventstore/internal/listcheck"
)

func TestListStreams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *eventstore.Store)
	}{
		{"ByteOrder", listcheck.ByteOrder},
		{"DuringAppends", func(t *testing.T, s *eventstore.Store) { listcheck.DuringAppends(t, s, 300, 7) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, _ := openDriver(t, sqlite.Options{})
			tc.run(t, eventstore.New(d, eventstore.Options{}))
		})
	}
}
