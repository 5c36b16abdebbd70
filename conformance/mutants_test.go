package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/google/uuid"
)

// The suite tests itself, as testing/fstest does: each mutant is the memory
// driver with one planted bug, and TestMutants requires the named rules to
// fail on it while the same rules pass on the unchanged driver (the control).
// docs/conformance-mutants.md lists the same table; TestMutantsDocumented
// keeps the two in step.
//
// A failing rule fails its test, so each mutant runs in a child process: the
// test binary again, with mutantEnv naming the mutant and -test.run keeping
// only its rules. TestMutantChild is that child; it does nothing otherwise.

// mutantEnv names the mutant TestMutantChild runs ("control": none).
const mutantEnv = "EVENTSTORE_CONFORMANCE_MUTANT"

// mutant is one planted bug and the rules that must catch it.
type mutant struct {
	name  string
	bug   string
	rules []string
	wrap  func(s *shelf) *mutated
}

// mutants is the source of truth for docs/conformance-mutants.md.
var mutants = []mutant{
	// Expected versions and the append result.
	{"SkipVersionCheck", "Append ignores the expected version", rules("ExpectedVersionOnExistingStream", "ExpectedVersionOnNewStream"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			req.Expected = driver.Expect(driver.ExpectAny, 0)
			return d.Append(ctx, req)
		})},
	{"NoStreamAcceptsExisting", "NoStream is treated as Any", rules("ExpectedVersionOnExistingStream"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			if req.Expected == (driver.ExpectedVersion{}) {
				req.Expected = driver.Expect(driver.ExpectAny, 0)
			}
			return d.Append(ctx, req)
		})},
	{"StreamExistsAcceptsNew", "StreamExists is treated as Any", rules("ExpectedVersionOnNewStream"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			if req.Expected == driver.Expect(driver.ExpectStreamExists, 0) {
				req.Expected = driver.Expect(driver.ExpectAny, 0)
			}
			return d.Append(ctx, req)
		})},
	{"ExactOffByOne", "Exact(n) also accepts a stream at version n-1", rules("ExpectedVersionOnExistingStream"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			if req.Expected.Kind() == driver.ExpectExact && req.Expected.Version() > 0 {
				if v, _ := d.StreamVersion(ctx, req.Stream); v == req.Expected.Version()-1 {
					req.Expected = driver.Expect(driver.ExpectAny, 0)
				}
			}
			return d.Append(ctx, req)
		})},
	{"ConflictWithoutSentinel", "a version conflict is a plain error, not ErrWrongExpectedVersion", rules("ExpectedVersionOnNewStream"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			res, err := d.Append(ctx, req)
			if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				err = fmt.Errorf("conflict on %q", req.Stream)
			}
			return res, err
		})},
	{"ConflictWrongActual", "the conflict error reports the wrong actual version", rules("ExpectedVersionOnExistingStream"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			res, err := d.Append(ctx, req)
			var wev *eventstore.WrongExpectedVersionError
			if errors.As(err, &wev) {
				wev.Actual++
			}
			return res, err
		})},
	{"CheckThenWriteRace", "the version check and the write are not atomic", rules("ConcurrentExactAppendsHaveOneWinner"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			v, err := d.StreamVersion(ctx, req.Stream)
			if err != nil {
				return driver.AppendResult{}, err
			}
			if !req.Expected.Matches(v) {
				return d.Append(ctx, req) // the driver's own conflict error
			}
			time.Sleep(time.Millisecond) // another appender gets in here
			req.Expected = driver.Expect(driver.ExpectAny, 0)
			return d.Append(ctx, req)
		})},
	{"ResultVersionOffByOne", "the append result's version is one too high", rules("AppendThenReadStream", "AppendResultDescribesWrittenEvents"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			res, err := d.Append(ctx, req)
			if err == nil {
				res.Version++
			}
			return res, err
		})},
	{"ResultPositionOfFirstEvent", "the append result's position is the first event's, not the last's", rules("AppendResultDescribesWrittenEvents"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			res, err := d.Append(ctx, req)
			if err == nil {
				res.Position.Commit -= uint64(len(req.Events) - 1)
			}
			return res, err
		})},
	{"LargeBatchHalfWritten", "a batch over 100 events writes its first half, then fails", rules("AppendLargeBatch"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			if len(req.Events) <= 100 {
				return d.Append(ctx, req)
			}
			req.Events = req.Events[:len(req.Events)/2]
			d.Append(ctx, req)
			return driver.AppendResult{}, errors.New("disk full")
		})},
	{"CancelledAppendHalfWritten", "an append cancelled midway keeps the first half of its batch", rules("CancelledAppendWritesAllOrNothing"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			full := req
			req.Events = req.Events[:len(req.Events)/2]
			if len(req.Events) > 0 {
				if _, err := d.Append(ctx, req); err != nil {
					return driver.AppendResult{}, err
				}
			}
			select {
			case <-ctx.Done():
				return driver.AppendResult{}, ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
			full.Expected = driver.Expect(driver.ExpectAny, 0)
			full.Events = full.Events[len(req.Events):]
			res, err := d.Append(context.WithoutCancel(ctx), full)
			return res, err
		})},

	// Idempotent retries.
	{"RetryAppendsTwice", "a retry of a successful append writes the events again", rules("RetryReturnsOriginalResult"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			if !hasEvent(ctx, d, req.Stream, req.Events[0].ID) {
				return d.Append(ctx, req)
			}
			req.Events = slices.Clone(req.Events)
			for i := range req.Events {
				req.Events[i].ID = uuid.New()
			}
			req.Expected = driver.Expect(driver.ExpectAny, 0)
			return d.Append(ctx, req)
		})},
	{"RetryWithOtherContentAccepted", "a retry with the same IDs but other content returns the original result", rules("RetryWithDifferentContentRejected"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			res, err := d.Append(ctx, req)
			if errors.As(err, new(*driver.RetryMismatchError)) {
				evs, _ := d.ReadStream(ctx, driver.StreamQuery{Stream: req.Stream, From: 1, Limit: math.MaxInt})
				for _, ev := range evs {
					if ev.ID == req.Events[len(req.Events)-1].ID {
						return driver.AppendResult{Version: ev.Version, Position: ev.Position}, nil
					}
				}
			}
			return res, err
		})},
	{"RetryNotRecognised", "a retry of a successful append is a version conflict", rules("RetryReturnsOriginalResult"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			if hasEvent(ctx, d, req.Stream, req.Events[0].ID) {
				v, _ := d.StreamVersion(ctx, req.Stream)
				return driver.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: v}
			}
			return d.Append(ctx, req)
		})},
	{"RetryMatchesFirstIDOnly", "a retry is recognised by its first event ID alone", rules("RetryWithDifferentLaterIDConflicts", "RetryWithLongerBatchConflicts"),
		onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			evs, _ := d.ReadStream(ctx, driver.StreamQuery{Stream: req.Stream, From: 1, Limit: math.MaxInt})
			for i, ev := range evs {
				if ev.ID == req.Events[0].ID {
					last := evs[min(i+len(req.Events), len(evs))-1]
					return driver.AppendResult{Version: last.Version, Position: last.Position}, nil
				}
			}
			return d.Append(ctx, req)
		})},

	// Payloads and recorded times.
	{"DataTrimmed", "the last byte of event data is dropped", rules("DataRoundTripsByteForByte", "AppendThenReadStream"),
		onEvents(func(e *driver.Event) {
			if len(e.Data) > 0 {
				e.Data = e.Data[:len(e.Data)-1]
			}
		})},
	{"EventIDsReplaced", "Append stores new event IDs instead of the given ones", rules("AppendThenReadStream"),
		onEvents(func(e *driver.Event) { e.ID = uuid.New() })},
	{"MetadataDropped", "event metadata is not stored", rules("MetadataRoundTripsByteForByte"),
		onEvents(func(e *driver.Event) { e.Metadata = nil })},
	{"ContentTypeFlipped", "JSON is stored as binary and binary as JSON", rules("DataRoundTripsByteForByte"),
		onEvents(func(e *driver.Event) { e.ContentType = 1 - e.ContentType })},
	{"TypeLowerCased", "event types are stored lower-cased", rules("AppendThenReadStream", "NamesCompareExactly"),
		onEvents(func(e *driver.Event) { e.Type = strings.ToLower(e.Type) })},
	{"LargeDataTruncated", "data over 64 KiB is cut to 64 KiB", rules("EventAtMaxSizeRoundTrips"),
		onEvents(func(e *driver.Event) {
			if len(e.Data) > 64<<10 {
				e.Data = e.Data[:64<<10]
			}
		})},
	{"RecordedAtSeconds", "recorded times are truncated to the second", rules("ImportKeepsEverything"),
		onRead(func(ev *driver.RecordedEvent) { ev.RecordedAt = ev.RecordedAt.Truncate(time.Second) })},
	{"RecordedAtNanoseconds", "recorded times keep nanoseconds instead of microseconds", rules("RecordedAtIsUTCMicroseconds"),
		onRead(func(ev *driver.RecordedEvent) { ev.RecordedAt = ev.RecordedAt.Add(500 * time.Nanosecond) })},
	{"RecordedAtNotUTC", "recorded times come back in another time zone", rules("RecordedAtIsUTCMicroseconds"),
		onRead(func(ev *driver.RecordedEvent) { ev.RecordedAt = ev.RecordedAt.In(time.FixedZone("X", 3600)) })},
	{"ReadsShareData", "every read of an event returns the same data slice", rules("ReadEventsAreCopies"),
		func(s *shelf) *mutated {
			var mu sync.Mutex
			seen := map[uuid.UUID][]byte{}
			return readHook(s, func(ev *driver.RecordedEvent) {
				mu.Lock()
				defer mu.Unlock()
				if b, ok := seen[ev.ID]; ok {
					ev.Data = b
				} else {
					seen[ev.ID] = ev.Data
				}
			})
		}},
	{"RecycledPagesReuseData", "a driver that takes read pages back writes over their events' data", rules("ReadEventsOutliveLaterReads"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, recyclePage: func(events []driver.RecordedEvent) {
				for _, ev := range events {
					for i := range ev.Data {
						ev.Data[i] = 'X'
					}
				}
			}}
		}},
	{"AppendKeepsCallerData", "Append keeps the caller's data slice instead of a copy", rules("AppendCopiesCallerPayloads"),
		func(s *shelf) *mutated {
			var mu sync.Mutex
			given := map[uuid.UUID][]byte{}
			m := readHook(s, func(ev *driver.RecordedEvent) {
				mu.Lock()
				defer mu.Unlock()
				if b, ok := given[ev.ID]; ok {
					ev.Data = b
				}
			})
			m.append = func(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
				res, err := s.d.Append(ctx, req)
				if err == nil {
					mu.Lock()
					for _, e := range req.Events {
						given[e.ID] = e.Data
					}
					mu.Unlock()
				}
				return res, err
			}
			return m
		}},
	{"StreamIDsCaseInsensitive", "stream IDs differing only in case are one stream", rules("NamesCompareExactly"),
		func(s *shelf) *mutated {
			d := s.d
			return &mutated{Driver: d,
				append: func(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
					req.Stream = strings.ToLower(req.Stream)
					return d.Append(ctx, req)
				},
				readStream: func(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
					q.Stream = strings.ToLower(q.Stream)
					return d.ReadStream(ctx, q)
				},
				streamVersion: func(ctx context.Context, stream string) (uint64, error) {
					return d.StreamVersion(ctx, strings.ToLower(stream))
				},
			}
		}},

	// Stream reads and versions.
	{"ReadStreamFromOffByOne", "ReadStream forwards starts one version after From", rules("ReadStreamFrom"),
		onReadStream(func(d *memory.Driver, ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
			if !q.Backwards {
				q.From++
			}
			return d.ReadStream(ctx, q)
		})},
	{"ReadStreamBackwardsForwards", "ReadStream ignores Backwards", rules("ReadStreamBackwards"),
		onReadStream(func(d *memory.Driver, ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
			if q.Backwards {
				q.Backwards = false
				q.From = max(q.From, 1)
			}
			return d.ReadStream(ctx, q)
		})},
	{"ReadStreamBackwardsFromOffByOne", "ReadStream backwards starts one version below From", rules("ReadStreamBackwards"),
		onReadStream(func(d *memory.Driver, ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
			if q.Backwards && q.From > 1 {
				q.From--
			}
			return d.ReadStream(ctx, q)
		})},
	{"ReadStreamBackwardsStopsEarly", "ReadStream backwards never returns version 1", rules("ReadStreamBackwards"),
		onReadStream(func(d *memory.Driver, ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
			evs, err := d.ReadStream(ctx, q)
			if q.Backwards {
				evs = slices.DeleteFunc(evs, func(ev driver.RecordedEvent) bool { return ev.Version == 1 })
			}
			return evs, err
		})},
	{"ReadStreamShortPage", "a full stream page holds one event too few", rules("ReadStreamPaging"),
		onReadStream(func(d *memory.Driver, ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
			evs, err := d.ReadStream(ctx, q)
			if len(evs) == q.Limit && q.Limit > 1 {
				evs = evs[:q.Limit-1]
			}
			return evs, err
		})},
	{"ReadStreamMissingFails", "reading a stream never written is an error", rules("ReadStreamMissing"),
		onReadStream(func(d *memory.Driver, ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
			if v, _ := d.StreamVersion(ctx, q.Stream); v == 0 {
				return nil, fmt.Errorf("stream %q not found", q.Stream)
			}
			return d.ReadStream(ctx, q)
		})},
	{"ReadStreamBeyondEndClamps", "ReadStream From beyond the end returns the last event", rules("ReadStreamFromBeyondEnd"),
		onReadStream(func(d *memory.Driver, ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
			if v, _ := d.StreamVersion(ctx, q.Stream); !q.Backwards && v > 0 && q.From > v {
				q.From = v
			}
			return d.ReadStream(ctx, q)
		})},
	{"StreamVersionOffByOne", "StreamVersion is one more than the last version", rules("StreamVersion", "AppendThenReadStream"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, streamVersion: func(ctx context.Context, stream string) (uint64, error) {
				v, err := s.d.StreamVersion(ctx, stream)
				if v > 0 {
					v++
				}
				return v, err
			}}
		}},

	// The global log.
	{"ReadAllSkipsEvent", "ReadAll drops every seventh event", rules("ReadAllForwards"),
		onReadAll(func(d *memory.Driver, ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
			evs, err := d.ReadAll(ctx, q)
			return slices.DeleteFunc(evs, func(ev driver.RecordedEvent) bool { return ev.Position.Commit%7 == 0 }), err
		})},
	{"ReadAllWrongOrder", "ReadAll forwards returns each page newest first", rules("ReadAllForwards"),
		onReadAll(func(d *memory.Driver, ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
			evs, err := d.ReadAll(ctx, q)
			if !q.Backwards {
				slices.Reverse(evs)
			}
			return evs, err
		})},
	{"PositionsNotIncreasing", "positions read back decrease along the log", rules("AppendBatchIsContiguousInLog", "PositionCompareFollowsLog"),
		onRead(func(ev *driver.RecordedEvent) { ev.Position.Commit = 1<<40 - ev.Position.Commit })},
	{"ReadAllAfterInclusive", "ReadAll includes the event at After", rules("ReadAllAfterBefore"),
		onReadAll(func(d *memory.Driver, ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
			if q.After.Commit > 0 {
				q.After.Commit--
			}
			return d.ReadAll(ctx, q)
		})},
	{"ReadAllBeforeIgnored", "ReadAll ignores Before", rules("ReadAllAfterBefore"),
		onReadAll(func(d *memory.Driver, ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
			q.Before = driver.Position{}
			return d.ReadAll(ctx, q)
		})},
	{"ReadAllBackwardsBeforeInclusive", "ReadAll backwards includes the event at Before", rules("ReadAllBackwardsPaging"),
		onReadAll(func(d *memory.Driver, ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
			if q.Backwards && !q.Before.IsZero() {
				q.Before.Commit++
			}
			return d.ReadAll(ctx, q)
		})},
	{"ReadAllShortPage", "a full page of the global log holds one event too few", rules("ReadAllPaging"),
		onReadAll(func(d *memory.Driver, ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
			evs, err := d.ReadAll(ctx, q)
			if len(evs) == q.Limit && q.Limit > 1 {
				evs = evs[:q.Limit-1]
			}
			return evs, err
		})},
	{"ReadAllFilterIgnored", "ReadAll ignores the filter", rules("ReadAllFilter"),
		onReadAll(func(d *memory.Driver, ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
			q.Filter = driver.Filter{}
			return d.ReadAll(ctx, q)
		})},
	{"CategoryPrefixMatch", "a category filter also keeps categories it is a prefix of", rules("WildcardsInNamesDoNotMatchInFilters"),
		filterBy(func(f driver.Filter, ev driver.RecordedEvent) bool {
			cat := len(f.Categories) == 0 || slices.ContainsFunc(f.Categories, func(c string) bool { return strings.HasPrefix(driver.Category(ev.StreamID), c) })
			return cat && (len(f.EventTypes) == 0 || slices.Contains(f.EventTypes, ev.Type))
		})},
	{"EventTypeFilterIgnoresCase", "an event-type filter matches regardless of case", rules("NamesCompareExactly"),
		filterBy(func(f driver.Filter, ev driver.RecordedEvent) bool {
			typ := len(f.EventTypes) == 0 || slices.ContainsFunc(f.EventTypes, func(t string) bool { return strings.EqualFold(t, ev.Type) })
			return typ && (len(f.Categories) == 0 || slices.Contains(f.Categories, driver.Category(ev.StreamID)))
		})},
	{"ReadAllBackwardsIgnored", "ReadAll ignores Backwards", rules("ReadAllBackwards"),
		onReadAll(func(d *memory.Driver, ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
			if q.Backwards {
				q.Backwards = false
				q.After, q.Before = driver.Position{}, q.After
			}
			return d.ReadAll(ctx, q)
		})},

	// Snapshots.
	{"SnapshotVersionLowered", "SaveSnapshot stores one version lower", rules("SnapshotRoundTrip"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, saveSnapshot: func(ctx context.Context, stream string, snap driver.Snapshot) error {
				if snap.Version > 0 {
					snap.Version--
				}
				return s.d.SaveSnapshot(ctx, stream, snap)
			}}
		}},
	{"LoadSnapshotAlwaysOK", "LoadSnapshot reports ok when there is no snapshot", rules("SnapshotMissing"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, loadSnapshot: func(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
				snap, _, err := s.d.LoadSnapshot(ctx, stream)
				return snap, true, err
			}}
		}},
	{"SnapshotPerCategory", "snapshots are stored per category, not per stream", rules("SnapshotMissing"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d,
				saveSnapshot: func(ctx context.Context, stream string, snap driver.Snapshot) error {
					return s.d.SaveSnapshot(ctx, driver.Category(stream)+"-x", snap)
				},
				loadSnapshot: func(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
					return s.d.LoadSnapshot(ctx, driver.Category(stream)+"-x")
				}}
		}},
	{"OlderSnapshotWins", "an older snapshot replaces a newer one", rules("SnapshotLatestWins"),
		func(s *shelf) *mutated {
			var mu sync.Mutex
			snaps := map[string]driver.Snapshot{}
			return &mutated{Driver: s.d,
				saveSnapshot: func(_ context.Context, stream string, snap driver.Snapshot) error {
					mu.Lock()
					defer mu.Unlock()
					snap.Data = bytes.Clone(snap.Data)
					snaps[stream] = snap
					return nil
				},
				loadSnapshot: func(_ context.Context, stream string) (driver.Snapshot, bool, error) {
					mu.Lock()
					defer mu.Unlock()
					snap, ok := snaps[stream]
					snap.Data = bytes.Clone(snap.Data)
					return snap, ok, nil
				}}
		}},
	{"SnapshotKeepsCallerData", "SaveSnapshot keeps the caller's slice instead of a copy", rules("SnapshotRoundTrip"),
		func(s *shelf) *mutated {
			var mu sync.Mutex
			given := map[string][]byte{}
			return &mutated{Driver: s.d,
				saveSnapshot: func(ctx context.Context, stream string, snap driver.Snapshot) error {
					mu.Lock()
					given[stream] = snap.Data
					mu.Unlock()
					return s.d.SaveSnapshot(ctx, stream, snap)
				},
				loadSnapshot: func(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
					snap, ok, err := s.d.LoadSnapshot(ctx, stream)
					mu.Lock()
					if b, found := given[stream]; found && ok {
						snap.Data = b
					}
					mu.Unlock()
					return snap, ok, err
				}}
		}},

	// Checkpoints and subscriptions.
	{"CheckpointNotSaved", "SaveCheckpoint stores nothing", rules("SubscribeDurableResume"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, saveCheckpoint: func(context.Context, string, driver.Position) error { return nil }}
		}},
	{"CheckpointSavedEarly", "SaveCheckpoint stores the position after the one given", rules("SubscribeDurableResume"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, saveCheckpoint: func(ctx context.Context, name string, pos driver.Position) error {
				pos.Commit++
				return s.d.SaveCheckpoint(ctx, name, pos)
			}}
		}},
	{"CheckpointUnderOtherName", "SaveCheckpoint stores under another subscription's name", rules("SubscribeDurableResume"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, saveCheckpoint: func(ctx context.Context, name string, pos driver.Position) error {
				return s.d.SaveCheckpoint(ctx, name+"-other", pos)
			}}
		}},
	{"CheckpointFirstOnly", "SaveCheckpoint keeps the first position saved", rules("SubscribeDurableResume"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, saveCheckpoint: func(ctx context.Context, name string, pos driver.Position) error {
				if _, ok, _ := s.d.LoadCheckpoint(ctx, name); ok {
					return nil
				}
				return s.d.SaveCheckpoint(ctx, name, pos)
			}}
		}},
	{"DeleteCheckpointIgnored", "DeleteCheckpoint returns nil and deletes nothing", rules("CheckpointsListedSetAndDeleted", "DeleteCheckpointRestartsSubscription"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, deleteCheckpoint: func(context.Context, string) error { return nil }}
		}},
	{"CheckpointsUnsorted", "Checkpoints lists the checkpoints in reverse name order", rules("CheckpointsListedSetAndDeleted"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, checkpoints: func(ctx context.Context) ([]driver.Checkpoint, error) {
				cps, err := s.d.Checkpoints(ctx)
				slices.Reverse(cps)
				return cps, err
			}}
		}},
	{"CheckpointsMissOne", "Checkpoints leaves out the first checkpoint", rules("CheckpointsListedSetAndDeleted", "DeleteCheckpointRestartsSubscription"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, checkpoints: func(ctx context.Context) ([]driver.Checkpoint, error) {
				cps, err := s.d.Checkpoints(ctx)
				if len(cps) > 0 {
					cps = cps[1:]
				}
				return cps, err
			}}
		}},
	{"ScanPassesUnexamined", "ReadAllScan reports the log's last position as Scanned when it stops at Limit", rules("ScanPagesFindEveryMatch"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, readAllScan: func(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
				p, err := s.d.ReadAllScan(ctx, q)
				if last, _ := s.d.ReadAll(ctx, driver.AllQuery{Backwards: true, Limit: 1}); len(last) > 0 && !p.End {
					p.Scanned = last[0].Position
				}
				return p, err
			}}
		}},
	{"ScanEndsEarly", "ReadAllScan says End on every page", rules("ScanPagesFindEveryMatch"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, readAllScan: func(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
				p, err := s.d.ReadAllScan(ctx, q)
				p.End = true
				return p, err
			}}
		}},
	{"ScanNeverAdvances", "ReadAllScan reports the last event returned as Scanned, never the events passed over", rules("FilteredCheckpointAdvancesPastOtherEvents"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, readAllScan: func(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
				p, err := s.d.ReadAllScan(ctx, q)
				p.Scanned = driver.Position{}
				if n := len(p.Events); n > 0 {
					p.Scanned = p.Events[n-1].Position
				}
				return p, err
			}}
		}},
	{"WatchNeverSignals", "Watch returns a channel that never receives", rules("SubscribeLiveWakesWithoutPolling"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, watch: func(context.Context) (<-chan struct{}, error) { return make(chan struct{}), nil }}
		}},

	// Import.
	{"ImportSkipsVersionCheck", "Import writes streams that are not at the version before", rules("ImportWrongVersionWritesNothing"),
		onImport(func(d *memory.Driver, ctx context.Context, req driver.ImportRequest) error {
			for _, e := range req.Events {
				ev := driver.Event{ID: e.ID, Type: e.Type, ContentType: e.ContentType, Data: e.Data, Metadata: e.Metadata}
				if _, err := d.Append(ctx, driver.AppendRequest{Stream: e.StreamID, Expected: driver.Expect(driver.ExpectAny, 0), Events: []driver.Event{ev}, RecordedAt: e.RecordedAt}); err != nil {
					return err
				}
			}
			return nil
		})},
	{"ImportNotAtomic", "Import writes stream by stream and stops at the first conflict", rules("ImportWrongVersionWritesNothing"),
		onImport(func(d *memory.Driver, ctx context.Context, req driver.ImportRequest) error {
			for _, first := range req.Firsts {
				stream := req.Events[first].StreamID
				var part []driver.RecordedEvent
				for _, e := range req.Events[first:] {
					if e.StreamID == stream {
						part = append(part, e)
					}
				}
				if err := d.Import(ctx, driver.ImportRequest{Events: part, Firsts: []int{0}}); err != nil {
					return err
				}
			}
			return nil
		})},
	{"ImportRestampsTimes", "Import records the current time instead of the given one", rules("ImportKeepsEverything"),
		onImport(func(d *memory.Driver, ctx context.Context, req driver.ImportRequest) error {
			req.Events = slices.Clone(req.Events)
			for i := range req.Events {
				req.Events[i].RecordedAt = time.Now().UTC().Truncate(time.Microsecond)
			}
			return d.Import(ctx, req)
		})},

	// Leases and projection transactions.
	{"LeaseTakenWhileHeld", "AcquireLease grants a lease another member holds", rules("LeaseGrantedRenewedAndRefused", "LeaseGrantedToOneOfManyRacers"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, acquireLease: func(ctx context.Context, group, key, owner string, ttl time.Duration) (driver.Lease, bool, error) {
				leases, _, _ := s.d.Leases(ctx, group)
				for _, l := range leases {
					if l.Key == key && l.Owner != owner {
						s.d.ReleaseLease(ctx, group, key, l.Owner, l.Generation)
					}
				}
				return s.d.AcquireLease(ctx, group, key, owner, ttl)
			}}
		}},
	{"LeaseSaveUnfenced", "SaveLeasePosition saves whatever the generation", rules("LeaseExpiresAndPassesOnFenced", "LeaseReleased"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, saveLeasePosition: func(ctx context.Context, group, key, owner string, generation uint64, pos driver.Position) error {
				leases, _, _ := s.d.Leases(ctx, group)
				for _, l := range leases {
					if l.Key == key {
						return s.d.SaveLeasePosition(ctx, group, key, l.Owner, l.Generation, pos)
					}
				}
				return s.d.SaveLeasePosition(ctx, group, key, owner, generation, pos)
			}}
		}},
	{"CheckpointTxIgnoresPrev", "CheckpointTx saves whatever the stored checkpoint", rules("CheckpointTxComparesAndSets", "CheckpointTxOneOfManyRacers"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, checkpointTx: func(ctx context.Context, name string, _ driver.Position, _ bool, pos driver.Position, fn func(driver.Tx) error) error {
				prev, has, _ := s.d.LoadCheckpoint(ctx, name)
				return s.d.CheckpointTx(ctx, name, prev, has, pos, fn)
			}}
		}},
	{"CheckpointTxSavesOnError", "CheckpointTx saves the checkpoint although the handler failed", rules("CheckpointTxRollsBackOnHandlerError", "ProjectHandlerErrorRedelivers"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, checkpointTx: func(ctx context.Context, name string, prev driver.Position, hasPrev bool, pos driver.Position, fn func(driver.Tx) error) error {
				err := s.d.CheckpointTx(ctx, name, prev, hasPrev, pos, fn)
				if err != nil && !errors.Is(err, eventstore.ErrCheckpointMoved) {
					s.d.SaveCheckpoint(ctx, name, pos)
				}
				return err
			}}
		}},

	// Listing streams.
	{"ListStreamsSkipsAfterCursor", "a page after a cursor leaves out its first stream", rules("ListStreamsPagesEveryStreamOnce"),
		onListStreams(func(d *memory.Driver, ctx context.Context, req driver.ListStreamsRequest) (driver.StreamPage, error) {
			p, err := d.ListStreams(ctx, req)
			if req.Cursor != "" && len(p.Streams) > 0 {
				p.Streams = p.Streams[1:]
			}
			return p, err
		})},
	{"ListStreamsCursorInclusive", "a page after a cursor starts with the cursor's stream again", rules("ListStreamsPagesEveryStreamOnce"),
		onListStreams(func(d *memory.Driver, ctx context.Context, req driver.ListStreamsRequest) (driver.StreamPage, error) {
			if req.Cursor == "" {
				return d.ListStreams(ctx, req)
			}
			v, err := d.StreamVersion(ctx, req.Cursor)
			if err != nil || v == 0 {
				return driver.StreamPage{}, err
			}
			again := driver.StreamInfo{ID: req.Cursor, Version: v}
			if req.Limit == 1 {
				return driver.StreamPage{Streams: []driver.StreamInfo{again}, Next: req.Cursor}, nil
			}
			req.Limit--
			p, err := d.ListStreams(ctx, req)
			p.Streams = append([]driver.StreamInfo{again}, p.Streams...)
			return p, err
		})},

	// Lifecycle.
	{"AsAlwaysTrue", "As reports true for every target", rules("AsIsFalseForNilAndUnknownTypes"),
		func(s *shelf) *mutated { return &mutated{Driver: s.d, as: func(any) bool { return true }} }},
	{"CloseLosesData", "a store reopened after Close is empty", rules("ReopenKeepsEventsSnapshotsAndIdempotency"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, close: func() error {
				s.mu.Lock()
				s.d = memory.New()
				s.mu.Unlock()
				return nil
			}}
		}},
	{"CloseFails", "Close returns an error although it released everything", rules("CloseTwiceReturnsNil"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, close: func() error { return errors.New("already released") }}
		}},

	// Multi-stream append.
	{"MultiAppendStreamByStream", "AppendMulti appends stream by stream, checking each expectation only when it gets there", rules("MultiAppendAllOrNothing", "MultiAppendContiguousInSliceOrder"),
		onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			res := driver.MultiAppendResult{Versions: map[string]uint64{}}
			for _, e := range req.Expect {
				var evs []driver.Event
				for _, r := range req.Records {
					if r.Stream == e.Stream {
						evs = append(evs, r.Event)
					}
				}
				if len(evs) == 0 {
					if v, _ := d.StreamVersion(ctx, e.Stream); !e.Expected.Matches(v) {
						return res, &eventstore.AppendConflictError{Streams: []eventstore.WrongExpectedVersionError{{Stream: e.Stream, Expected: eventstore.ExpectedVersion(e.Expected), Actual: v}}}
					}
					continue
				}
				r, err := d.Append(ctx, driver.AppendRequest{Stream: e.Stream, Expected: e.Expected, Events: evs, RecordedAt: req.RecordedAt})
				if err != nil {
					var wev *eventstore.WrongExpectedVersionError
					if errors.As(err, &wev) {
						err = &eventstore.AppendConflictError{Streams: []eventstore.WrongExpectedVersionError{*wev}}
					}
					return driver.MultiAppendResult{}, err
				}
				res.Versions[e.Stream] = r.Version
				if res.Position.Less(r.Position) {
					res.Position = r.Position
				}
			}
			return res, nil
		})},
	{"MultiAppendCheckThenWrite", "AppendMulti checks the expectations, then writes without them", rules("MultiAppendRacersHaveOneWinner"),
		onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			for _, e := range req.Expect {
				if v, _ := d.StreamVersion(ctx, e.Stream); !e.Expected.Matches(v) {
					return d.AppendMulti(ctx, req) // the driver's own conflict error
				}
			}
			time.Sleep(time.Millisecond) // another appender gets in here
			req.Expect = slices.Clone(req.Expect)
			for i := range req.Expect {
				req.Expect[i].Expected = driver.Expect(driver.ExpectAny, 0)
			}
			return d.AppendMulti(ctx, req)
		})},
	{"MultiAppendIgnoresCheckOnly", "AppendMulti ignores the expectations of streams it does not write", rules("MultiAppendAllOrNothing", "MultiAppendNamesEveryViolation", "MultiAppendRacersHaveOneWinner"),
		onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			req.Expect = slices.DeleteFunc(slices.Clone(req.Expect), func(e driver.StreamExpectation) bool {
				return !slices.ContainsFunc(req.Records, func(r driver.Record) bool { return r.Stream == e.Stream })
			})
			return d.AppendMulti(ctx, req)
		})},
	{"MultiAppendFirstViolationOnly", "a multi-stream conflict names only the first failed stream", rules("MultiAppendNamesEveryViolation"),
		onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			res, err := d.AppendMulti(ctx, req)
			var ce *eventstore.AppendConflictError
			if errors.As(err, &ce) && len(ce.Streams) > 1 {
				ce.Streams = ce.Streams[:1]
			}
			return res, err
		})},
	{"MultiAppendResultFirstPosition", "the multi-stream result's position is the first record's, not the last's", rules("MultiAppendResultDescribesWrite", "MultiAppendContiguousInSliceOrder"),
		onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			res, err := d.AppendMulti(ctx, req)
			if err == nil {
				res.Position.Commit -= uint64(len(req.Records) - 1)
			}
			return res, err
		})},
	{"MultiAppendRetryWritesAgain", "a retried multi-stream append is written again under new IDs", rules("MultiAppendRetryReturnsOriginalResult", "ConditionalRetryReturnsOriginalResult"),
		onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			if hasEvent(ctx, d, req.Records[0].Stream, req.Records[0].Event.ID) {
				req.Records = slices.Clone(req.Records)
				for i := range req.Records {
					req.Records[i].Event.ID = uuid.New()
				}
			}
			return d.AppendMulti(ctx, req)
		})},
	{"MultiAppendLargeSplit", "a multi-stream append over 100 records writes the first 100, then fails as too large", rules("MultiAppendOverLimitFailsWhole"),
		onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			if len(req.Records) <= 100 {
				return d.AppendMulti(ctx, req)
			}
			head := req
			head.Records = req.Records[:100]
			head.Expect = nil
			for _, r := range head.Records {
				if !slices.ContainsFunc(head.Expect, func(e driver.StreamExpectation) bool { return e.Stream == r.Stream }) {
					head.Expect = append(head.Expect, driver.StreamExpectation{Stream: r.Stream, Expected: driver.Expect(driver.ExpectAny, 0)})
				}
			}
			if _, err := d.AppendMulti(ctx, head); err != nil {
				return driver.MultiAppendResult{}, err
			}
			return driver.MultiAppendResult{}, fmt.Errorf("%w: %d records, over 100", eventstore.ErrBatchTooLarge, len(req.Records))
		})},

	// Tags, queries and append conditions.
	{"TagsSorted", "tags are stored sorted, not in the given order", rules("TagsRoundTripEveryPath"),
		func(s *shelf) *mutated {
			sorted := func(e *driver.Event) { e.Tags = slices.Sorted(slices.Values(e.Tags)) }
			return &mutated{Driver: s.d,
				append: func(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
					req.Events = slices.Clone(req.Events)
					for i := range req.Events {
						sorted(&req.Events[i])
					}
					return s.d.Append(ctx, req)
				},
				appendMulti: func(ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
					req.Records = slices.Clone(req.Records)
					for i := range req.Records {
						sorted(&req.Records[i].Event)
					}
					return s.d.AppendMulti(ctx, req)
				}}
		}},
	{"TagsDroppedOnImport", "Import drops event tags", rules("TagsRoundTripEveryPath"),
		onImport(func(d *memory.Driver, ctx context.Context, req driver.ImportRequest) error {
			req.Events = slices.Clone(req.Events)
			for i := range req.Events {
				req.Events[i].Tags = nil
			}
			return d.Import(ctx, req)
		})},
	{"TagsDroppedOnReadStream", "ReadStream returns events without their tags", rules("TagsRoundTripEveryPath"),
		onReadStream(func(d *memory.Driver, ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
			evs, err := d.ReadStream(ctx, q)
			for i := range evs {
				evs[i].Tags = nil
			}
			return evs, err
		})},
	{"ReadQueryAfterInclusive", "ReadQuery includes the event at After", rules("ReadQuerySelectsByTypesAndTags"),
		onReadQuery(func(d *memory.Driver, ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
			if q.After.Commit > 0 {
				q.After.Commit--
			}
			return d.ReadQuery(ctx, q)
		})},
	{"ReadQueryTagsAnyOf", "ReadQuery matches an item when the event has any of its tags, not all", rules("ReadQuerySelectsByTypesAndTags"),
		onReadQuery(func(d *memory.Driver, ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
			q.Query = anyOfTags(q.Query)
			return d.ReadQuery(ctx, q)
		})},
	{"ReadQueryTagsAsPatterns", "ReadQuery reads % and _ in a query's tags as LIKE wildcards", rules("HostileTagsAndTypesMatchExactly"),
		onReadQuery(func(d *memory.Driver, ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
			return queryLike(ctx, d, q)
		})},
	{"ConditionIgnored", "AppendMulti ignores the append condition", rules("ConditionFailsOnlyOnMatchAfterPosition", "ConditionWithoutPositionKeepsNamesUnique", "ConditionRacersHaveOneWinner"),
		onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			req.Condition = nil
			return d.AppendMulti(ctx, req)
		})},
	{"ConditionAfterInclusive", "the condition also fails on a match at After", rules("ConditionFailsOnlyOnMatchAfterPosition"),
		onCondition(func(c *driver.AppendCondition) {
			if c.After.Commit > 0 {
				c.After.Commit--
			}
		})},
	{"ConditionTagsAnyOf", "a condition item matches an event with any of its tags, not all", rules("ConditionFailsOnlyOnMatchAfterPosition"),
		onCondition(func(c *driver.AppendCondition) { c.FailIfEventsMatch = anyOfTags(c.FailIfEventsMatch) })},
	{"ConditionTypesIgnored", "a condition item matches events of any type", rules("ConditionFailsOnlyOnMatchAfterPosition"),
		onCondition(func(c *driver.AppendCondition) {
			items := slices.Clone(c.FailIfEventsMatch.Items)
			for i := range items {
				if len(items[i].Tags) > 0 {
					items[i].Types = nil
				}
			}
			c.FailIfEventsMatch.Items = items
		})},
	{"ConditionFirstItemOnly", "the condition checks only the first item of its query", rules("ConditionFailsOnlyOnMatchAfterPosition"),
		onCondition(func(c *driver.AppendCondition) {
			if len(c.FailIfEventsMatch.Items) > 1 {
				c.FailIfEventsMatch.Items = c.FailIfEventsMatch.Items[:1]
			}
		})},
	{"ConditionCheckThenWrite", "AppendMulti checks the condition with a read, then writes without it", rules("ConditionRacersHaveOneWinner"),
		onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			c := req.Condition
			if c == nil {
				return d.AppendMulti(ctx, req)
			}
			if evs, err := d.ReadQuery(ctx, driver.QueryPage{Query: c.FailIfEventsMatch, After: c.After, Limit: 1}); err != nil || len(evs) > 0 {
				return d.AppendMulti(ctx, req) // the driver's own conflict error
			}
			time.Sleep(time.Millisecond) // another appender gets in here
			req.Condition = nil
			return d.AppendMulti(ctx, req)
		})},
	{"ReadsPassHeldWriter", "reads of the global log and by query pass an append that holds a lower position and has not committed", rules("ConditionGapSafeWithHeldWriter"),
		func(s *shelf) *mutated { return &mutated{Driver: s.d, holdSkips: true} }},
	{"ConditionFailureWithoutSentinel", "a failed condition is reported as a version conflict of the first stream", rules("ConditionFailsOnlyOnMatchAfterPosition", "ConditionRacersHaveOneWinner"),
		onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			res, err := d.AppendMulti(ctx, req)
			if errors.Is(err, eventstore.ErrAppendConditionFailed) {
				e := req.Expect[0]
				v, _ := d.StreamVersion(ctx, e.Stream)
				err = &eventstore.AppendConflictError{Streams: []eventstore.WrongExpectedVersionError{{Stream: e.Stream, Expected: eventstore.ExpectedVersion(e.Expected), Actual: v}}}
			}
			return res, err
		})},
	// Deleting and truncating streams.
	{"DeleteKeepsEvents", "DeleteStream checks the expectation and removes nothing", rules("DeleteStreamRemovesEvents", "DeletedStreamRecreatedAfterLastVersion"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, deleteStream: func(ctx context.Context, stream string, exp driver.ExpectedVersion) error {
				if v, err := s.d.StreamVersion(ctx, stream); err != nil || !exp.Matches(v) {
					return &eventstore.WrongExpectedVersionError{Stream: stream, Expected: eventstore.ExpectedVersion(exp), Actual: v}
				}
				return nil
			}}
		}},
	{"TruncateOneTooMany", "TruncateStream also removes the event at version before", rules("TruncateStreamRemovesOldest"),
		func(s *shelf) *mutated {
			return &mutated{Driver: s.d, truncateStream: func(ctx context.Context, stream string, before uint64) error {
				return s.d.TruncateStream(ctx, stream, before+1)
			}}
		}},
}

