package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

const (
	pemTypeCert   = "CERTIFICATE"
	pemTypePKCS8  = "PRIVATE KEY"
	pemTypePKCS1  = "RSA PRIVATE KEY"
	pemTypeSEC1   = "EC PRIVATE KEY"
	keyFileMode   = 0o600
	certFileMode  = 0o644
	stateDirMode  = 0o700
	tempFileGlob  = ".tmp-*"
	maxPEMFileLen = 1 << 20
)

// writeFileAtomic writes data to path through a temporary file in the same
// directory, fsyncs it, and renames it into place, so a reader sees either
// the old file or the new one, never a partial one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+tempFileGlob)
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod temp file for %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write temp file for %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync temp file for %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close temp file for %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename temp file to %s: %w", path, err)
	}
	ok = true
	// Make the rename durable. Not every platform can fsync a directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// exists reports whether path exists; errors other than "not exist" are
// returned.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
}

// readPEMFile reads a file that must hold only PEM blocks.
func readPEMFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxPEMFileLen {
		return nil, fmt.Errorf("%s: file too large (%d bytes)", path, len(b))
	}
	return b, nil
}

// parseCertsPEM decodes every CERTIFICATE block in data. Any other block
// type or trailing non-whitespace is an error.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemTypeCert {
			return nil, fmt.Errorf("unexpected PEM block %q, want %q", block.Type, pemTypeCert)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate PEM block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("trailing data after PEM blocks")
	}
	return certs, nil
}

// parseKeyPEM decodes exactly one private key block. The error never
// contains key bytes.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("trailing data after private key PEM block")
	}
	if _, ok := block.Headers["Proc-Type"]; ok {
		return nil, errors.New("encrypted PEM private keys are not supported")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case pemTypePKCS8:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemTypePKCS1:
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case pemTypeSEC1:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q, want a private key", block.Type)
	}
	if err != nil {
		// The x509 parse errors describe structure only, never key bytes.
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
}

// encodeCertPEM returns the PEM encoding of certs, in order.
func encodeCertPEM(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: pemTypeCert, Bytes: c.Raw})
	}
	return buf.Bytes()
}

// encodeKeyPEM returns the PKCS #8 PEM encoding of key.
func encodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemTypePKCS8, Bytes: der}), nil
}

// keyMatches reports whether the private key belongs to the certificate.
func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// pairPaths are the file names of a certificate and its key.
type pairPaths struct {
	name string // human name for messages, e.g. "CA"
	cert string
	key  string
}

// pairState reports whether both files of a pair exist. One without the
// other is an error: something was lost or half written.
func (p pairPaths) state() (present bool, err error) {
	ce, err := exists(p.cert)
	if err != nil {
		return false, err
	}
	ke, err := exists(p.key)
	if err != nil {
		return false, err
	}
	switch {
	case ce && ke:
		return true, nil
	case !ce && !ke:
		return false, nil
	case ce:
		return false, fmt.Errorf("%s certificate %s exists but its key %s is missing; restore it or remove both to regenerate", p.name, p.cert, p.key)
	default:
		return false, fmt.Errorf("%s key %s exists but its certificate %s is missing; restore it or remove both to regenerate", p.name, p.key, p.cert)
	}
}

// load reads the pair; the certificate file holds exactly one certificate
// (extra certificates are accepted only when allowChain is set), and the key
// must match it.
func (p pairPaths) load(allowChain bool) ([]*x509.Certificate, crypto.Signer, error) {
	cb, err := readPEMFile(p.cert)
	if err != nil {
		return nil, nil, fmt.Errorf("%s certificate: %w", p.name, err)
	}
	certs, err := parseCertsPEM(cb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s certificate %s: %w", p.name, p.cert, err)
	}
	if len(certs) > 1 && !allowChain {
		return nil, nil, fmt.Errorf("%s certificate %s: holds %d certificates, want 1", p.name, p.cert, len(certs))
	}
	kb, err := readPEMFile(p.key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s key: %w", p.name, err)
	}
	key, err := parseKeyPEM(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s key %s: %w", p.name, p.key, err)
	}
	if !keyMatches(certs[0], key) {
		return nil, nil, fmt.Errorf("%s key %s does not match certificate %s", p.name, p.key, p.cert)
	}
	return certs, key, nil
}

// write stores the key first, then the certificate chain, each atomically.
func (p pairPaths) write(key crypto.Signer, certs ...*x509.Certificate) error {
	kb, err := encodeKeyPEM(key)
	if err != nil {
		return fmt.Errorf("%s key: %w", p.name, err)
	}
	if err := writeFileAtomic(p.key, kb, keyFileMode); err != nil {
		return fmt.Errorf("%s key: %w", p.name, err)
	}
	if err := writeFileAtomic(p.cert, encodeCertPEM(certs...), certFileMode); err != nil {
		return fmt.Errorf("%s certificate: %w", p.name, err)
	}
	return nil
}
