package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Snapshots".

func init() { ruleSets = append(ruleSets, snapshotRules) }

func snapshotRules() []rule {
	return []rule{
		{name: "SnapshotRoundTrip", run: testSnapshotRoundTrip},
		{name: "SnapshotMissing", run: testSnapshotMissing},
		{name: "SnapshotVersionZero", run: testSnapshotVersionZero},
		{name: "SnapshotBeyondStreamVersion", run: testSnapshotBeyondStream},
		{name: "SnapshotLatestWins", run: testSnapshotLatestWins},
		{name: "SnapshotInvalidStreamID", run: testSnapshotInvalidStreamID},
	}
}

// checkSnapshot loads the snapshot of s and compares it with want.
func (f *fixture) checkSnapshot(doing, s string, want eventstore.Snapshot) {
	f.t.Helper()
	got, ok, err := f.store.LoadSnapshot(f.ctx, s)
	switch {
	case err != nil:
		f.t.Errorf("%s: LoadSnapshot(%q): %v", doing, s, err)
	case !ok:
		f.t.Errorf("%s: LoadSnapshot(%q): want version %d, got ok == false", doing, s, want.Version)
	case got.Version != want.Version:
		f.t.Errorf("%s: LoadSnapshot(%q): want version %d, got %d", doing, s, want.Version, got.Version)
	case !bytes.Equal(got.Data, want.Data):
		f.t.Errorf("%s: LoadSnapshot(%q): data differs: %s", doing, s, bytesDiff(want.Data, got.Data))
	}
}

// checkNoSnapshot checks that s has no snapshot.
func (f *fixture) checkNoSnapshot(doing, s string) {
	f.t.Helper()
	got, ok, err := f.store.LoadSnapshot(f.ctx, s)
	if err != nil || ok {
		f.t.Errorf("%s: LoadSnapshot(%q): want ok == false and no error, got ok == %v, version %d and %v", doing, s, ok, got.Version, err)
	}
}

// saveSnapshot saves and fails the rule on error.
func (f *fixture) saveSnapshot(s string, snap eventstore.Snapshot) {
	f.t.Helper()
	if err := f.store.SaveSnapshot(f.ctx, s, snap); err != nil {
		f.t.Fatalf("SaveSnapshot(%q, version %d, %d bytes): %v", s, snap.Version, len(snap.Data), err)
	}
}

func testSnapshotRoundTrip(t *testing.T, f *fixture) {
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"EveryByteValue", every},
		{"JSON", []byte(`{"b": 2, "a":[1,  2.50, "é\u00e9"]}` + "\n")},
		{"Large", bytes.Repeat([]byte("0123456789abcdef\x00"), 20000)[:min(300_000, f.store.Limits().MaxEventSize)]},
		{"Empty", []byte{}},
		{"Nil", nil},
	} {
		s := stream("Snap")
		f.mustAppend(s, eventstore.NoStream, events(3, "Happened")...)
		data := bytes.Clone(c.data)
		f.saveSnapshot(s, eventstore.Snapshot{Version: 2, Data: data})
		for i := range data {
			data[i] ^= 0xff // the store keeps its own copy
		}
		doing := fmt.Sprintf("save a snapshot at version 2 of a stream at version 3 with %s data (%d bytes), then change the caller's slice", c.name, len(c.data))
		f.checkSnapshot(doing, s, eventstore.Snapshot{Version: 2, Data: c.data})

		got, _, err := f.store.LoadSnapshot(f.ctx, s)
		if err == nil {
			for i := range got.Data {
				got.Data[i] ^= 0xff
			}
			f.checkSnapshot(doing+", load it and change the loaded slice", s, eventstore.Snapshot{Version: 2, Data: c.data})
		}
	}
}

func testSnapshotMissing(t *testing.T, f *fixture) {
	s := stream("Snap")
	f.checkNoSnapshot("a stream never written", s)
	f.mustAppend(s, eventstore.NoStream, events(2, "Happened")...)
	f.checkNoSnapshot("a stream of 2 events without a snapshot", s)
	other := stream("Snap")
	f.mustAppend(other, eventstore.NoStream, events(2, "Happened")...)
	f.saveSnapshot(other, eventstore.Snapshot{Version: 2, Data: []byte("other")})
	f.checkNoSnapshot("a stream without a snapshot, after saving one for another stream", s)
}

func testSnapshotVersionZero(t *testing.T, f *fixture) {
	s := stream("Snap")
	f.mustAppend(s, eventstore.NoStream, events(2, "Happened")...)
	err := f.store.SaveSnapshot(f.ctx, s, eventstore.Snapshot{Version: 0, Data: []byte("zero")})
	if !errors.Is(err, eventstore.ErrInvalidVersion) || !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Errorf("SaveSnapshot at version 0: want an error matching ErrInvalidVersion and ErrInvalidArgument, got %v", err)
	}
	f.checkNoSnapshot("after a rejected snapshot at version 0", s)
}

