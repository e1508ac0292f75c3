package seal

import (
	"bytes"
	"testing"
)

// TestSealForBindsContext: a value sealed for one record opens only for
// that record, and values sealed before binding still open.
func TestSealForBindsContext(t *testing.T) {
	s, err := New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("bootstrap-token")
	sealed, err := s.SealFor(secret, []byte("bootstrap:MAC-A"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value contains the plaintext")
	}
	if got, err := s.OpenFor(sealed, []byte("bootstrap:MAC-A")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("OpenFor = %q, %v", got, err)
	}
	if _, err := s.OpenFor(sealed, []byte("bootstrap:MAC-B")); err == nil {
		t.Fatal("a value sealed for MAC-A opened for MAC-B")
	}
	if _, err := s.Open(sealed); err == nil {
		t.Fatal("a bound value opened without its context")
	}
	legacy, err := s.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.OpenFor(legacy, []byte("anything")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("legacy value: OpenFor = %q, %v", got, err)
	}
}