func rules(names ...string) []string { return names }

// waitingMutants are caught only when a rule gives up waiting for an event
// (subPatience in subscribe.go, 30 s): their children run outside
// childSlots, as they spend that time idle.
var waitingMutants = map[string]bool{"WatchNeverSignals": true, "CheckpointSavedEarly": true}

// shelf is one storage: the memory driver a mutant wraps, shared by the
// drivers opened over it in the reopen rules.
type shelf struct {
	mu sync.Mutex // protects d
	d  *memory.Driver
}

// mutated is the memory driver with some methods replaced; a nil field
// calls the memory driver's own method.
type mutated struct {
	*memory.Driver
	append            func(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error)
	readStream        func(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error)
	readAll           func(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error)
	streamVersion     func(ctx context.Context, stream string) (uint64, error)
	saveSnapshot      func(ctx context.Context, stream string, snap driver.Snapshot) error
	loadSnapshot      func(ctx context.Context, stream string) (driver.Snapshot, bool, error)
	saveCheckpoint    func(ctx context.Context, name string, pos driver.Position) error
	readAllScan       func(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error)
	checkpoints       func(ctx context.Context) ([]driver.Checkpoint, error)
	deleteStream      func(ctx context.Context, stream string, exp driver.ExpectedVersion) error
	truncateStream    func(ctx context.Context, stream string, before uint64) error
	deleteCheckpoint  func(ctx context.Context, name string) error
	watch             func(ctx context.Context) (<-chan struct{}, error)
	imp               func(ctx context.Context, req driver.ImportRequest) error
	acquireLease      func(ctx context.Context, group, key, owner string, ttl time.Duration) (driver.Lease, bool, error)
	saveLeasePosition func(ctx context.Context, group, key, owner string, generation uint64, pos driver.Position) error
	checkpointTx      func(ctx context.Context, name string, prev driver.Position, hasPrev bool, pos driver.Position, fn func(driver.Tx) error) error
	listStreams       func(ctx context.Context, req driver.ListStreamsRequest) (driver.StreamPage, error)
	appendMulti       func(ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error)
	readQuery         func(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error)
	recyclePage       func(events []driver.RecordedEvent)
	as                func(target any) bool
	close             func() error
	// holdSkips makes the harness open a holdable that reads past held
	// appends instead of this driver (the other fields are then unused).
	holdSkips bool
}

