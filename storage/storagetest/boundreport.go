package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// testBoundReport: StoreBoundReportAndNext answers and records as
// StoreReportInventoryAndNext for the bound certificate (of the device,
// for a user channel too), and for any other certificate records nothing
// and returns ErrNotBound, whatever the report.
func testBoundReport(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "hash1")
	enroll(t, s, "BBB-2", "hash2")
	c := cmd(t, "ProfileList")
	if err := s.Enqueue(ctx, []string{"AAA-1"}, c, t0); err != nil {
		t.Fatal(err)
	}
	bound := func(id, cert string, r *mdm.Report) (string, *mdm.Command, error) {
		t.Helper()
		rt, stored, next, err := s.StoreBoundReportAndNext(ctx, id, cert, r, []byte("<plist/>"), nil, t0.Add(2*time.Second))
		if stored {
			t.Errorf("StoreBoundReportAndNext(%s, %s, %s) stored an inventory", id, cert, r.Status)
		}
		return rt, next, err
	}

	// Another Mac's certificate, and one bound to nothing: every kind of
	// report is refused and changes nothing.
	for _, cert := range []string{"hash2", "unknown"} {
		for _, r := range []*mdm.Report{idle("AAA-1"), report("AAA-1", c.UUID, mdm.NotNow), report("AAA-1", c.UUID, mdm.Acknowledged),
			report("AAA-1", c.UUID, mdm.Error)} {
			rt, next, err := bound("AAA-1", cert, r)
			if !errors.Is(err, storage.ErrNotBound) || rt != "" || next != nil {
				t.Errorf("%s report with %s = %q, %v, %v; want ErrNotBound", r.Status, cert, rt, uuidOf(next), err)
			}
		}
	}
	rec, err := s.Command(ctx, "AAA-1", c.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != mdm.StatusQueued || rec.NotNowCount != 0 || len(rec.History) != 1 {
		t.Fatalf("after refused reports the command is %s with %d NotNow and %d events, want untouched", rec.Status, rec.NotNowCount, len(rec.History))
	}

	// The bound certificate: Idle gets the command, NotNow holds it for
	// the session, the next Idle offers it again, the result finishes it.
	if _, next, err := bound("AAA-1", "hash1", idle("AAA-1")); err != nil || uuidOf(next) != c.UUID {
		t.Fatalf("Idle = %s, %v; want %s", uuidOf(next), err, c.UUID)
	}
	if rt, next, err := bound("AAA-1", "hash1", report("AAA-1", c.UUID, mdm.NotNow)); err != nil || rt != "ProfileList" || next != nil {
		t.Fatalf("NotNow = %q, %s, %v; want ProfileList and nothing next", rt, uuidOf(next), err)
	}
	if _, next, err := bound("AAA-1", "hash1", idle("AAA-1")); err != nil || uuidOf(next) != c.UUID {
		t.Fatalf("Idle after NotNow = %s, %v; want %s", uuidOf(next), err, c.UUID)
	}
	if rt, next, err := bound("AAA-1", "hash1", report("AAA-1", c.UUID, mdm.Acknowledged)); err != nil || rt != "ProfileList" || next != nil {
		t.Fatalf("Acknowledged = %q, %s, %v; want ProfileList and nothing next", rt, uuidOf(next), err)
	}
	// A duplicate is no error and records nothing.
	if rt, next, err := bound("AAA-1", "hash1", report("AAA-1", c.UUID, mdm.Acknowledged)); err != nil || rt != "" || next != nil {
		t.Fatalf("duplicate = %q, %s, %v; want nothing", rt, uuidOf(next), err)
	}
	if rec, err = s.Command(ctx, "AAA-1", c.UUID); err != nil || rec.Status != string(mdm.Acknowledged) || rec.NotNowCount != 1 {
		t.Fatalf("command after the result = %+v, %v", rec, err)
	}

	// A user channel is bound through its device.
	uid := enrollUser(t, s, "AAA-1", "USER-1")
	if _, next, err := bound(uid, "hash1", idle("AAA-1")); err != nil || next != nil {
		t.Errorf("user channel Idle with the device certificate = %s, %v", uuidOf(next), err)
	}
	if _, _, err := bound(uid, "hash2", idle("AAA-1")); !errors.Is(err, storage.ErrNotBound) {
		t.Errorf("user channel Idle with another certificate: %v, want ErrNotBound", err)
	}
}
