// Package console is the web console of evs serve: server-rendered pages
// over an [eventstore.Store] to browse streams, events and the global log,
// follow the log live (server-sent events), see the subscriptions and their
// lag, and scrape /metrics.
//
// # Pages
//
//	/streams        streams by prefix or category, paged (Store.ListStreams);
//	                a form to open a stream by ID when the driver cannot list
//	/stream         one stream's events, paged by version, newest or oldest first
//	/event          one event: data (JSON pretty-printed, binary as hex), metadata
//	/log            the global log with category and type filters, paged by position
//	/tail           the global log live, from now on (/tail/events is the stream)
//	/subscriptions  checkpoints with their lag, consumer-group leases
//	/metrics        Prometheus text exposition
//
// # Security
//
// The console is read-only. With [Config.Token] set, every request but the
// login form and the static files needs the token, as an Authorization:
// Bearer header or the cookie the login form sets; without it, only
// requests naming a loopback host are served (no DNS rebinding). Every page
// carries a strict Content-Security-Policy (scripts only from /static, no
// inline script or handlers); event data, stream IDs and types are escaped
// by html/template or set as text by the script. The store URL is shown only
// through [eventstore.RedactURL].
//
// Pages write their rows as they read them: no page holds a whole stream or
// log in memory.
package console