func (m *mutated) Append(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	if m.append != nil {
		return m.append(ctx, req)
	}
	return m.Driver.Append(ctx, req)
}

func (m *mutated) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	if m.readStream != nil {
		return m.readStream(ctx, q)
	}
	return m.Driver.ReadStream(ctx, q)
}

func (m *mutated) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	if m.readAll != nil {
		return m.readAll(ctx, q)
	}
	return m.Driver.ReadAll(ctx, q)
}

func (m *mutated) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if m.streamVersion != nil {
		return m.streamVersion(ctx, stream)
	}
	return m.Driver.StreamVersion(ctx, stream)
}

func (m *mutated) SaveSnapshot(ctx context.Context, stream string, snap driver.Snapshot) error {
	if m.saveSnapshot != nil {
		return m.saveSnapshot(ctx, stream, snap)
	}
	return m.Driver.SaveSnapshot(ctx, stream, snap)
}

func (m *mutated) LoadSnapshot(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
	if m.loadSnapshot != nil {
		return m.loadSnapshot(ctx, stream)
	}
	return m.Driver.LoadSnapshot(ctx, stream)
}

func (m *mutated) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	if m.saveCheckpoint != nil {
		return m.saveCheckpoint(ctx, name, pos)
	}
	return m.Driver.SaveCheckpoint(ctx, name, pos)
}

