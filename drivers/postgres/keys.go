package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
)

// The keys of data subjects ([driver.KeyStore]) are rows of subject_keys
// (schema version 8), apart from the events. DELETE removes a key from
// every query at once; its bytes stay in the table's file as a dead tuple
// until VACUUM (or autovacuum) reclaims the space, and in the WAL and
// backups until they are recycled (docs/gdpr.md).

var _ driver.KeyStore = (*Driver)(nil)

const (
	loadKeySQL   = `SELECT key FROM {{schema}}.subject_keys WHERE subject = $1`
	createKeySQL = `INSERT INTO {{schema}}.subject_keys (subject, key) VALUES ($1, $2)
ON CONFLICT (subject) DO NOTHING RETURNING key`
	deleteKeySQL = `DELETE FROM {{schema}}.subject_keys WHERE subject = $1`
)

// keySQL puts the driver's schema into a statement of this file.
func (d *Driver) keySQL(q string) string {
	return strings.ReplaceAll(q, "{{schema}}", quoteIdent(d.schema))
}

// LoadKey implements [driver.KeyStore].
func (d *Driver) LoadKey(ctx context.Context, subject string) ([]byte, bool, error) {
	var key []byte
	err := d.pool.QueryRow(ctx, d.keySQL(loadKeySQL), subject).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("postgres: load key: %w", native(err))
	}
	return key, true, nil
}

// CreateKey implements [driver.KeyStore]: an insert that keeps an existing
// key and returns the new one, or, when a key was there, a read of it (a
// statement of its own, whose snapshot sees a racing creator's commit). A
// key deleted between the two is created again, at most a few times.
func (d *Driver) CreateKey(ctx context.Context, subject string, key []byte) ([]byte, error) {
	for range 3 {
		var stored []byte
		err := d.pool.QueryRow(ctx, d.keySQL(createKeySQL), subject, key).Scan(&stored)
		if err == nil {
			return stored, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("postgres: create key: %w", native(err))
		}
		stored, ok, err := d.LoadKey(ctx, subject)
		if err != nil || ok {
			return stored, err
		}
	}
	return nil, fmt.Errorf("postgres: create key: the key was deleted while it was created, three times")
}

// DeleteKey implements [driver.KeyStore].
func (d *Driver) DeleteKey(ctx context.Context, subject string) error {
	if _, err := d.pool.Exec(ctx, d.keySQL(deleteKeySQL), subject); err != nil {
		return fmt.Errorf("postgres: delete key: %w", native(err))
	}
	return nil
}

// KeySubjects implements [driver.KeyStore] from the primary key, in byte
// order (the column is COLLATE "C").
func (d *Driver) KeySubjects(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := d.pool.Query(ctx, d.keySQL(`SELECT subject FROM {{schema}}.subject_keys WHERE subject > $1 ORDER BY subject LIMIT $2`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: key subjects: %w", native(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: key subjects: %w", native(err))
	}
	return out, nil
}
