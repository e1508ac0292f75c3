package certs

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// TopicPrefix starts every MDM push topic (Apple: the topic "must begin
// with the 'com.apple.mgmt.' prefix").
const TopicPrefix = "com.apple.mgmt."

// oidUID is the userid attribute (0.9.2342.19200300.100.1.1) that holds the
// push topic in the MDM push certificate's subject.
var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// PushCert is an MDM push (APNs) certificate with its key.
type PushCert struct {
	// Certificate is the TLS client certificate for APNs; Leaf is set.
	Certificate tls.Certificate
	// Topic is the subject UID, e.g. com.apple.mgmt.External.<uuid>.
	Topic string
	// NotAfter is when the certificate expires.
	NotAfter time.Time
}

// LoadPushCertPEM loads a push certificate from PEM. certPEM holds the
// certificate (optionally followed by its chain); keyPEM holds the
// unencrypted private key. Both may be the same combined file. The topic
// must be present and the key must match.
func LoadPushCertPEM(certPEM, keyPEM []byte) (*PushCert, error) {
	tc, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls errors describe what is wrong, never the key bytes.
		return nil, fmt.Errorf("load push certificate: %w", err)
	}
	return newPushCert(tc)
}

// LoadPushCertPKCS12 loads a push certificate from a PKCS #12 (.p12) file,
// as exported by Keychain Access.
func LoadPushCertPKCS12(data []byte, password string) (*PushCert, error) {
	key, cert, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, errors.New("load push certificate: PKCS #12 password incorrect")
		}
		return nil, fmt.Errorf("load push certificate: PKCS #12: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("load push certificate: unsupported key type %T", key)
	}
	tc := tls.Certificate{PrivateKey: signer, Leaf: cert, Certificate: [][]byte{cert.Raw}}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return newPushCert(tc)
}

func newPushCert(tc tls.Certificate) (*PushCert, error) {
	if tc.Leaf == nil {
		if len(tc.Certificate) == 0 {
			return nil, errors.New("load push certificate: no certificate")
		}
		leaf, err := x509.ParseCertificate(tc.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("load push certificate: %w", err)
		}
		tc.Leaf = leaf
	}
	topic, _ := topicFromCert(tc.Leaf)
	p := &PushCert{Certificate: tc, Topic: topic, NotAfter: tc.Leaf.NotAfter}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("load push certificate: %w", err)
	}
	return p, nil
}

// Validate reports whether the push certificate can be used at now: it
// must be within its validity period, carry a UID topic with the
// com.apple.mgmt. prefix equal to Topic, and its key must match.
func (p *PushCert) Validate(now time.Time) error {
	if p == nil {
		return errors.New("push certificate: none loaded")
	}
	if err := p.check(); err != nil {
		return fmt.Errorf("push certificate: %w", err)
	}
	leaf := p.Certificate.Leaf
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("push certificate for %s is not valid until %s", p.Topic, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("push certificate for %s expired at %s; renew it at identity.apple.com/pushcert with the same Apple Account", p.Topic, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// check verifies everything that does not depend on the time.
func (p *PushCert) check() error {
	leaf := p.Certificate.Leaf
	if leaf == nil {
		return errors.New("no leaf certificate")
	}
	topic, err := topicFromCert(leaf)
	if err != nil {
		return err
	}
	if p.Topic != topic {
		return fmt.Errorf("topic %q does not match the certificate's UID %q", p.Topic, topic)
	}
	if !p.NotAfter.Equal(leaf.NotAfter) {
		return errors.New("NotAfter does not match the certificate")
	}
	signer, ok := p.Certificate.PrivateKey.(crypto.Signer)
	if !ok {
		return errors.New("no private key")
	}
	if !keyMatches(leaf, signer) {
		return errors.New("private key does not match the certificate")
	}
	return nil
}

// topicFromCert returns the subject UID, which must have the MDM prefix.
func topicFromCert(cert *x509.Certificate) (string, error) {
	for _, n := range cert.Subject.Names {
		if !n.Type.Equal(oidUID) {
			continue
		}
		s, ok := n.Value.(string)
		if !ok {
			return "", errors.New("subject UID is not a string")
		}
		if !strings.HasPrefix(s, TopicPrefix) || len(s) == len(TopicPrefix) {
			return "", fmt.Errorf("subject UID %q is not an MDM push topic (want the %s prefix); is this an MDM push certificate from identity.apple.com?", s, TopicPrefix)
		}
		return s, nil
	}
	return "", errors.New("certificate subject has no UID (push topic); is this an MDM push certificate from identity.apple.com?")
}
