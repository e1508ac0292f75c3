package certs_test

import (
	"bytes"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
)

const testTopic = "com.apple.mgmt.External.2a7a7e6c-6d6b-4d1e-9b57-0c1f1b2a3c4d"

func TestLoadPushCertPEM(t *testing.T) {
	nb, na := t0.AddDate(0, -1, 0), t0.AddDate(1, 0, 0)
	certPEM, keyPEM := certstest.NewPushCert(testTopic, nb, na)
	_, otherKey := certstest.NewPushCert(testTopic, nb, na)
	noUID, noUIDKey := certstest.NewPushCert("", nb, na)
	wrongPrefix, wrongPrefixKey := certstest.NewPushCert("com.example.push", nb, na)
	bare, bareKey := certstest.NewPushCert("com.apple.mgmt.", nb, na)
	combined := append(bytes.Clone(certPEM), keyPEM...)

	tests := []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"separate files", certPEM, keyPEM, ""},
		{"one combined file", combined, combined, ""},
		{"key does not match", certPEM, otherKey, "private key does not match"},
		{"no UID", noUID, noUIDKey, "no UID"},
		{"wrong prefix", wrongPrefix, wrongPrefixKey, "not an MDM push topic"},
		{"prefix only", bare, bareKey, "not an MDM push topic"},
		{"garbage certificate", []byte("nope"), keyPEM, "load push certificate"},
		{"no key", certPEM, nil, "load push certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := certs.LoadPushCertPEM(tc.cert, tc.key)
			wantErr(t, err, tc.want)
			if tc.want != "" {
				return
			}
			if p.Topic != testTopic {
				t.Errorf("Topic = %q, want %q", p.Topic, testTopic)
			}
			if !p.NotAfter.Equal(na) {
				t.Errorf("NotAfter = %s, want %s", p.NotAfter, na)
			}
			if p.Certificate.Leaf == nil {
				t.Fatal("Leaf not set")
			}
			if err := p.Validate(t0); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestLoadPushCertPKCS12(t *testing.T) {
	nb, na := t0.AddDate(0, -1, 0), t0.AddDate(1, 0, 0)
	const password = "correct horse battery staple"
	p12 := certstest.NewPushCertPKCS12(testTopic, nb, na, password)

	p, err := certs.LoadPushCertPKCS12(p12, password)
	if err != nil {
		t.Fatal(err)
	}
	if p.Topic != testTopic {
		t.Errorf("Topic = %q, want %q", p.Topic, testTopic)
	}
	if err := p.Validate(t0); err != nil {
		t.Errorf("Validate: %v", err)
	}

	tests := []struct {
		name     string
		data     []byte
		password string
		want     string
	}{
		{"wrong password", p12, "Tr0ub4dor&3", "password incorrect"},
		{"garbage", []byte("not a p12"), password, "PKCS #12"},
		{"no UID", certstest.NewPushCertPKCS12("", nb, na, password), password, "no UID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certs.LoadPushCertPKCS12(tc.data, tc.password)
			wantErr(t, err, tc.want)
			if strings.Contains(err.Error(), tc.password) {
				t.Error("error contains the password")
			}
		})
	}
}

func TestPushCertValidate(t *testing.T) {
	nb, na := t0.AddDate(0, -1, 0), t0.AddDate(1, 0, 0)
	load := func() *certs.PushCert {
		certPEM, keyPEM := certstest.NewPushCert(testTopic, nb, na)
		p, err := certs.LoadPushCertPEM(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	otherCert, otherKey := certstest.NewPushCert(testTopic, nb, na)
	other, err := tls.X509KeyPair(otherCert, otherKey)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		mutate func(p *certs.PushCert)
		now    time.Time
		want   string
	}{
		{"valid", func(*certs.PushCert) {}, t0, ""},
		{"expired", func(*certs.PushCert) {}, na.Add(time.Second), "expired at"},
		{"not yet valid", func(*certs.PushCert) {}, nb.Add(-time.Second), "not valid until"},
		{"topic changed", func(p *certs.PushCert) { p.Topic = "com.apple.mgmt.other" }, t0, "does not match the certificate's UID"},
		{"NotAfter changed", func(p *certs.PushCert) { p.NotAfter = p.NotAfter.Add(time.Hour) }, t0, "NotAfter does not match"},
		{"other key", func(p *certs.PushCert) { p.Certificate.PrivateKey = other.PrivateKey }, t0, "private key does not match"},
		{"no key", func(p *certs.PushCert) { p.Certificate.PrivateKey = nil }, t0, "no private key"},
		{"no leaf", func(p *certs.PushCert) { p.Certificate.Leaf = nil }, t0, "no leaf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := load()
			tc.mutate(p)
			wantErr(t, p.Validate(tc.now), tc.want)
		})
	}
	var none *certs.PushCert
	wantErr(t, none.Validate(t0), "none loaded")
}
