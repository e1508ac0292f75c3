package console

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

func TestSessionsExpireAndAreBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := newSessions(time.Hour, 3)
	p := Principal{Name: "a", Role: RoleAdmin, KeyHash: "h"}
	tok, ss := s.create(p, time.UTC, t0)
	if got := s.get(tok, t0.Add(59*time.Minute)); got != ss {
		t.Fatal("a live session was not found")
	}
	if got := s.get(tok, t0.Add(time.Hour)); got != nil {
		t.Fatal("an expired session was found")
	}
	if s.get("", t0) != nil || s.get("forged", t0) != nil {
		t.Fatal("a session without a valid cookie")
	}
	// At the cap the session closest to expiry makes room.
	var toks []string
	for i := range 4 {
		tok, _ := s.create(p, time.UTC, t0.Add(time.Duration(i)*time.Minute))
		toks = append(toks, tok)
	}
	if len(s.m) != 3 || s.get(toks[0], t0.Add(5*time.Minute)) != nil || s.get(toks[3], t0.Add(5*time.Minute)) == nil {
		t.Fatalf("%d sessions; the oldest should have gone", len(s.m))
	}
	s.remove(toks[3])
	if s.get(toks[3], t0.Add(5*time.Minute)) != nil {
		t.Fatal("a removed session was found")
	}
	if !ss.validCSRF(ss.csrf) || ss.validCSRF("") || ss.validCSRF(ss.csrf+"x") {
		t.Fatal("CSRF check is wrong")
	}
}

func TestKeyAuth(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, k := range []storage.APIKey{{ID: "k1", Name: "ops", Hash: HashKey("sdl_ops"), CreatedAt: t0}, {ID: "k2", Hash: HashKey("sdl_ro"), CreatedAt: t0}} {
		if err := store.PutAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	auth := KeyAuth{Keys: store, RoleOf: func(k *storage.APIKey) Role {
		if k.ID == "k2" {
			return RoleRead
		}
		return RoleAdmin
	}}
	if p, err := auth.ByHash(ctx, HashKey("sdl_ops")); err != nil || p.Name != "ops" || p.Role != RoleAdmin {
		t.Fatalf("ops: %+v %v", p, err)
	}
	if p, err := auth.ByHash(ctx, HashKey("sdl_ro")); err != nil || p.Name != "api key k2" || p.Role != RoleRead {
		t.Fatalf("read key: %+v %v", p, err)
	}
	if _, err := auth.ByHash(ctx, HashKey("sdl_nope")); !errors.Is(err, ErrBadKey) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := store.RevokeAPIKey(ctx, "k1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.ByHash(ctx, HashKey("sdl_ops")); !errors.Is(err, ErrBadKey) {
		t.Fatalf("revoked key: %v", err)
	}
	// Without a role function every key only reads.
	if p, _ := (KeyAuth{Keys: store}).ByHash(ctx, HashKey("sdl_ro")); p.Role != RoleRead {
		t.Fatalf("default role %q", p.Role)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/ui/devices?x=1": "/ui/devices?x=1", "": "/ui/", "https://evil.example/ui/": "/ui/",
		"//evil.example/ui/": "/ui/", "/ui/\\evil": "/ui/", "/api/v1/devices": "/ui/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
