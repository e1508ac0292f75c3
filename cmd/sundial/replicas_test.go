package main

// Multi-replica test (issue 8, "Must show"): three Sundial servers on one
// PostgreSQL database behind a load balancer that sends every request to a
// random replica, simulated Macs on a legacy-path policy driven through a
// whole timeline on a fake clock, and the scheduler leader crashed right
// after it queued the forced installs. Every supported Mac still reaches
// compliance, no command is acknowledged twice, no step is sent twice, and
// another replica takes the lease over within the bound the lease promises.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// pgsqlTestDSNEnv names the PostgreSQL the multi-replica test runs against.
const pgsqlTestDSNEnv = "SUNDIAL_PGSQL_TEST_DSN"

// replicaLeaseTTL is the scheduler lease of the test's replicas: short, so
// that a takeover takes about two seconds rather than the server's 40.
const replicaLeaseTTL = 1500 * time.Millisecond

// takeoverSlack is what the takeover bound allows on top of the lease's own
// promise (ttl + ttl/3) for database round trips under -race.
const takeoverSlack = 500 * time.Millisecond

// replicaSchema creates an empty schema of its own in the test database
// (dropped at cleanup) and returns a DSN whose connections use it.
func replicaSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(pgsqlTestDSNEnv)
	if dsn == "" {
		t.Skipf("%s is not set: skipping the multi-replica test (e.g. %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", pgsqlTestDSNEnv, pgsqlTestDSNEnv)
	}
	schema := "sundial_replicas_" + randomHex(6)
	exec := func(sql string) {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatalf("connect to %s: %v", pgsqlTestDSNEnv, err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE SCHEMA " + pgx.Identifier{schema}.Sanitize())
	t.Cleanup(func() { exec("DROP SCHEMA " + pgx.Identifier{schema}.Sanitize() + " CASCADE") })
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema // pgx passes unknown keys on as runtime parameters
}

// sharedKeyFiles are the data-directory files every replica must share:
// the CA, the SCEP RA, the profile signer, the sealing key, the SCEP
// challenge and the placeholder push topic. (The TLS server certificate and
// admin key are shared too in production; these replicas serve plain HTTP
// behind the front and the test needs no admin key.)
func sharedKeyFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"ca.*", "scep-ra.*", "profile-signer.*", "server.*", sealKeyFile, challengeFile, topicFile, adminKeyFile} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

