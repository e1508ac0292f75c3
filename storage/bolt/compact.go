package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// CompactReport describes a compaction.
type CompactReport struct {
	Buckets          int   // top-level buckets copied
	Keys             int   // keys in them (nested buckets included)
	FromSize, ToSize int64 // file sizes, bytes
	FromPageSize     int
	ToPageSize       int
}

func (r CompactReport) String() string {
	return fmt.Sprintf("%d buckets, %d keys; %d KB pages -> %d KB pages; %.1f MB -> %.1f MB\n",
		r.Buckets, r.Keys, r.FromPageSize>>10, r.ToPageSize>>10, float64(r.FromSize)/1e6, float64(r.ToSize)/1e6)
}

// compactTxBytes bounds the data one transaction of a compaction copies,
// so its memory stays bounded whatever the file's size.
const compactTxBytes = 64 << 20

// Compact copies the database file src into a new file dst with pageSize
// pages (0: DefaultPageSize), every page filled: for example to give a
// file created with 4 KB pages the 16 KB pages of new files, or to return
// the space of deleted data. src is opened read-only and must not be in use
// (stop the server first: ErrLocked otherwise); dst must not exist. Keys,
// values and bucket sequences (the command sequence among them) are copied
// as they are, whatever the schema version; dst is written to dst+".tmp",
// synced, checked key for key count against src, and only then renamed to
// dst.
func Compact(src, dst string, pageSize int) (rep CompactReport, err error) {
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	if err := checkPageSize(pageSize); err != nil {
		return rep, err
	}
	if _, err := os.Stat(src); err != nil {
		return rep, fmt.Errorf("compact: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		return rep, fmt.Errorf("compact: %s already exists", dst)
	} else if !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("compact: %w", err)
	}
	from, err := bbolt.Open(src, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return rep, fmt.Errorf("compact %s: %w (stop the sundial server first)", src, ErrLocked)
		}
		return rep, fmt.Errorf("compact: open %s: %w", src, err)
	}
	defer from.Close()

	tmp := dst + ".tmp"
	_ = os.Remove(tmp) // left by an interrupted compaction
	to, err := bbolt.Open(tmp, 0o600, &bbolt.Options{NoSync: true, PageSize: pageSize, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return rep, fmt.Errorf("compact: create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			to.Close()
			os.Remove(tmp)
		}
	}()
	if err := bbolt.Compact(to, from, compactTxBytes); err != nil {
		return rep, fmt.Errorf("compact: copy: %w", err)
	}
	if err := to.Sync(); err != nil {
		return rep, fmt.Errorf("compact: sync %s: %w", tmp, err)
	}
	want, err := countKeys(from)
	if err != nil {
		return rep, err
	}
	got, err := countKeys(to)
	if err != nil {
		return rep, err
	}
	for name, n := range want {
		if got[name] != n {
			return rep, fmt.Errorf("compact: bucket %s has %d keys in the copy, %d in %s", name, got[name], n, src)
		}
		rep.Keys += n
	}
	if len(got) != len(want) {
		return rep, fmt.Errorf("compact: %d buckets in the copy, %d in %s", len(got), len(want), src)
	}
	rep.Buckets = len(want)
	rep.FromPageSize, rep.ToPageSize = from.Info().PageSize, to.Info().PageSize
	if err := to.Close(); err != nil {
		return rep, fmt.Errorf("compact: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return rep, fmt.Errorf("compact: %w", err)
	}
	if err := syncDir(dst); err != nil {
		return rep, err
	}
	if fi, err := os.Stat(src); err == nil {
		rep.FromSize = fi.Size()
	}
	if fi, err := os.Stat(dst); err == nil {
		rep.ToSize = fi.Size()
	}
	return rep, nil
}

// countKeys counts the keys of every top-level bucket, nested buckets'
// keys included.
func countKeys(db *bbolt.DB) (map[string]int, error) {
	out := map[string]int{}
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			out[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("compact: count keys of %s: %w", db.Path(), err)
	}
	return out, nil
}

// syncDir makes a rename into path's directory durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("compact: sync %s: %w", filepath.Dir(path), err)
	}
	return nil
}
