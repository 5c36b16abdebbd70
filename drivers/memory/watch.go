package memory

import "context"

// Watch implements [driver.Watcher]: appends signal every watcher.
func (d *Driver) Watch(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	d.mu.Lock()
	d.watchers[ch] = struct{}{}
	d.mu.Unlock()
	context.AfterFunc(ctx, func() {
		d.mu.Lock()
		delete(d.watchers, ch)
		d.mu.Unlock()
	})
	return ch, nil
}

// signal wakes every watcher; d.mu is held.
func (d *Driver) signal() {
	for ch := range d.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