func copyReplicaKeys(t *testing.T, from, to string) {
	t.Helper()
	files := sharedKeyFiles(t, from)
	if len(files) < 5 {
		t.Fatalf("data dir %s holds only %v: key material missing", from, files)
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// leaseLog watches every replica's lease calls: who holds the scheduler
// lease since when, and how many replicas run the scheduler at once.
type leaseLog struct {
	mu        sync.Mutex
	holder    string               // the last holder an acquisition succeeded for
	since     time.Time            // when holder acquired it (not renewals)
	lastOK    map[string]time.Time // each holder's last successful acquire or renewal
	active    int                  // scheduler functions running now
	maxActive int
	leads     []string // holders in the order they started leading
}

func (l *leaseLog) acquired(holder string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder != holder {
		l.holder, l.since = holder, now
	}
	l.lastOK[holder] = now
}

func (l *leaseLog) current() (string, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder, l.since
}

func (l *leaseLog) enter(holder string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active++
	l.maxActive = max(l.maxActive, l.active)
	l.leads = append(l.leads, holder)
}

func (l *leaseLog) leave() {
	l.mu.Lock()
	l.active--
	l.mu.Unlock()
}

// crashableLeases is a replica's lease store. Once the replica has
// crashed it makes no more calls: renewals fail and, above all, the lease
// is not released on the way down, as with a process that is killed.
type crashableLeases struct {
	storage.LeaseStore
	holder  string
	crashed *atomic.Bool
	log     *leaseLog
}

var errCrashed = errors.New("replica crashed")

func (c crashableLeases) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	if c.crashed.Load() {
		return false, errCrashed
	}
	ok, err := c.LeaseStore.AcquireLease(ctx, name, holder, ttl, now)
	if ok && err == nil {
		c.log.acquired(holder, now)
	}
	return ok, err
}

func (c crashableLeases) ReleaseLease(ctx context.Context, name, holder string) error {
	if c.crashed.Load() {
		return nil
	}
	return c.LeaseStore.ReleaseLease(ctx, name, holder)
}

// replica is one Sundial server on the shared database: the app as
// newApp wires it, served over plain HTTP (TLS ends at the front).
type replica struct {
	n       int
	holder  string
	app     *app
	url     *url.URL
	srv     *http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	crashed atomic.Bool
	alive   atomic.Bool
	served  atomic.Int64 // requests the front sent here
}

// startReplica starts replica n on dir: the app as newApp wires it, its
// scheduler through a.runScheduler with --replica-id and --lease-ttl set
// as an operator would, and the lease calls observed (and crashable).
func startReplica(t *testing.T, n int, dir, dsn, publicURL string, clk *clock.Fake, leases *leaseLog) *replica {
	t.Helper()
	holder := fmt.Sprintf("%s-r%d", replicaID(), n)
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, PublicURL: publicURL, NoTLS: true, ChallengeMode: "shared",
		LogLevel: "warn", LogFormat: "text", FlushInterval: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		APNsURL: "https://127.0.0.1:1", Storage: "pgsql", StorageDSN: dsn, LeaseTTL: replicaLeaseTTL, ReplicaID: holder}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("replica", n)
	a, err := newApp(cfg, log, clk)
	if err != nil {
		t.Fatalf("replica %d: %v", n, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{n: n, holder: holder, app: a,
		url: &url.URL{Scheme: "http", Host: ln.Addr().String()},
		srv: &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second}}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Go(func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("replica %d serve: %v", n, err)
		}
	})
	r.wg.Go(func() { a.svc.Run(ctx, cfg.FlushInterval) })
	// The server's own scheduler path (a.runScheduler), with the lease
	// calls routed through a store that can crash, on the real clock.
	a.lease = leaseOverrides{
		store: crashableLeases{LeaseStore: a.store, holder: r.holder, crashed: &r.crashed, log: leases},
		clock: clock.System{},
		leading: func() func() {
			leases.enter(r.holder)
			return leases.leave
		},
	}
	r.wg.Go(func() { a.runScheduler(ctx) })
	r.alive.Store(true)
	t.Cleanup(r.stop)
	return r
}

// stop shuts the replica down cleanly (releasing the lease) unless it has
// crashed already.
func (r *replica) stop() {
	if r.cancel == nil {
		return
	}
	r.alive.Store(false)
	r.cancel()
	r.srv.Close()
	r.wg.Wait()
	r.app.Close()
	r.cancel = nil
}

// crash emulates a killed process: the front stops routing to it, its
// listener and connections close, it stops leading without releasing the
// lease, and its database pool goes away.
func (r *replica) crash() {
	r.crashed.Store(true)
	r.stop()
}

// front is the load balancer: a TLS reverse proxy that sends each request
// to a random live replica. The Mdm-Signature header passes through as is.
type front struct {
	srv      *httptest.Server
	replicas atomic.Pointer[[]*replica]
}

func newFront(t *testing.T) *front {
	t.Helper()
	f := &front{}
	f.replicas.Store(&[]*replica{})
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			var live []*replica
			for _, r := range *f.replicas.Load() {
				if r.alive.Load() {
					live = append(live, r)
				}
			}
			if len(live) == 0 {
				pr.SetURL(&url.URL{Scheme: "http", Host: "127.0.0.1:1"}) // refused: 502
				return
			}
			r := live[rand.IntN(len(live))]
			r.served.Add(1)
			pr.SetURL(r.url)
			pr.SetXForwarded()
		},
		ErrorLog: slog.NewLogLogger(slog.New(slog.NewTextHandler(testWriter{t}, nil)).Handler(), slog.LevelWarn),
	}
	f.srv = httptest.NewTLSServer(proxy)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *front) add(r *replica) {
	list := append(append([]*replica{}, *f.replicas.Load()...), r)
	f.replicas.Store(&list)
}

