package certs_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/certs"
)

func TestLoadOrCreateFirstStart(t *testing.T) {
	// baseDir was created by LoadOrCreate in TestMain; load it and check
	// what was generated.
	a, err := certs.LoadOrCreate(baseDir, t0)
	if err != nil {
		t.Fatal(err)
	}

	ca := a.CA()
	caKey, ok := ca.PublicKey.(*ecdsa.PublicKey)
	if !ok || caKey.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid {
		t.Error("CA certificate is not a CA")
	}
	if ca.Subject.CommonName != "Sundial CA" {
		t.Errorf("CA subject CN = %q, want %q", ca.Subject.CommonName, "Sundial CA")
	}
	if life := ca.NotAfter.Sub(t0); life < 9*365*24*time.Hour || life > 11*365*24*time.Hour {
		t.Errorf("CA lifetime from now = %s, want about ten years", life)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}

	ra, raKey := a.RA()
	if raKey.N.BitLen() != 2048 {
		t.Errorf("RA key has %d bits, want 2048", raKey.N.BitLen())
	}
	wantRAUsage := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment
	if ra.KeyUsage != wantRAUsage {
		t.Errorf("RA key usage = %b, want %b", ra.KeyUsage, wantRAUsage)
	}
	if err := ra.CheckSignatureFrom(ca); err != nil {
		t.Errorf("RA not issued by CA: %v", err)
	}
	if !raKey.PublicKey.Equal(ra.PublicKey) {
		t.Error("RA key does not match RA certificate")
	}

	signer, signerKey := a.ProfileSigner()
	if err := signer.CheckSignatureFrom(ca); err != nil {
		t.Errorf("profile signer not issued by CA: %v", err)
	}
	if pub, ok := signer.PublicKey.(interface{ Size() int }); !ok || pub.Size() != 256 {
		t.Errorf("profile signer key is %T, want RSA-2048", signer.PublicKey)
	}
	if !signerKey.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.PublicKey) {
		t.Error("profile signer key does not match its certificate")
	}

	pool := a.CAPool()
	if _, err := signer.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("profile signer does not chain to CAPool: %v", err)
	}

	for _, tc := range []struct {
		have string
		want os.FileMode
	}{
		{certs.CAKeyFile, 0o600},
		{certs.RAKeyFile, 0o600},
		{certs.SignerKeyFile, 0o600},
	} {
		fi, err := os.Stat(filepath.Join(baseDir, tc.have))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tc.want {
			t.Errorf("%s mode = %o, want %o", tc.have, got, tc.want)
		}
	}
}

func TestLoadOrCreateCreatesFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := certs.LoadOrCreate(dir, t0); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dir)
	want := []string{certs.CACertFile, certs.CAKeyFile, certs.RACertFile, certs.RAKeyFile, certs.SignerCertFile, certs.SignerKeyFile, certs.PolicySinceFile}
	if len(got) != len(want) {
		t.Errorf("directory holds %d files, want %d (no temp files left): %v", len(got), len(want), keys(got))
	}
	for _, name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s not written", name)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode = %o, want 700", perm)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestLoadOrCreateReuses(t *testing.T) {
	dir := copyBase(t)
	before := snapshot(t, dir)
	a1, err := certs.LoadOrCreate(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := certs.LoadOrCreate(dir, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !a1.CA().Equal(a2.CA()) {
		t.Error("CA changed between starts")
	}
	ra1, _ := a1.RA()
	ra2, _ := a2.RA()
	if !ra1.Equal(ra2) {
		t.Error("RA changed between starts")
	}
	if !reflect.DeepEqual(before, snapshot(t, dir)) {
		t.Error("files changed on a later start")
	}
}

func TestLoadOrCreateRegeneratesMissingIssued(t *testing.T) {
	dir := copyBase(t)
	before := snapshot(t, dir)
	for _, name := range []string{certs.SignerCertFile, certs.SignerKeyFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	a, err := certs.LoadOrCreate(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	if after[certs.CACertFile] != before[certs.CACertFile] || after[certs.RACertFile] != before[certs.RACertFile] {
		t.Error("CA or RA changed while regenerating the profile signer")
	}
	if after[certs.SignerCertFile] == before[certs.SignerCertFile] {
		t.Error("profile signer was not regenerated")
	}
	signer, _ := a.ProfileSigner()
	if err := signer.CheckSignatureFrom(a.CA()); err != nil {
		t.Errorf("regenerated signer not issued by the existing CA: %v", err)
	}
}

func TestLoadOrCreateRefusesBadFiles(t *testing.T) {
	other := t.TempDir()
	if _, err := certs.LoadOrCreate(other, t0); err != nil {
		t.Fatal(err)
	}
	otherFile := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(other, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	tests := []struct {
		name   string
		mutate func(t *testing.T, dir string)
		now    time.Time
		want   string
	}{
		{
			name:   "corrupt CA certificate",
			mutate: write(certs.CACertFile, []byte("not a pem file")),
			want:   "no certificate PEM block",
		},
		{
			name:   "truncated CA key",
			mutate: truncate(certs.CAKeyFile, 100),
			want:   "CA key",
		},
		{
			name:   "CA key from another authority",
			mutate: func(t *testing.T, dir string) { write(certs.CAKeyFile, otherFile(certs.CAKeyFile))(t, dir) },
			want:   "does not match",
		},
		{
			name:   "RA key in place of CA key",
			mutate: func(t *testing.T, dir string) { copyFile(t, dir, certs.RAKeyFile, certs.CAKeyFile) },
			want:   "does not match",
		},
		{
			name:   "CA key missing",
			mutate: remove(certs.CAKeyFile),
			want:   "is missing",
		},
		{
			name:   "RA certificate missing",
			mutate: remove(certs.RACertFile),
			want:   "is missing",
		},
		{
			name: "CA missing but issued certificates remain",
			mutate: func(t *testing.T, dir string) {
				remove(certs.CACertFile)(t, dir)
				remove(certs.CAKeyFile)(t, dir)
			},
			want: "restore the CA",
		},
		{
			name: "RA pair from another CA",
			mutate: func(t *testing.T, dir string) {
				write(certs.RACertFile, otherFile(certs.RACertFile))(t, dir)
				write(certs.RAKeyFile, otherFile(certs.RAKeyFile))(t, dir)
			},
			want: "not issued by the CA",
		},
		{
			name:   "profile signer certificate replaced by the CA certificate",
			mutate: func(t *testing.T, dir string) { copyFile(t, dir, certs.CACertFile, certs.SignerCertFile) },
			want:   "does not match",
		},
		{
			name: "two certificates in the CA file",
			mutate: func(t *testing.T, dir string) {
				b, _ := os.ReadFile(filepath.Join(dir, certs.CACertFile))
				write(certs.CACertFile, append(b, b...))(t, dir)
			},
			want: "holds 2 certificates",
		},
		{
			name:   "CA expired",
			mutate: func(*testing.T, string) {},
			now:    t0.AddDate(11, 0, 0),
			want:   "expired",
		},
		{
			name:   "clock before the CA",
			mutate: func(*testing.T, string) {},
			now:    t0.AddDate(-1, 0, 0),
			want:   "not valid until",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyBase(t)
			tc.mutate(t, dir)
			before := snapshot(t, dir)
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			a, err := certs.LoadOrCreate(dir, now)
			wantErr(t, err, tc.want)
			if a != nil {
				t.Error("got an Authority along with the error")
			}
			if !reflect.DeepEqual(before, snapshot(t, dir)) {
				t.Error("files changed after a refused load")
			}
		})
	}
}

func TestLoadOrCreateOptions(t *testing.T) {
	tests := []struct {
		name string
		have []certs.Option
		want string
	}{
		{"zero validity", []certs.Option{certs.WithIdentityValidity(0)}, "must be positive"},
		{"negative cache", []certs.Option{certs.WithVerifyCacheSize(-1)}, "must not be negative"},
		{"valid", []certs.Option{certs.WithIdentityValidity(time.Hour), certs.WithVerifyCacheSize(0)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certs.LoadOrCreate(copyBase(t), t0, tc.have...)
			wantErr(t, err, tc.want)
		})
	}
	if _, err := certs.LoadOrCreate("", t0); err == nil {
		t.Error("empty directory accepted")
	}
	if _, err := certs.LoadOrCreate(copyBase(t), time.Time{}); err == nil {
		t.Error("zero time accepted")
	}
}

func write(name string, data []byte) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func truncate(name string, n int64) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Truncate(filepath.Join(dir, name), n); err != nil {
			t.Fatal(err)
		}
	}
}

func remove(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, dir, from, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, from))
	if err != nil {
		t.Fatal(err)
	}
	write(to, b)(t, dir)
}