// ReadAllScan follows a mutant's readAll when it has one, so a bug planted
// in ReadAll reaches filtered reads too.
func (m *mutated) ReadAllScan(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
	switch {
	case m.readAllScan != nil:
		return m.readAllScan(ctx, q)
	case m.readAll != nil:
		page, err := m.readAll(ctx, q)
		p := driver.ScanPage{Events: page, End: !driver.PageFull(page, q.Limit, q.MaxBytes)}
		if len(page) > 0 {
			p.Scanned = page[len(page)-1].Position
		}
		return p, err
	}
	return m.Driver.ReadAllScan(ctx, q)
}

func (m *mutated) DeleteStream(ctx context.Context, stream string, exp driver.ExpectedVersion) error {
	if m.deleteStream != nil {
		return m.deleteStream(ctx, stream, exp)
	}
	return m.Driver.DeleteStream(ctx, stream, exp)
}

func (m *mutated) TruncateStream(ctx context.Context, stream string, before uint64) error {
	if m.truncateStream != nil {
		return m.truncateStream(ctx, stream, before)
	}
	return m.Driver.TruncateStream(ctx, stream, before)
}

func (m *mutated) Checkpoints(ctx context.Context) ([]driver.Checkpoint, error) {
	if m.checkpoints != nil {
		return m.checkpoints(ctx)
	}
	return m.Driver.Checkpoints(ctx)
}

