package eventstore

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/eventkit/eventstore/driver"
)

// Checkpoint is a subscription's stored checkpoint: the name it is saved
// under (see [CheckpointName]) and the position of the last event the
// subscription handled.
type Checkpoint struct {
	Name     string
	Position Position
}

// Checkpoints returns every checkpoint stored in the store, sorted by name:
// one per durable subscription, and one per member of a consumer group
// ("$orders[0/2]").
//
// Errors: [ErrNotSupported] when the driver cannot list checkpoints (every
// driver here can), [ErrClosed], the context's error.
func (s *Store) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	var cps []driver.Checkpoint
	err := s.do(ctx, func() (err error) {
		if s.checkpoints == nil {
			return ErrNotSupported
		}
		cps, err = s.checkpoints.Checkpoints(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: checkpoints: %w", err)
	}
	out := make([]Checkpoint, len(cps))
	for i, c := range cps {
		out[i] = Checkpoint{Name: c.Name, Position: Position(c.Position)}
	}
	return out, nil
}

// Checkpoint returns the checkpoint stored under name; ok is false when there
// is none. name is a subscription name, or a group member's checkpoint name
// as [CheckpointName] forms it.
func (s *Store) Checkpoint(ctx context.Context, name string) (pos Position, ok bool, err error) {
	wrap := func(err error) error { return fmt.Errorf("eventstore: checkpoint %q: %w", name, err) }
	if err := validateCheckpointName(name); err != nil {
		return Position{}, false, wrap(err)
	}
	var p driver.Position
	err = s.do(ctx, func() (err error) {
		p, ok, err = s.driver.LoadCheckpoint(ctx, name)
		return err
	})
	if err != nil {
		return Position{}, false, wrap(err)
	}
	return Position(p), ok, nil
}

// SetCheckpoint stores pos as the checkpoint under name: a durable
// subscription of that name started afterwards resumes after pos. Use it to
// rewind a subscription (replay from an earlier position) or to skip ahead.
// Stop the subscription first: a running one saves its own position over
// it after its next batch.
func (s *Store) SetCheckpoint(ctx context.Context, name string, pos Position) error {
	wrap := func(err error) error { return fmt.Errorf("eventstore: set checkpoint %q: %w", name, err) }
	if err := validateCheckpointName(name); err != nil {
		return wrap(err)
	}
	if err := s.do(ctx, func() error { return s.driver.SaveCheckpoint(ctx, name, driver.Position(pos)) }); err != nil {
		return wrap(err)
	}
	return nil
}

// DeleteCheckpoint removes the checkpoint stored under name, so that a
// durable subscription of that name starts again as if new (from its
// After, or the end with FromEnd). Deleting a checkpoint that does not
// exist is not an error. Stop the subscription first: a running one saves
// its checkpoint again.
//
// Errors: [ErrNotSupported] when the driver cannot delete checkpoints,
// [ErrInvalidArgument] for a bad name, [ErrClosed], the context's error.
func (s *Store) DeleteCheckpoint(ctx context.Context, name string) error {
	wrap := func(err error) error { return fmt.Errorf("eventstore: delete checkpoint %q: %w", name, err) }
	if err := validateCheckpointName(name); err != nil {
		return wrap(err)
	}
	err := s.do(ctx, func() error {
		if s.checkpoints == nil {
			return ErrNotSupported
		}
		return s.checkpoints.DeleteCheckpoint(ctx, name)
	})
	if err != nil {
		return wrap(err)
	}
	return nil
}

// memberCheckpoint matches a group member's checkpoint name, "$name[m/n]".
var memberCheckpoint = regexp.MustCompile(`^\$(.+)\[(0|[1-9][0-9]*)/([1-9][0-9]*)\]$`)

// validateCheckpointName accepts a subscription name, or a group member's
// checkpoint name as CheckpointName forms it.
func validateCheckpointName(name string) error {
	m := memberCheckpoint.FindStringSubmatch(name)
	if m == nil {
		return validateName(ErrInvalidArgument, "checkpoint name", name)
	}
	member, err1 := strconv.Atoi(m[2])
	size, err2 := strconv.Atoi(m[3])
	if err1 != nil || err2 != nil || size < 2 || member >= size {
		return invalid(ErrInvalidArgument, "checkpoint name %q: want member below size, and size at least 2", name)
	}
	if CheckpointName(m[1], Group{Member: member, Size: size}) != name {
		return invalid(ErrInvalidArgument, "checkpoint name %q is not in the form CheckpointName gives", name)
	}
	return validateName(ErrInvalidArgument, "checkpoint name", m[1])
}
