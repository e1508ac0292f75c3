package main

// End-to-end tests of the companion agent against the real server (issue 6,
// "Must show"): the agent's settings arrive through MDM InstallProfile, the
// agent API authenticates each Mac with its own secret over TLS pinned to
// the profile's CA, and Start Now on a legacy-path Mac makes the simulated
// Mac receive ScheduleOSUpdate InstallASAP.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/sundial-mdm/sundial/agent"
	"github.com/sundial-mdm/sundial/api/agentapi"
	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// agentMac is an enrolled simulated Mac with the agent settings it received
// through MDM.
type agentMac struct {
	*mdmtest.Device
	// Profile is the InstallProfile payload as the Mac received it.
	Profile []byte
	// Settings are read from the managed preferences the profile installs.
	Settings *agentapi.Settings

	mu       sync.Mutex
	schedule []scheduledUpdate // ScheduleOSUpdate items received
}

// scheduledUpdate is one item of a ScheduleOSUpdate command the Mac received.
type scheduledUpdate struct {
	ProductKey     string
	ProductVersion string
	InstallAction  string
}

func (m *agentMac) scheduled() []scheduledUpdate {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.schedule)
}

// enrollAgentMac enrolls a Mac, connects it once (inventory and the agent's
// settings profile) and reads the agent settings the way the agent does on
// a Mac: from the managed-preferences plist macOS writes for the profile's
// payload.
func enrollAgentMac(t *testing.T, ts *testServer, opts ...mdmtest.Option) *agentMac {
	t.Helper()
	m := &agentMac{}
	var profiles [][]byte
	capture := mdmtest.WithHandler("InstallProfile", func(ctx context.Context, d *mdmtest.Device, cmd *mdmtest.Command) mdmtest.Result {
		var v struct{ Command struct{ Payload []byte } }
		if err := cmd.Decode(&v); err == nil {
			m.mu.Lock()
			profiles = append(profiles, v.Command.Payload)
			m.mu.Unlock()
		}
		return d.Builtin(ctx, cmd)
	})
	record := mdmtest.WithHandler("ScheduleOSUpdate", func(ctx context.Context, d *mdmtest.Device, cmd *mdmtest.Command) mdmtest.Result {
		var v struct {
			Command struct{ Updates []scheduledUpdate }
		}
		if err := cmd.Decode(&v); err == nil {
			m.mu.Lock()
			m.schedule = append(m.schedule, v.Command.Updates...)
			m.mu.Unlock()
		}
		return d.Builtin(ctx, cmd)
	})
	m.Device = ts.enroll(t, append(opts, capture, record)...)
	sess, err := m.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(sess); got != "DeviceInformation:Acknowledged InstallProfile:Acknowledged" {
		t.Fatalf("first connect = %s, want inventory and the agent settings profile", got)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(profiles) != 1 {
		t.Fatalf("the Mac received %d InstallProfile payloads, want 1", len(profiles))
	}
	m.Profile = profiles[0]
	m.Settings = managedPreferences(t, m.Profile)
	return m
}

// managedPreferences does what macOS does with the agent's settings
// profile: the keys of its com.sundial-mdm.agent payload are written to
// /Library/Managed Preferences/com.sundial-mdm.agent.plist, which the agent
// parses.
func managedPreferences(t *testing.T, profile []byte) *agentapi.Settings {
	t.Helper()
	var p struct {
		PayloadType    string
		PayloadScope   string
		PayloadContent []map[string]any
	}
	if err := plist.Unmarshal(profile, &p); err != nil {
		t.Fatalf("settings profile is not a plist: %v", err)
	}
	if p.PayloadType != "Configuration" || p.PayloadScope != "System" {
		t.Fatalf("settings profile type %q scope %q, want a System Configuration profile", p.PayloadType, p.PayloadScope)
	}
	var prefs map[string]any
	for _, c := range p.PayloadContent {
		if c["PayloadType"] == agentapi.PreferenceDomain {
			prefs = c
		}
	}
	if prefs == nil {
		t.Fatalf("settings profile has no %s payload: %v", agentapi.PreferenceDomain, p.PayloadContent)
	}
	data, err := plist.MarshalIndent(prefs, "\t")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "Managed Preferences", agentapi.PreferenceDomain+".plist")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := agentapi.ParseSettings(onDisk)
	if err != nil {
		t.Fatalf("ParseSettings on the managed preferences: %v", err)
	}
	return s
}

