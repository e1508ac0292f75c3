package service_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// bindings is a hand-written IdentityBindings: certificate hash → UDID.
type bindings map[string]string

func (b bindings) BoundEnrollment(_ context.Context, certHash string) (string, error) {
	return b[certHash], nil
}

func authenticate(udid string) *mdm.CheckinMessage {
	return &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: udid}, MessageType: mdm.Authenticate, Topic: "t"}
}

func tokenUpdate(udid string) *mdm.CheckinMessage {
	return &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: udid}, MessageType: mdm.TokenUpdate, Topic: "t",
		Token: []byte("token"), PushMagic: "magic"}
}

// TestRebindRules: the ways a re-bind is allowed or refused, each with its
// warning carrying both certificates, and the window after which a silent
// certificate no longer holds the enrollment.
func TestRebindRules(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sealer, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := service.New(store, clk, sealer, service.WithLogger(log), service.WithRebindWindow(7*24*time.Hour),
		service.WithIdentityBindings(bindings{"ade-cert": "MAC"}))
	ctx := t.Context()
	who := func(hash string) service.Identity {
		return service.Identity{CertHash: hash, NotAfter: clk.Now().AddDate(1, 0, 0)}
	}
	enroll := func(hash string) error {
		if _, err := svc.Checkin(ctx, who(hash), authenticate("MAC")); err != nil {
			return err
		}
		_, err := svc.Checkin(ctx, who(hash), tokenUpdate("MAC"))
		return err
	}
	if err := enroll("cert-1"); err != nil {
		t.Fatal(err)
	}
	// In use: refused, with a warning naming both certificates.
	if _, err := svc.Checkin(ctx, who("stranger"), authenticate("MAC")); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("re-bind of a Mac in use: %v, want ErrUnauthorized", err)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "re-enrollment refused") ||
		!strings.Contains(out, "old_cert=cert-1") || !strings.Contains(out, "new_cert=stranger") {
		t.Errorf("refusal log = %q", out)
	}
	// An identity issued for this UDID (ADE) proves the re-enrollment.
	logs.Reset()
	if err := enroll("ade-cert"); err != nil {
		t.Fatalf("re-bind with an identity issued for the Mac: %v", err)
	}
	if out := logs.String(); !strings.Contains(out, "enrollment re-bound") || !strings.Contains(out, "old_cert=cert-1") || !strings.Contains(out, "new_cert=ade-cert") {
		t.Errorf("re-bind log = %q", out)
	}
	// An identity issued for another Mac does not.
	if _, err := svc.Checkin(ctx, who("other-ade"), authenticate("MAC")); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("identity issued for nobody: %v", err)
	}
	// Silent for longer than the window: the old certificate no longer
	// holds the enrollment.
	clk.Advance(8 * 24 * time.Hour)
	if err := enroll("cert-2"); err != nil {
		t.Fatalf("re-bind after the window: %v", err)
	}
	// The bound certificate expired.
	expiring := service.Identity{CertHash: "short", NotAfter: clk.Now().Add(time.Hour)}
	store.CheckOut(ctx, "MAC", clk.Now()) // so that "short" may bind
	if _, err := svc.Checkin(ctx, expiring, authenticate("MAC")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Checkin(ctx, expiring, tokenUpdate("MAC")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := svc.Checkin(ctx, who("renewed"), authenticate("MAC")); err != nil {
		t.Fatalf("re-bind after the bound certificate expired: %v", err)
	}
	g, err := store.EnrollmentGuard(ctx, "MAC")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range g.Events {
		kinds = append(kinds, e.Kind+":"+e.NewCert)
	}
	want := "bound:cert-1 rebind_refused:stranger rebound:ade-cert rebind_refused:other-ade rebound:cert-2 rebound:short rebound:renewed"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("history = %s\nwant      %s", got, want)
	}
}
