package storagetest

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// RunLease runs the conformance suite for storage.LeaseStore. newStore must
// return an empty store; the suite closes it if it is an io.Closer.
func RunLease(t *testing.T, newStore func(t *testing.T) storage.LeaseStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.LeaseStore)
	}{
		{"Validation", testLeaseValidation},
		{"Timeline", testLeaseTimeline},
		{"Release", testLeaseRelease},
		{"SeparateNames", testLeaseSeparate},
		{"ConcurrentAcquire", testLeaseConcurrent},
		{"Hold", testLeaseHold},
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

const leaseTTL = 30 * time.Second

func testLeaseValidation(t *testing.T, s storage.LeaseStore) {
	ctx := t.Context()
	tests := []struct {
		name, lease, holder string
		ttl                 time.Duration
	}{
		{"empty name", "", "a", leaseTTL},
		{"empty holder", "scheduler", "", leaseTTL},
		{"zero ttl", "scheduler", "a", 0},
		{"negative ttl", "scheduler", "a", -time.Second},
	}
	for _, tc := range tests {
		if ok, err := s.AcquireLease(ctx, tc.lease, tc.holder, tc.ttl, t0); err == nil || ok {
			t.Errorf("%s: AcquireLease = %v, %v; want an error", tc.name, ok, err)
		}
	}
	// Nothing was taken by the refused calls.
	if ok, err := s.AcquireLease(ctx, "scheduler", "b", leaseTTL, t0); err != nil || !ok {
		t.Errorf("AcquireLease after refused calls = %v, %v; want true", ok, err)
	}
}

// testLeaseTimeline walks one lease through acquire, renew, refusal,
// expiry and takeover; each step's outcome follows from the ones before.
func testLeaseTimeline(t *testing.T, s storage.LeaseStore) {
	ctx := t.Context()
	steps := []struct {
		name   string
		holder string
		at     time.Duration // after t0
		want   bool
	}{
		{"first acquire", "a", 0, true},
		{"renew by the holder", "a", leaseTTL / 2, true}, // now held until t0+1.5ttl
		{"another holder refused", "b", leaseTTL / 2, false},
		{"refused after the first expiry, as renewed", "b", leaseTTL + time.Second, false},
		{"refused just before expiry", "b", leaseTTL*3/2 - time.Millisecond, false},
		{"takeover at expiry", "b", leaseTTL * 3 / 2, true}, // held by b until t0+2.5ttl
		{"old holder refused", "a", leaseTTL * 3 / 2, false},
		{"new holder renews", "b", 2 * leaseTTL, true}, // until t0+3ttl
		{"old holder refused before the renewed expiry", "a", leaseTTL * 5 / 2, false},
		{"old holder takes it back after expiry", "a", 4 * leaseTTL, true},
	}
	for _, st := range steps {
		ok, err := s.AcquireLease(ctx, "scheduler", st.holder, leaseTTL, t0.Add(st.at))
		if err != nil || ok != st.want {
			t.Fatalf("%s: AcquireLease(%s, t0+%v) = %v, %v; want %v", st.name, st.holder, st.at, ok, err, st.want)
		}
	}
}

func testLeaseRelease(t *testing.T, s storage.LeaseStore) {
	ctx := t.Context()
	if err := s.ReleaseLease(ctx, "scheduler", "a"); err != nil {
		t.Fatalf("release of a lease nobody holds: %v", err)
	}
	if ok, err := s.AcquireLease(ctx, "scheduler", "a", leaseTTL, t0); err != nil || !ok {
		t.Fatalf("acquire = %v, %v", ok, err)
	}
	// Another holder cannot release it.
	if err := s.ReleaseLease(ctx, "scheduler", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcquireLease(ctx, "scheduler", "b", leaseTTL, t0.Add(time.Second)); ok {
		t.Fatal("a release by a non-holder freed the lease")
	}
	// The holder can, and the lease is free at once.
	if err := s.ReleaseLease(ctx, "scheduler", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AcquireLease(ctx, "scheduler", "b", leaseTTL, t0.Add(2*time.Second)); err != nil || !ok {
		t.Fatalf("acquire after release = %v, %v; want true", ok, err)
	}
	if ok, _ := s.AcquireLease(ctx, "scheduler", "a", leaseTTL, t0.Add(3*time.Second)); ok {
		t.Fatal("the old holder took the lease back after releasing it")
	}
}

func testLeaseSeparate(t *testing.T, s storage.LeaseStore) {
	ctx := t.Context()
	for _, name := range []string{"scheduler", "catalog", "scheduler:x"} {
		if ok, err := s.AcquireLease(ctx, name, "holder-"+name, leaseTTL, t0); err != nil || !ok {
			t.Errorf("acquire %s = %v, %v; want true", name, ok, err)
		}
	}
	if err := s.ReleaseLease(ctx, "catalog", "holder-catalog"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcquireLease(ctx, "scheduler", "other", leaseTTL, t0.Add(time.Second)); ok {
		t.Error("releasing one lease freed another")
	}
}

// testLeaseConcurrent has many holders race for a free lease at one
// instant: exactly one wins.
func testLeaseConcurrent(t *testing.T, s storage.LeaseStore) {
	ctx := t.Context()
	const n = 16
	for round := range 3 {
		// Round r happens after the previous round's lease expired.
		now := t0.Add(time.Duration(round) * 2 * leaseTTL)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
			errs    []error
		)
		for i := range n {
			wg.Go(func() {
				holder := fmt.Sprintf("replica-%d", i)
				ok, err := s.AcquireLease(ctx, "scheduler", holder, leaseTTL, now)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					winners = append(winners, holder)
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 || len(winners) != 1 {
			t.Fatalf("round %d: winners %v, errors %v; want exactly one winner", round, winners, errs)
		}
	}
}

// testLeaseHold checks a storage.LeaseHolder: a held lease has no expiry
// and is free again only once released. Stores without it skip.
func testLeaseHold(t *testing.T, s storage.LeaseStore) {
	h, ok := s.(storage.LeaseHolder)
	if !ok {
		t.Skip("not a storage.LeaseHolder: leases expire and are renewed")
	}
	ctx := t.Context()
	if ok, err := h.HoldLease(ctx, "", "a", t0); err == nil || ok {
		t.Errorf("HoldLease with an empty name = %v, %v; want an error", ok, err)
	}
	if ok, err := h.HoldLease(ctx, "scheduler", "", t0); err == nil || ok {
		t.Errorf("HoldLease with an empty holder = %v, %v; want an error", ok, err)
	}
	// b's expiring lease keeps a out until it expires.
	if ok, err := s.AcquireLease(ctx, "scheduler", "b", leaseTTL, t0); err != nil || !ok {
		t.Fatalf("AcquireLease(b) = %v, %v; want true", ok, err)
	}
	steps := []struct {
		name   string
		hold   bool // HoldLease, else AcquireLease
		holder string
		at     time.Duration
		want   bool
	}{
		{"hold refused before b's expiry", true, "a", leaseTTL - time.Millisecond, false},
		{"hold at b's expiry", true, "a", leaseTTL, true},
		{"held again by its holder", true, "a", leaseTTL, true},
		{"acquired by its holder: still held", false, "a", 2 * leaseTTL, true},
		{"acquire refused long after any ttl", false, "b", 1000 * leaseTTL, false},
		{"hold refused long after any ttl", true, "b", 1000 * leaseTTL, false},
	}
	for _, st := range steps {
		var ok bool
		var err error
		if st.hold {
			ok, err = h.HoldLease(ctx, "scheduler", st.holder, t0.Add(st.at))
		} else {
			ok, err = s.AcquireLease(ctx, "scheduler", st.holder, leaseTTL, t0.Add(st.at))
		}
		if err != nil || ok != st.want {
			t.Fatalf("%s: = %v, %v; want %v", st.name, ok, err, st.want)
		}
	}
	// Releasing by another holder changes nothing; by the holder frees it.
	if err := s.ReleaseLease(ctx, "scheduler", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcquireLease(ctx, "scheduler", "b", leaseTTL, t0.Add(2000*leaseTTL)); ok {
		t.Fatal("a release by a non-holder freed a held lease")
	}
	if err := s.ReleaseLease(ctx, "scheduler", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AcquireLease(ctx, "scheduler", "b", leaseTTL, t0.Add(2000*leaseTTL)); err != nil || !ok {
		t.Fatalf("AcquireLease after the holder released = %v, %v; want true", ok, err)
	}
}
