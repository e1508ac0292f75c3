package abm_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/enrollment/ade/abm"
	"github.com/sundial-mdm/sundial/enrollment/ade/depmock"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/cputime"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// TestMain runs the DEP mock as a child process when asked, so that a
// benchmark measures the server's CPU and memory without the mock's.
func TestMain(m *testing.M) {
	if dir := os.Getenv("SUNDIAL_DEPMOCK_CHILD"); dir != "" {
		os.Exit(runMockChild(dir))
	}
	os.Exit(m.Run())
}

// runMockChild serves a seeded mock on loopback until its stdin closes:
// it reads dir/cert.pem, writes dir/token.p7m and dir/ca.pem, then the
// address to dir/addr.
func runMockChild(dir string) int {
	n, _ := strconv.Atoi(os.Getenv("SUNDIAL_DEPMOCK_N"))
	m := depmock.New()
	m.Seed("C02B", n)
	b, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		return 1
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return 1
	}
	tok, err := m.ServerToken(cert)
	if err != nil || os.WriteFile(filepath.Join(dir, "token.p7m"), tok, 0o600) != nil {
		return 1
	}
	tlsCert, err := selfSigned()
	if err != nil {
		return 1
	}
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsCert.Certificate[0]}), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		bufio.NewReader(os.Stdin).ReadByte() // EOF when the parent is done
		cancel()
	}()
	addr := "127.0.0.1:" + os.Getenv("SUNDIAL_DEPMOCK_PORT")
	os.WriteFile(filepath.Join(dir, "addr"), []byte(addr), 0o600)
	if err := m.ListenAndServe(ctx, addr, tlsCert); err != nil {
		return 1
	}
	return 0
}

// BenchmarkFirstSync100k measures the first sync of 100,000 ABM devices
// and their profile assignment (100 fetch pages, 100 assignment calls,
// bbolt with fsync) against the mock in another process over loopback TLS.
// cpu-s is this process's CPU time, peak-rss-MB its peak resident memory.
// Run with -benchtime 1x.
func BenchmarkFirstSync100k(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		dir := b.TempDir()
		store, err := bolt.Open(filepath.Join(dir, "sundial.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		sealer, _ := seal.New(make([]byte, 32))
		certPEM, err := abm.New(store, sealer, clock.System{}, nil).Keypair(b.Context(), "main", "")
		if err != nil {
			b.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600)
		port := strconv.Itoa(20000 + os.Getpid()%20000)
		child := exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), "SUNDIAL_DEPMOCK_CHILD="+dir, "SUNDIAL_DEPMOCK_N="+strconv.Itoa(n), "SUNDIAL_DEPMOCK_PORT="+port)
		stdin, _ := child.StdinPipe()
		if err := child.Start(); err != nil {
			b.Fatal(err)
		}
		var addr []byte
		for deadline := time.Now().Add(30 * time.Second); len(addr) == 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("mock child did not start")
			}
			addr, _ = os.ReadFile(filepath.Join(dir, "addr"))
		}
		time.Sleep(100 * time.Millisecond) // let it listen
		caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig.RootCAs = pool
		conn := abm.New(store, sealer, clock.System{}, &http.Client{Transport: tr})
		conn.SetProfileSettings(abm.ProfileSettings{EnrollURL: "https://mdm.example.com/mdm/enroll"})
		srv, _ := store.DEPServer(b.Context(), "main")
		srv.BaseURL = "https://" + string(addr)
		store.PutDEPServer(b.Context(), srv)
		tok, _ := os.ReadFile(filepath.Join(dir, "token.p7m"))
		if _, err := conn.UploadToken(b.Context(), "main", tok); err != nil {
			b.Fatal(err)
		}
		cpu0, start := cputime.Process(), time.Now()
		res, err := conn.Sync(b.Context(), "main")
		cpu, wall := cputime.Process()-cpu0, time.Since(start)
		stdin.Close()
		child.Wait()
		if err != nil {
			b.Fatal(err)
		}
		if res.Added != n || res.Assigned != n {
			b.Fatalf("sync = %+v", res)
		}
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(peakRSSMB(), "peak-rss-MB")
		store.Close()
	}
}

// peakRSSMB reads VmHWM (peak resident set) of this process, in MB.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "depmock"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
