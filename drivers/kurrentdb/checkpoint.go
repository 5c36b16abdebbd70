package kurrentdb

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// checkpointData is the data of a checkpoint event.
type checkpointData struct {
	Position driver.Position `json:"position"`
}

// SaveCheckpoint implements [driver.Driver].
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	data, _ := json.Marshal(checkpointData{Position: pos})
	err := d.appendInternal(ctx, CheckpointStream(d.opts.Namespace, name), kdb.Any{}, kdb.EventData{
		EventID: uuid.New(), EventType: checkpointType, ContentType: kdb.ContentTypeJson, Data: data,
	})
	return wrapError(ctx, err)
}

// LoadCheckpoint implements [driver.Driver].
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	last, ok, err := d.lastInternal(ctx, CheckpointStream(d.opts.Namespace, name))
	if err != nil || !ok {
		return driver.Position{}, false, wrapError(ctx, err)
	}
	var c checkpointData
	if err := json.Unmarshal(last.Data, &c); err != nil {
		return driver.Position{}, false, fmt.Errorf("kurrentdb: checkpoint %q: bad data: %w", name, err)
	}
	return c.Position, true, nil
}
