package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// ErrDamaged marks a database file that failed a check.
var ErrDamaged = errors.New("database file is damaged")

// bbolt's file format (go.etcd.io/bbolt/internal/common): pages 0 and 1
// are meta pages, written alternately by each commit. A page starts with a
// 16-byte header; a meta page's body is magic, version, page size, flags,
// the root bucket (root page, sequence), the freelist page, the high-water
// page ID, the transaction ID and an FNV-64a checksum of the fields before
// it, in the machine's byte order (little-endian on every platform Sundial
// builds for).
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeader     = 16
	metaChecksumAt = 56 // bytes of the meta body covered by the checksum
	metaSize       = metaChecksumAt + 8
)

// metaPage is what CheckFile reads from one meta page.
type metaPage struct {
	pageSize  uint32
	highWater uint64 // pages the file holds
	txid      uint64
	err       error
}

func readMeta(b []byte) metaPage {
	if len(b) < pageHeader+metaSize {
		return metaPage{err: errors.New("shorter than a meta page")}
	}
	m := b[pageHeader : pageHeader+metaSize]
	le := binary.LittleEndian
	switch {
	case le.Uint32(m[0:]) != boltMagic:
		return metaPage{err: errors.New("not a bbolt meta page (bad magic number)")}
	case le.Uint32(m[4:]) != boltVersion:
		return metaPage{err: fmt.Errorf("bbolt file format version %d, want %d", le.Uint32(m[4:]), boltVersion)}
	}
	h := fnv.New64a()
	h.Write(m[:metaChecksumAt])
	if h.Sum64() != le.Uint64(m[metaChecksumAt:]) {
		return metaPage{err: errors.New("checksum mismatch")}
	}
	return metaPage{pageSize: le.Uint32(m[8:]), highWater: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
}

// CheckReport is what a check of a database file found.
type CheckReport struct {
	Path     string
	Size     int64
	PageSize int
	Pages    uint64 // the newest meta page's high-water mark
	TxID     uint64
	Buckets  int
	Keys     int
	Problems []string // damage: the file must not be used
	Warnings []string // survivable: reported, repaired by the next writes
	Duration time.Duration
}

// Err is nil for a file without problems, and otherwise an ErrDamaged that
// says what is wrong and how to restore.
func (r *CheckReport) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %s.\n%s", ErrDamaged, r.Path, strings.Join(r.Problems, "; "), RestoreHint(r.Path))
}

// RestoreHint says how to put a backup in place of a damaged file.
func RestoreHint(path string) string {
	return fmt.Sprintf("To restore: stop Sundial, move %s aside (keep it for diagnosis), copy your newest backup "+
		"(a file written by `sundial backup`) to %s, check it with `sundial storage check --file %s`, and start Sundial again. "+
		"Changes since that backup are lost; Macs report their state again at their next check-in. See docs/operations.md.", path, path, path)
}

// String is the report for people.
func (r *CheckReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d bytes, %d pages of %d bytes, transaction %d", r.Path, r.Size, r.Pages, r.PageSize, r.TxID)
	if r.Buckets > 0 {
		fmt.Fprintf(&b, ", %d buckets, %d keys", r.Buckets, r.Keys)
	}
	fmt.Fprintf(&b, " (checked in %s)\n", r.Duration.Round(time.Millisecond))
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "damaged: %s\n", p)
	}
	if len(r.Problems) == 0 {
		b.WriteString("ok\n")
	}
	return b.String()
}

