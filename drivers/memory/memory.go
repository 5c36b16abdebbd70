package memory

import (
	"sync"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

// Driver is the in-memory driver. Use [New] or the "memory://" URL.
type Driver struct {
	txMu        sync.Mutex   // serialises CheckpointTx calls
	mu          sync.RWMutex // protects everything below
	log         []driver.RecordedEvent
	streams     map[string][]int             // stream → indexes into log, by version; -1 once removed
	first       map[string]uint64            // stream → first version not removed, when above 1
	deleted     map[string]bool              // streams deleted and not appended to since
	retention   map[string]driver.Retention  // stream → its retention setting
	ids         map[string]map[uuid.UUID]int // stream → event ID → index into log
	snapshots   map[string]driver.Snapshot   // stream → latest snapshot
	checkpoints map[string]driver.Position
	leases      map[leaseKey]driver.Lease
	watchers    map[chan struct{}]struct{}
}

// New returns an empty in-memory driver. Pass it to [eventstore.New]. It
// always creates a store, so it has no MustExist option: to share a store,
// share the driver.
func New() *Driver {
	return &Driver{
		streams:     map[string][]int{},
		first:       map[string]uint64{},
		deleted:     map[string]bool{},
		retention:   map[string]driver.Retention{},
		ids:         map[string]map[uuid.UUID]int{},
		snapshots:   map[string]driver.Snapshot{},
		checkpoints: map[string]driver.Position{},
		leases:      map[leaseKey]driver.Lease{},
		watchers:    map[chan struct{}]struct{}{},
	}
}

var (
	_ driver.Driver            = (*Driver)(nil)
	_ driver.Watcher           = (*Driver)(nil)
	_ driver.CheckpointManager = (*Driver)(nil)
	_ driver.ScanReader        = (*Driver)(nil)
	_ driver.Leaser            = (*Driver)(nil)
	_ driver.CheckpointTxer    = (*Driver)(nil)
	_ driver.StreamLister      = (*Driver)(nil)
)

// Close implements [driver.Driver]. It drops nothing: the Store stops
// calling the driver, and the memory is freed with it.
func (d *Driver) Close() error { return nil }

// SystemName implements [driver.SystemNamer]: memory.
func (d *Driver) SystemName() string { return "memory" }