func newAgentClient(t *testing.T, s agentapi.Settings) *agentapi.Client {
	t.Helper()
	c, err := agentapi.NewClient(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// zoneOf is a client TimeZone func naming a fixed zone.
func zoneOf(name string) func() string { return func() string { return name } }

// policyDate returns a manual policy's deadline day `days` days from now in
// loc, and the deadline instant at 12:00 that day. Policies refuse
// deadlines in the past, so tests date them from the real clock.
func policyDate(loc *time.Location, days int) (string, time.Time) {
	y, m, d := time.Now().In(loc).Date()
	day := time.Date(y, m, d+days, 12, 0, 0, 0, loc)
	return day.Format(time.DateOnly), day
}

// manage puts the Mac in a new group with policy p, runs a scheduler pass
// and waits until the Mac is in phase want.
func manage(t *testing.T, ts *testServer, id, group string, p softwareupdate.Policy, want softwareupdate.Phase) *scheduler.State {
	t.Helper()
	ctx := t.Context()
	m := ts.app.manager
	if _, err := m.CreateGroup(ctx, "e2e-test", group, group); err != nil {
		t.Fatal(err)
	}
	if err := m.AssignDevices(ctx, "e2e-test", group, []string{id}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetPolicy(ctx, "e2e-test", group, p); err != nil {
		t.Fatal(err)
	}
	return schedState(t, ts, id, func(st *scheduler.State) bool { return st.Phase == want })
}

// schedState runs scheduler passes (the server's own loop runs too) until
// ok holds for the device's state, and returns that state.
func schedState(t *testing.T, ts *testServer, id string, ok func(*scheduler.State) bool) *scheduler.State {
	t.Helper()
	var st *scheduler.State
	waitFor(t, func() bool {
		if _, err := ts.app.sched.RunOnce(t.Context()); err != nil && !errors.Is(err, scheduler.ErrConflict) {
			t.Fatalf("scheduler pass: %v", err)
		}
		rep, err := ts.app.manager.Device(t.Context(), id, 0)
		if err != nil {
			t.Fatal(err)
		}
		st = rep.State
		return st != nil && ok(st)
	})
	return st
}

func countCommands(t *testing.T, ts *testServer, id, requestType string) (all, queued int) {
	t.Helper()
	cmds, err := ts.admin.Commands(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if c.RequestType == requestType {
			all++
			if c.Status == "Queued" {
				queued++
			}
		}
	}
	return all, queued
}

func agentState(t *testing.T, ts *testServer, id string) *storage.AgentState {
	t.Helper()
	st, err := ts.app.store.AgentState(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestAgentSettingsThroughMDMAndAuthentication(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	a := enrollAgentMac(t, ts)
	b := enrollAgentMac(t, ts)

	// The settings name this server, this Mac, a fresh secret and the CA.
	s := a.Settings
	if s.ServerURL != ts.url || s.EnrollmentID != a.UDID {
		t.Errorf("settings name %q / %q, want %q / %q", s.ServerURL, s.EnrollmentID, ts.url, a.UDID)
	}
	if len(s.Secret) < 32 || s.Secret == b.Settings.Secret {
		t.Errorf("agent secret is short or shared between Macs (len %d)", len(s.Secret))
	}
	block, _ := pem.Decode([]byte(s.CACertificate))
	if block == nil {
		t.Fatal("settings carry no PEM CACertificate")
	}
	if ca, err := x509.ParseCertificate(block.Bytes); err != nil || !ca.Equal(ts.app.authority.CA()) {
		t.Fatalf("CACertificate is not the server's CA (%v)", err)
	}
	if !slices.Contains(a.Profiles(), agentapi.PreferenceDomain+".settings") {
		t.Errorf("installed profiles %v lack the agent settings", a.Profiles())
	}
	// Only the secret's hash is stored.
	if h, err := ts.app.store.AgentSecretHash(t.Context(), a.UDID); err != nil || h != agentapi.HashSecret(s.Secret) || strings.Contains(h, s.Secret) {
		t.Errorf("stored secret hash = %q, %v", h, err)
	}

	// The agent with its settings gets a plan (nothing managed yet) and
	// reports; the report lands in the device's agent history.
	c := newAgentClient(t, *s)
	c.TimeZone = zoneOf("Europe/Berlin")
	plan, err := c.Plan(t.Context())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if plan.Managed || plan.Active() {
		t.Errorf("plan of an unmanaged Mac = %+v", plan)
	}
	shown := agent.Event{Kind: agent.EventPromptShown, At: time.Now().UTC().Truncate(time.Second), Prompt: agent.PromptReminder, TargetVersion: "15.7.9"}
	if err := c.Report(t.Context(), []agent.Event{shown}); err != nil {
		t.Fatalf("Report: %v", err)
	}
	before := agentState(t, ts, a.UDID)
	if before.TimeZone != "Europe/Berlin" || len(before.Events) != 1 || before.Events[0].Kind != string(agent.EventPromptShown) || !before.Events[0].At.Equal(shown.At) {
		t.Fatalf("agent state after report = %+v", before)
	}

	// Refused agents: wrong credentials get 401, a server certificate that
	// does not chain to the settings' CA is refused by the agent. Neither
	// stores anything.
	otherCA := certstest.NewAuthority(t, time.Now())
	otherPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherCA.CA().Raw}))
	with := func(f func(*agentapi.Settings)) agentapi.Settings {
		c := *s
		f(&c)
		return c
	}
	tests := []struct {
		name     string
		settings agentapi.Settings
		status   int  // wanted HTTP status; 0 for a TLS refusal
		tls      bool // the agent must refuse the server's certificate
	}{
		{"wrong secret", with(func(c *agentapi.Settings) { c.Secret = strings.Repeat("0", len(s.Secret)) }), http.StatusUnauthorized, false},
		{"another Mac's secret", with(func(c *agentapi.Settings) { c.Secret = b.Settings.Secret }), http.StatusUnauthorized, false},
		{"unknown enrollment", with(func(c *agentapi.Settings) { c.EnrollmentID = "00000000-0000-0000-0000-000000000000" }), http.StatusUnauthorized, false},
		{"server certificate from another CA", with(func(c *agentapi.Settings) { c.CACertificate = otherPEM }), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newAgentClient(t, tc.settings)
			c.TimeZone = zoneOf("Asia/Tokyo")
			_, planErr := c.Plan(t.Context())
			repErr := c.Report(t.Context(), []agent.Event{{Kind: agent.EventInstallRequested, At: time.Now(), Path: agent.PathLegacy}})
			for _, err := range []error{planErr, repErr} {
				var se *agentapi.StatusError
				var unknown x509.UnknownAuthorityError
				var verify *tls.CertificateVerificationError
				switch {
				case err == nil:
					t.Fatal("request accepted")
				case tc.tls && !(errors.As(err, &unknown) && errors.As(err, &verify)):
					t.Errorf("err = %v, want a certificate verification error (unknown authority)", err)
				case !tc.tls && (!errors.As(err, &se) || se.Status != tc.status):
					t.Errorf("err = %v, want status %d", err, tc.status)
				}
			}
		})
	}
	after := agentState(t, ts, a.UDID)
	if !equalJSON(t, before, after) {
		t.Errorf("refused requests changed the agent state:\nbefore %+v\nafter  %+v", before, after)
	}
	if rep, err := ts.app.manager.Device(t.Context(), a.UDID, 0); err != nil || (rep.State != nil && !rep.State.StartNowAt.IsZero()) {
		t.Errorf("a refused install request reached the scheduler: %+v, %v", rep, err)
	}
}

// scriptedUser answers the agent's prompts like a user would: Learn More on
// the reminder banner, then Start Now in Update Info.
type scriptedUser struct {
	answers map[agent.PromptKind]agent.Choice

	mu     sync.Mutex
	shown  []agent.PromptKind
	opened []string
}

func (u *scriptedUser) Present(ctx context.Context, p agent.Prompt) (<-chan agent.Choice, error) {
	u.mu.Lock()
	u.shown = append(u.shown, p.Kind)
	u.mu.Unlock()
	ch := make(chan agent.Choice, 1)
	if c, ok := u.answers[p.Kind]; ok {
		if !p.Has(c) {
			return nil, fmt.Errorf("prompt %s offers no %s button", p.Kind, c)
		}
		ch <- c
		close(ch)
		return ch, nil
	}
	go func() { <-ctx.Done(); close(ch) }() // left on screen until taken down
	return ch, nil
}

func (u *scriptedUser) SetStatus(context.Context, agent.Status) error { return nil }

func (u *scriptedUser) Open(_ context.Context, url string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.opened = append(u.opened, url)
	return nil
}

func (u *scriptedUser) seen() ([]agent.PromptKind, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.shown), slices.Clone(u.opened)
}

