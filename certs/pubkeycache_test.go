package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"reflect"
	"testing"
)

func TestParsePublicKeyCache(t *testing.T) {
	spki := func() []byte {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	a, b := spki(), spki()
	pa, err := parsePublicKey(a)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := x509.ParsePKIXPublicKey(a)
	if !reflect.DeepEqual(pa, want) {
		t.Fatal("cached key differs from the parsed one")
	}
	if again, _ := parsePublicKey(a); again != pa {
		t.Error("second parse of the same bytes did not come from the cache")
	}
	if pb, _ := parsePublicKey(b); pb == pa {
		t.Error("another key's bytes returned the first key")
	}
	if _, err := parsePublicKey([]byte{0x30, 0x00}); err == nil {
		t.Error("garbage parsed")
	}
	pubKeys.Lock()
	for i := range pubKeyCacheSize {
		pubKeys.m[string(rune(i))+"filler"] = nil
	}
	pubKeys.Unlock()
	if _, err := parsePublicKey(spki()); err != nil {
		t.Fatal(err)
	}
	pubKeys.Lock()
	n := len(pubKeys.m)
	pubKeys.Unlock()
	if n != 1 {
		t.Errorf("cache holds %d keys after filling up, want 1 (emptied, then the new one)", n)
	}
}