// replicaMac is a simulated Mac and what it received.
type replicaMac struct {
	name      string
	dev       *mdmtest.Device
	supported bool

	mu   sync.Mutex
	got  map[string]int // command UUID -> times received
	acts []string       // ScheduleOSUpdate InstallAction[/Priority], in order
}

func (m *replicaMac) options() []mdmtest.Option {
	var opts []mdmtest.Option
	for _, rt := range []string{"DeviceInformation", "ScheduleOSUpdateScan", "AvailableOSUpdates", "ScheduleOSUpdate", "OSUpdateStatus", "InstallProfile"} {
		opts = append(opts, mdmtest.WithHandler(rt, func(ctx context.Context, d *mdmtest.Device, cmd *mdmtest.Command) mdmtest.Result {
			var v struct {
				CommandUUID string
				Command     struct {
					Updates []struct{ InstallAction, Priority string }
				}
			}
			_ = cmd.Decode(&v)
			m.mu.Lock()
			m.got[v.CommandUUID]++
			for _, u := range v.Command.Updates {
				a := u.InstallAction
				if u.Priority != "" {
					a += "/" + u.Priority
				}
				m.acts = append(m.acts, a)
			}
			m.mu.Unlock()
			return d.Builtin(ctx, cmd)
		}))
	}
	return opts
}

func (m *replicaMac) received(action string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, a := range m.acts {
		if a == action {
			n++
		}
	}
	return n
}

// replicaTarget picks the newest macOS 15 release with a build, two
// simulated boards it supports and, if there is one, a board it does not.
func replicaTarget(t *testing.T) (catalog.Release, []mdmtest.Hardware, *mdmtest.Hardware) {
	t.Helper()
	rs := catalog.Default().Major(15)
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Build == "" {
			continue
		}
		var ok []mdmtest.Hardware
		var unsupported *mdmtest.Hardware
		for _, hw := range mdmtest.KnownHardware {
			if rs[i].Supports(hw.SoftwareUpdateDeviceID) {
				ok = append(ok, hw)
			} else if unsupported == nil {
				unsupported = &hw
			}
		}
		if len(ok) >= 2 {
			return rs[i], ok, unsupported
		}
	}
	t.Fatal("the embedded catalog has no macOS 15 release with a build for simulated hardware")
	return catalog.Release{}, nil, nil
}

