package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/enrollment/ade/depmock"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/mdm/push/apnsmock"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// demoOptions configure `sundial demo`.
type demoOptions struct {
	Macs    int           // simulated Macs, at least 4
	Speed   time.Duration // simulated time per real second
	Timeout time.Duration // real-time bound
	MaxSim  time.Duration // simulated-time bound
	Output  string        // table or json
	Verbose bool          // server logs at info level
}

// Demo group IDs, one per policy mode.
const (
	demoUnmanaged = "unmanaged"
	demoAutomatic = "automatic"
	demoManual    = "manual"
)

// demoTick is the simulated time between two scheduler passes.
const demoTick = 15 * time.Minute

// demoProfileMac is the index of the managed Mac enrolled with the
// downloaded profile instead of ADE.
const demoProfileMac = 2

func newDemoCmd(getenv func(string) string) *cobra.Command {
	o := demoOptions{}
	var short bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch Sundial enforce macOS updates on simulated Macs, on an accelerated clock, in about half a minute",
		Long: `demo starts the real Sundial server on a temporary embedded database, an
APNs mock and simulated Macs (macOS 13, 14 and 15, and one model the target
does not support) in three groups, one per policy mode: unmanaged, automatic
(7 days after Apple's release) and manual (a minimum version by a date).
The managed Macs come from a mock of Apple Business Manager and enroll
through Automated Device Enrollment (supervised); a manual-group Mac below
the target waits at Setup Assistant until it installs it. One automatic-group
Mac enrolls with the downloaded profile instead: not supervised, so Apple
lets no MDM enforce its updates and it ends ineligible, never failed. An
accelerated clock runs the whole enforcement while a line shows how many
Macs are in each phase whenever that changes (every 15 simulated minutes
around a deadline), with a line per phase change for seven named Macs,
one per path: legacy ScheduleOSUpdate (macOS 13), declarative (macOS 14+),
a user choosing Start Now, a macOS 13 Mac (too old to be held at Setup
Assistant) upgraded to macOS 15, the profile-enrolled Mac, the unsupported
model and an unmanaged Mac. It
ends with the compliance report. Nothing is kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if short {
				if !cmd.Flags().Changed("macs") {
					o.Macs = 7
				}
				if !cmd.Flags().Changed("speed") {
					o.Speed = 96 * time.Hour
				}
			}
			if o.Macs < 4 || o.Macs > 200 {
				return usageError{fmt.Errorf("--macs %d: want 4 to 200", o.Macs)}
			}
			if o.Speed < time.Hour || o.Speed > 1000*time.Hour {
				return usageError{fmt.Errorf("--speed %s: want 1h to 1000h of simulated time per second", o.Speed)}
			}
			if o.Output != "table" && o.Output != "json" {
				return usageError{fmt.Errorf("-o %q: want table or json", o.Output)}
			}
			o.MaxSim = 30 * 24 * time.Hour
			_, err := runDemo(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Macs, "macs", 12, "number of simulated Macs (4 to 200)")
	f.DurationVar(&o.Speed, "speed", 10*time.Hour, "simulated time per real second")
	f.BoolVar(&short, "short", false, "CI mode: 7 Macs, 96h of simulated time per second")
	f.DurationVar(&o.Timeout, "timeout", 90*time.Second, "fail after this much real time")
	f.StringVarP(&o.Output, "output", "o", "table", "final report as table or json")
	f.BoolVar(&o.Verbose, "verbose", false, "show the server's logs")
	return cmd
}

// demoMac is one simulated Mac and the group it is put in.
type demoMac struct {
	dev         *mdmtest.Device
	name        string
	group       string
	major       int
	unsupported bool   // the model the target does not support
	ade         bool   // enrolls through Automated Device Enrollment (supervised)
	story       string // the path it shows, "" for an unnamed Mac
	startNow    bool   // its user chooses Start Now once notified
	pressed     bool
	phase       softwareupdate.Phase
}

// demoPlan is what the demo simulates, chosen from the embedded catalog.
type demoPlan struct {
	hw          mdmtest.Hardware         // supported by every target
	start       map[int]catalog.Release  // running release per major
	updates     map[int][]mdmtest.Update // what each major's Mac is offered
	target      catalog.Release          // the manual group's minimum version
	old         mdmtest.Hardware         // the unsupported model
	oldStart    catalog.Release          // what it runs
	oldUpdates  []mdmtest.Update         // what it is offered
	policies    map[string]softwareupdate.Policy
	description map[string]string
}

// intelCandidates are Intel models tried for the unsupported Mac.
var intelCandidates = []mdmtest.Hardware{
	{ProductName: "MacBookPro14,1", ModelName: "MacBook Pro"},
	{ProductName: "MacBookPro14,2", ModelName: "MacBook Pro"},
	{ProductName: "MacBookAir8,1", ModelName: "MacBook Air"},
	{ProductName: "iMac18,3", ModelName: "iMac"},
	{ProductName: "Macmini8,1", ModelName: "Mac mini"},
}

// planDemo picks hardware, running versions and targets from the catalog,
// so the demo follows the embedded catalog as it is updated.
func planDemo(cat *catalog.Catalog, now time.Time) (*demoPlan, error) {
	p := &demoPlan{start: map[int]catalog.Release{}, updates: map[int][]mdmtest.Update{}}
	supported := func(rs []catalog.Release, board string) []catalog.Release {
		var out []catalog.Release
		for _, r := range rs {
			if r.Supports(board) {
				out = append(out, r)
			}
		}
		return out
	}
	// Updates are offered with their build; the catalog does not know the
	// build of every old release.
	offered := func(rs []catalog.Release, from catalog.Version) []mdmtest.Update {
		var us []mdmtest.Update
		for _, r := range rs {
			if r.Version.Compare(from) > 0 && r.Build != "" {
				us = append(us, mdmtest.MinorUpdate(r.Version.String(), r.Build))
			}
		}
		return us
	}
	found := false
	for _, hw := range mdmtest.KnownHardware {
		if !hw.IsAppleSilicon {
			continue
		}
		ok := true
		for _, m := range []int{13, 14, 15} {
			rs := supported(cat.Major(m), hw.SoftwareUpdateDeviceID)
			if len(rs) < 2 || rs[len(rs)-1].Build == "" {
				ok = false
				break
			}
			start := rs[max(0, len(rs)-3)]
			p.start[m], p.updates[m] = start, offered(rs, start.Version)
		}
		if ok {
			p.hw, found = hw, true
			rs := supported(cat.Major(15), hw.SoftwareUpdateDeviceID)
			p.target = rs[len(rs)-1]
			// A Mac on macOS 13 is also offered the latest macOS 14 and 15
			// as major upgrades, as Software Update lists them.
			for _, m := range []int{14, 15} {
				l := supported(cat.Major(m), hw.SoftwareUpdateDeviceID)
				p.updates[13] = append(p.updates[13], mdmtest.MajorUpdate(l[len(l)-1].Version.String(), l[len(l)-1].Build))
			}
			break
		}
	}
	if !found {
		return nil, errors.New("demo: the catalog has no Apple silicon model with macOS 13, 14 and 15 releases")
	}
	// The unsupported Mac: an Intel model that runs macOS 13 but cannot take
	// the manual group's macOS 15 target.
	pick := func(hw mdmtest.Hardware, board string) bool {
		if board == "" || p.target.Supports(board) {
			return false
		}
		rs := supported(cat.Major(13), board)
		if len(rs) == 0 {
			return false
		}
		hw.SoftwareUpdateDeviceID = board
		p.old, p.oldStart = hw, rs[len(rs)-1]
		p.oldUpdates = offered(rs, p.oldStart.Version)
		return true
	}
	found = false
	for _, hw := range intelCandidates {
		for _, b := range cat.BoardIDsForModel(hw.ProductName) {
			if pick(hw, b) {
				found = true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		if l13, ok := cat.LatestInMajor("", 13); ok {
			for _, b := range l13.SupportedDevices {
				if pick(mdmtest.Hardware{ProductName: "Mac (Intel)", ModelName: "Intel Mac"}, b) {
					found = true
					break
				}
			}
		}
	}
	if !found {
		return nil, errors.New("demo: the catalog has no macOS 13 model that the macOS 15 target drops")
	}
	day := now.UTC().AddDate(0, 0, 8).Format(time.DateOnly)
	p.policies = map[string]softwareupdate.Policy{
		demoUnmanaged: {Mode: softwareupdate.ModeUnmanaged},
		demoAutomatic: {Mode: softwareupdate.ModeAutomatic, DelayDays: 7, TimeOfDay: "17:00", TimeZone: "UTC", MinimumNoticeDays: 3},
		demoManual: {Mode: softwareupdate.ModeManual, MinimumVersion: p.target.Version.String(), Date: day, TimeOfDay: "17:00",
			TimeZone: "UTC", AllowMajorUpgrades: true},
	}
	p.description = map[string]string{
		demoUnmanaged: "updates not managed",
		demoAutomatic: "each release required 7 days after Apple posts it, at least 3 days' notice, 17:00 UTC",
		demoManual:    "macOS " + p.target.Version.String() + " by " + day + " 17:00 UTC",
	}
	return p, nil
}

// demoSlots is the order in which Macs fill the groups (the unsupported
// Mac is added on top). The manual group's macOS 15 Mac is held at Setup
// Assistant until it runs the target; its macOS 13 Mac cannot be (Apple
// holds only macOS 14 and later), so it enrolls and walks every phase to
// a major upgrade.
var demoSlots = []struct {
	group string
	major int
}{
	{demoAutomatic, 13}, {demoManual, 15}, {demoAutomatic, 14}, {demoUnmanaged, 14}, {demoAutomatic, 15},
	{demoManual, 13}, {demoAutomatic, 13}, {demoAutomatic, 14}, {demoUnmanaged, 15}, {demoManual, 15}, {demoAutomatic, 14},
}

// runDemo runs the demo and returns the final compliance report. Live lines
// go to out (to errw when the report is JSON, so out stays parseable).
func runDemo(ctx context.Context, o demoOptions, out, errw io.Writer) (*scheduler.ComplianceReport, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	live := out
	if o.Output == "json" {
		live = errw
	}
	dir, err := os.MkdirTemp("", "sundial-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// The simulated Macs sign SCEP requests with certificates valid around
	// their clock and the SCEP library checks them against the real clock:
	// the accelerated clock starts at the real time.
	start := time.Now().UTC().Truncate(time.Minute)
	clk := clock.NewFake(start)

	mock := apnsmock.New(apnsmock.WithClock(clk))
	ms := apnsmock.NewTestServer(mock, nil)
	defer ms.Close()
	caFile := filepath.Join(dir, "apns-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ms.Certificate().Raw}), 0o600); err != nil {
		return nil, err
	}
	// Apple Business Manager: a DEP mock and a test "Apple" device CA
	// whose root the server trusts for ADE enrollment requests.
	dm := depmock.New()
	dms := httptest.NewTLSServer(dm)
	defer dms.Close()
	apple, err := mdmtest.NewAppleDeviceCA(start)
	if err != nil {
		return nil, err
	}
	depCA, appleRoot := filepath.Join(dir, "dep-ca.pem"), filepath.Join(dir, "apple-root.pem")
	for file, der := range map[string][]byte{depCA: dms.Certificate().Raw, appleRoot: apple.Root.Raw} {
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	base := "https://" + ln.Addr().String()
	cfg := Config{Listen: ln.Addr().String(), DataDir: filepath.Join(dir, "data"), PublicURL: base, ChallengeMode: "shared",
		LogLevel: "error", LogFormat: "text", FlushInterval: 100 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		APNsURL: ms.URL, APNsCA: caFile, NoSync: true, ADEAppleRoot: appleRoot, DEPCA: depCA}
	if o.Verbose {
		cfg.LogLevel = "info"
	}
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return nil, err
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, errw)
	if err != nil {
		ln.Close()
		return nil, err
	}
	a, err := newApp(cfg, log, clk)
	if err != nil {
		ln.Close()
		return nil, err
	}
	defer a.Close()
	pc, err := demoPushCert(start)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if err := a.pushMgr.Set(pc, false); err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo push certificate: %w", err)
	}

	// The server, without the scheduler loop and the push loop: the demo
	// runs both once per simulated tick.
	tc, err := a.tlsConfig()
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go srv.Serve(tls.NewListener(ln, tc))
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bgWG sync.WaitGroup
	bgWG.Add(1)
	go func() { defer bgWG.Done(); a.svc.Run(bg, cfg.FlushInterval) }()
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		srv.Shutdown(sctx)
		c()
		stopBG()
		bgWG.Wait()
	}()

	plan, err := planDemo(a.catalog, start)
	if err != nil {
		return nil, err
	}
	const actor = "demo"
	for _, g := range []string{demoUnmanaged, demoAutomatic, demoManual} {
		if _, err := a.manager.CreateGroup(ctx, actor, g, g); err != nil {
			return nil, err
		}
		if _, err := a.manager.SetPolicy(ctx, actor, g, plan.policies[g]); err != nil {
			return nil, fmt.Errorf("demo policy %s: %w", g, err)
		}
	}

	// The Macs: each wakes and connects when APNs delivers a push to it.
	pool := x509.NewCertPool()
	pool.AddCert(a.authority.CA())
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	keys, err := mdmtest.NewKeyPool(min(o.Macs, 4))
	if err != nil {
		return nil, err
	}
	var woken atomic.Uint64 // pushes answered by a connection attempt
	macs := make([]*demoMac, 0, o.Macs)
	for i := range o.Macs {
		m := &demoMac{}
		hw, rel, ups := plan.hw, catalog.Release{}, []mdmtest.Update(nil)
		if i == o.Macs-1 {
			m.group, m.unsupported = demoManual, true
			hw, rel, ups = plan.old, plan.oldStart, plan.oldUpdates
		} else {
			s := demoSlots[i%len(demoSlots)]
			m.group, m.major, rel, ups = s.group, s.major, plan.start[s.major], plan.updates[s.major]
		}
		m.name = fmt.Sprintf("mac-%02d", i+1)
		// Managed Macs come from Apple Business Manager (supervised by
		// ADE), except demoProfileMac, enrolled with the downloaded
		// profile: not supervised, so Apple lets no MDM enforce its updates.
		m.ade = m.group != demoUnmanaged && !m.unsupported && i != demoProfileMac
		m.dev, err = mdmtest.New(mdmtest.WithKeyPool(keys), mdmtest.WithHTTPClient(hc), mdmtest.WithClock(clk),
			mdmtest.WithHardware(hw), mdmtest.WithOS(rel.Version.String(), buildOf(rel)), mdmtest.WithSupervised(false),
			mdmtest.WithCatalog(ups...), mdmtest.WithDeviceName(m.name))
		if err != nil {
			return nil, err
		}
		dev := m.dev
		cancelSub := mock.Subscribe(dev.Token, func() {
			defer woken.Add(1)
			if dev.Online() {
				dev.Connect(ctx) // a failed connection is retried by the re-push
			}
		})
		defer cancelSub()
		macs = append(macs, m)
	}
	byGroup := map[string][]string{}
	for _, m := range macs {
		byGroup[m.group] = append(byGroup[m.group], m.dev.UDID)
	}
	named := nameDemoMacs(macs)
	for g, ids := range byGroup {
		if err := a.manager.AssignDevices(ctx, actor, g, ids); err != nil {
			return nil, err
		}
	}

	fmt.Fprintf(live, "Sundial demo: %d simulated Macs, server %s, 1 simulated day = %s real time\n",
		len(macs), base, time.Duration(float64(time.Second)*float64(24*time.Hour)/float64(o.Speed)).Round(time.Millisecond))
	for _, g := range []string{demoUnmanaged, demoAutomatic, demoManual} {
		n := len(byGroup[g])
		fmt.Fprintf(live, "  group %-9s  %2d %-4s  %s\n", g, n, plural(n, "Mac", "Macs"), plan.description[g])
	}
	fmt.Fprintf(live, "  %s (%s, %s) runs macOS %s and cannot take macOS %s\n",
		macs[len(macs)-1].name, plan.old.ProductName, plan.old.SoftwareUpdateDeviceID, plan.oldStart.Version, plan.target.Version)
	fmt.Fprintln(live, "  followed below (\"»\" lines):")
	for _, m := range named {
		fmt.Fprintf(live, "    %s  %-9s  %s\n", m.name, m.group, m.story)
	}
	if err := demoABM(ctx, a, dm, dms.URL, macs); err != nil {
		return nil, err
	}
	for _, m := range macs {
		if !m.ade {
			if err := m.dev.Enroll(ctx, hc, base+"/mdm/enroll"); err != nil {
				return nil, fmt.Errorf("enroll %s: %w", m.name, err)
			}
			if m.group != demoUnmanaged && !m.unsupported {
				fmt.Fprintf(live, "  %s enrolled with the downloaded profile: not supervised, so ineligible for enforcement\n", m.name)
			}
			continue
		}
		from := m.dev.OSVersion()
		if err := m.dev.EnrollADE(ctx, hc, base+"/mdm/enroll", apple); err != nil {
			return nil, fmt.Errorf("enroll %s through ADE: %w", m.name, err)
		}
		if ups := m.dev.SetupUpdates(); len(ups) > 0 {
			fmt.Fprintf(live, "  %s (ADE) was held at Setup Assistant on macOS %s until it installed macOS %s\n", m.name, from, ups[len(ups)-1])
		}
	}

	reporter := scheduler.NewReporter(a.store, a.store, a.catalog, clk)
	phases := []softwareupdate.Phase{softwareupdate.PhaseUnknown, softwareupdate.PhasePending, softwareupdate.PhaseNotify,
		softwareupdate.PhaseCountdown, softwareupdate.PhaseEnforce, softwareupdate.PhaseFailed, softwareupdate.PhaseCompliant,
		softwareupdate.PhaseIneligible, softwareupdate.PhaseUnsupported, softwareupdate.PhaseUnmanaged}
	fmt.Fprintf(live, "\nOne line whenever the number of Macs in a phase changes:\n%-5s %-16s", "DAY", "SIMULATED (UTC)")
	for _, p := range phases {
		fmt.Fprintf(live, " %11s", strings.ToUpper(string(p)))
	}
	fmt.Fprintln(live)
	lastCounts := ""
	summary := func(rep *scheduler.ComplianceReport, force bool) { // force: print the counts even unchanged
		now := clk.Now()
		var counts strings.Builder
		for _, p := range phases {
			n := rep.ByPhase[p]
			if p == softwareupdate.PhaseUnknown {
				n += rep.ByPhase[scheduler.PhaseUnevaluated]
			}
			fmt.Fprintf(&counts, " %11d", n)
		}
		if counts.String() != lastCounts || force {
			lastCounts = counts.String()
			fmt.Fprintf(live, "%-5d %-16s%s\n", int(now.Sub(start)/(24*time.Hour)), now.Format("Mon 02 Jan 15:04"), counts.String())
		}
		// The named Macs' stories, one line per phase change.
		rows := map[string]scheduler.ReportRow{}
		for _, r := range rep.Rows {
			rows[r.DeviceID] = r
		}
		for _, m := range named {
			r, ok := rows[m.dev.UDID]
			if !ok || r.Phase == m.phase || r.Phase == "" {
				continue
			}
			from := m.phase
			if from == "" {
				from = "enrolled"
			}
			detail := ""
			switch {
			case r.Phase == softwareupdate.PhaseCompliant:
				detail = "now on macOS " + r.OSVersion
			case r.Phase == softwareupdate.PhaseUnsupported, r.Phase == softwareupdate.PhaseFailed, r.Phase == softwareupdate.PhaseIneligible:
				detail = r.Reason
			case !r.Deadline.IsZero() && r.Phase != softwareupdate.PhaseUnmanaged:
				detail = "macOS " + r.Target + ", deadline " + r.Deadline.UTC().Format("Mon 02 Jan 15:04")
			}
			fmt.Fprintln(live, "  "+strings.TrimSpace(fmt.Sprintf("» %s %s (%s): %s → %s  %s", now.Format("Mon 02 Jan 15:04"), m.name, m.story, from, r.Phase, detail)))
			m.phase = r.Phase
		}
	}
	done := func(rep *scheduler.ComplianceReport) bool {
		phase := map[string]softwareupdate.Phase{}
		for _, r := range rep.Rows {
			phase[r.DeviceID] = r.Phase
		}
		for _, m := range macs {
			want := softwareupdate.PhaseCompliant
			switch {
			case m.group == demoUnmanaged:
				want = softwareupdate.PhaseUnmanaged
			case m.unsupported:
				want = softwareupdate.PhaseUnsupported
			case !m.ade:
				want = softwareupdate.PhaseIneligible // not supervised: never failed
			}
			if phase[m.dev.UDID] != want {
				return false
			}
		}
		return true
	}

	pace := time.Duration(float64(time.Second) * float64(demoTick) / float64(o.Speed))
	var lastCheckin time.Time
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("demo: not finished within %s of real time (simulated %s): %w", o.Timeout, clk.Now().Sub(start).Round(time.Hour), err)
		}
		tickStart := time.Now()
		now := clk.Now()
		if _, err := a.sched.RunOnce(ctx); err != nil {
			return nil, fmt.Errorf("demo: scheduler pass: %w", err)
		}
		// Send the pushes whose coalescing window has closed and wait for the
		// woken Macs to connect.
		if err := a.pusher.RunOnce(ctx); err != nil {
			log.Warn("demo: push pass", "err", err)
		}
		wait := time.Now().Add(10 * time.Second)
		for woken.Load() < mock.Stats().Delivered && time.Now().Before(wait) {
			time.Sleep(time.Millisecond)
		}
		// Macs report declarative status as it changes, and check in now and
		// then on their own.
		checkin := now.Sub(lastCheckin) >= 4*time.Hour
		if checkin {
			lastCheckin = now
		}
		var wg sync.WaitGroup
		for _, m := range macs {
			if !m.dev.Online() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if m.dev.DeclarationsToken() != "" {
					if _, err := m.dev.SendDeclarativeStatus(ctx, false); err != nil {
						log.Debug("demo: status report", "mac", m.name, "err", err)
					}
				}
				if checkin {
					if _, err := m.dev.Connect(ctx); err != nil {
						log.Debug("demo: check-in", "mac", m.name, "err", err)
					}
				}
			}()
		}
		wg.Wait()

		// Sample every tick: the countdown lasts 30 simulated minutes, two
		// ticks, so a daily sample would never show it.
		rep, err := reporter.Compliance(ctx, true)
		if err != nil {
			return nil, err
		}
		summary(rep, false)
		// A user notified of the update chooses Start Now, as the agent
		// lets them (the agent API calls the same scheduler entry point).
		for _, m := range named {
			if m.startNow && !m.pressed && m.phase == softwareupdate.PhaseNotify {
				m.pressed = true
				if _, err := a.sched.StartNow(ctx, m.dev.UDID); err != nil {
					return nil, fmt.Errorf("demo: Start Now on %s: %w", m.name, err)
				}
				fmt.Fprintf(live, "  » %s %s: the user chooses Start Now\n", now.Format("Mon 02 Jan 15:04"), m.name)
			}
		}
		if done(rep) || now.Sub(start) >= o.MaxSim {
			summary(rep, false)
			return finishDemo(o, out, rep, done(rep), now.Sub(start))
		}
		if d := pace - time.Since(tickStart); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		clk.Advance(demoTick)
	}
}

func finishDemo(o demoOptions, out io.Writer, rep *scheduler.ComplianceReport, ok bool, took time.Duration) (*scheduler.ComplianceReport, error) {
	if o.Output == "json" {
		if err := writeJSON(out, rep); err != nil {
			return rep, err
		}
	} else {
		fmt.Fprintf(out, "\nEnforcement finished after %s of simulated time.\n\n", reportDuration(took))
		if err := printComplianceReport(out, rep); err != nil {
			return rep, err
		}
		fmt.Fprintln(out, "\n(MEDIAN and P90: how long Macs took from falling behind the target to running it;\nhalf of them took at most MEDIAN, nine in ten at most P90.)")
	}
	if !ok {
		return rep, fmt.Errorf("demo: not every supported managed Mac is compliant after %s of simulated time", took.Round(time.Hour))
	}
	return rep, nil
}

// demoOIDUID is the subject attribute that carries the push topic.
var demoOIDUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// demoPushCert makes a self-signed MDM push certificate for the APNs mock.
func demoPushCert(now time.Time) (*certs.PushCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	topic := "com.apple.mgmt.External." + strings.ToLower(mdm.NewUUID())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject: pkix.Name{CommonName: "APSP:" + topic, Country: []string{"US"},
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: demoOIDUID, Value: topic}}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return certs.LoadPushCertPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// buildOf returns a release's build, or a stand-in for the running OS of a
// simulated Mac when the catalog does not know it.
func buildOf(r catalog.Release) string {
	if r.Build != "" {
		return r.Build
	}
	return "SIM" + strings.ReplaceAll(r.Version.String(), ".", "")
}

// nameDemoMacs picks the Macs whose phase changes the demo prints, one per
// path (each only if the fleet has one): legacy ScheduleOSUpdate (macOS
// 13), declarative (macOS 14+), a legacy Mac whose user chooses Start Now
// (all three supervised by ADE), the profile-enrolled Mac (ineligible), the
// unsupported model, and an unmanaged Mac.
func nameDemoMacs(macs []*demoMac) []*demoMac {
	var out []*demoMac
	take := func(story string, ok func(m *demoMac) bool) *demoMac {
		for _, m := range macs {
			if m.story == "" && ok(m) {
				m.story = story
				out = append(out, m)
				return m
			}
		}
		return nil
	}
	managed := func(m *demoMac) bool { return m.group != demoUnmanaged && !m.unsupported && m.ade }
	take("legacy ScheduleOSUpdate", func(m *demoMac) bool { return managed(m) && m.major == 13 && m.group == demoAutomatic })
	take("declarative", func(m *demoMac) bool { return managed(m) && m.major >= 14 && m.group == demoAutomatic })
	// Start Now installs at once on the legacy path (InstallASAP); a
	// declarative Mac's agent leaves the install to macOS.
	if m := take("legacy, the user chooses Start Now", func(m *demoMac) bool { return managed(m) && m.major == 13 && m.group == demoAutomatic }); m != nil {
		m.startNow = true
	}
	take("legacy major upgrade: macOS 13 is too old to hold at setup", func(m *demoMac) bool {
		return managed(m) && m.major == 13 && m.group == demoManual
	})
	take("profile-enrolled, not supervised", func(m *demoMac) bool {
		return m.group != demoUnmanaged && !m.unsupported && !m.ade
	})
	take("unsupported model", func(m *demoMac) bool { return m.unsupported })
	take("unmanaged", func(m *demoMac) bool { return m.group == demoUnmanaged })
	return out
}

// demoABM connects the server to the DEP mock as an admin would (keypair,
// server token), puts the ADE Macs' serials in ABM, syncs them and moves
// each into its group, so each gets its group's ADE profile.
func demoABM(ctx context.Context, a *app, dm *depmock.Mock, url string, macs []*demoMac) error {
	certPEM, err := a.dep.Keypair(ctx, "abm", url)
	if err != nil {
		return err
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		return errors.New("demo: keypair certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return err
	}
	tok, err := dm.ServerToken(cert)
	if err != nil {
		return err
	}
	if _, err := a.dep.UploadToken(ctx, "abm", tok); err != nil {
		return err
	}
	for _, m := range macs {
		if m.ade {
			dm.Add(depmock.Device{SerialNumber: m.dev.SerialNumber, Model: m.dev.ModelName, OS: "OSX", DeviceFamily: "Mac"})
		}
	}
	if _, err := a.dep.Sync(ctx, "abm"); err != nil {
		return fmt.Errorf("demo: abm sync: %w", err)
	}
	for _, m := range macs {
		if m.ade {
			if _, err := a.dep.MoveSerial(ctx, m.dev.SerialNumber, m.group); err != nil {
				return fmt.Errorf("demo: abm group of %s: %w", m.name, err)
			}
		}
	}
	return nil
}
