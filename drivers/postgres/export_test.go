package postgres

// Hooks for the external tests (package postgres_test).

// ListenerPID returns the backend PID of d's listening connection, 0 when
// it is not connected.
func ListenerPID(d *Driver) uint32 { return d.listenerPID() }

// SetRetryHook makes d call f with the error before each retried append attempt.
func SetRetryHook(d *Driver, f func(err error)) { d.retryHook = f }

// SetNotifyMode selects where appends send their notification: "in-tx",
// "after-commit" or "never" (see notifyMode). It returns a func restoring the
// previous mode. Not safe while appends run.
func SetNotifyMode(mode string) (restore func()) {
	old := notifyMode
	notifyMode = map[string]int{"in-tx": notifyInTx, "after-commit": notifyAfterCommit, "never": notifyNever}[mode]
	return func() { notifyMode = old }
}
