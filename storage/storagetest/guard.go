package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// GuardBackend is a backend that keeps enrollment guards, agent secrets and
// the audit log.
type GuardBackend interface {
	storage.All
	storage.AgentStore
	storage.EnrollmentGuardStore
	AllowReenroll(ctx context.Context, id string, until time.Time, audit *scheduler.AuditEntry) error
	Audit(ctx context.Context, after uint64, limit int) ([]scheduler.AuditEntry, error)
}

// RunEnrollmentGuard runs the conformance tests of enrollment guards and of
// what a re-enrollment must clear.
func RunEnrollmentGuard(t *testing.T, newStore func(t *testing.T) GuardBackend) {
	t.Run("EnrollmentGuard", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		ctx := context.Background()
		if _, err := s.EnrollmentGuard(ctx, "ghost"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("guard of unknown device err = %v", err)
		}
		if err := s.UpdateEnrollmentGuard(ctx, "ghost", func(*mdm.EnrollmentGuard) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("update of unknown device err = %v", err)
		}
		enroll(t, s, "GRD-1", "c1")
		g, err := s.EnrollmentGuard(ctx, "GRD-1")
		if err != nil || !g.CertNotAfter.IsZero() || len(g.Events) != 0 {
			t.Fatalf("guard before any update = %+v, %v", g, err)
		}
		notAfter := t0.AddDate(1, 0, 0)
		for i := range mdm.MaxEnrollmentEvents + 5 {
			err := s.UpdateEnrollmentGuard(ctx, "GRD-1", func(g *mdm.EnrollmentGuard) error {
				g.CertNotAfter = notAfter
				g.Events = append(g.Events, mdm.EnrollmentEvent{Kind: mdm.EventBound, At: t0.Add(time.Duration(i) * time.Second), NewCert: fmt.Sprint(i)})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		// A failing update writes nothing.
		boom := errors.New("boom")
		if err := s.UpdateEnrollmentGuard(ctx, "GRD-1", func(g *mdm.EnrollmentGuard) error {
			g.CertNotAfter = time.Time{}
			return boom
		}); !errors.Is(err, boom) {
			t.Errorf("failing update err = %v, want boom", err)
		}
		g, err = s.EnrollmentGuard(ctx, "GRD-1")
		if err != nil {
			t.Fatal(err)
		}
		if !g.CertNotAfter.Equal(notAfter) || len(g.Events) != mdm.MaxEnrollmentEvents || g.Events[0].NewCert != "5" {
			t.Errorf("guard = not after %v, %d events starting %+v", g.CertNotAfter, len(g.Events), g.Events[0])
		}

		// An approval is stored with its audit entry.
		audit, err := scheduler.NewAuditEntry(t0, "admin", "device.allow_reenroll", "GRD-1", nil, map[string]any{"until": t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AllowReenroll(ctx, "GRD-1", t0.Add(time.Hour), audit); err != nil {
			t.Fatal(err)
		}
		g, _ = s.EnrollmentGuard(ctx, "GRD-1")
		if last := g.Events[len(g.Events)-1]; !g.ReenrollUntil.Equal(t0.Add(time.Hour)) || g.ReenrollBy != "admin" || last.Kind != mdm.EventReenrollAllowed || last.Actor != "admin" {
			t.Errorf("after approval: until %v by %q, last event %+v", g.ReenrollUntil, g.ReenrollBy, last)
		}
		if all, err := s.Audit(ctx, 0, 0); err != nil || len(all) != 1 || all[0].Action != "device.allow_reenroll" || all[0].Subject != "GRD-1" {
			t.Errorf("audit = %+v, %v", all, err)
		}
		if err := s.AllowReenroll(ctx, "ghost", t0.Add(time.Hour), audit); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("approval for unknown device err = %v", err)
		}
	})

	t.Run("AuthenticateGuarded", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		ctx := context.Background()
		notAfter := t0.AddDate(1, 0, 0)
		err := s.AuthenticateGuarded(ctx, "AG-1", authMsg("AG-1"), "c1", t0, func(g *mdm.EnrollmentGuard) error {
			g.CertNotAfter = notAfter
			g.AppendEvent(mdm.EnrollmentEvent{Kind: mdm.EventBound, At: t0, NewCert: "c1"})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.CertBound(ctx, "AG-1", "c1"); err != nil || !ok {
			t.Errorf("CertBound = %v, %v", ok, err)
		}
		if g, err := s.EnrollmentGuard(ctx, "AG-1"); err != nil || !g.CertNotAfter.Equal(notAfter) || len(g.Events) != 1 {
			t.Errorf("guard = %+v, %v", g, err)
		}
		// A failing guard update undoes the Authenticate too.
		boom := errors.New("boom")
		if err := s.AuthenticateGuarded(ctx, "AG-1", authMsg("AG-1"), "c2", t0.Add(time.Hour), func(*mdm.EnrollmentGuard) error { return boom }); !errors.Is(err, boom) {
			t.Errorf("failing guard err = %v, want boom", err)
		}
		if ok, _ := s.CertBound(ctx, "AG-1", "c1"); !ok {
			t.Error("the binding changed although the guard update failed")
		}
		// A certificate bound elsewhere is refused before the guard.
		called := false
		err = s.AuthenticateGuarded(ctx, "AG-2", authMsg("AG-2"), "c1", t0, func(*mdm.EnrollmentGuard) error { called = true; return nil })
		if !errors.Is(err, storage.ErrCertInUse) || called {
			t.Errorf("certificate of another enrollment: err = %v, guard updated %v", err, called)
		}
	})

	t.Run("APIKeyRole", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		ctx := context.Background()
		for _, k := range []storage.APIKey{
			{ID: "r1", Name: "viewer", Role: "read", Hash: "hr", CreatedAt: t0},
			{ID: "a1", Name: "legacy", Hash: "ha", CreatedAt: t0},
		} {
			if err := s.PutAPIKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if k, err := s.APIKeyByHash(ctx, "hr"); err != nil || k.Role != "read" {
			t.Errorf("read key = %+v, %v", k, err)
		}
		if k, err := s.APIKeyByHash(ctx, "ha"); err != nil || k.Role != "" {
			t.Errorf("key without a role = %+v, %v", k, err)
		}
	})

	t.Run("ReenrollmentClearsSecrets", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		ctx := context.Background()
		enroll(t, s, "RE-1", "c1")
		if err := s.SetBootstrapToken(ctx, "RE-1", []byte("sealed token"), t0); err != nil {
			t.Fatal(err)
		}
		if err := s.PutAgentSecret(ctx, "RE-1", "secret-hash", t0); err != nil {
			t.Fatal(err)
		}
		rep := storage.AgentReport{TimeZone: "Europe/Paris", Events: []storage.AgentEvent{{Kind: "prompt_shown", At: t0}}}
		if err := s.AppendAgentReport(ctx, "RE-1", rep, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.Authenticate(ctx, "RE-1", authMsg("RE-1"), "c2", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		d, err := s.Device(ctx, "RE-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.BootstrapToken) != 0 || !d.BootstrapAt.IsZero() {
			t.Errorf("bootstrap token kept across Authenticate: %q at %v", d.BootstrapToken, d.BootstrapAt)
		}
		if h, err := s.AgentSecretHash(ctx, "RE-1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("agent secret kept across Authenticate: %q, %v", h, err)
		}
		// The Mac's zone and agent history stay.
		if st, err := s.AgentState(ctx, "RE-1"); err != nil || st.TimeZone != "Europe/Paris" || len(st.Events) != 1 {
			t.Errorf("agent state after Authenticate = %+v, %v", st, err)
		}
		// A fresh secret can be set again.
		if err := s.PutAgentSecret(ctx, "RE-1", "secret-hash-2", t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if h, err := s.AgentSecretHash(ctx, "RE-1"); err != nil || h != "secret-hash-2" {
			t.Errorf("new secret = %q, %v", h, err)
		}
	})
}