func (m *mutated) DeleteCheckpoint(ctx context.Context, name string) error {
	if m.deleteCheckpoint != nil {
		return m.deleteCheckpoint(ctx, name)
	}
	return m.Driver.DeleteCheckpoint(ctx, name)
}

func (m *mutated) Watch(ctx context.Context) (<-chan struct{}, error) {
	if m.watch != nil {
		return m.watch(ctx)
	}
	return m.Driver.Watch(ctx)
}

func (m *mutated) Import(ctx context.Context, req driver.ImportRequest) error {
	if m.imp != nil {
		return m.imp(ctx, req)
	}
	return m.Driver.Import(ctx, req)
}

func (m *mutated) AcquireLease(ctx context.Context, group, key, owner string, ttl time.Duration) (driver.Lease, bool, error) {
	if m.acquireLease != nil {
		return m.acquireLease(ctx, group, key, owner, ttl)
	}
	return m.Driver.AcquireLease(ctx, group, key, owner, ttl)
}

func (m *mutated) SaveLeasePosition(ctx context.Context, group, key, owner string, generation uint64, pos driver.Position) error {
	if m.saveLeasePosition != nil {
		return m.saveLeasePosition(ctx, group, key, owner, generation, pos)
	}
	return m.Driver.SaveLeasePosition(ctx, group, key, owner, generation, pos)
}