// hardwareFor returns simulated hardware whose board can install r.
func hardwareFor(t *testing.T, r catalog.Release) mdmtest.Hardware {
	t.Helper()
	for _, hw := range mdmtest.KnownHardware {
		if r.Supports(hw.SoftwareUpdateDeviceID) {
			return hw
		}
	}
	t.Fatalf("no simulated hardware supports %s", r.Name())
	return mdmtest.Hardware{}
}

func TestAgentStartNowLegacySendsInstallASAP(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	ctx := t.Context()
	cat := catalog.Default()
	target, ok := cat.Lookup(catalog.MustParseVersion("14.6.1"))
	if !ok {
		t.Fatal("the embedded catalog lacks macOS 14.6.1")
	}
	hw := hardwareFor(t, target)
	mac := enrollAgentMac(t, ts, mdmtest.WithHardware(hw), mdmtest.WithOS("14.6", "23G80"),
		mdmtest.WithCatalog(mdmtest.MinorUpdate("14.6.1", "23G93")))

	// Deadline in 3 days at noon New York time, within the notice window;
	// the path is forced legacy (a supervised macOS 14 Mac would otherwise
	// be declarative).
	loc, _ := time.LoadLocation("America/New_York")
	date, deadline := policyDate(loc, 3)
	st := manage(t, ts, mac.UDID, "legacy-pilot", softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "14.6.1", Date: date, TimeOfDay: "12:00",
		TimeZone: "America/New_York", MinimumNoticeDays: 1, Path: softwareupdate.PathLegacy,
		DetailsURL: "https://it.example.com/macos",
	}, softwareupdate.PhaseNotify)
	if st.Path != softwareupdate.PathLegacy || st.Target != "14.6.1" || !st.Deadline.Equal(deadline) {
		t.Fatalf("state = path %s target %s deadline %s; want legacy 14.6.1 %s", st.Path, st.Target, st.Deadline, deadline)
	}
	// The Mac takes the notify-phase steps (download) before anyone clicks.
	if _, err := mac.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for _, u := range mac.scheduled() {
		if u.InstallAction == "InstallASAP" {
			t.Fatalf("InstallASAP before Start Now: %+v", mac.scheduled())
		}
	}

	// The agent: its plan says legacy, target and deadline.
	client := newAgentClient(t, *mac.Settings)
	client.TimeZone = zoneOf("America/New_York")
	plan, err := client.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := agent.Plan{TargetVersion: "14.6.1", Deadline: deadline, Phase: "notify", DetailsURL: "https://it.example.com/macos",
		Path: agent.PathLegacy, Managed: true}
	if !plan.Deadline.Equal(deadline) {
		t.Errorf("plan deadline = %s, want %s", plan.Deadline, deadline)
	}
	plan.Deadline = deadline
	if plan != want {
		t.Errorf("plan = %+v\nwant   %+v", plan, want)
	}

	// The agent runs on the real clock; the user clicks Learn More, then
	// Start Now. The runner reports install_requested to the server.
	user := &scriptedUser{answers: map[agent.PromptKind]agent.Choice{
		agent.PromptReminder:   agent.ChoiceLearnMore,
		agent.PromptUpdateInfo: agent.ChoiceStartNow,
	}}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	runner := agent.NewRunner(agent.SystemClock{}, client, client, user,
		agent.NewFileStore(filepath.Join(t.TempDir(), "agent-state.json"), log), agent.WithLogger(log))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Run(runCtx) }()
	st = schedState(t, ts, mac.UDID, func(st *scheduler.State) bool { return !st.StartNowAt.IsZero() })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("runner: %v", err)
	}
	shown, opened := user.seen()
	if !slices.Contains(shown, agent.PromptReminder) || !slices.Contains(shown, agent.PromptUpdateInfo) || len(opened) != 0 {
		t.Errorf("user saw %v and the agent opened %v; want reminder and update info, nothing opened on the legacy path", shown, opened)
	}
	requested := 0
	for _, e := range agentState(t, ts, mac.UDID).Events {
		if e.Kind == string(agent.EventInstallRequested) {
			requested++
			if e.Path != agent.PathLegacy || e.TargetVersion != "14.6.1" {
				t.Errorf("install request event = %+v", e)
			}
		}
	}
	if requested != 1 {
		t.Errorf("%d install requests in the device's agent history, want 1", requested)
	}
	if st.Step != "install-asap" {
		t.Errorf("scheduler step after Start Now = %q, want install-asap", st.Step)
	}

	// The Mac's next connection brings ScheduleOSUpdate InstallASAP for 14.6.1.
	before := len(mac.scheduled())
	sess, err := mac.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sess.RequestTypes(), "ScheduleOSUpdate") {
		t.Fatalf("connect after Start Now = %s, want ScheduleOSUpdate", statuses(sess))
	}
	got := mac.scheduled()[before:]
	if len(got) != 1 || got[0].InstallAction != "InstallASAP" || (got[0].ProductVersion != "14.6.1" && !strings.Contains(got[0].ProductKey, "14.6.1")) {
		t.Fatalf("ScheduleOSUpdate items after Start Now = %+v, want one InstallASAP of 14.6.1", got)
	}
	for _, c := range sess.Commands {
		if c.RequestType == "ScheduleOSUpdate" && c.Status != mdmtest.StatusAcknowledged {
			t.Errorf("ScheduleOSUpdate answered %s", c.Status)
		}
	}
	// One click, one install command: another pass queues nothing more.
	if _, err := ts.app.sched.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	cmds, err := ts.admin.Commands(ctx, mac.UDID)
	if err != nil {
		t.Fatal(err)
	}
	asap := 0
	for _, c := range cmds {
		if c.RequestType == "ScheduleOSUpdate" && strings.Contains(c.Raw, "<string>InstallASAP</string>") {
			asap++
		}
		if c.Status == "Queued" && c.RequestType == "ScheduleOSUpdate" {
			t.Errorf("ScheduleOSUpdate %s still queued after the Mac answered", c.UUID)
		}
	}
	if asap != 1 {
		t.Errorf("%d InstallASAP commands in the history, want 1", asap)
	}
}
