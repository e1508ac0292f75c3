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

// TestAppendSealFor: the sealed value is appended after dst's bytes, opens
// as SealFor's does, and fits in one allocation when dst has room.
func TestAppendSealFor(t *testing.T) {
	s, err := New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("profile "), 100)
	ad := []byte("command:C1")
	for _, room := range []int{0, 1 + s.aead.NonceSize() + len(secret) + s.aead.Overhead()} {
		dst := append(make([]byte, 0, 7+room), "prefix:"...)
		out, err := s.AppendSealFor(dst, secret, ad)
		if err != nil {
			t.Fatal(err)
		}
		sealed, ok := bytes.CutPrefix(out, []byte("prefix:"))
		if !ok {
			t.Fatalf("room %d: prefix lost: %q", room, out[:7])
		}
		if got, err := s.OpenFor(sealed, ad); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("room %d: OpenFor = %q, %v", room, got, err)
		}
		if room > 0 && &out[0] != &dst[:1][0] {
			t.Errorf("room %d: dst was reallocated", room)
		}
	}
}