func (m *mutated) CheckpointTx(ctx context.Context, name string, prev driver.Position, hasPrev bool, pos driver.Position, fn func(driver.Tx) error) error {
	if m.checkpointTx != nil {
		return m.checkpointTx(ctx, name, prev, hasPrev, pos, fn)
	}
	return m.Driver.CheckpointTx(ctx, name, prev, hasPrev, pos, fn)
}

func (m *mutated) ListStreams(ctx context.Context, req driver.ListStreamsRequest) (driver.StreamPage, error) {
	if m.listStreams != nil {
		return m.listStreams(ctx, req)
	}
	return m.Driver.ListStreams(ctx, req)
}

func (m *mutated) AppendMulti(ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
	if m.appendMulti != nil {
		return m.appendMulti(ctx, req)
	}
	return m.Driver.AppendMulti(ctx, req)
}

func (m *mutated) ReadQuery(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	if m.readQuery != nil {
		return m.readQuery(ctx, q)
	}
	return m.Driver.ReadQuery(ctx, q)
}

func (m *mutated) As(target any) bool { return m.as != nil && m.as(target) }

// RecyclePage makes every mutant a driver.PageRecycler; without a hook it
// does nothing, and the Store's pages are garbage as with the memory
// driver.
func (m *mutated) RecyclePage(events []driver.RecordedEvent) {
	if m.recyclePage != nil {
		m.recyclePage(events)
	}
}

