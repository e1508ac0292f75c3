// Package bolt is Sundial's embedded storage backend on a bbolt file.
//
// Layout (one bucket each):
//
//	devices  <id>                    JSON mdm.Device (without last-seen)
//	seen     <id>                    last check-in, 8-byte big-endian unix nanos
//	certs    <cert hash>             device enrollment ID the certificate is bound to
//	cmdrecs     <seq>                mdm.CommandRecord without Raw and Result (cmdcodec.go; JSON before)
//	cmdbodies   <seq>                the command plist as sent (blob.go: S2-compressed when large),
//	                                 or a reference to one shared by a bulk enqueue (cmdshare.go)
//	cmdresults  <seq>                the raw body of the final report (likewise)
//	cmdidx   <id> 0x00 <uuid>        <seq> of a finished command (pending ones: in queue)
//	cmdfin   <n>                     <seq> <id> 0x00 <uuid>: finished, on its way to cmdidx (cmdfin.go)
//	queue    <id> 0x00 <seq>         pending: flag byte (1 = answered NotNow) + request type 0x00 uuid
//	apikeys  <id>                    JSON storage.APIKey
//	apikeyh  <hash>                  <id>
//	chall    <hash>                  expiry, 8-byte unix nanos
//
// <seq> is the global command sequence (the cmdrecs bucket's), 8 bytes
// big-endian so that byte order is FIFO order.
package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

var (
	bDevices = []byte("devices")
	bSeen    = []byte("seen")
	bCerts   = []byte("certs")
	// Command records, bodies and results, keyed by the 8-byte global
	// command sequence alone (schema 3), so new commands append at the end
	// of these buckets instead of landing all over them.
	bCmds    = []byte("cmdrecs")
	bCmdRaw  = []byte("cmdbodies")
	bCmdRes  = []byte("cmdresults")
	bCmdIdx  = []byte("cmdidx")
	bQueue   = []byte("queue")
	bAPIKeys = []byte("apikeys")
	bAPIKeyH = []byte("apikeyh")
	bChall   = []byte("chall")
	bMeta    = []byte("meta")
)

var allBuckets = [][]byte{bDevices, bSeen, bCerts, bCmds, bCmdRaw, bCmdRes, bCmdIdx, bQueue, bAPIKeys, bAPIKeyH, bChall, bMeta}

// schemaVersion is the layout version written to the meta bucket:
//
//	1  the first layout
//	2  binary update states (statecodec.go) and the msnew index
//	3  command records, bodies and results keyed by sequence alone
//	   (cmdrecs, cmdbodies, cmdresults), not by enrollment and sequence
//	   (cmds, cmdraw, cmdres)
//	4  cmdidx indexes finished commands only; pending ones are found in
//	   their enrollment's queue (nothing to migrate: files before 4 index
//	   both, which reads the same; the version keeps older binaries, which
//	   look pending commands up in cmdidx, away from newer files)
//	5  the inventory index (invdue, invat; invdue.go), built at open from
//	   the device records
//	6  finished commands reach cmdidx through a log, cmdfin (cmdfin.go);
//	   nothing to migrate, but an older binary would not look there
//	7  declarative status items one key each (ddmitems; ddmitems.go),
//	   moved out of the ddm records at open
//	8  the inventory index without its reverse index invat, dropped at
//	   open (invdue.go)
//	9  the webhook outbox's due index (whdue; webhookdue.go), built at open
//	10 a command queued for several Macs in one call stores its body once
//	   (cmdshared, cmdsharen; cmdshare.go); nothing to migrate, but an
//	   older binary would read a reference as the body
const schemaVersion = 10

// ErrLocked is returned when another process holds the database.
var ErrLocked = errors.New("database is in use by another process")

// Store is the bbolt backend. It is safe for concurrent use.
type Store struct {
	db     *bbolt.DB
	fin    *finished
	leases leaseTable // lease.go
	outbox outboxIdle // webhook.go

	warnings []string // what the check at open found survivable (Warnings)
}

var _ storage.All = (*Store)(nil)

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock (default 1 s).
	LockTimeout time.Duration
	// NoSync skips fsync: only for throwaway test data.
	NoSync bool
	// PageSize is the page size of a new database file: a power of two
	// from 4 KB to 64 KB, 0 meaning DefaultPageSize. A file keeps the page
	// size it was created with.
	PageSize int
}

// DefaultPageSize is the page size of new database files. bbolt writes
// every dirty page with its own pwrite at each commit and splits, spills
// and maps memory page by page, so larger pages mean fewer of each in the
// scheduler's large passes; 16 KB did best (docs/benchmarks.md, "16 KB
// database pages").
const DefaultPageSize = 16 << 10

