package certstest_test

import (
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
)

var t0 = time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC)

func TestNewAuthority(t *testing.T) {
	a1 := certstest.NewAuthority(t, t0)
	a2 := certstest.NewAuthority(t, t0.AddDate(2, 0, 0))
	if !a1.CA().Equal(a2.CA()) {
		t.Error("key material was not shared between calls")
	}
	late := certstest.NewAuthority(t, t0.AddDate(9, 6, 0))
	if late.CA().Equal(a1.CA()) {
		t.Error("reused a CA too close to its expiry")
	}
	if late.CA().NotBefore.After(t0.AddDate(9, 6, 0)) {
		t.Error("new CA is not valid at the requested time")
	}

	id, key := certstest.NewIdentity(t, a1, "device", t0)
	if err := a1.VerifyIdentity(id, t0); err != nil {
		t.Fatal(err)
	}
	body := []byte("<plist/>")
	h := certstest.SignRequest(t, body, id, key)
	got, err := certs.VerifyMdmSignature(h, body)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(id) {
		t.Error("signer is not the identity")
	}
}

func TestNewPushCert(t *testing.T) {
	const topic = "com.apple.mgmt.External.test"
	nb, na := t0, t0.AddDate(1, 0, 0)
	certPEM, keyPEM := certstest.NewPushCert(topic, nb, na)
	p, err := certs.LoadPushCertPEM(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if p.Topic != topic || !p.NotAfter.Equal(na) {
		t.Errorf("got topic %q until %s, want %q until %s", p.Topic, p.NotAfter, topic, na)
	}

	p12 := certstest.NewPushCertPKCS12(topic, nb, na, "secret")
	p, err = certs.LoadPushCertPKCS12(p12, "secret")
	if err != nil {
		t.Fatal(err)
	}
	if p.Topic != topic {
		t.Errorf("PKCS #12 topic = %q, want %q", p.Topic, topic)
	}
}
