package shred

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/eventkit/eventstore"
)

// Sealed snapshots (docs/gdpr.md, "Snapshots"). A state built from events
// of data subjects holds their plaintext; a snapshot of it is sealed under
// the keys of every subject whose sealed events the state was built from,
// so that forgetting any one of them erases the snapshot:
//
//	{"v":1,"n":"<nonce>","c":"<ciphertext>",
//	 "k":[{"s":"c-42","k":"<key ID>","n":"<nonce>","w":"<wrapped share>"}, …]}
//
// The snapshot is encrypted with AES-256-GCM under a random data key; the
// data key is split into one share per key (XOR: every share is needed),
// and each share is encrypted under its subject's key. The additional data
// binds the stream, the snapshot's version and the list of keys.
const snapshotVersion = 1

// sealedSnapshot is the stored form of a sealed snapshot.
type sealedSnapshot struct {
	V int             `json:"v"`
	N []byte          `json:"n"`
	C []byte          `json:"c"`
	K []snapshotShare `json:"k"`
}

// snapshotShare is one subject's share of a snapshot's data key.
type snapshotShare struct {
	S string `json:"s"`
	K []byte `json:"k"`
	N []byte `json:"n"`
	W []byte `json:"w"`
}

// keyRef names one key of one subject: the key ID in hex, a colon, the
// subject. It is what [Shredder.SnapshotKey] returns.
func keyRef(subject string, id [keyIDSize]byte) string {
	return hex.EncodeToString(id[:]) + ":" + subject
}

// parseKeyRef reverses keyRef.
func parseKeyRef(ref string) (subject string, id [keyIDSize]byte, err error) {
	h, subject, ok := strings.Cut(ref, ":")
	if !ok || len(h) != 2*keyIDSize || subject == "" {
		return "", id, fmt.Errorf("%w: %q is not a key returned by SnapshotKey", eventstore.ErrInvalidArgument, ref)
	}
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return "", id, fmt.Errorf("%w: %q is not a key returned by SnapshotKey", eventstore.ErrInvalidArgument, ref)
	}
	return subject, id, nil
}

// ErrKeyGone reports that [Shredder.SealSnapshot] was asked to seal under a
// key that has been deleted since the state was read (its subject was
// forgotten): the state may hold the subject's plaintext, so it is not
// sealed under any other key. Load the state again: the subject's events
// then read as erased.
var ErrKeyGone = errors.New("shred: a subject's key is gone: the state holds data of a forgotten subject")

// SnapshotKey returns the key ev, an event as stored (before [Shredder.Open]),
// was sealed under, as an opaque string for [Shredder.SealSnapshot]; "" when
// ev holds no envelope, or when its key is gone (the subject was forgotten,
// so Open erases it). Call it before opening the event: if it returns "",
// Open then erases the event too. It fails like Open for a malformed
// envelope, and with the key store's error.
//
// With [Shredder.SealSnapshot] and [Shredder.OpenSnapshot] it makes a
// Shredder a decider.SnapshotSealer.
func (s *Shredder) SnapshotKey(ctx context.Context, ev eventstore.RecordedEvent) (string, error) {
	_, at, env, err := envelopeOf(ev)
	if err != nil || at < 0 {
		return "", err
	}
	id := [keyIDSize]byte(env.K)
	k, err := s.openKey(ctx, env.S, id)
	if err != nil {
		return "", openError(ev, err)
	}
	if k == nil {
		return "", nil
	}
	return keyRef(env.S, id), nil
}

// SealSnapshot returns data, a snapshot of stream at version, encrypted so
// that it opens only while every key in keys exists (keys as returned by
// [Shredder.SnapshotKey]; at least one). It never creates a key.
//
// Errors: [eventstore.ErrInvalidArgument] for no keys or one SnapshotKey did
// not return; an error matching [ErrKeyGone] when a key was deleted; the key
// store's.
func (s *Shredder) SealSnapshot(ctx context.Context, stream string, version uint64, keys []string, data []byte) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("shred: seal snapshot of %q at version %d: %w", stream, version, err)
	}
	if len(keys) == 0 {
		return fail(fmt.Errorf("%w: no keys", eventstore.ErrInvalidArgument))
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	snap := sealedSnapshot{V: snapshotVersion, K: make([]snapshotShare, len(keys))}
	aeads := make([]cipher.AEAD, len(keys))
	for i, ref := range keys {
		subject, id, err := parseKeyRef(ref)
		if err != nil {
			return fail(err)
		}
		k, err := s.openKey(ctx, subject, id)
		if err != nil {
			return fail(err)
		}
		if k == nil {
			return fail(fmt.Errorf("%w: subject %q", ErrKeyGone, subject))
		}
		snap.K[i] = snapshotShare{S: subject, K: id[:], N: make([]byte, nonceSize)}
		aeads[i] = k.aead
	}
	dataKey := make([]byte, 32)
	rand.Read(dataKey) // never fails (crypto/rand)
	defer clear(dataKey)
	// XOR shares: the last is the data key XOR all the others, so every
	// share is needed to recover it.
	last := slices.Clone(dataKey)
	defer clear(last)
	for i := range snap.K {
		share := last
		if i < len(snap.K)-1 {
			share = make([]byte, len(dataKey))
			rand.Read(share)
			for j := range last {
				last[j] ^= share[j]
			}
		}
		rand.Read(snap.K[i].N)
		snap.K[i].W = aeads[i].Seal(nil, snap.K[i].N, share, snapshotShareAD(stream, version, i, snap.K[i]))
		if i < len(snap.K)-1 {
			clear(share)
		}
	}
	aead, err := newAEAD(dataKey)
	if err != nil {
		return fail(err)
	}
	snap.N = make([]byte, nonceSize)
	rand.Read(snap.N)
	snap.C = aead.Seal(nil, snap.N, data, snapshotAD(stream, version, snap.K))
	b, err := json.Marshal(snap)
	if err != nil {
		return fail(err)
	}
	return b, nil
}

