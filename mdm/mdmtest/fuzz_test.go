package mdmtest

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/micromdm/plist"
	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
)

// FuzzHandleCommand feeds server-controlled command bytes to the device.
func FuzzHandleCommand(f *testing.F) {
	files, _ := filepath.Glob("testdata/commands/*.command*.plist")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(commandPlist(f, "x", "ScheduleOSUpdate", map[string]any{"Updates": []any{map[string]any{"ProductVersion": "15", "InstallAction": "Default"}}}))
	f.Add(commandPlist(f, "x", "InstallProfile", map[string]any{"Payload": []byte("<plist>")}))
	f.Add([]byte("<plist><dict><key>CommandUUID</key><integer>-1</integer></dict></plist>"))
	d := newTestDevice(f, WithCatalog(MinorUpdate("15.4", "24E248")), WithScanCompleted())
	f.Fuzz(func(t *testing.T, raw []byte) {
		res, err := d.HandleCommand(context.Background(), raw)
		if err != nil {
			return
		}
		var report struct{ Status, CommandUUID, UDID string }
		if err := plist.Unmarshal(res.Report, &report); err != nil {
			t.Fatalf("report does not decode: %v", err)
		}
		if report.Status == "" || report.CommandUUID == "" || report.UDID != d.UDID {
			t.Fatalf("incomplete report %+v", report)
		}
	})
}

// FuzzParseProfile feeds server-controlled enrollment profiles to the parser.
func FuzzParseProfile(f *testing.F) {
	b, err := os.ReadFile("testdata/enrollment/nanomdm-enroll.mobileconfig")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	sd, _ := pkcs7.NewSignedData(b)
	k := testKeys().Key()
	cert := selfSigned(f, k)
	if err := sd.AddSigner(cert, k, pkcs7.SignerInfoConfig{}); err != nil {
		f.Fatal(err)
	}
	signed, _ := sd.Finish()
	f.Add(signed)
	f.Add([]byte("<plist><dict><key>PayloadType</key><string>Configuration</string></dict></plist>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(data, nil)
		if err != nil {
			return
		}
		if p.MDM.CheckInURL == "" || p.MDM.Topic == "" || (p.SCEP == nil && p.PKCS12 == nil) {
			t.Fatalf("accepted incomplete profile %+v", p)
		}
	})
}

// FuzzParseCACerts feeds server-controlled GetCACert answers to the parser.
func FuzzParseCACerts(f *testing.F) {
	k := testKeys().Key()
	c := selfSigned(f, k)
	f.Add("application/x-x509-ca-cert", c.Raw)
	deg, err := scep.DegenerateCertificates([]*x509.Certificate{c, c})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("application/x-x509-ca-ra-cert", deg)
	f.Add("text/plain", []byte("hello"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		all, rec, err := ParseCACerts(ct, body)
		if err != nil {
			return
		}
		if len(all) == 0 || len(rec) == 0 {
			t.Fatalf("success without certificates: %d/%d", len(all), len(rec))
		}
		for _, r := range rec {
			if _, ok := r.PublicKey.(*rsa.PublicKey); !ok {
				t.Fatalf("non-RSA recipient %T", r.PublicKey)
			}
		}
	})
}

// FuzzParseBootstrapToken feeds server-controlled GetBootstrapToken answers.
func FuzzParseBootstrapToken(f *testing.F) {
	b, _ := plist.Marshal(map[string]any{"BootstrapToken": []byte("tok")})
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte("<plist><dict><key>BootstrapToken</key><string>x</string></dict></plist>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = parseBootstrapToken(body)
	})
}

// TestSignMessageFixture signs Apple's Idle body with the OpenSSL-made test
// identity and checks the header the way nanomdm does, plus the chain.
func TestSignMessageFixture(t *testing.T) {
	body := readFixture(t, "signatures/body.plist")
	blk, _ := pem.Decode(readFixture(t, "signatures/device.pem"))
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ = pem.Decode(readFixture(t, "signatures/device.key"))
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ = pem.Decode(readFixture(t, "signatures/ca.pem"))
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	tests := []struct {
		name string
		sha1 bool
		want string
	}{
		{"sha256", false, pkcs7.OIDDigestAlgorithmSHA256.String()},
		{"sha1", true, pkcs7.OIDDigestAlgorithmSHA1.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := SignMessage(body, cert, key, tt.sha1)
			if err != nil {
				t.Fatal(err)
			}
			der, err := base64.StdEncoding.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			p7, err := pkcs7.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			if len(p7.Content) != 0 {
				t.Error("signature is not detached")
			}
			p7.Content = body
			if err := p7.VerifyWithChain(roots); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if got := p7.Signers[0].DigestAlgorithm.Algorithm.String(); got != tt.want {
				t.Errorf("digest %s, want %s", got, tt.want)
			}
			if s := p7.GetOnlySigner(); s == nil || !s.Equal(cert) {
				t.Error("signer certificate not embedded")
			}
			p7.Content = readFixture(t, "signatures/body.tampered.plist")
			if err := p7.Verify(); err == nil {
				t.Error("tampered body verified")
			}
		})
	}
}

func BenchmarkSignMessage(b *testing.B) {
	body := readFixture(b, "signatures/body.plist")
	k := testKeys().Key()
	cert := selfSigned(b, k)
	for _, sha1 := range []bool{false, true} {
		name := "sha256"
		if sha1 {
			name = "sha1"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := SignMessage(body, cert, k, sha1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkHandleCommand(b *testing.B) {
	d := newTestDevice(b, WithCatalog(MinorUpdate("15.4", "24E248")), WithScanCompleted())
	for _, name := range []string{"DeviceInformation", "AvailableOSUpdates", "OSUpdateStatus"} {
		raw := readFixture(b, "commands/"+name+".command.plist")
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := d.HandleCommand(context.Background(), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConnect measures one signed Idle + one command round trip against
// the in-test server over TLS.
func BenchmarkConnect(b *testing.B) {
	srv := newTestServer(b, serverConfig{signMessage: true})
	d := newTestDevice(b)
	c := srv.srv.Client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 4
	if err := d.Enroll(context.Background(), c, srv.profileURL()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		srv.enqueue(b, d.UDID, "DeviceInformation", map[string]any{"Queries": []string{"OSVersion"}})
		if _, err := d.Connect(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func selfSigned(t testing.TB, k *rsa.PrivateKey) *x509.Certificate {
	t.Helper()
	return mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: newFakeClock().Now().AddDate(-1, 0, 0), NotAfter: newFakeClock().Now().AddDate(5, 0, 0)}, nil, k, k)
}
