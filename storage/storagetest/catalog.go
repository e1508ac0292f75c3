package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// CatalogBackend is the release catalog's store plus the audit log that
// records changes made outside the Managed OS store.
type CatalogBackend interface {
	storage.CatalogStore
	AppendAudit(ctx context.Context, a *scheduler.AuditEntry) error
	scheduler.AuditLog
}

// RunCatalog runs the conformance suite for storage.CatalogStore and
// AppendAudit. newStore must return an empty store; the suite closes it if
// it is an io.Closer.
func RunCatalog(t *testing.T, newStore func(t *testing.T) CatalogBackend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s CatalogBackend)
	}{
		{"Feeds", testCatalogFeeds},
		{"ManualReleases", testCatalogManual},
		{"Polls", testCatalogPolls},
		{"AppendAudit", testAppendAudit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if c, ok := s.(io.Closer); ok {
				t.Cleanup(func() { c.Close() })
			}
			tc.fn(t, s)
		})
	}
}

func testCatalogFeeds(t *testing.T, s CatalogBackend) {
	ctx := t.Context()
	if fs, err := s.CatalogFeeds(ctx); err != nil || len(fs) != 0 {
		t.Fatalf("CatalogFeeds of an empty store = %v, %v", fs, err)
	}
	for _, f := range []struct{ kind, body string }{{"gdmf", "one"}, {"sofa", "two"}, {"gdmf", "three"}} {
		if err := s.PutCatalogFeed(ctx, f.kind, []byte(f.body), t0); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := s.CatalogFeeds(ctx)
	if err != nil || len(fs) != 2 || string(fs["gdmf"]) != "three" || string(fs["sofa"]) != "two" {
		t.Errorf("CatalogFeeds = %q, %v; want gdmf three, sofa two", fs, err)
	}
}

func testCatalogManual(t *testing.T, s CatalogBackend) {
	ctx := t.Context()
	for _, v := range []string{"15.4", "15.5", "15.4"} {
		if err := s.PutManualRelease(ctx, v, []byte(`{"version":"`+v+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	list := func() []string {
		t.Helper()
		rs, err := s.ManualReleases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, string(r))
		}
		return out
	}
	if got := strings.Join(list(), " "); got != `{"version":"15.4"} {"version":"15.5"}` {
		t.Errorf("ManualReleases = %s", got)
	}
	if err := s.DeleteManualRelease(ctx, "15.4"); err != nil {
		t.Fatalf("DeleteManualRelease: %v", err)
	}
	if err := s.DeleteManualRelease(ctx, "15.4"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteManualRelease of a removed release = %v, want ErrNotFound", err)
	}
	if err := s.DeleteManualRelease(ctx, "99.9"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteManualRelease of an unknown release = %v, want ErrNotFound", err)
	}
	if got := strings.Join(list(), " "); got != `{"version":"15.5"}` {
		t.Errorf("ManualReleases after delete = %s", got)
	}
}

func testCatalogPolls(t *testing.T, s CatalogBackend) {
	ctx := t.Context()
	if err := s.PutCatalogPoll(ctx, "gdmf", []byte(`{"etag":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCatalogPoll(ctx, "gdmf", []byte(`{"etag":"b"}`)); err != nil {
		t.Fatal(err)
	}
	// Refused: an empty or long kind, an oversized state. Nothing changes.
	for _, bad := range []struct {
		kind  string
		state []byte
	}{
		{"", []byte("{}")},
		{strings.Repeat("k", storage.MaxCatalogKind+1), []byte("{}")},
		{"sofa", bytes.Repeat([]byte("x"), storage.MaxCatalogPoll+1)},
	} {
		if err := s.PutCatalogPoll(ctx, bad.kind, bad.state); err == nil {
			t.Errorf("PutCatalogPoll(%.10q, %d bytes) accepted", bad.kind, len(bad.state))
		}
	}
	ps, err := s.CatalogPolls(ctx)
	if err != nil || len(ps) != 1 || string(ps["gdmf"]) != `{"etag":"b"}` {
		t.Errorf("CatalogPolls = %q, %v", ps, err)
	}
}

func testAppendAudit(t *testing.T, s CatalogBackend) {
	ctx := t.Context()
	if err := s.AppendAudit(ctx, nil); err == nil {
		t.Error("AppendAudit(nil) accepted")
	}
	if err := s.AppendAudit(ctx, &scheduler.AuditEntry{At: t0, Actor: "x"}); err == nil {
		t.Error("AppendAudit without an action accepted")
	}
	var seqs []uint64
	for _, action := range []string{"command.enqueue", "apikey.create", "catalog.add"} {
		a, err := scheduler.NewAuditEntry(t0, "admin", action, "subject", nil, map[string]string{"k": "v"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AppendAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, a.Seq)
	}
	if seqs[0] == 0 || seqs[1] <= seqs[0] || seqs[2] <= seqs[1] {
		t.Errorf("sequence numbers = %v, want increasing from 1", seqs)
	}
	got, err := s.Audit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Action != "command.enqueue" || got[2].Action != "catalog.add" || got[2].Seq != seqs[2] ||
		string(got[1].After) != `{"k":"v"}` || !got[0].At.Equal(t0) {
		t.Errorf("Audit = %+v", got)
	}
}
