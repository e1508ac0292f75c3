package seal

import (
	"crypto/rand"
	"errors"
	"slices"
)

// versionBound marks a value sealed with associated data (SealFor): the
// context it belongs to (an enrollment ID, a command UUID) is
// authenticated, so a sealed value copied into another record does not
// open there.
const versionBound byte = 2

// SealFor encrypts plaintext bound to ad: version byte, nonce, ciphertext.
func (s *Sealer) SealFor(plaintext, ad []byte) ([]byte, error) {
	return s.AppendSealFor(nil, plaintext, ad)
}

// AppendSealFor appends what SealFor returns to dst, growing it once, so a
// caller that stores the value behind a prefix does not copy it again.
func (s *Sealer) AppendSealFor(dst, plaintext, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	dst = slices.Grow(dst, 1+n+len(plaintext)+s.aead.Overhead())
	dst = append(dst, versionBound)
	start := len(dst)
	dst = dst[:start+n]
	nonce := dst[start:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(dst, nonce, plaintext, boundAD(ad)), nil
}

// OpenFor decrypts what SealFor produced with the same ad. A value sealed
// by Seal (before values were bound) still opens, so stored secrets stay
// readable after an upgrade.
func (s *Sealer) OpenFor(sealed, ad []byte) ([]byte, error) {
	if len(sealed) > 0 && sealed[0] == version {
		return s.Open(sealed)
	}
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != versionBound {
		return nil, errors.New("sealed value has an unknown format")
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], boundAD(ad))
	if err != nil {
		return nil, errors.New("sealed value does not open with this key for this record")
	}
	return pt, nil
}

func boundAD(ad []byte) []byte { return append([]byte{versionBound}, ad...) }
