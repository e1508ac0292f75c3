package seal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTripAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	s, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("bootstrap-token")
	sealed, err := s.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value contains the plaintext")
	}
	s2, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Open(sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s2.Open(sealed); err == nil {
		t.Error("tampered value opened")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v", fi.Mode())
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := LoadOrCreate(path); err == nil {
		t.Error("short key accepted")
	}
}