// CheckFile checks a database file's structure without opening it with
// bbolt, which panics or faults on the damage it looks for: both meta
// pages, and the file's size against the newest valid meta page. It reads
// two pages, so it runs before every open. A missing or empty file is
// fine (Open creates it).
func CheckFile(path string) (*CheckReport, error) {
	start := time.Now()
	r := &CheckReport{Path: path}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r.Size = fi.Size()
	if r.Size == 0 {
		return r, nil
	}
	first := make([]byte, 4096)
	n, err := io.ReadFull(f, first)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	m0 := readMeta(first[:n])
	// The second meta page is one page in: use the first page's page size,
	// or try each size bbolt allows when the first page is damaged.
	sizes := []uint32{m0.pageSize}
	if m0.err != nil {
		sizes = []uint32{4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10}
	}
	m1 := metaPage{err: errors.New("unreadable")}
	for _, ps := range sizes {
		buf := make([]byte, pageHeader+metaSize)
		if _, err := f.ReadAt(buf, int64(ps)); err != nil {
			m1 = metaPage{err: fmt.Errorf("unreadable at offset %d: %v", ps, err)}
			continue
		}
		if m1 = readMeta(buf); m1.err == nil {
			break
		}
	}
	use, other := m0, m1
	useN, otherN := 0, 1
	if m0.err != nil || (m1.err == nil && m1.txid > m0.txid) {
		use, other, useN, otherN = m1, m0, 1, 0
	}
	if use.err != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("both meta pages are damaged (page 0: %v; page 1: %v), so nothing in the file can be found", m0.err, m1.err))
		r.Duration = time.Since(start)
		return r, nil
	}
	if other.err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("meta page %d is damaged (%v); the file is read through meta page %d (transaction %d), and the server's next writes rewrite page %d", otherN, other.err, useN, use.txid, otherN))
	}
	r.PageSize, r.Pages, r.TxID = int(use.pageSize), use.highWater, use.txid
	if need := int64(use.highWater) * int64(use.pageSize); r.Size < need {
		r.Problems = append(r.Problems, fmt.Sprintf("the file is %d bytes but its meta page says it holds %d pages of %d bytes (%d bytes): it was truncated (copied while the server wrote it, or the disk filled up)", r.Size, use.highWater, use.pageSize, need))
	}
	r.Duration = time.Since(start)
	return r, nil
}

// CheckConsistency reads every bucket and key of the open database, as the
// server's requests would, and reports the first damaged page it meets
// (bbolt reports those by panicking). It runs in one read transaction, in
// the background after start: writers are not blocked.
func (s *Store) CheckConsistency(ctx context.Context) (buckets, keys int, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		return walk(ctx, tx, &buckets, &keys)
	})
	return buckets, keys, err
}

// walk visits every bucket and key of tx, turning bbolt's panics on
// damaged pages into errors.
func walk(ctx context.Context, tx *bbolt.Tx, buckets, keys *int) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, v)
		}
	}()
	var visit func(b *bbolt.Bucket) error
	visit = func(b *bbolt.Bucket) error {
		*buckets++
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			*keys++
			if *keys%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if v == nil {
				if sub := b.Bucket(k); sub != nil {
					if err := visit(sub); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error { return visit(b) })
}

// Check checks a database file that no server has open: CheckFile, then
// every bucket and key, then bbolt's own consistency check (every page
// reachable exactly once, free pages not in use).
func Check(ctx context.Context, path string) (*CheckReport, error) {
	start := time.Now()
	r, err := CheckFile(path)
	if err != nil {
		return nil, err
	}
	if len(r.Problems) > 0 || r.Size == 0 {
		if r.Size == 0 && len(r.Problems) == 0 {
			if _, err := os.Stat(path); err != nil {
				return nil, err
			}
		}
		return r, nil
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("check %s: %w (stop the server first, or check a copy made with `sundial backup`)", path, ErrLocked)
		}
		r.Problems = append(r.Problems, "bbolt cannot open it: "+err.Error())
		return r, nil
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		if err := walk(ctx, tx, &r.Buckets, &r.Keys); err != nil {
			return err
		}
		n := 0
		for cerr := range tx.Check() { // drained: the checker blocks on sends
			if n++; n <= 20 {
				r.Problems = append(r.Problems, cerr.Error())
			}
		}
		if n > 20 {
			r.Problems = append(r.Problems, fmt.Sprintf("(%d more not shown)", n-20))
		}
		return nil
	})
	if errors.Is(err, ErrDamaged) {
		r.Problems = append(r.Problems, err.Error())
	} else if err != nil {
		return nil, err
	}
	r.Duration = time.Since(start)
	return r, nil
}

// Warnings lists what the check at open found damaged but survivable (one
// damaged meta page), for the server to log.
func (s *Store) Warnings() []string { return s.warnings }