func (m *mutated) Close() error {
	if m.close != nil {
		return m.close()
	}
	return m.Driver.Close()
}

func onAppend(f func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error)) func(*shelf) *mutated {
	return func(s *shelf) *mutated {
		return &mutated{Driver: s.d, append: func(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
			return f(s.d, ctx, req)
		}}
	}
}

// onEvents changes a copy of each appended event before it is stored.
func onEvents(change func(e *driver.Event)) func(*shelf) *mutated {
	return onAppend(func(d *memory.Driver, ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
		req.Events = slices.Clone(req.Events)
		for i := range req.Events {
			change(&req.Events[i])
		}
		return d.Append(ctx, req)
	})
}

func onReadStream(f func(d *memory.Driver, ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error)) func(*shelf) *mutated {
	return func(s *shelf) *mutated {
		return &mutated{Driver: s.d, readStream: func(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
			return f(s.d, ctx, q)
		}}
	}
}

func onReadAll(f func(d *memory.Driver, ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error)) func(*shelf) *mutated {
	return func(s *shelf) *mutated {
		return &mutated{Driver: s.d, readAll: func(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
			return f(s.d, ctx, q)
		}}
	}
}

func onImport(f func(d *memory.Driver, ctx context.Context, req driver.ImportRequest) error) func(*shelf) *mutated {
	return func(s *shelf) *mutated {
		return &mutated{Driver: s.d, imp: func(ctx context.Context, req driver.ImportRequest) error { return f(s.d, ctx, req) }}
	}
}

func onListStreams(f func(d *memory.Driver, ctx context.Context, req driver.ListStreamsRequest) (driver.StreamPage, error)) func(*shelf) *mutated {
	return func(s *shelf) *mutated {
		return &mutated{Driver: s.d, listStreams: func(ctx context.Context, req driver.ListStreamsRequest) (driver.StreamPage, error) {
			return f(s.d, ctx, req)
		}}
	}
}

func onAppendMulti(f func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error)) func(*shelf) *mutated {
	return func(s *shelf) *mutated {
		return &mutated{Driver: s.d, appendMulti: func(ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
			return f(s.d, ctx, req)
		}}
	}
}

func onReadQuery(f func(d *memory.Driver, ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error)) func(*shelf) *mutated {
	return func(s *shelf) *mutated {
		return &mutated{Driver: s.d, readQuery: func(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
			return f(s.d, ctx, q)
		}}
	}
}

// onCondition changes a copy of the append condition before AppendMulti
// checks it.
func onCondition(change func(c *driver.AppendCondition)) func(*shelf) *mutated {
	return onAppendMulti(func(d *memory.Driver, ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
		if req.Condition != nil {
			c := *req.Condition
			change(&c)
			req.Condition = &c
		}
		return d.AppendMulti(ctx, req)
	})
}

// anyOfTags splits each item of q with several tags into one item per tag,
// so an event matches when it has any of them.
// queryLike is ReadQuery over the whole log after q.After with the tags of
// q's items read as LIKE patterns (% any run, _ any one character), as a
// driver that builds LIKE from tags without escaping them would.
func queryLike(ctx context.Context, d *memory.Driver, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	evs, err := d.ReadAll(ctx, driver.AllQuery{After: q.After, Limit: math.MaxInt32})
	if err != nil {
		return nil, err
	}
	like := func(pattern, tag string) bool {
		re := regexp.QuoteMeta(pattern)
		re = strings.NewReplacer("%", ".*", "_", ".").Replace(re)
		ok, _ := regexp.MatchString("^(?s:"+re+")$", tag)
		return ok
	}
	var out []driver.RecordedEvent
	for _, ev := range evs {
		for _, it := range q.Query.Items {
			if (len(it.Types) == 0 || slices.Contains(it.Types, ev.Type)) && !slices.ContainsFunc(it.Tags, func(p string) bool {
				return !slices.ContainsFunc(ev.Tags, func(t string) bool { return like(p, t) })
			}) {
				out = append(out, ev)
				break
			}
		}
		if len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

func anyOfTags(q driver.Query) driver.Query {
	var out driver.Query
	for _, it := range q.Items {
		if len(it.Tags) <= 1 {
			out.Items = append(out.Items, it)
			continue
		}
		for _, t := range it.Tags {
			out.Items = append(out.Items, driver.QueryItem{Types: it.Types, Tags: []string{t}})
		}
	}
	return out
}

// onRead changes every event that either read returns.
func onRead(change func(ev *driver.RecordedEvent)) func(*shelf) *mutated {
	return func(s *shelf) *mutated { return readHook(s, change) }
}

func readHook(s *shelf, change func(ev *driver.RecordedEvent)) *mutated {
	each := func(evs []driver.RecordedEvent, err error) ([]driver.RecordedEvent, error) {
		for i := range evs {
			change(&evs[i])
		}
		return evs, err
	}
	return &mutated{Driver: s.d,
		readStream: func(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
			return each(s.d.ReadStream(ctx, q))
		},
		readAll: func(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
			return each(s.d.ReadAll(ctx, q))
		},
	}
}

// filterBy replaces ReadAll's filter with match.
func filterBy(match func(f driver.Filter, ev driver.RecordedEvent) bool) func(*shelf) *mutated {
	return onReadAll(func(d *memory.Driver, ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
		limit, filter := q.Limit, q.Filter
		q.Limit, q.Filter = math.MaxInt, driver.Filter{}
		evs, err := d.ReadAll(ctx, q)
		evs = slices.DeleteFunc(evs, func(ev driver.RecordedEvent) bool { return !match(filter, ev) })
		return evs[:min(limit, len(evs))], err
	})
}

func hasEvent(ctx context.Context, d *memory.Driver, stream string, id uuid.UUID) bool {
	evs, _ := d.ReadStream(ctx, driver.StreamQuery{Stream: stream, From: 1, Limit: math.MaxInt})
	return slices.ContainsFunc(evs, func(ev driver.RecordedEvent) bool { return ev.ID == id })
}

// mutantHarness makes drivers with one mutant's bug (none for nil).
type mutantHarness struct{ m *mutant }

func (h mutantHarness) open(s *shelf) driver.Driver {
	if h.m == nil {
		return &holdable{Driver: s.d}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := h.m.wrap(s)
	if m.holdSkips {
		return &holdable{Driver: s.d, skip: true}
	}
	return m
}

// HoldAppend implements conformance.WriterHolder for the control and the
// mutant that reads past a held append: see holdable.
func (h mutantHarness) HoldAppend(t testing.TB, d driver.Driver, req driver.AppendRequest) func() error {
	hd, ok := d.(*holdable)
	if !ok {
		t.Skipf("conformance.WriterHolder: only the control and ReadsPassHeldWriter hold appends, not mutant %s", h.m.name)
	}
	return hd.hold(t, req)
}

// holdable is the memory driver with appends that can be held, as on a
// backend whose appends take positions before they commit: a held append's
// events are in the log, at their positions, but no read returns them
// until it commits. Forward reads of the global log (ReadAll, ReadAllScan,
// ReadQuery) stop before the lowest held position, as PostgreSQL's fence
// does; with skip set they pass it, returning later events (the bug the
// rule ConditionGapSafeWithHeldWriter catches).
type holdable struct {
	*memory.Driver
	skip bool

	mu   sync.Mutex // protects held
	held map[uuid.UUID]driver.Position
}

func (h *holdable) hold(t testing.TB, req driver.AppendRequest) func() error {
	res, err := h.Driver.Append(context.Background(), req)
	if err != nil {
		t.Fatalf("hold an append to %q: %v", req.Stream, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held == nil {
		h.held = map[uuid.UUID]driver.Position{}
	}
	for i, e := range req.Events {
		h.held[e.ID] = driver.Position{Commit: res.Position.Commit - uint64(len(req.Events)-1-i)}
	}
	return func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, e := range req.Events {
			delete(h.held, e.ID)
		}
		return nil
	}
}

// visible drops held events from evs; for a forward read of the log
// (fence), also every event after the lowest held position, unless skip.
func (h *holdable) visible(evs []driver.RecordedEvent, fence bool) ([]driver.RecordedEvent, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.held) == 0 {
		return evs, false
	}
	var lowest driver.Position
	for _, p := range h.held {
		if lowest.IsZero() || p.Less(lowest) {
			lowest = p
		}
	}
	cut := false
	out := evs[:0:0]
	for _, ev := range evs {
		switch {
		case fence && !h.skip && !ev.Position.Less(lowest):
			cut = true
		case h.held[ev.ID] != driver.Position{}:
		default:
			out = append(out, ev)
		}
	}
	return out, cut
}

func (h *holdable) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	evs, err := h.Driver.ReadStream(ctx, q)
	evs, _ = h.visible(evs, false)
	return evs, err
}

func (h *holdable) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	evs, err := h.Driver.ReadAll(ctx, q)
	evs, _ = h.visible(evs, !q.Backwards)
	return evs, err
}

func (h *holdable) ReadAllScan(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
	p, err := h.Driver.ReadAllScan(ctx, q)
	var cut bool
	if p.Events, cut = h.visible(p.Events, true); cut {
		p.Scanned, p.End = q.After, true
		if len(p.Events) > 0 {
			p.Scanned = p.Events[len(p.Events)-1].Position
		}
	}
	return p, err
}

func (h *holdable) ReadQuery(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	evs, err := h.Driver.ReadQuery(ctx, q)
	evs, _ = h.visible(evs, true)
	return evs, err
}

func (h mutantHarness) NewDriver(testing.TB) driver.Driver {
	return h.open(&shelf{d: memory.New()})
}

func (h mutantHarness) Unsupported() map[conformance.Feature]string { return nil }

// NewStorage implements conformance.Reopener: every driver opened shares
// the shelf's memory driver (a mutant may swap it).
func (h mutantHarness) NewStorage(testing.TB) func() driver.Driver {
	s := &shelf{d: memory.New()}
	return func() driver.Driver { return h.open(s) }
}

// TestMutantChild runs the suite against the mutant named by mutantEnv; it
// runs only in the child processes TestMutants starts.
func TestMutantChild(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skipf("runs only in a child process of TestMutants, with %s set", mutantEnv)
	}
	h := mutantHarness{}
	if name != "control" {
		i := slices.IndexFunc(mutants, func(m mutant) bool { return m.name == name })
		if i < 0 {
			t.Fatalf("%s=%q: no such mutant", mutantEnv, name)
		}
		h.m = &mutants[i]
	}
	conformance.Run(t, h)
}

