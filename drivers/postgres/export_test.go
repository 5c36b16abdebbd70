package postgres

// Hooks for the external tests (package postgres_test).

// ListenerPID returns the backend PID of d's listening connection, 0 when
// it is not connected.
func ListenerPID(d *Driver) uint32 { return d.listenerPID() }

// SetRetryHook makes d call f with the error before each retried append attempt.
func SetRetryHook(d *Driver, f func(err error)) { d.retryHook = f }

// SetNotifyInTx selects where appends send their notification (see
// notifyInTx) and returns the previous setting. Not safe while appends run.
func SetNotifyInTx(v bool) (old bool) { old, notifyInTx = notifyInTx, v; return old }
