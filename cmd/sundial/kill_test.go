package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
)

// TestMain lets a test start this test binary as a real `sundial` process
// (SUNDIAL_TEST_MAIN=1), so crash tests can SIGKILL it.
func TestMain(m *testing.M) {
	if os.Getenv("SUNDIAL_TEST_MAIN") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// proc is a sundial server in its own process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	dir  string
}

func startProc(t *testing.T, dir, addr string) *proc {
	t.Helper()
	return startProcWith(t, dir, addr, nil)
}

// startProcWith starts a server process with extra environment variables
// and flags.
func startProcWith(t *testing.T, dir, addr string, env []string, args ...string) *proc {
	t.Helper()
	return startProcOut(t, dir, addr, testWriter{t}, env, args...)
}

// startProcOut is startProcWith with the process's standard error going to
// stderr.
func startProcOut(t *testing.T, dir, addr string, stderr io.Writer, env []string, args ...string) *proc {
	t.Helper()
	// --catalog-interval 0: tests never call Apple's or SOFA's servers.
	args = append([]string{"server", "--listen", addr, "--data-dir", dir, "--log-level", "warn", "--flush-interval", "100ms", "--catalog-interval", "0"}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "SUNDIAL_TEST_MAIN=1"), env...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, addr: addr, dir: dir}
	t.Cleanup(func() { p.kill() })
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, func() bool {
		resp, err := hc.Get("https://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

func (p *proc) clients(t *testing.T) (*http.Client, *api.Client) {
	pem, err := os.ReadFile(filepath.Join(p.dir, certs.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	key, err := os.ReadFile(filepath.Join(p.dir, adminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return hc, &api.Client{BaseURL: "https://" + p.addr, APIKey: strings.TrimSpace(string(key)), HTTP: hc}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestSIGKILLLosesNothing kills the server between enqueue and connect, and
// in the middle of a burst of connects, and checks that every enqueued
// command survives and is acknowledged exactly once.
func TestSIGKILLLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir, addr := t.TempDir(), freeAddr(t)
	p := startProc(t, dir, addr)
	hc, admin := p.clients(t)
	const n = 40
	fleet, err := mdmtest.NewFleet(n, mdmtest.WithKeyPool(testKeys(t)), mdmtest.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	fleet.Workers = 8
	ctx := t.Context()
	if err := fleet.Enroll(ctx, hc, "https://"+addr+"/mdm/enroll"); err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.Connect(ctx); err != nil {
		t.Fatal(err)
	}

	// 1. Kill between enqueue and connect.
	want := map[string][]string{} // device -> command UUIDs
	enqueue := func() {
		for _, d := range fleet.Devices {
			cmd, _ := mdm.NewCommand("ProfileList", nil)
			if _, err := admin.Enqueue(ctx, d.UDID, cmd.Raw); err != nil {
				t.Fatal(err)
			}
			want[d.UDID] = append(want[d.UDID], cmd.UUID)
		}
	}
	enqueue()
	p.kill()
	p = startProc(t, dir, addr)
	for _, d := range fleet.Devices[:n/2] {
		if _, err := d.Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// 2. Kill during a burst of connects: as soon as the first command of
	// the burst is acknowledged.
	for range 5 {
		enqueue()
	}
	burst := make(chan error, 1)
	go func() {
		_, err := fleet.Connect(ctx)
		burst <- err
	}()
	waitFor(t, func() bool {
		for _, d := range fleet.Devices {
			if cmds, err := admin.Commands(ctx, d.UDID); err == nil {
				for _, c := range cmds {
					if c.Status == "Acknowledged" && c.UUID != want[d.UDID][0] {
						return true
					}
				}
			}
		}
		return false
	})
	p.kill()
	if err := <-burst; err == nil {
		t.Fatal("the burst finished before the server was killed: the test proved nothing")
	}
	p = startProc(t, dir, addr)
	_, admin = p.clients(t)

	// Devices poll again after the restart until their queues are empty.
	for round := 0; round < 3; round++ {
		if _, err := fleet.Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for udid, uuids := range want {
		cmds, err := admin.Commands(ctx, udid)
		if err != nil {
			t.Fatal(err)
		}
		byUUID := map[string]api.CommandView{}
		for _, c := range cmds {
			byUUID[c.UUID] = c
		}
		for _, u := range uuids {
			c, ok := byUUID[u]
			if !ok {
				t.Errorf("%s: command %s lost", udid, u)
				continue
			}
			acks := 0
			for _, h := range c.History {
				if h.Status == "Acknowledged" {
					acks++
				}
			}
			if c.Status != "Acknowledged" || acks != 1 {
				t.Errorf("%s: command %s status %s with %d acknowledgements: %s", udid, u, c.Status, acks, fmt.Sprint(c.History))
			}
		}
	}
}

// TestLoadtestCommand runs the load command end to end on a handful of Macs
// (its child server is this test binary in server mode).
func TestLoadtestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"loadtest", "--devices", "6", "--rounds", "2", "--commands", "2", "--workers", "3", "--keys", "2",
		"--server-env", "SUNDIAL_TEST_MAIN=1", "--timeout", "2m"}, func(string) string { return "" }, &out, &errb)
	if code != 0 {
		t.Fatalf("loadtest exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"enrolment", "agent profile", "idle connect", "command round trip", "enqueueing through the admin API", "bulk enqueue: 6 Macs", "peak RssAnon", "peak RssFile"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("loadtest output lacks %q:\n%s", want, out.String())
		}
	}
}

// metric reads an integer gauge from a server process's /metrics.
func metric(t *testing.T, p *proc, name string) int {
	t.Helper()
	hc, c := p.clients(t)
	req, _ := http.NewRequest(http.MethodGet, "https://"+p.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.APIKey) // /metrics needs a key on the device listener
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}