var resultLine = regexp.MustCompile(`(?m)^\s*--- (PASS|FAIL|SKIP): TestMutantChild/([^/\s]+) `)

// childRun is what one child process reported: each rule's result (PASS,
// FAIL or SKIP) and its whole output.
type childRun struct {
	results map[string]string
	out     string
}

// runChild runs the named rules (all when nil) against the mutant in a
// child process.
func runChild(ctx context.Context, name string, ruleNames []string) childRun {
	run := "^TestMutantChild$"
	if ruleNames != nil {
		run += "/^(" + strings.Join(ruleNames, "|") + ")$"
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run="+run, "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), mutantEnv+"="+name)
	out, _ := cmd.CombinedOutput() // a failing child exits non-zero
	r := childRun{results: map[string]string{}, out: string(out)}
	for _, m := range resultLine.FindAllStringSubmatch(r.out, -1) {
		r.results[m[2]] = m[1]
	}
	return r
}

// TestMutants runs each mutant against the rules that must catch it, in a
// child process, and the unchanged memory driver against all of them.
// With EVENTSTORE_CONFORMANCE_MUTANTS_ALL=1 it runs every rule against each
// mutant and logs those that fail, to choose the rules of a new mutant (a
// rule that only times out on a mutant shows up as a missing result).
func TestMutants(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skipf("a child process of TestMutants (%s is set)", mutantEnv)
	}
	if len(mutants) < 40 {
		t.Errorf("want at least 40 mutants, have %d", len(mutants))
	}
	all := map[string]bool{}
	for _, m := range mutants {
		if len(m.rules) == 0 {
			t.Errorf("mutant %s names no rule that catches it", m.name)
		}
		for _, r := range m.rules {
			all[r] = true
		}
	}
	everyRule := slices.Sorted(maps.Keys(all))
	discover := os.Getenv("EVENTSTORE_CONFORMANCE_MUTANTS_ALL") == "1"

	// Start every child first: the waiting ones at once, as they idle, the
	// others a few at a time.
	runs := make([]chan childRun, len(mutants))
	slots := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	start := func(name string, only []string, slot bool) chan childRun {
		ch := make(chan childRun, 1)
		wg.Go(func() {
			if slot {
				slots <- struct{}{}
				defer func() { <-slots }()
			}
			ch <- runChild(t.Context(), name, only)
		})
		return ch
	}
	for i, m := range mutants {
		if waitingMutants[m.name] {
			runs[i] = start(m.name, m.rules, false)
		}
	}
	control := start("control", everyRule, true)
	for i, m := range mutants {
		if runs[i] == nil {
			only := m.rules
			if discover {
				only = nil
			}
			runs[i] = start(m.name, only, true)
		}
	}
	defer wg.Wait()

	t.Run("control", func(t *testing.T) {
		r := <-control
		for _, rule := range everyRule {
			if r.results[rule] != "PASS" {
				t.Errorf("rule %s on the unchanged memory driver: want PASS, got %q\n%s", rule, r.results[rule], tail(r.out))
			}
		}
	})
	for i, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			r := <-runs[i]
			if strings.Contains(r.out, "WARNING: DATA RACE") {
				t.Errorf("mutant %s: a data race, which fails rules whatever the bug\n%s", m.name, tail(r.out))
			}
			for _, rule := range m.rules {
				if r.results[rule] != "FAIL" {
					t.Errorf("mutant %s (%s): want rule %s to fail, got %q\n%s", m.name, m.bug, rule, r.results[rule], tail(r.out))
				}
			}
			if discover {
				var failed []string
				for rule, res := range r.results {
					if res == "FAIL" {
						failed = append(failed, rule)
					}
				}
				sort.Strings(failed)
				t.Logf("mutant %s fails %d rules: %s", m.name, len(failed), strings.Join(failed, ", "))
			}
		})
	}
}

// tail returns the end of a child's output, for a failure message.
func tail(out string) string {
	const most = 4000
	if len(out) > most {
		return "…" + out[len(out)-most:]
	}
	return out
}

// mutantsDoc is the documentation of the mutants, relative to this package.
const mutantsDoc = "../docs/conformance-mutants.md"

// mutantRows returns the table rows mutantsDoc must hold, one per mutant.
func mutantRows() []string {
	rows := make([]string, len(mutants))
	for i, m := range mutants {
		rules := make([]string, len(m.rules))
		for j, r := range m.rules {
			rules[j] = "`" + r + "`"
		}
		rows[i] = fmt.Sprintf("| `%s` | %s | %s |", m.name, m.bug, strings.Join(rules, ", "))
	}
	return rows
}

// TestMutantsDocumented checks the table in docs/conformance-mutants.md
// matches the mutants above, row for row.
func TestMutantsDocumented(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skipf("a child process of TestMutants (%s is set)", mutantEnv)
	}
	doc, err := os.ReadFile(mutantsDoc)
	if err != nil {
		t.Fatalf("read the mutant table: %v", err)
	}
	var got []string
	for line := range strings.Lines(string(doc)) {
		if strings.HasPrefix(line, "| `") {
			got = append(got, strings.TrimRight(line, "\n"))
		}
	}
	if want := mutantRows(); !slices.Equal(got, want) {
		t.Errorf("%s: the table differs from the mutants in mutants_test.go; its rows should be:\n%s", mutantsDoc, strings.Join(want, "\n"))
	}
}
