package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/eventkit/eventstore/driver"
)

// The keys of data subjects ([driver.KeyStore]) are rows of subject_keys
// (schema version 7), apart from the events. Reads use the read pool;
// creating and deleting a key are writes on the write connection.

var _ driver.KeyStore = (*Driver)(nil)

const (
	queryLoadKey   = "SELECT key FROM subject_keys WHERE subject = ?"
	queryCreateKey = "INSERT INTO subject_keys (subject, key) VALUES (?, ?) ON CONFLICT (subject) DO NOTHING"
	queryDeleteKey = "DELETE FROM subject_keys WHERE subject = ?"
)

// LoadKey implements [driver.KeyStore].
func (d *Driver) LoadKey(ctx context.Context, subject string) ([]byte, bool, error) {
	var key []byte
	err := d.db.QueryRowContext(ctx, queryLoadKey, subject).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: load key: %w", mapError(err, nil))
	}
	return key, true, nil
}

// CreateKey implements [driver.KeyStore]: an insert that keeps an existing
// key, then a read of the stored one, in one write transaction.
func (d *Driver) CreateKey(ctx context.Context, subject string, key []byte) ([]byte, error) {
	var stored []byte
	err := d.write(ctx, func(w *writer) error {
		if _, err := w.conn.ExecContext(ctx, queryCreateKey, subject, key); err != nil {
			return err
		}
		return w.conn.QueryRowContext(ctx, queryLoadKey, subject).Scan(&stored)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: create key: %w", mapError(err, nil))
	}
	return stored, nil
}

// DeleteKey implements [driver.KeyStore]. The delete runs with PRAGMA
// secure_delete on, so SQLite overwrites the row's bytes with zeros rather
// than leaving them in a free page, and is followed by a checkpoint that
// truncates the WAL, which held the page as it was. While another
// connection reads, the checkpoint cannot truncate: the old WAL frames are
// then overwritten as the WAL is reused. Copies of the file (backups) keep
// the key.
func (d *Driver) DeleteKey(ctx context.Context, subject string) error {
	w, err := d.takeWriter(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: delete key: %w", err)
	}
	defer d.giveWriter()
	if _, err := w.conn.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return fmt.Errorf("sqlite: delete key: %w", mapError(err, nil))
	}
	err = d.writeTx(ctx, w, func(w *writer) error {
		_, err := w.conn.ExecContext(ctx, queryDeleteKey, subject)
		return err
	})
	// Back to the default for the connection's other writes, even if the
	// delete failed.
	_, offErr := w.conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA secure_delete = OFF")
	if err == nil {
		err = offErr
	}
	if err == nil {
		// The result (busy, frames) is not an error: a checkpoint that
		// could not finish leaves the frames to be overwritten later.
		var busy, frames, done int
		err = w.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done)
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete key: %w", mapError(err, nil))
	}
	return nil
}

// KeySubjects implements [driver.KeyStore] from the primary key, in byte
// order (BINARY collation).
func (d *Driver) KeySubjects(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT subject FROM subject_keys WHERE subject > ? ORDER BY subject LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: key subjects: %w", mapError(err, nil))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("sqlite: key subjects: %w", mapError(err, nil))
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: key subjects: %w", mapError(err, nil))
	}
	return out, nil
}