func testSnapshotBeyondStream(t *testing.T, f *fixture) {
	missing := stream("Snap")
	err := f.store.SaveSnapshot(f.ctx, missing, eventstore.Snapshot{Version: 1, Data: []byte("ghost")})
	if !errors.Is(err, eventstore.ErrInvalidVersion) || !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Errorf("SaveSnapshot at version 1 of a stream never written: want an error matching ErrInvalidVersion and ErrInvalidArgument, got %v", err)
	}
	f.checkNoSnapshot("after a rejected snapshot at version 1 of a stream never written", missing)

	s := stream("Snap")
	f.mustAppend(s, eventstore.NoStream, events(3, "Happened")...)
	for _, v := range []uint64{4, 100} {
		err := f.store.SaveSnapshot(f.ctx, s, eventstore.Snapshot{Version: v, Data: []byte("future")})
		if !errors.Is(err, eventstore.ErrInvalidVersion) || !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("SaveSnapshot at version %d of a stream at version 3: want an error matching ErrInvalidVersion and ErrInvalidArgument, got %v", v, err)
		}
	}
	f.checkNoSnapshot("after rejected snapshots beyond the stream's version", s)

	// A rejected snapshot leaves the stored one in place.
	f.saveSnapshot(s, eventstore.Snapshot{Version: 3, Data: []byte("three")})
	if err := f.store.SaveSnapshot(f.ctx, s, eventstore.Snapshot{Version: 4, Data: []byte("four")}); !errors.Is(err, eventstore.ErrInvalidVersion) {
		t.Errorf("SaveSnapshot at version 4 of a stream at version 3 with a snapshot at 3: want an error matching ErrInvalidVersion, got %v", err)
	}
	f.checkSnapshot("a snapshot at version 3, then a rejected one at version 4", s, eventstore.Snapshot{Version: 3, Data: []byte("three")})
}

func testSnapshotLatestWins(t *testing.T, f *fixture) {
	s := stream("Snap")
	f.mustAppend(s, eventstore.NoStream, events(5, "Happened")...)
	f.saveSnapshot(s, eventstore.Snapshot{Version: 2, Data: []byte("two")})
	f.checkSnapshot("save a snapshot at version 2", s, eventstore.Snapshot{Version: 2, Data: []byte("two")})
	f.saveSnapshot(s, eventstore.Snapshot{Version: 4, Data: []byte("four")})
	f.checkSnapshot("save snapshots at versions 2 then 4", s, eventstore.Snapshot{Version: 4, Data: []byte("four")})
	if err := f.store.SaveSnapshot(f.ctx, s, eventstore.Snapshot{Version: 3, Data: []byte("three")}); err != nil {
		t.Errorf("SaveSnapshot at version 3 after one at version 4: want it ignored without error, got %v", err)
	}
	f.checkSnapshot("save snapshots at versions 2, 4 then 3", s, eventstore.Snapshot{Version: 4, Data: []byte("four")})
	// Only a lower version is ignored: the same version replaces.
	f.saveSnapshot(s, eventstore.Snapshot{Version: 4, Data: []byte("four again")})
	f.checkSnapshot("save snapshots at versions 2, 4, 3 then 4 again", s, eventstore.Snapshot{Version: 4, Data: []byte("four again")})
	f.saveSnapshot(s, eventstore.Snapshot{Version: 5, Data: nil})
	f.checkSnapshot("save a snapshot with empty data at version 5 over one at version 4", s, eventstore.Snapshot{Version: 5})
}

func testSnapshotInvalidStreamID(t *testing.T, f *fixture) {
	for _, bad := range []string{"", "$snapshots", "a\x00b", "bad\xffutf8"} {
		err := f.store.SaveSnapshot(f.ctx, bad, eventstore.Snapshot{Version: 1, Data: []byte("x")})
		if !errors.Is(err, eventstore.ErrInvalidStreamID) || !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("SaveSnapshot of stream ID %q: want an error matching ErrInvalidStreamID and ErrInvalidArgument, got %v", bad, err)
		}
		if _, ok, err := f.store.LoadSnapshot(f.ctx, bad); !errors.Is(err, eventstore.ErrInvalidStreamID) || ok {
			t.Errorf("LoadSnapshot of stream ID %q: want ok == false and an error matching ErrInvalidStreamID, got %v and %v", bad, ok, err)
		}
	}
}