func TestReplicasLeaderCrashMidTimeline(t *testing.T) {
	dsn := replicaSchema(t)
	ctx := t.Context()

	// The Macs sign SCEP requests with certificates valid around their
	// clock and the SCEP library checks them against the real clock: start
	// the fake clock at the real hour. The policy's zone is UTC.
	t0 := time.Now().UTC().Truncate(time.Hour)
	y, mo, d := t0.Date()
	D := time.Date(y, mo, d+10, 17, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)

	fr := newFront(t)
	leases := &leaseLog{lastOK: map[string]time.Time{}}
	base := t.TempDir()
	dirs := []string{filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")}
	var replicas []*replica
	replicas = append(replicas, startReplica(t, 1, dirs[0], dsn, fr.srv.URL, clk, leases))
	for i, dir := range dirs[1:] {
		copyReplicaKeys(t, dirs[0], dir)
		replicas = append(replicas, startReplica(t, i+2, dir, dsn, fr.srv.URL, clk, leases))
	}
	for _, r := range replicas {
		fr.add(r)
	}
	// The replicas share one CA, so a Mac enrolled through one is known to all.
	for _, r := range replicas[1:] {
		if !r.app.authority.CA().Equal(replicas[0].app.authority.CA()) {
			t.Fatalf("replica %d has a CA of its own: key material not shared", r.n)
		}
	}
	waitFor(t, func() bool { h, _ := leases.current(); return h != "" })

	live := func() []*replica {
		var out []*replica
		for _, r := range replicas {
			if r.alive.Load() {
				out = append(out, r)
			}
		}
		return out
	}
	store := func() backend { return live()[0].app.store } // one database behind them all

	// The policy: every Mac in the default group must reach the target by
	// D 17:00 UTC on the legacy path (ScheduleOSUpdate).
	target, hws, unsupportedHW := replicaTarget(t)
	tv := target.Version.String()
	if _, err := replicas[0].app.manager.SetPolicy(ctx, "replicas-test", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: tv, Date: D.Format(time.DateOnly), TimeOfDay: "17:00",
		TimeZone: "UTC", Path: softwareupdate.PathLegacy,
	}); err != nil {
		t.Fatal(err)
	}

	// Six supported Macs on 15.0 and, if the catalog has one, a Mac the
	// target does not support, all enrolled through the front.
	hc := fr.srv.Client()
	hc.Timeout = 10 * time.Second
	var macs []*replicaMac
	enroll := func(name string, hw mdmtest.Hardware, supported bool) {
		m := &replicaMac{name: name, supported: supported, got: map[string]int{}}
		opts := append([]mdmtest.Option{mdmtest.WithKeyPool(testKeys(t)), mdmtest.WithHTTPClient(hc), mdmtest.WithClock(clk),
			mdmtest.WithSupervised(true), mdmtest.WithHardware(hw), mdmtest.WithOS("15.0", "24A335"),
			mdmtest.WithCatalog(mdmtest.MinorUpdate(tv, target.Build))}, m.options()...)
		dev, err := mdmtest.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := dev.Enroll(ctx, hc, fr.srv.URL+"/mdm/enroll"); err != nil {
			t.Fatalf("%s enroll: %v", name, err)
		}
		m.dev = dev
		macs = append(macs, m)
	}
	for i := range 6 {
		enroll(fmt.Sprintf("mac%d", i+1), hws[i%len(hws)], true)
	}
	if unsupportedHW != nil {
		enroll("old", *unsupportedHW, false)
	}
	ids := make([]string, len(macs))
	for i, m := range macs {
		ids[i] = m.dev.UDID
	}

	states := func() []*scheduler.State {
		sts, err := store().States(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		return sts
	}
	// allSupported reports whether ok holds for every supported Mac's state.
	allSupported := func(ok func(m *replicaMac, st *scheduler.State) bool) func() bool {
		return func() bool {
			for i, st := range states() {
				if macs[i].supported && (st == nil || !ok(macs[i], st)) {
					return false
				}
			}
			return true
		}
	}
	touch := func() { // wake the leader's scheduler loop (the others ignore it)
		for _, r := range live() {
			r.app.sched.Touch()
		}
	}
	// connectAll connects every online Mac once, each connect to a random
	// replica; it returns how many commands they received.
	connectAll := func() int {
		n := 0
		for _, m := range macs {
			if !m.dev.Online() {
				continue
			}
			sess, err := m.dev.Connect(ctx)
			if err != nil {
				t.Fatalf("%s connect: %v", m.name, err)
			}
			n += len(sess.Commands)
		}
		return n
	}
	drain := func() {
		for range 20 {
			if connectAll() == 0 {
				return
			}
		}
		t.Fatal("Macs still receiving commands after 20 rounds")
	}
	// step sets the clock, wakes the scheduler and lets the Macs connect
	// until done holds, then until their queues are empty.
	step := func(when time.Time, what string, done func() bool) {
		t.Helper()
		clk.Set(when)
		touch()
		deadline := time.Now().Add(15 * time.Second)
		for !done() {
			if time.Now().After(deadline) {
				var b strings.Builder
				for i, st := range states() {
					if st != nil {
						fmt.Fprintf(&b, "\n  %s: phase %s step %s awaiting %s (%s)", macs[i].name, st.Phase, st.Step, st.Awaiting, st.Reason)
					}
				}
				t.Fatalf("%s: %s not reached within 15s:%s", when.Format(time.DateTime), what, b.String())
			}
			connectAll()
			time.Sleep(20 * time.Millisecond)
		}
		drain()
	}
	phaseIs := func(p softwareupdate.Phase) func(*replicaMac, *scheduler.State) bool {
		return func(_ *replicaMac, st *scheduler.State) bool { return st.Phase == p }
	}

	// Enrollment: inventory and a scan; the list, asked once the scan had
	// time to run, gives the product key.
	step(t0, "a scan started", allSupported(func(_ *replicaMac, st *scheduler.State) bool {
		return st.Phase == softwareupdate.PhasePending && st.Step == "scan" && st.Awaiting == ""
	}))
	step(t0.Add(10*time.Minute), "pending with a product key", allSupported(func(_ *replicaMac, st *scheduler.State) bool {
		return st.Phase == softwareupdate.PhasePending && st.ProductKey != ""
	}))
	// D-5 days: the download.
	notify := D.Add(-softwareupdate.NotifyWindow)
	step(notify, "the download", allSupported(func(m *replicaMac, st *scheduler.State) bool {
		return st.Phase == softwareupdate.PhaseNotify && m.received("DownloadOnly/High") > 0
	}))
	step(notify.Add(time.Hour), "downloaded", allSupported(func(_ *replicaMac, st *scheduler.State) bool { return st.Downloaded }))
	step(D, "the countdown", allSupported(phaseIs(softwareupdate.PhaseCountdown)))

	// D+30 min: the leader queues the forced installs, then crashes before
	// any Mac connects.
	enforce := D.Add(softwareupdate.CountdownWindow)
	clk.Set(enforce)
	touch()
	waitFor(t, allSupported(func(_ *replicaMac, st *scheduler.State) bool {
		return st.Phase == softwareupdate.PhaseEnforce && st.Step == "install-force"
	}))
	oldHolder, _ := leases.current()
	var victim *replica
	for _, r := range replicas {
		if r.holder == oldHolder {
			victim = r
		}
	}
	if victim == nil {
		t.Fatalf("lease holder %q is no replica", oldHolder)
	}
	killedAt := time.Now()
	victim.crash()
	// The crashed leader's last renewal is what the lease's expiry counts
	// from.
	leases.mu.Lock()
	lastRenewal := leases.lastOK[oldHolder]
	leases.mu.Unlock()

	var newHolder string
	var takenAt time.Time
	bound := replicaLeaseTTL + replicaLeaseTTL/3 + takeoverSlack
	for deadline := time.Now().Add(bound + 5*time.Second); ; time.Sleep(10 * time.Millisecond) {
		if newHolder, takenAt = leases.current(); newHolder != oldHolder {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replica took the scheduler lease over within %s of the leader's crash", bound+5*time.Second)
		}
	}
	takeover := takenAt.Sub(killedAt)
	t.Logf("leader %s crashed; %s took over after %s (lease ttl %s, bound %s; %s after the last renewal)",
		oldHolder, newHolder, takeover.Round(time.Millisecond), replicaLeaseTTL, bound, takenAt.Sub(lastRenewal).Round(time.Millisecond))
	if takeover > bound {
		t.Errorf("takeover took %s, want at most ttl + ttl/3 + %s = %s", takeover, takeoverSlack, bound)
	}
	// Storage keeps times to the microsecond: allow for the rounding.
	if early := takenAt.Sub(lastRenewal); early < replicaLeaseTTL-time.Millisecond {
		t.Errorf("the lease was taken %s after the crashed leader's last renewal, before its ttl %s ran out", early, replicaLeaseTTL)
	}
	var leader *replica
	for _, r := range live() {
		if r.holder == newHolder {
			leader = r
		}
	}
	if leader == nil {
		t.Fatalf("new holder %q is not a live replica", newHolder)
	}
	// The new leader's pass at the same instant queues nothing again.
	waitFor(t, func() bool {
		leases.mu.Lock()
		defer leases.mu.Unlock()
		return leases.active == 1
	})
	if st, err := leader.app.sched.RunOnce(ctx); err != nil || st.Commands != 0 {
		t.Fatalf("the new leader's pass at the enforcement instant = %+v, %v; want no commands", st, err)
	}
	step(enforce, "the forced installs delivered", allSupported(func(m *replicaMac, _ *scheduler.State) bool {
		return m.received(mdmtest.ActionInstallForceRestart) > 0
	}))
	// The Macs install and restart; a fresh DeviceInformation confirms.
	step(enforce.Add(30*time.Minute), "compliance", allSupported(phaseIs(softwareupdate.PhaseCompliant)))
	step(D.Add(2*24*time.Hour), "a quiet day", func() bool { return true })

	// Every supported Mac is compliant on the target; the unsupported one
	// was told nothing.
	for i, st := range states() {
		m := macs[i]
		switch {
		case m.supported && (st.Phase != softwareupdate.PhaseCompliant || m.dev.OSVersion() != tv):
			t.Errorf("%s: phase %s on %s, want compliant on %s", m.name, st.Phase, m.dev.OSVersion(), tv)
		case !m.supported && (st.Phase != softwareupdate.PhaseUnsupported || len(m.acts) > 0):
			t.Errorf("%s (unsupported): phase %s, ScheduleOSUpdate actions %v", m.name, st.Phase, m.acts)
		}
	}
	for _, m := range macs {
		// No command reached a Mac twice, and each update action once.
		for uuid, n := range m.got {
			if n > 1 {
				t.Errorf("%s received command %s %d times", m.name, uuid, n)
			}
		}
		if m.supported {
			if got := strings.Join(m.acts, ","); got != "DownloadOnly/High,"+mdmtest.ActionInstallForceRestart {
				t.Errorf("%s ScheduleOSUpdate actions = %s, want one download then one forced install", m.name, got)
			}
		}
		// No command recorded twice as acknowledged.
		recs, err := store().Commands(ctx, m.dev.UDID)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			acks := 0
			for _, h := range rec.History {
				if h.Status == string(mdm.Acknowledged) {
					acks++
				}
			}
			if acks > 1 {
				t.Errorf("%s: command %s (%s) acknowledged %d times", m.name, rec.UUID, rec.RequestType, acks)
			}
		}
		// No scheduler step sent twice for the same phase and target.
		rep, err := live()[0].app.manager.Device(ctx, m.dev.UDID, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, h := range rep.History {
			if h.Kind == scheduler.EventStep {
				seen[string(h.From)+"/"+h.Step+"/"+h.Target]++
			}
		}
		for k, n := range seen {
			if n > 1 {
				t.Errorf("%s: step %s sent %d times", m.name, k, n)
			}
		}
		if m.supported && seen["enforce/install-force/"+tv] != 1 {
			t.Errorf("%s: steps %v, want one install-force in enforce", m.name, seen)
		}
	}

	// Exactly one scheduler at a time, and the Macs' requests were spread
	// over every replica.
	leases.mu.Lock()
	maxActive, leads := leases.maxActive, leases.leads
	leases.mu.Unlock()
	if maxActive != 1 {
		t.Errorf("%d replicas ran the scheduler at once", maxActive)
	}
	if len(leads) < 2 || leads[len(leads)-1] != newHolder {
		t.Errorf("leaders = %v, want the crashed %s then %s", leads, oldHolder, newHolder)
	}
	for _, r := range replicas {
		if r.served.Load() == 0 {
			t.Errorf("replica %d served no request: the front did not spread the Macs", r.n)
		}
		t.Logf("replica %d served %d requests", r.n, r.served.Load())
	}
}
