package storagetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// ADEBackend is a backend that keeps Apple Business Manager devices.
type ADEBackend interface {
	storage.All
	storage.ADEStore
	storage.ADEUpdater
	storage.DEPServerStore
	AppendAudit(ctx context.Context, a *scheduler.AuditEntry) error
	Audit(ctx context.Context, after uint64, limit int) ([]scheduler.AuditEntry, error)
}

// RunADE runs the ABM device store conformance tests.
func RunADE(t *testing.T, newStore func(t *testing.T) ADEBackend) {
	t.Run("ADEPagesAndCursor", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		ctx := context.Background()
		if c, err := s.ADECursor(ctx, "main"); err != nil || c != "" {
			t.Fatalf("cursor before any page = %q, %v", c, err)
		}
		if _, err := s.ADEDevice(ctx, "NOPE"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown serial err = %v", err)
		}
		page := storage.ADEPage{Server: "main", Cursor: "c1"}
		for i := range 5 {
			page.Upsert = append(page.Upsert, storage.ADEDevice{Serial: fmt.Sprintf("SER%02d", i), Model: "MacBook Air",
				OS: "OSX", ProfileStatus: "empty", OpType: "added", DeviceAssignedDate: t0})
		}
		if err := s.ApplyADEPage(ctx, page, t0); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.ADECursor(ctx, "main"); c != "c1" {
			t.Errorf("cursor = %q, want c1", c)
		}
		// Sundial's own fields survive a later modification from ABM.
		if err := s.SetADEGroup(ctx, "SER01", "pilot", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.SetADEAssignResults(ctx, map[string]string{"SER01": "SUCCESS", "SER02": "NOT_ACCESSIBLE", "GHOST": "FAILED"}, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkADEEnrolled(ctx, "SER01", "UDID-1", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkADEEnrolled(ctx, "GHOST", "UDID-9", t0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("enroll unknown serial err = %v", err)
		}
		if err := s.SetADEGroup(ctx, "GHOST", "pilot", t0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("group of unknown serial err = %v", err)
		}
		mod := storage.ADEPage{Server: "main", Cursor: "c2",
			Upsert:  []storage.ADEDevice{{Serial: "SER01", Model: "MacBook Air", ProfileStatus: "pushed", OpType: "modified"}},
			Deleted: []string{"SER04"}}
		if err := s.ApplyADEPage(ctx, mod, t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		d, err := s.ADEDevice(ctx, "SER01")
		if err != nil {
			t.Fatal(err)
		}
		if d.ProfileStatus != "pushed" || d.Group != "pilot" || d.AssignResult != "SUCCESS" || d.EnrollmentID != "UDID-1" ||
			!d.EnrolledAt.Equal(t0.Add(time.Hour)) || d.Server != "main" || !d.UpdatedAt.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("SER01 after modify = %+v", d)
		}
		if d, _ := s.ADEDevice(ctx, "SER02"); d == nil || d.AssignResult != "NOT_ACCESSIBLE" || !d.DeviceAssignedDate.Equal(t0) {
			t.Errorf("SER02 = %+v", d)
		}
		if _, err := s.ADEDevice(ctx, "SER04"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("deleted serial err = %v", err)
		}
		// A delete from another server leaves this server's record alone.
		if err := s.ApplyADEPage(ctx, storage.ADEPage{Server: "other", Cursor: "o1", Deleted: []string{"SER03"}}, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ADEDevice(ctx, "SER03"); err != nil {
			t.Errorf("other server's delete removed SER03: %v", err)
		}
		if c, _ := s.ADECursor(ctx, "main"); c != "c2" {
			t.Errorf("cursor = %q, want c2", c)
		}
		// Listing pages by serial.
		all, err := s.ADEDevices(ctx, "", 0)
		if err != nil || len(all) != 4 {
			t.Fatalf("list = %d devices, %v; want 4", len(all), err)
		}
		first, _ := s.ADEDevices(ctx, "", 2)
		rest, _ := s.ADEDevices(ctx, first[len(first)-1].Serial, 0)
		var got []string
		for _, d := range append(first, rest...) {
			got = append(got, d.Serial)
		}
		if strings.Join(got, ",") != "SER00,SER01,SER02,SER03" {
			t.Errorf("paged list = %v", got)
		}
	})
	t.Run("ADEBadInputChangesNothing", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		ctx := context.Background()
		bad := []storage.ADEPage{
			{Server: "", Cursor: "x", Upsert: []storage.ADEDevice{{Serial: "A"}}},
			{Server: "main", Cursor: strings.Repeat("c", storage.MaxADECursor+1), Upsert: []storage.ADEDevice{{Serial: "A"}}},
			{Server: "main", Cursor: "x", Upsert: []storage.ADEDevice{{Serial: "A"}, {Serial: ""}}},
			{Server: "main", Cursor: "x", Upsert: []storage.ADEDevice{{Serial: "A", Model: strings.Repeat("m", storage.MaxADEField+1)}}},
		}
		for i, p := range bad {
			if err := s.ApplyADEPage(ctx, p, t0); err == nil {
				t.Errorf("bad page %d accepted", i)
			}
		}
		if all, _ := s.ADEDevices(ctx, "", 0); len(all) != 0 {
			t.Errorf("bad pages stored %d devices", len(all))
		}
		if c, _ := s.ADECursor(ctx, "main"); c != "" {
			t.Errorf("bad pages stored cursor %q", c)
		}
	})
	t.Run("DEPServers", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		ctx := context.Background()
		if _, err := s.DEPServer(ctx, "main"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown server err = %v", err)
		}
		srv := &storage.DEPServer{Name: "main", CertPEM: []byte("pem"), SealedKey: []byte{1, 2}, TokenExpiry: t0.Add(365 * 24 * time.Hour),
			Profiles: map[string]storage.DEPProfile{"": {UUID: "P1", Hash: "h", DefinedAt: t0}}, UpdatedAt: t0}
		if err := s.PutDEPServer(ctx, srv); err != nil {
			t.Fatal(err)
		}
		srv.Name = "second"
		if err := s.PutDEPServer(ctx, srv); err != nil {
			t.Fatal(err)
		}
		have, err := s.DEPServer(ctx, "main")
		if err != nil || have.Profiles[""].UUID != "P1" || !have.TokenExpiry.Equal(t0.Add(365*24*time.Hour)) || string(have.SealedKey) != "\x01\x02" {
			t.Errorf("server = %+v, %v", have, err)
		}
		for _, bad := range []*storage.DEPServer{{Name: ""}, {Name: "has space"}, {Name: strings.Repeat("n", 65)},
			{Name: "big", CertPEM: make([]byte, storage.MaxDEPServerSize)}} {
			if err := s.PutDEPServer(ctx, bad); err == nil {
				t.Errorf("bad server %.20q stored", bad.Name)
			}
		}
		a, err := scheduler.NewAuditEntry(t0, "admin", "dep.token.upload", "main", nil, map[string]string{"token_expiry": "2027"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AppendAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
		if es, err := s.Audit(ctx, 0, 10); err != nil || len(es) != 1 || es[0].Action != "dep.token.upload" || es[0].Seq == 0 {
			t.Errorf("audit = %+v, %v", es, err)
		}
		all, err := s.DEPServers(ctx)
		if err != nil || len(all) != 2 || all[0].Name != "main" || all[1].Name != "second" {
			t.Errorf("servers = %v, %v", all, err)
		}
	})
}
