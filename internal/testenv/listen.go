package testenv

import (
	"net"
	"sync"
	"testing"
)

// FakeServer listens on 127.0.0.1, runs serve on each accepted connection
// until t ends and returns the listener's address (host:port). When t ends
// it closes the listener and every connection and waits for serve to return.
func FakeServer(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // protects conns
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serve(c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// SilentServer is a [FakeServer] that accepts connections and never sends a
// byte: a server that hangs, for testing timeouts.
func SilentServer(t testing.TB) string {
	t.Helper()
	return FakeServer(t, func(net.Conn) {})
}

// ClosedAddr returns an address (host:port) on 127.0.0.1 where nothing
// listens.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
