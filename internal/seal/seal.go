// Package seal encrypts small secrets at rest (the escrowed bootstrap token)
// with AES-256-GCM under a key file kept beside the database.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
)

// Sealer seals and opens secrets.
type Sealer struct {
	aead cipher.AEAD
}

const version byte = 1

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("seal key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// LoadOrCreate reads the key at path, creating it (mode 0600) if it does not
// exist. A key file of the wrong size is an error, never replaced: replacing
// it would make every sealed secret unreadable.
func LoadOrCreate(path string) (*Sealer, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create seal key: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("write seal key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("write seal key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write seal key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read seal key: %w", err)
	}
	s, err := New(key)
	if err != nil {
		return nil, fmt.Errorf("seal key %s: %w", path, err)
	}
	return s, nil
}

// Seal encrypts plaintext: version byte, nonce, ciphertext.
func (s *Sealer) Seal(plaintext []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{version}, nonce...)
	return s.aead.Seal(out, nonce, plaintext, []byte{version}), nil
}

// Open decrypts what Seal produced.
func (s *Sealer) Open(sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != version {
		return nil, errors.New("sealed value has an unknown format")
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte{version})
	if err != nil {
		return nil, errors.New("sealed value does not open with this key")
	}
	return pt, nil
}
