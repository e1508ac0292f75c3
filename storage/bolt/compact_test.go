package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// TestCompact: a file with 4 KB pages compacted into one with 16 KB pages
// holds the same data, and its command sequence carries on where the
// original's stopped.
func TestCompact(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "old.db"), filepath.Join(dir, "new.db")
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s, err := Open(src, &Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutAPIKey(ctx, storage.APIKey{ID: "k", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 200 {
		id := fmt.Sprintf("MAC-%04d", i)
		ids = append(ids, id)
		msg := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t"}
		if err := s.Authenticate(ctx, id, msg, "cert-"+id, now); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := s.Enqueue(ctx, ids, &mdm.Command{UUID: mdm.NewUUID(), RequestType: "DeviceInformation", Raw: []byte("<plist/>")}, now); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.Commands(ctx, ids[7])
	if err != nil || len(before) != 3 {
		t.Fatalf("commands before: %d, %v", len(before), err)
	}

	// The server holds the file: refused.
	if _, err := Compact(src, dst, 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("compact of an open file: %v, want ErrLocked", err)
	}
	s.Close()

	rep, err := Compact(src, dst, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FromPageSize != 4096 || rep.ToPageSize != DefaultPageSize || rep.Buckets == 0 || rep.Keys < 200+600 {
		t.Errorf("report = %+v", rep)
	}
	if _, err := os.Stat(dst + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
	c, err := Open(dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.PageSize(); got != DefaultPageSize {
		t.Errorf("page size %d, want %d", got, DefaultPageSize)
	}
	if _, err := c.APIKeyByHash(ctx, "h"); err != nil {
		t.Errorf("api key: %v", err)
	}
	after, err := c.Commands(ctx, ids[7])
	if err != nil || len(after) != 3 {
		t.Fatalf("commands after: %d, %v", len(after), err)
	}
	for i := range after {
		if after[i].UUID != before[i].UUID || after[i].Seq != before[i].Seq || after[i].Status != before[i].Status {
			t.Errorf("command %d: %+v, want %+v", i, after[i], before[i])
		}
	}
	if err := c.Enqueue(ctx, ids[:1], &mdm.Command{UUID: mdm.NewUUID(), RequestType: "DeviceInformation", Raw: []byte("<plist/>")}, now); err != nil {
		t.Fatal(err)
	}
	cmds, err := c.Commands(ctx, ids[0])
	if err != nil || len(cmds) != 4 {
		t.Fatalf("commands after a new one: %d, %v", len(cmds), err)
	}
	if last := cmds[3].Seq; last <= 600 {
		t.Errorf("new command sequence %d, want after the 600 copied ones", last)
	}

	// The target must not exist; the page size must be valid.
	if _, err := Compact(src, dst, 0); err == nil {
		t.Error("compact onto an existing file succeeded")
	}
	if _, err := Compact(src, filepath.Join(dir, "x.db"), 3000); err == nil {
		t.Error("page size 3000 accepted")
	}
	if _, err := Compact(filepath.Join(dir, "missing.db"), filepath.Join(dir, "y.db"), 0); err == nil {
		t.Error("compact of a missing file succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "y.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing source: target created (%v)", err)
	}
}