// Open opens or creates the database at path. If another process holds the
// file it fails within the lock timeout with ErrLocked.
func Open(path string, opts *Options) (_ *Store, err error) {
	if opts == nil {
		opts = &Options{}
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	pageSize := opts.PageSize
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	if err := checkPageSize(pageSize); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// bbolt faults on a truncated file and panics on damaged meta pages:
	// refuse those with a message that says how to restore (check.go).
	rep, err := CheckFile(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := rep.Err(); err != nil {
		return nil, err
	}
	// The freelist is written with every commit. Without it bbolt rebuilds
	// the freelist at open by walking every page of the file, which takes
	// seconds on a large fleet and maps the whole database into memory
	// before the server has served anything.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, NoSync: opts.NoSync,
		FreelistType: bbolt.FreelistMapType, PageSize: pageSize})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w (is another sundial server running with this --data-dir?)", path, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// bbolt panics on the damaged pages it meets; Update has rolled back
	// by the time the panic gets here.
	defer func() {
		if v := recover(); v != nil {
			db.Close()
			err = fmt.Errorf("%w: %s: %v.\n%s", ErrDamaged, path, v, RestoreHint(path))
		}
	}()
	fin := newFinished()
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		var got uint64
		if v := meta.Get([]byte("schema")); v != nil {
			if got = binary.BigEndian.Uint64(v); got > schemaVersion {
				return fmt.Errorf("database schema version %d is newer than this binary supports (%d): upgrade sundial", got, schemaVersion)
			}
		}
		if got < 2 {
			if err := migrateToV2(tx); err != nil {
				return fmt.Errorf("upgrade to schema 2: %w", err)
			}
		}
		if got < 5 {
			if err := migrateToV5(tx); err != nil {
				return fmt.Errorf("upgrade to schema 5: %w", err)
			}
		}
		if got < 7 {
			if err := migrateDDMItems(tx); err != nil {
				return fmt.Errorf("upgrade to schema 7: %w", err)
			}
		}
		if got < 8 {
			if err := migrateToV8(tx); err != nil {
				return fmt.Errorf("upgrade to schema 8: %w", err)
			}
		}
		if got < 9 {
			if err := migrateToV9(tx); err != nil {
				return fmt.Errorf("upgrade to schema 9: %w", err)
			}
		}
		// After a crash the log may hold finished commands: index them
		// now, so that the log starts empty.
		if err := fin.flush(tx); err != nil {
			return fmt.Errorf("index finished commands: %w", err)
		}
		return meta.Put([]byte("schema"), u64(schemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise %s: %w", path, err)
	}
	if err := migrateToV3(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise %s: %w", path, err)
	}
	return &Store{db: db, fin: fin, warnings: rep.Warnings}, nil
}

// migrateToV2 rewrites JSON update states in the binary form and indexes
// the devices that have none yet (msnew). A new file has nothing to do.
func migrateToV2(tx *bbolt.Tx) error {
	states, fresh := tx.Bucket(bMSState), tx.Bucket(bMSNew)
	type kv struct{ k, v []byte }
	var rewrite []kv
	err := states.ForEach(func(k, v []byte) error {
		if len(v) == 0 || v[0] != '{' {
			return nil
		}
		st, err := decodeState(string(k), v)
		if err != nil {
			return err
		}
		rewrite = append(rewrite, kv{clone(k), encodeState(st)})
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range rewrite {
		if err := states.Put(e.k, e.v); err != nil {
			return err
		}
	}
	var missing [][]byte
	err = tx.Bucket(bDevices).ForEach(func(k, _ []byte) error {
		if bytes.IndexByte(k, ':') < 0 && states.Get(k) == nil {
			missing = append(missing, clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range missing {
		if err := fresh.Put(k, nil); err != nil {
			return err
		}
	}
	return nil
}

func checkPageSize(n int) error {
	if n < 4<<10 || n > 64<<10 || n&(n-1) != 0 {
		return fmt.Errorf("page size %d: want a power of two from 4096 to 65536", n)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	// Leave no finished command in the log: a file closed cleanly
	// indexes every command in cmdidx.
	err := s.db.Update(s.fin.flush)
	if errors.Is(err, bbolt.ErrDatabaseNotOpen) {
		err = nil // closed before
	}
	outboxWake.Delete(s.db)
	return errors.Join(err, s.db.Close())
}

// Path is the database file.
func (s *Store) Path() string { return s.db.Path() }

// PageSize is the database file's page size.
func (s *Store) PageSize() int { return s.db.Info().PageSize }

// Backup writes a consistent copy of the database to path while the store
// keeps serving (a hot backup).
func (s *Store) Backup(path string) error {
	tmp := path + ".tmp"
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.CopyFile(tmp, 0o600)
	})
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	return os.Rename(tmp, path)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// key joins an enrollment ID and a suffix with a 0x00 separator; IDs never
// contain 0x00 (mdm.Enrollment refuses it).
func key(id string, suffix []byte) []byte {
	k := make([]byte, 0, len(id)+1+len(suffix))
	k = append(k, id...)
	k = append(k, 0)
	return append(k, suffix...)
}

func prefix(id string) []byte { return key(id, nil) }

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func unixNanos(t time.Time) []byte { return u64(uint64(t.UnixNano())) }

func fromNanos(b []byte) time.Time {
	if len(b) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC()
}

// WriteBackup writes a consistent copy of the database to w while the store
// keeps serving, and returns the number of bytes written.
func (s *Store) WriteBackup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
