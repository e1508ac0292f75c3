package pgsql

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestRetentionConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunRetention(t, func(t *testing.T) storagetest.RetentionBackend {
		return newTestDB(t).open(t)
	})
}

// TestBulkBodyStoredOnce: a command queued for several Macs in one call
// has one command_bodies row, which goes with the last command pruned; a
// command for one Mac keeps its own body.
func TestBulkBodyStoredOnce(t *testing.T) {
	db := newTestDB(t)
	s := db.open(t)
	ctx := t.Context()
	ids := []string{"A", "B", "C"}
	for _, id := range ids {
		enroll(t, s, id)
	}
	bulk, err := mdm.NewCommand("ProfileList", nil)
	if err != nil {
		t.Fatal(err)
	}
	single, err := mdm.NewCommand("ProfileList", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, ids, bulk, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, ids[:1], single, t0); err != nil {
		t.Fatal(err)
	}
	conn := db.conn(t)
	defer conn.Close(context.Background())
	count := func(sql string) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM command_bodies`); n != 1 {
		t.Errorf("%d shared bodies, want 1", n)
	}
	if n := count(`SELECT count(*) FROM commands WHERE body_id IS NOT NULL AND raw IS NULL`); n != 3 {
		t.Errorf("%d commands refer to a shared body, want 3", n)
	}
	for i, id := range ids {
		r := &mdm.Report{Enrollment: mdm.Enrollment{UDID: id}, CommandUUID: bulk.UUID, Status: mdm.Acknowledged}
		if _, _, err := s.StoreReportAndNext(ctx, id, r, []byte("<plist/>"), t0.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ids {
		if _, _, err := s.PruneCommands(ctx, t0.Add(time.Duration(i)*time.Hour+time.Minute), "", 100); err != nil {
			t.Fatal(err)
		}
		left := count(`SELECT count(*) FROM command_bodies`)
		if want := 1; i == len(ids)-1 {
			want = 0
			if left != want {
				t.Errorf("after the last copy was pruned %d shared bodies are left", left)
			}
		} else if left != want {
			t.Errorf("after pruning %d copies %d shared bodies are left, want 1", i+1, left)
		}
	}
	rec, err := s.Command(ctx, "A", single.UUID)
	if err != nil || !bytes.Equal(rec.Raw, single.Raw) {
		t.Errorf("the single-Mac command after pruning: %v", err)
	}
}
