package certs

import (
	"crypto/x509"
	"sync"
)

// pubKeys caches the parsed public keys of signer certificates by their
// subjectPublicKeyInfo bytes. A Mac signs every request with the same
// identity, so the fast path parsed the same key on every check-in (about
// 600 bytes of garbage each, issue 24). Parsed keys are only read, so they
// are shared. The cache is emptied when full, which bounds it at
// pubKeyCacheSize keys whatever the fleet's size.
var pubKeys = struct {
	sync.Mutex
	m map[string]any
}{m: map[string]any{}}

// pubKeyCacheSize bounds the cache under 1 MB (an RSA-2048 key with its
// SPKI bytes took ~400 bytes, by runtime.MemStats). A Mac's requests come
// in bursts (an enrolment's check-ins, a result and the Idle after it),
// which is what the cache serves; holding every Mac's key would keep ~4 MB
// live per 10,000 Macs.
const pubKeyCacheSize = 1024

// parsePublicKey returns x509.ParsePKIXPublicKey(spki), from the cache when
// it has parsed those bytes before. Errors are not cached.
func parsePublicKey(spki []byte) (any, error) {
	pubKeys.Lock()
	pub, ok := pubKeys.m[string(spki)]
	pubKeys.Unlock()
	if ok {
		return pub, nil
	}
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, err
	}
	pubKeys.Lock()
	if len(pubKeys.m) >= pubKeyCacheSize {
		clear(pubKeys.m)
	}
	pubKeys.m[string(spki)] = pub
	pubKeys.Unlock()
	return pub, nil
}
