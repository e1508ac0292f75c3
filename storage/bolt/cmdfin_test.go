package bolt

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// finishCommands enrolls id and queues and acknowledges n commands for it,
// returning their UUIDs.
func finishCommands(t *testing.T, s *Store, id string, n int, now time.Time) []string {
	t.Helper()
	ctx := t.Context()
	if err := s.Authenticate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, Topic: "t"}, "h-"+id, now); err != nil {
		t.Fatal(err)
	}
	var uuids []string
	for range n {
		c, err := mdm.NewCommand("ProfileList", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Enqueue(ctx, []string{id}, c, now); err != nil {
			t.Fatal(err)
		}
		r := &mdm.Report{Enrollment: mdm.Enrollment{UDID: id}, Status: mdm.Acknowledged, CommandUUID: c.UUID}
		if _, _, err := s.StoreReportAndNext(ctx, id, r, []byte("<plist/>"), now); err != nil {
			t.Fatal(err)
		}
		uuids = append(uuids, c.UUID)
	}
	return uuids
}

// bucketLen counts the keys of bucket name.
func bucketLen(t *testing.T, s *Store, name []byte) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(name).ForEach(func(_, _ []byte) error { n++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkFinished asserts that every command in uuids is found, acknowledged,
// by UUID and in id's history, and that queueing its UUID again fails.
func checkFinished(t *testing.T, s *Store, id string, uuids []string, now time.Time) {
	t.Helper()
	ctx := t.Context()
	for _, u := range uuids {
		rec, err := s.Command(ctx, id, u)
		if err != nil || rec.Status != string(mdm.Acknowledged) {
			t.Errorf("Command(%s) = %+v, %v", u, rec, err)
		}
	}
	list, err := s.Commands(ctx, id)
	if err != nil || len(list) != len(uuids) {
		t.Fatalf("Commands lists %d, %v; want %d", len(list), err, len(uuids))
	}
	for i, rec := range list {
		if rec.UUID != uuids[i] {
			t.Errorf("Commands[%d] = %s, want %s (queue order)", i, rec.UUID, uuids[i])
		}
	}
	again := &mdm.Command{UUID: uuids[0], RequestType: "ProfileList", Raw: []byte("<plist/>")}
	if err := s.Enqueue(ctx, []string{id}, again, now); !errors.Is(err, storage.ErrExists) {
		t.Errorf("queueing a finished command's UUID again: %v, want ErrExists", err)
	}
}

// TestFinishedLog: finished commands wait in cmdfin, where lookups find
// them, until the log is long enough; then one transaction moves them all
// into cmdidx.
func TestFinishedLog(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.fin.flushAt = 5

	uuids := finishCommands(t, s, "D", 4, now)
	if n, m := bucketLen(t, s, bCmdFin), bucketLen(t, s, bCmdIdx); n != 4 || m != 0 {
		t.Fatalf("after 4 finished: %d logged, %d indexed; want 4, 0", n, m)
	}
	checkFinished(t, s, "D", uuids, now)

	uuids = append(uuids, finishCommands(t, s, "D", 1, now)...)
	if n, m := bucketLen(t, s, bCmdFin), bucketLen(t, s, bCmdIdx); n != 0 || m != 5 {
		t.Fatalf("after 5 finished: %d logged, %d indexed; want 0, 5", n, m)
	}
	if n := len(s.fin.m); n != 0 {
		t.Errorf("%d commands still in memory after the move", n)
	}
	checkFinished(t, s, "D", uuids, now)

	// The log starts again: sequence and all.
	uuids = append(uuids, finishCommands(t, s, "D", 2, now)...)
	if n, m := bucketLen(t, s, bCmdFin), bucketLen(t, s, bCmdIdx); n != 2 || m != 5 {
		t.Fatalf("after 7 finished: %d logged, %d indexed; want 2, 5", n, m)
	}
	checkFinished(t, s, "D", uuids, now)
}

// TestFinishedLogIndexedWhenQueued: a command that a version before
// schema 4 indexed when it was queued is logged when it finishes like any
// other; the move writes its index entry again, unchanged, and it is
// listed once.
func TestFinishedLogIndexedWhenQueued(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	uuids := finishCommands(t, s, "D", 1, now)
	c, err := mdm.NewCommand("ProfileList", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, []string{"D"}, c, now); err != nil {
		t.Fatal(err)
	}
	var seq []byte
	err = s.db.Update(func(tx *bbolt.Tx) error { // as a version before schema 4 queued it
		seq = queuedSeq(tx, "D", c.UUID)
		return tx.Bucket(bCmdIdx).Put(key("D", []byte(c.UUID)), seq)
	})
	if err != nil || seq == nil {
		t.Fatal(seq, err)
	}
	r := &mdm.Report{Enrollment: mdm.Enrollment{UDID: "D"}, Status: mdm.Acknowledged, CommandUUID: c.UUID}
	if _, _, err := s.StoreReportAndNext(ctx, "D", r, []byte("<plist/>"), now); err != nil {
		t.Fatal(err)
	}
	uuids = append(uuids, c.UUID)
	checkFinished(t, s, "D", uuids, now)
	if err := s.db.Update(s.fin.flush); err != nil {
		t.Fatal(err)
	}
	if n, m := bucketLen(t, s, bCmdFin), bucketLen(t, s, bCmdIdx); n != 0 || m != 2 {
		t.Fatalf("after the move: %d logged, %d indexed; want 0, 2", n, m)
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		if got := tx.Bucket(bCmdIdx).Get(key("D", []byte(c.UUID))); string(got) != string(seq) {
			t.Errorf("index entry %x, want %x", got, seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFinished(t, s, "D", uuids, now)
}

// TestFinishedLogReadsOwnSnapshot: a read transaction finds a logged
// command in the log as it sees it, not through the in-memory map, which
// forgets commands once a move has committed, possibly after the read
// began.
func TestFinishedLogReadsOwnSnapshot(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	uuids := finishCommands(t, s, "D", 2, now)

	tx, err := s.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	s.fin.mu.Lock()
	clear(s.fin.m) // as a move committed after tx began would
	s.fin.mu.Unlock()
	for _, u := range uuids {
		if seq := s.commandSeq(tx, "D", u); seq == nil {
			t.Errorf("a read transaction does not find logged command %s", u)
		}
	}
	if got := logged(tx, "D"); len(got) != 2 {
		t.Errorf("logged(D) = %d sequences, want 2", len(got))
	}
	if got := logged(tx, "DX"); len(got) != 0 {
		t.Errorf("logged(DX) = %d sequences: another enrollment's prefix matched", len(got))
	}
}

// TestFinishedLogAfterCrash: a file left with finished commands in the log
// (the server killed before a move) indexes them when it is opened; a file
// closed cleanly has none left in the log.
func TestFinishedLogAfterCrash(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	uuids := finishCommands(t, s, "D", 3, now)
	// A consistent copy of the file as a crash would leave it: the log
	// holds the three commands.
	crashed := filepath.Join(dir, "crashed.db")
	if err := s.db.View(func(tx *bbolt.Tx) error { return tx.CopyFile(crashed, 0o600) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{crashed, filepath.Join(dir, "sundial.db")} {
		raw, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		var logged int
		raw.View(func(tx *bbolt.Tx) error { logged = tx.Bucket(bCmdFin).Stats().KeyN; return nil })
		raw.Close()
		if want := map[bool]int{true: 3, false: 0}[path == crashed]; logged != want {
			t.Errorf("%s: %d commands in the log, want %d", filepath.Base(path), logged, want)
		}

		s, err := Open(path, &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if n, m := bucketLen(t, s, bCmdFin), bucketLen(t, s, bCmdIdx); n != 0 || m != 3 {
			t.Errorf("%s reopened: %d logged, %d indexed; want 0, 3", filepath.Base(path), n, m)
		}
		checkFinished(t, s, "D", uuids, now)
		s.Close()
	}
}

// BenchmarkFinishedFlush moves a full log (finFlushAt commands) into an
// index already holding four finished commands for each of 10,000 or
// 100,000 Macs: the cost, in time and allocations, of the one transaction
// in finFlushAt that pays for the others.
func BenchmarkFinishedFlush(b *testing.B) {
	for _, macs := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("macs=%d", macs), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "sundial.db"), &Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.fin.flushAt = math.MaxInt
			id := func(i int) string { return fmt.Sprintf("%08X-%016X", i*2654435761%macs, i) }
			uuid := func(n int) string { return fmt.Sprintf("%08X-0000-4000-8000-%012X", n, n) }
			n := 0
			for n < 4*macs {
				err := s.db.Update(func(tx *bbolt.Tx) error {
					idx := tx.Bucket(bCmdIdx)
					for range 20_000 {
						if err := idx.Put(key(id(n%macs), []byte(uuid(n))), u64(uint64(n))); err != nil {
							return err
						}
						n++
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				err := s.db.Update(func(tx *bbolt.Tx) error {
					for range finFlushAt {
						if err := s.fin.log(tx, id(n%macs), uuid(n), u64(uint64(n))); err != nil {
							return err
						}
						n++
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := s.db.Update(s.fin.flush); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
