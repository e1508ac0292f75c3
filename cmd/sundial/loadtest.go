package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
)

type loadtestConfig struct {
	devices, workers, rounds, keys int
	commands                       int
	dataDir                        string
	timeout                        time.Duration
	keepData                       bool
	serverArgs                     []string
	serverEnv                      []string
	freshSignatures                bool
	replicas                       int
	storageDSN                     string
}

func newLoadtestCmd(getenv func(string) string) *cobra.Command {
	lc := &loadtestConfig{}
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Start a Sundial server on loopback and drive simulated Macs against it; report throughput, server CPU and peak RSS",
		Long: `loadtest starts "sundial server" as a child process on 127.0.0.1 with a fresh data
directory (durable bbolt writes), then runs three phases with the Mac simulator:
  1. enroll every device (profile, SCEP, Authenticate, TokenUpdate, first DeviceInformation),
     then (1b) the report on the agent's settings profile that Sundial queues at enrolment
     and sends after DeviceInformation (the simulated Mac installs it at once and reports
     it in its next session, so that enrolment holds nothing outside its definition);
  2. signed Idle connects with nothing queued, --rounds times per device;
  3. command round trips: one command for every device through the admin API's bulk
     enqueue (requests of up to 10,000 devices), deliver, store the acknowledged result.
The server's CPU time is read from /proc for the child process alone, so the
simulator's own work is not counted. Every loop is bounded by --devices,
--rounds and --timeout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd, getenv); err != nil {
				return usageError{err}
			}
			if lc.devices < 1 || lc.devices > 100000 || lc.workers < 1 || lc.workers > 1024 || lc.rounds < 1 || lc.rounds > 100 || lc.commands < 1 || lc.commands > 100 || lc.replicas < 1 || lc.replicas > 8 || (lc.replicas > 1 && lc.storageDSN == "") {
				return usageError{errors.New("--devices 1..100000, --workers 1..1024, --rounds 1..100, --commands 1..100, --replicas 1..8 (more than 1 needs --storage-dsn)")}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), lc.timeout)
			defer cancel()
			return runLoadtest(ctx, lc, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&lc.devices, "devices", 1000, "simulated Macs")
	f.IntVar(&lc.workers, "workers", 32, "concurrent simulated requests")
	f.IntVar(&lc.rounds, "rounds", 3, "Idle connects per device in phase 2")
	f.IntVar(&lc.commands, "commands", 1, "command round trips per device in phase 3")
	f.IntVar(&lc.keys, "keys", 8, "pre-generated RSA keys shared by the simulated Macs (key generation is the Mac's cost)")
	f.StringVar(&lc.dataDir, "data-dir", "", "server data dir (default: a new temporary directory)")
	f.DurationVar(&lc.timeout, "timeout", 20*time.Minute, "stop everything after this long")
	f.BoolVar(&lc.keepData, "keep-data", false, "keep the temporary data dir")
	f.IntVar(&lc.replicas, "replicas", 1, "server processes on one PostgreSQL database (needs --storage-dsn when > 1); requests go to each in turn, as behind a load balancer")
	f.StringVar(&lc.storageDSN, "storage-dsn", "", "run the server(s) on this PostgreSQL database instead of bbolt (it must be empty)")
	f.BoolVar(&lc.freshSignatures, "fresh-signatures", false, "sign every simulated request afresh (by default a simulated Mac reuses its signature for an identical Idle body, so that the simulator's RSA signing does not take the server's CPU)")
	f.StringArrayVar(&lc.serverEnv, "server-env", nil, "extra KEY=VALUE environment for the child server (repeatable), e.g. GOMAXPROCS=1")
	f.StringArrayVar(&lc.serverArgs, "server-arg", nil, "extra flag for the child server (repeatable), e.g. --server-arg=--pprof-listen=127.0.0.1:6060")
	return cmd
}

// serverProc is the child server being measured.
type serverProc struct {
	cmd     *exec.Cmd
	base    string
	dataDir string
}

func startServerProc(ctx context.Context, dataDir string, env []string, extra ...string) (*serverProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// --catalog-interval 0: a load test on loopback never calls Apple's or
	// SOFA's feeds (a later --server-arg may turn polling back on).
	args := append([]string{"server", "--listen", addr, "--data-dir", dataDir, "--log-level", "warn", "--catalog-interval", "0"}, extra...)
	c := exec.CommandContext(ctx, exe, args...)
	c.Stderr = os.Stderr
	c.Env = append(os.Environ(), env...)
	if err := c.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{cmd: c, base: "https://" + addr, dataDir: dataDir}
	if err := p.waitHealthy(ctx); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (p *serverProc) waitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("server did not become healthy within 30s")
}

func (p *serverProc) stop() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
	}
}

// cpu returns the child's user+system CPU time from /proc.
func (p *serverProc) cpu() (time.Duration, error) {
	u, s, err := p.cpuSplit()
	return u + s, err
}

// cpuSplit returns the child's user and system CPU time from /proc.
func (p *serverProc) cpuSplit() (user, sys time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 (1-based) of the whole line.
	s := string(b)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(rest) < 13 {
		return 0, 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(rest[11], 10, 64)
	st, _ := strconv.ParseInt(rest[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut) * time.Second / ticks, time.Duration(st) * time.Second / ticks, nil
}

// faults returns the child's minor and major page fault counts from /proc:
// on a file-backed database mapping, a minor fault is a page brought back
// into the process from the page cache.
func (p *serverProc) faults() (minor, major int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(rest) < 10 {
		return 0, 0
	}
	// minflt and majflt are fields 10 and 12 (1-based) of the whole line.
	minor, _ = strconv.ParseInt(rest[7], 10, 64)
	major, _ = strconv.ParseInt(rest[9], 10, 64)
	return minor, major
}

// rssSplit returns the child's current anonymous and file-backed resident
// memory in bytes (0 when unknown).
func (p *serverProc) rssSplit() (anon, file int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "RssAnon":
			anon = kb * 1024
		case "RssFile":
			file = kb * 1024
		}
	}
	return anon, file
}

// rssSampleEvery is how often the load test samples the server's RssAnon
// and RssFile: the kernel keeps a peak only of their sum (VmHWM).
const rssSampleEvery = 100 * time.Millisecond

// rssSampler keeps the largest RssAnon and RssFile of a server process.
type rssSampler struct {
	done       chan struct{}
	finished   chan struct{}
	once       sync.Once
	anon, file int64
}

func startRSSSampler(p *serverProc) *rssSampler {
	r := &rssSampler{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(r.finished)
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		for {
			a, f := p.rssSplit()
			r.anon, r.file = max(r.anon, a), max(r.file, f)
			select {
			case <-r.done:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

// stop ends the sampling and returns the peaks, in bytes.
func (r *rssSampler) stop() (anon, file int64) {
	r.once.Do(func() { close(r.done) })
	<-r.finished
	return r.anon, r.file
}

// peakRSS returns the child's peak resident set size in bytes.
func (p *serverProc) peakRSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

func (p *serverProc) clients(workers int) (*http.Client, *api.Client, error) {
	pem, err := os.ReadFile(filepath.Join(p.dataDir, certs.CACertFile))
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	key, err := os.ReadFile(filepath.Join(p.dataDir, adminKeyFile))
	if err != nil {
		return nil, nil, err
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: workers * 2,
		MaxIdleConns:        workers * 2,
		IdleConnTimeout:     90 * time.Second,
	}
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	return hc, &api.Client{BaseURL: p.base, APIKey: strings.TrimSpace(string(key)), HTTP: hc}, nil
}

type phaseResult struct {
	name      string
	ops       int
	wall      time.Duration
	user, sys time.Duration
	faults    int64 // minor + major page faults of the server(s)
	unit      string
}

func (r phaseResult) print(w io.Writer) {
	cpu := r.user + r.sys
	fmt.Fprintf(w, "%-20s %7d %-12s in %7.2fs = %8.1f/s   server CPU %6.2fs = %7.1f µs per %s (user %.1f, system %.1f)\n",
		r.name, r.ops, r.unit+"s", r.wall.Seconds(), float64(r.ops)/r.wall.Seconds(),
		cpu.Seconds(), float64(cpu.Microseconds())/float64(r.ops), r.unit,
		float64(r.user.Microseconds())/float64(r.ops), float64(r.sys.Microseconds())/float64(r.ops))
	fmt.Fprintf(w, "%-20s page faults %.1f per %s\n", "", float64(r.faults)/float64(r.ops), r.unit)
}

func runLoadtest(ctx context.Context, lc *loadtestConfig, out io.Writer) error {
	dir := lc.dataDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "sundial-loadtest-"); err != nil {
			return err
		}
		if !lc.keepData {
			defer os.RemoveAll(dir)
		}
	}
	args := lc.serverArgs
	env := lc.serverEnv
	if lc.storageDSN != "" {
		args = append(args, "--storage", "pgsql")
		env = append(env, "SUNDIAL_STORAGE_DSN="+lc.storageDSN)
	}
	srv, err := startServerProc(ctx, dir, env, args...)
	if err != nil {
		return err
	}
	defer srv.stop()
	procs := []*serverProc{srv}
	for i := 1; i < lc.replicas; i++ {
		// Replicas share the first one's key material.
		rdir := fmt.Sprintf("%s-replica%d", dir, i)
		if err := copyKeyMaterial(dir, rdir); err != nil {
			return err
		}
		defer os.RemoveAll(rdir)
		p, err := startServerProc(ctx, rdir, env, args...)
		if err != nil {
			return err
		}
		defer p.stop()
		procs = append(procs, p)
	}
	hc, admin, err := srv.clients(lc.workers)
	if err != nil {
		return err
	}
	if len(procs) > 1 {
		hc.Transport = &spreadTransport{next: hc.Transport, procs: procs}
		admin.HTTP = hc
	}
	pool, err := mdmtest.NewKeyPool(lc.keys)
	if err != nil {
		return err
	}
	opts := []mdmtest.Option{mdmtest.WithKeyPool(pool), mdmtest.WithHTTPClient(hc)}
	if !lc.freshSignatures {
		opts = append(opts, mdmtest.WithSignatureReuse())
	}
	fleet, err := mdmtest.NewFleet(lc.devices, opts...)
	if err != nil {
		return err
	}
	fleet.Workers = lc.workers
	backend := "bbolt"
	if lc.storageDSN != "" {
		backend = "PostgreSQL"
	}
	fmt.Fprintf(out, "sundial loadtest: %d simulated Macs, %d workers, %d server process(es) on %s, data %s\n", lc.devices, lc.workers, len(procs), backend, dir)
	if priv, verify, err := calibrateRSA(); err == nil {
		// This VM's speed varies by tens of percent from hour to hour; the
		// cost of the server's dominant primitive puts each run in context.
		fmt.Fprintf(out, "host calibration: RSA-2048 private-key operation %.2f ms, signature verification %.1f µs (this process, before the run)\n",
			float64(priv.Microseconds())/1000, float64(verify.Nanoseconds())/1000)
	}

	sampler := startRSSSampler(srv)
	defer sampler.stop()
	var results []phaseResult
	cpu := func() (u, s time.Duration, err error) {
		for _, p := range procs {
			pu, ps, err := p.cpuSplit()
			if err != nil {
				return 0, 0, err
			}
			u, s = u+pu, s+ps
		}
		return u, s, nil
	}
	measure := func(name, unit string, ops int, fn func() (int, error)) error {
		faults := func() (n int64) {
			for _, p := range procs {
				minor, major := p.faults()
				n += minor + major
			}
			return n
		}
		u0, s0, err := cpu()
		if err != nil {
			return err
		}
		f0 := faults()
		t0 := time.Now()
		_, err = fn()
		wall := time.Since(t0)
		u1, s1, _ := cpu()
		f1 := faults()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r := phaseResult{name: name, ops: ops, wall: wall, user: u1 - u0, sys: s1 - s0, faults: f1 - f0, unit: unit}
		r.print(out)
		results = append(results, r)
		return nil
	}

	// Phase 1: enrolment as the issue defines it: profile, SCEP,
	// Authenticate, TokenUpdate and the first DeviceInformation round trip.
	// Sundial queues the agent's settings profile at enrolment too, and
	// sends it in answer to the DeviceInformation report. The simulated Mac
	// installs it but ends the session there, so that its report, the
	// one request outside the definition, is measured on its own in phase
	// 1b (a Mac that sleeps before reporting does the same).
	for _, d := range fleet.Devices {
		d.DeferReport("InstallProfile", 1)
	}
	err = measure("enrolment", "enrolment", lc.devices, func() (int, error) {
		if err := fleet.Enroll(ctx, hc, srv.base+"/mdm/enroll"); err != nil {
			return 0, err
		}
		n, err := fleet.Connect(ctx)
		if err == nil && n < lc.devices {
			err = fmt.Errorf("only %d of %d devices received DeviceInformation", n, lc.devices)
		}
		return n, err
	})
	if err != nil {
		return err
	}
	// Phase 1b: the agent's settings profile's (InstallProfile) report,
	// the session opened with it.
	err = measure("agent profile", "report", lc.devices, func() (int, error) {
		n, err := fleet.Connect(ctx)
		if err == nil && n != lc.devices {
			err = fmt.Errorf("%d agent profile reports, want %d", n, lc.devices)
		}
		return n, err
	})
	if err != nil {
		return err
	}
	// Phase 2: Idle connects with nothing queued.
	err = measure("idle connect", "connect", lc.devices*lc.rounds, func() (int, error) {
		total := 0
		for range lc.rounds {
			n, err := fleet.Connect(ctx)
			total += n
			if err != nil {
				return total, err
			}
		}
		if total != 0 {
			return total, fmt.Errorf("%d unexpected commands during idle connects", total)
		}
		return total, nil
	})
	if err != nil {
		return err
	}
	// Phase 3: command round trips through the admin API. The server's CPU
	// during the enqueue steps is also reported on its own.
	var enqCPU, enqWall time.Duration
	err = measure("command round trip", "round trip", lc.devices*lc.commands, func() (int, error) {
		total := 0
		for range lc.commands {
			u0, s0, err := cpu()
			if err != nil {
				return total, err
			}
			// One command for the whole fleet, in bulk requests of up to
			// api.MaxBulkEnqueue devices, as `sundial commands enqueue` sends.
			cmd, err := mdm.NewCommand("ProfileList", nil)
			if err != nil {
				return total, err
			}
			ids := make([]string, len(fleet.Devices))
			for i, d := range fleet.Devices {
				ids[i] = d.UDID
			}
			t0 := time.Now()
			for page := range slices.Chunk(ids, api.MaxBulkEnqueue) {
				if _, err := admin.EnqueueBulk(ctx, page, cmd.Raw); err != nil {
					return total, fmt.Errorf("enqueue: %w", err)
				}
			}
			enqWall += time.Since(t0)
			u1, s1, err := cpu()
			if err != nil {
				return total, err
			}
			enqCPU += u1 - u0 + s1 - s0
			n, err := fleet.Connect(ctx)
			total += n
			if err == nil && n != lc.devices {
				err = fmt.Errorf("%d commands answered, want %d", n, lc.devices)
			}
			if err != nil {
				return total, err
			}
		}
		return total, nil
	})
	if err != nil {
		return err
	}
	if n := lc.devices * lc.commands; n > 0 {
		rt := results[len(results)-1]
		per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
		fmt.Fprintf(out, "%-20s of which %.1f µs enqueueing through the admin API, %.1f µs delivering and storing the result\n",
			"", per(enqCPU), per(rt.user+rt.sys-enqCPU))
		fmt.Fprintf(out, "%-20s bulk enqueue: %d Macs per command in %.3fs wall (%d request(s) of up to %d), server CPU %.1f µs per Mac\n",
			"", lc.devices, enqWall.Seconds()/float64(lc.commands), (lc.devices+api.MaxBulkEnqueue-1)/api.MaxBulkEnqueue, api.MaxBulkEnqueue, per(enqCPU))
	}
	rss, err := srv.peakRSS()
	if err != nil {
		return err
	}
	peakAnon, peakFile := sampler.stop()
	anon, file := srv.rssSplit()
	fmt.Fprintf(out, "server peak RSS %.1f MB: peak RssAnon %.1f MB (heap, stacks), peak RssFile %.1f MB (the database's mmap: page cache), sampled every %v; now %.1f MB anonymous, %.1f MB file-backed\n",
		float64(rss)/(1<<20), float64(peakAnon)/(1<<20), float64(peakFile)/(1<<20), rssSampleEvery, float64(anon)/(1<<20), float64(file)/(1<<20))
	for _, s := range fleet.Stats().Summary() {
		fmt.Fprintf(out, "  client %s\n", s)
	}
	return nil
}

// spreadTransport sends each request to a random server process, as a load
// balancer in front of replicas would.
type spreadTransport struct {
	next  http.RoundTripper
	procs []*serverProc
	n     atomic.Uint64
}

func (t *spreadTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := t.procs[t.n.Add(1)%uint64(len(t.procs))]
	u, err := url.Parse(p.base)
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.URL.Host = u.Host
	r.Host = u.Host
	return t.next.RoundTrip(r)
}

// copyKeyMaterial copies a data directory's key files (not the database) so
// that another replica serves with the same identity.
func copyKeyMaterial(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == dbFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// calibrateRSA times RSA-2048 signing and verification (a bounded loop of
// 40 each) in the load test's own process.
func calibrateRSA() (priv, verify time.Duration, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, 0, err
	}
	digest := sha256.Sum256([]byte("sundial loadtest calibration"))
	const n = 40
	var sig []byte
	t0 := time.Now()
	for range n {
		if sig, err = rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); err != nil {
			return 0, 0, err
		}
	}
	priv = time.Since(t0) / n
	t0 = time.Now()
	for range n {
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			return 0, 0, err
		}
	}
	return priv, time.Since(t0) / n, nil
}
