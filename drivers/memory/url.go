package memory

import (
	"context"
	"fmt"
	"net/url"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Scheme is the URL scheme of this driver.
const Scheme = "memory"

func init() { eventstore.Register(Scheme, openURL) }

// openURL opens "memory://": every Open is a new, empty store. The only
// parameter is must_exist: a memory store exists only inside the driver that
// holds it, so no URL names an existing one, and must_exist=true always
// fails with eventstore.ErrStoreNotFound.
func openURL(_ context.Context, u *url.URL, _ driver.OpenOptions) (driver.Driver, error) {
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("memory: %w: the URL takes no host, path or user: use memory://", eventstore.ErrInvalidArgument)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("memory: %w: malformed query: %v", eventstore.ErrInvalidArgument, err)
	}
	mustExist := false
	for key, vals := range q {
		if key != eventstore.MustExistParam {
			return nil, fmt.Errorf("memory: %w: unknown parameter %q (known: %s)", eventstore.ErrInvalidArgument, key, eventstore.MustExistParam)
		}
		if len(vals) != 1 {
			return nil, fmt.Errorf("memory: %w: parameter %q given %d times", eventstore.ErrInvalidArgument, key, len(vals))
		}
		switch vals[0] {
		case "true":
			mustExist = true
		case "false":
		default:
			return nil, fmt.Errorf("memory: %w: %s=%q: want true or false", eventstore.ErrInvalidArgument, key, vals[0])
		}
	}
	if mustExist {
		return nil, fmt.Errorf("memory: %w: a memory store exists only in the driver that holds it; a URL always opens a new one", eventstore.ErrStoreNotFound)
	}
	return New(), nil
}
