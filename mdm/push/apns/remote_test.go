package apns_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/cputime"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/mdm/push/apns"
	"github.com/sundial-mdm/sundial/mdm/push/apnsmock"
	"github.com/sundial-mdm/sundial/mdm/push/internal/testcert"
)

const helperEnv = "SUNDIAL_APNSMOCK_HELPER"

// TestMain doubles as the mock APNs server of BenchmarkSendRemoteMock: run
// with SUNDIAL_APNSMOCK_HELPER=1, the test binary prints "ADDR
// BASE64-DER-CERT" and serves until its stdin closes.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		if err := serveMockProcess(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func serveMockProcess() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "apns mock"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", ln.Addr(), base64.StdEncoding.EncodeToString(der))
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	go func() { // the parent closes stdin when done
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	mock := apnsmock.New(apnsmock.WithBuffer(0))
	return mock.Serve(ctx, ln, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil)
}

// BenchmarkSendRemoteMock runs the mock in a child process, so that the CPU
// figure is Sundial's side alone, as with the real APNs.
func BenchmarkSendRemoteMock(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("read helper address: %v", err)
	}
	addr, certB64, _ := strings.Cut(strings.TrimSpace(line), " ")
	der, err := base64.StdEncoding.DecodeString(certB64)
	if err != nil {
		b.Fatal(err)
	}
	serverCert, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}

	ca := testcert.NewCA(b)
	topic := testcert.Topic(b)
	s, err := apns.New(ca.ValidPushCert(b, topic), topic, apns.WithURL("https://"+addr), apns.WithExtraRoots(serverCert))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := targets(b, 1000, topic)
	ctx := context.Background()
	if r := s.Send(ctx, batch[:1])[0]; r.Outcome != push.OutcomeOK {
		b.Fatalf("warm-up push: %+v", r)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Process()
	sent := 0
	for sent < b.N {
		n := min(len(batch), b.N-sent)
		for _, r := range s.Send(ctx, batch[:n]) {
			if r.Outcome != push.OutcomeOK {
				b.Fatalf("result %+v", r)
			}
		}
		sent += n
	}
	b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "pushes/s")
	b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(sent), "cpu-µs/push")
}
