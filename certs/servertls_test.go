package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
)

func TestLoadOrCreateServerTLS(t *testing.T) {
	a := certstest.NewAuthority(t, t0)
	dir := t.TempDir()
	hosts := []string{"mdm.example.com", "127.0.0.1", "::1", "Sundial.local"}

	tc, err := certs.LoadOrCreateServerTLS(dir, hosts, a, t0)
	if err != nil {
		t.Fatal(err)
	}
	leaf := tc.Leaf
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if got, want := leaf.DNSNames, []string{"mdm.example.com", "sundial.local"}; !slices.Equal(got, want) {
		t.Errorf("DNS SANs = %v, want %v", got, want)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "::1"}; !slices.Equal(ips, want) {
		t.Errorf("IP SANs = %v, want %v", ips, want)
	}
	if len(tc.Certificate) != 2 || !a.CA().Equal(mustParse(t, tc.Certificate[1])) {
		t.Error("chain is not leaf + CA")
	}
	for _, host := range []string{"mdm.example.com", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.CAPool(), DNSName: host, CurrentTime: t0}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, certs.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %o, want 600", fi.Mode().Perm())
	}

	other, err := certs.LoadOrCreate(copyBase(t), t0)
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name   string
		hosts  []string
		a      *certs.Authority
		now    time.Time
		reused bool
	}{
		{"same hosts", hosts, a, t0.AddDate(0, 1, 0), true},
		{"same hosts, other order, case and duplicates", []string{"::1", "sundial.local", "127.0.0.1", "MDM.example.com", "mdm.example.com."}, a, t0, true},
		{"host added", append(slices.Clone(hosts), "mdm2.example.com"), a, t0, false},
		{"host removed", hosts[:1], a, t0, false},
		{"near expiry", hosts[:1], a, leaf.NotAfter.Add(-29 * 24 * time.Hour), false},
		{"other CA", hosts[:1], other, t0, false},
	}
	prev := leaf
	for _, s := range steps {
		got, err := certs.LoadOrCreateServerTLS(dir, s.hosts, s.a, s.now)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if reused := got.Leaf.Equal(prev); reused != s.reused {
			t.Errorf("%s: reused = %v, want %v", s.name, reused, s.reused)
		}
		if err := got.Leaf.CheckSignatureFrom(s.a.CA()); err != nil {
			t.Errorf("%s: not issued by the authority: %v", s.name, err)
		}
		prev = got.Leaf
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadOrCreateServerTLSRefuses(t *testing.T) {
	a := certstest.NewAuthority(t, t0)
	tests := []struct {
		name  string
		hosts []string
		files map[string]string
		want  string
	}{
		{"no hosts", nil, nil, "no hosts"},
		{"blank hosts", []string{" ", ""}, nil, "no hosts"},
		{"URL", []string{"https://mdm.example.com"}, nil, "without scheme or port"},
		{"port", []string{"mdm.example.com:443"}, nil, "without scheme or port"},
		{"space", []string{"mdm example"}, nil, "not a valid DNS name"},
		{"empty label", []string{"mdm..example.com"}, nil, "empty or over-long label"},
		{"corrupt certificate", []string{"mdm.example.com"}, map[string]string{certs.ServerCertFile: "garbage", certs.ServerKeyFile: "garbage"}, "no certificate PEM block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				write(name, []byte(content))(t, dir)
			}
			before := snapshot(t, dir)
			_, err := certs.LoadOrCreateServerTLS(dir, tc.hosts, a, t0)
			wantErr(t, err, tc.want)
			if !reflect.DeepEqual(before, snapshot(t, dir)) {
				t.Error("files changed after a refusal")
			}
		})
	}
	if _, err := certs.LoadOrCreateServerTLS(t.TempDir(), []string{"x"}, nil, t0); err == nil {
		t.Error("nil authority accepted")
	}
}

// TestServerTLSHandshake serves HTTPS with the certificate and connects with
// a client that trusts only the CA.
func TestServerTLSHandshake(t *testing.T) {
	now := time.Now() // crypto/tls checks validity against the wall clock
	a := certstest.NewAuthority(t, now)
	cert, err := certs.LoadOrCreateServerTLS(t.TempDir(), []string{"mdm.example.com", "127.0.0.1"}, a, now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()

	for _, serverName := range []string{"mdm.example.com", ""} { // "" uses the IP
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:    a.CAPool(),
			ServerName: serverName,
		}}}
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatalf("server name %q: %v", serverName, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Errorf("body = %q, want ok", body)
		}
	}

	// A client that does not trust the CA must fail.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	if _, err := client.Get(srv.URL); err == nil {
		t.Error("handshake succeeded without trusting the CA")
	}
}
