package memory

import (
	"context"
	"fmt"
	"net/url"

	"github.com/eventkit/eventstore"
)

// Scheme is the URL scheme of this driver.
const Scheme = "memory"

func init() { eventstore.Register(Scheme, openURL) }

// openURL opens "memory://": every Open is a new, empty store.
func openURL(_ context.Context, u *url.URL) (eventstore.Driver, error) {
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Opaque != "" {
		return nil, fmt.Errorf("memory: %w: the URL takes no host, path or parameters: use memory://", eventstore.ErrInvalidArgument)
	}
	return New(), nil
}
