package sqlite

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// schemaFiles holds the schema, one file per version: schema/NNN_name.sql
// upgrades a file from version NNN-1 to NNN. The version of a file is kept in
// PRAGMA user_version (0 for a new file). Released files never change; a
// schema change is a new file.
//
//go:embed schema/*.sql
var schemaFiles embed.FS

// migrations is the embedded schema, in version order.
var migrations = mustLoadMigrations(schemaFiles)

// migration upgrades the schema from version-1 to version.
type migration struct {
	version int
	name    string
	sql     string
}

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

// loadMigrations reads schema/NNN_name.sql files from fsys; their numbers
// must run 1, 2, 3… without gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "schema/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names { // Glob sorts, and numbers have a fixed width
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 3 {
			return nil, fmt.Errorf("sqlite: schema file %s: want NNN_name.sql", name)
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("sqlite: schema file %s: want version %d", name, len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("sqlite: no schema files")
	}
	return ms, nil
}

// checkStore reports, reading only, whether the connection's file holds an
// event store at the last version of ms: a file with no store (empty,
// another application's database, not an SQLite database) gives an error
// matching eventstore.ErrStoreNotFound, and one at another version
// ErrSchemaVersion. Opening with MustExist runs it before anything that
// could write.
func (d *Driver) checkStore(ctx context.Context, w *writer, ms []migration) error {
	latest := ms[len(ms)-1].version
	var v, tables int
	err := d.whileBusy(ctx, func() error { // see migrate
		return w.conn.QueryRowContext(ctx, `SELECT (SELECT user_version FROM pragma_user_version),
			(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events')`).Scan(&v, &tables)
	})
	switch {
	case isNotADB(err):
		return notADB(err)
	case err != nil:
		return mapError(err, nil)
	case v == 0 || tables == 0:
		return fmt.Errorf("%w: the file holds no event store (schema version %d)", eventstore.ErrStoreNotFound, v)
	case v > latest:
		return fmt.Errorf("%w: the file has schema version %d but this driver knows versions up to %d: open it with a newer release", ErrSchemaVersion, v, latest)
	case v < latest:
		return fmt.Errorf("%w: the file has schema version %d, older than this driver's %d: upgrading it is a write, which must_exist does not do; open it once without must_exist", ErrSchemaVersion, v, latest)
	}
	return nil
}

// isNotADB reports whether err is SQLite's SQLITE_NOTADB: the file is not
// an SQLite database.
func isNotADB(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrNotADB
}

// notADB is the error of MustExist for a file that is not a database.
func notADB(err error) error {
	return fmt.Errorf("%w: not an SQLite database: %w", eventstore.ErrStoreNotFound, err)
}

// migrate brings the file's schema to the last version of ms. An up-to-date
// file needs only a read, so opening does not wait for another process's
// write. Otherwise the upgrade runs in one write transaction, and the version
// is read again inside it: several processes opening a new file at once
// create the schema exactly once. A file with a newer version than ms knows
// is refused with ErrSchemaVersion.
func (d *Driver) migrate(ctx context.Context, w *writer, ms []migration) error {
	latest := ms[len(ms)-1].version
	version := func() (int, error) {
		var v int
		if err := w.conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return 0, mapError(err, nil)
		}
		if v > latest {
			return 0, fmt.Errorf("%w: the file has schema version %d but this driver knows versions up to %d: open it with a newer release", ErrSchemaVersion, v, latest)
		}
		return v, nil
	}
	// The write connection does not wait for locks itself (busy_timeout
	// 0), and this read, outside a write transaction, meets one while
	// another connection creates the file's WAL index: wait for it here.
	var v int
	err := d.whileBusy(ctx, func() error {
		var err error
		v, err = version()
		return err
	})
	if err != nil || v == latest {
		return err
	}
	if err := d.begin(ctx, w); err != nil {
		return mapError(err, nil)
	}
	err = func() error {
		v, err := version()
		if err != nil {
			return err
		}
		for _, m := range ms[v:] {
			if _, err := w.conn.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("schema %s: %w", m.name, mapError(err, nil))
			}
		}
		if v < latest {
			// PRAGMA takes no parameters; latest is a number we control.
			if _, err := w.conn.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(latest)); err != nil {
				return mapError(err, nil)
			}
		}
		_, err = w.commit.ExecContext(ctx)
		return mapError(err, nil)
	}()
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		w.rollback.ExecContext(rctx)
	}
	return err
}