// OpenSnapshot returns the snapshot [Shredder.SealSnapshot] sealed as
// sealed, for stream at version, and the keys it was sealed under. ok is
// false, with a nil error, when one of those keys is gone: the snapshot is
// erased.
//
// Errors: [ErrTampered] when it does not authenticate (altered, or saved
// for another stream or version); [ErrBadEnvelope] when it is not a
// sealed snapshot this package reads; the key store's.
func (s *Shredder) OpenSnapshot(ctx context.Context, stream string, version uint64, sealed []byte) (data []byte, keys []string, ok bool, err error) {
	fail := func(err error) ([]byte, []string, bool, error) {
		return nil, nil, false, fmt.Errorf("shred: open snapshot of %q at version %d: %w", stream, version, err)
	}
	var snap sealedSnapshot
	if err := json.Unmarshal(sealed, &snap); err != nil {
		return fail(badEnvelope("%v", err))
	}
	switch {
	case snap.V != snapshotVersion:
		return fail(badEnvelope("snapshot format version %d, want %d", snap.V, snapshotVersion))
	case len(snap.K) == 0 || len(snap.N) != nonceSize:
		return fail(badEnvelope("malformed snapshot"))
	}
	dataKey := make([]byte, 32)
	defer clear(dataKey)
	keys = make([]string, len(snap.K))
	for i, sh := range snap.K {
		if len(sh.K) != keyIDSize || len(sh.N) != nonceSize || sh.S == "" {
			return fail(badEnvelope("malformed snapshot"))
		}
		id := [keyIDSize]byte(sh.K)
		k, err := s.openKey(ctx, sh.S, id)
		if err != nil {
			return fail(err)
		}
		if k == nil {
			return nil, nil, false, nil // erased
		}
		share, err := k.aead.Open(nil, sh.N, sh.W, snapshotShareAD(stream, version, i, sh))
		if err != nil || len(share) != len(dataKey) {
			return fail(ErrTampered)
		}
		for j := range dataKey {
			dataKey[j] ^= share[j]
		}
		clear(share)
		keys[i] = keyRef(sh.S, id)
	}
	aead, err := newAEAD(dataKey)
	if err != nil {
		return fail(err)
	}
	data, err = aead.Open(nil, snap.N, snap.C, snapshotAD(stream, version, snap.K))
	if err != nil {
		return fail(ErrTampered)
	}
	return data, keys, true, nil
}

// newAEAD returns AES-256-GCM under key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// snapshotAD is the additional data of a snapshot's ciphertext: a label,
// then length-prefixed the stream, the version and each share's subject and
// key ID.
func snapshotAD(stream string, version uint64, shares []snapshotShare) []byte {
	b := append([]byte(nil), "eventstore/shred snapshot v1\x00"...)
	b = appendLP(b, stream)
	b = binary.BigEndian.AppendUint64(b, version)
	for _, sh := range shares {
		b = appendLP(b, sh.S)
		b = appendLP(b, string(sh.K))
	}
	return b
}

// snapshotShareAD is the additional data of share i of a snapshot's data key.
func snapshotShareAD(stream string, version uint64, i int, sh snapshotShare) []byte {
	b := append([]byte(nil), "eventstore/shred snapshot share v1\x00"...)
	b = appendLP(b, stream)
	b = binary.BigEndian.AppendUint64(b, version)
	b = appendLP(b, strconv.Itoa(i))
	b = appendLP(b, sh.S)
	return appendLP(b, string(sh.K))
}

// appendLP appends s prefixed with its length as a uvarint.
func appendLP(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
