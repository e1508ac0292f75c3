package enrollment

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSharedChallenge(t *testing.T) {
	if _, err := NewSharedChallenge(""); err == nil {
		t.Fatal("NewSharedChallenge(\"\") succeeded, want error")
	}
	s, err := NewSharedChallenge("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	issued, err := s.IssueChallenge(ctx, testNow)
	if err != nil || issued != "s3cret" {
		t.Fatalf("IssueChallenge = %q, %v; want s3cret", issued, err)
	}
	tests := []struct {
		have string
		want bool
	}{
		{"s3cret", true},
		{"s3cret", true}, // shared: reusable
		{"S3cret", false},
		{"s3cret ", false},
		{"", false},
		{"s3cre", false},
	}
	for _, tt := range tests {
		got, err := s.VerifyChallenge(ctx, tt.have, testNow)
		if err != nil || got != tt.want {
			t.Errorf("VerifyChallenge(%q) = %v, %v; want %v", tt.have, got, err, tt.want)
		}
	}
}

func TestOneTimeChallenges(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryChallengeStore()
	o := NewOneTimeChallenges(store, 10*time.Minute)

	a, err := o.IssueChallenge(ctx, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := o.IssueChallenge(ctx, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two issued challenges are equal: %q", a)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`).MatchString(a) {
		t.Errorf("challenge %q: want 32 url-safe characters", a)
	}
	if store.Len() != 2 {
		t.Errorf("store holds %d challenges, want 2", store.Len())
	}

	tests := []struct {
		name string
		have string
		at   time.Time
		want bool
	}{
		{"first use", a, testNow.Add(time.Minute), true},
		{"reuse", a, testNow.Add(time.Minute), false},
		{"unknown", "not-a-challenge", testNow, false},
		{"empty", "", testNow, false},
		{"expired", b, testNow.Add(10 * time.Minute), false},
		{"expired stays gone", b, testNow, false},
	}
	for _, tt := range tests {
		got, err := o.VerifyChallenge(ctx, tt.have, tt.at)
		if err != nil || got != tt.want {
			t.Errorf("%s: VerifyChallenge = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if store.Len() != 0 {
		t.Errorf("store holds %d challenges after use, want 0", store.Len())
	}
}

func TestOneTimeChallengeConcurrentUse(t *testing.T) {
	ctx := context.Background()
	o := NewOneTimeChallenges(NewMemoryChallengeStore(), 0)
	c, err := o.IssueChallenge(ctx, testNow)
	if err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if ok, _ := o.VerifyChallenge(ctx, c, testNow); ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("challenge accepted %d times, want once", wins.Load())
	}
}

// failingStore is a ChallengeStore whose backend is down.
type failingStore struct{}

var errStoreDown = errors.New("store down")

func (failingStore) PutChallenge(context.Context, string, time.Time) error { return errStoreDown }
func (failingStore) TakeChallenge(context.Context, string, time.Time) (bool, error) {
	return false, errStoreDown
}

func TestOneTimeChallengesStoreErrors(t *testing.T) {
	ctx := context.Background()
	o := NewOneTimeChallenges(failingStore{}, time.Hour)
	if _, err := o.IssueChallenge(ctx, testNow); !errors.Is(err, errStoreDown) {
		t.Errorf("IssueChallenge err = %v, want %v", err, errStoreDown)
	}
	ok, err := o.VerifyChallenge(ctx, "whatever", testNow)
	if ok || !errors.Is(err, errStoreDown) {
		t.Errorf("VerifyChallenge = %v, %v; want false, %v", ok, err, errStoreDown)
	}
}

func TestChallengeKey(t *testing.T) {
	// sha256("abc"), FIPS 180-2 test vector.
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if have := ChallengeKey("abc"); have != want {
		t.Errorf("ChallengeKey(abc) = %s, want %s", have, want)
	}
}

func TestMemoryChallengeStoreSweeps(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryChallengeStore()
	for i := range 1100 {
		if err := m.PutChallenge(ctx, ChallengeKey(string(rune(i))+"x"), testNow.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// Everything has expired by now+2h; one Take sweeps the lot.
	if ok, _ := m.TakeChallenge(ctx, "missing", testNow.Add(2*time.Hour)); ok {
		t.Fatal("missing key accepted")
	}
	if m.Len() != 0 {
		t.Errorf("store holds %d expired challenges after sweep, want 0", m.Len())
	}
	if err := m.PutChallenge(ctx, "", testNow); err == nil {
		t.Error("PutChallenge with empty key succeeded")
	}
}
