package scheduler_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/enrollment"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/mdm/httpmdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

var (
	keyPoolOnce sync.Once
	keyPool     *mdmtest.KeyPool
)

func testKeys(t testing.TB) *mdmtest.KeyPool {
	keyPoolOnce.Do(func() {
		var err error
		if keyPool, err = mdmtest.NewKeyPool(4); err != nil {
			t.Fatal(err)
		}
	})
	return keyPool
}

// stack is the real Sundial stack (bbolt file, MDM service, device
// handlers, enrollment, SCEP, scheduler with the legacy enforcer) behind an
// httptest TLS server. restart replaces everything but the listener and the
// files, as a process restart would.
type stack struct {
	t      testing.TB
	clk    *clock.Fake
	cat    *catalog.Catalog
	auth   *certs.Authority
	sealer *seal.Sealer
	path   string
	srv    *httptest.Server
	h      atomic.Pointer[http.Handler]

	store *bolt.Store
	sched *scheduler.Scheduler
	mgr   *scheduler.Manager
	// notifier, when set before start, is told which Macs have new commands.
	notifier scheduler.Notifier
}

type profileSigner struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (p profileSigner) SignProfile(b []byte) ([]byte, error) {
	return certs.SignProfile(b, p.cert, p.key)
}

func newStack(t testing.TB, clk *clock.Fake, cat *catalog.Catalog) *stack {
	t.Helper()
	s := &stack{t: t, clk: clk, cat: cat, path: filepath.Join(t.TempDir(), "sundial.db")}
	s.auth = certstest.NewAuthority(t, clk.Now())
	var err error
	if s.sealer, err = seal.New(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := s.h.Load()
		if h == nil {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		s.srv.Close()
		if s.store != nil {
			s.store.Close()
		}
	})
	s.start()
	return s
}

func (s *stack) start() {
	t := s.t
	t.Helper()
	store, err := bolt.Open(s.path, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s.store = store
	log := slog.New(slog.DiscardHandler)
	opts := []scheduler.Option{scheduler.WithLogger(log), scheduler.WithEnforcer(softwareupdate.PathLegacy, legacy.New(legacy.Config{}))}
	if s.notifier != nil {
		opts = append(opts, scheduler.WithNotifier(s.notifier))
	}
	s.sched = scheduler.New(store, store, s.cat, s.clk, opts...)
	s.mgr = scheduler.NewManager(store, s.cat, s.clk, s.sched)
	svc := service.New(store, s.clk, s.sealer, append(s.sched.ServiceOptions(), service.WithLogger(log))...)
	s.route(svc, log)
}

// route serves svc's device endpoints, the enrollment profile and SCEP on
// the stack's listener.
func (s *stack) route(svc *service.Service, log *slog.Logger) {
	t := s.t
	t.Helper()
	devices := httpmdm.New(svc, s.auth, s.clk, httpmdm.WithLogger(log))
	challenges, err := enrollment.NewSharedChallenge("timeline-challenge")
	if err != nil {
		t.Fatal(err)
	}
	pc, pk := s.auth.ProfileSigner()
	profiles, err := enrollment.NewProfileHandler(enrollment.ProfileConfig{PublicURL: s.srv.URL, CACert: s.auth.CA(), AllowAnyTopic: true},
		enrollment.StaticTopic("com.apple.mgmt.External.timeline"), challenges, profileSigner{pc, pk}, s.clk)
	if err != nil {
		t.Fatal(err)
	}
	ra, raKey := s.auth.RA()
	scep, err := enrollment.NewSCEPHandler(s.auth.CA(), ra, raKey, challenges, s.auth, s.clk, enrollment.WithSCEPLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	r.Handle("/mdm/checkin", devices.Checkin())
	r.Handle("/mdm/connect", devices.Connect())
	r.Handle("/mdm/enroll", profiles)
	r.Handle("/scep", scep)
	var h http.Handler = r
	s.h.Store(&h)
}

// restart stops the server side and starts a new one on the same files.
func (s *stack) restart() {
	s.h.Store(nil)
	if err := s.store.Close(); err != nil {
		s.t.Fatal(err)
	}
	s.store = nil
	s.start()
}

// sent is one command a simulated Mac received.
type sent struct {
	At     string // "01-02 15:04" UTC
	Mac    string
	Type   string
	Action string // InstallAction[/Priority] of ScheduleOSUpdate
}

func (x sent) String() string {
	s := x.At + " " + x.Mac + " " + x.Type
	if x.Action != "" {
		s += " " + x.Action
	}
	return s
}

// recorder notes every update-related command the Macs receive.
type recorder struct {
	mu   sync.Mutex
	clk  *clock.Fake
	list []sent
}

func (r *recorder) options(name string) []mdmtest.Option {
	var opts []mdmtest.Option
	for _, rt := range []string{"DeviceInformation", "ScheduleOSUpdateScan", "AvailableOSUpdates", "ScheduleOSUpdate", "OSUpdateStatus"} {
		opts = append(opts, mdmtest.WithHandler(rt, func(ctx context.Context, d *mdmtest.Device, cmd *mdmtest.Command) mdmtest.Result {
			var v struct {
				Command struct {
					Updates []struct{ InstallAction, Priority string }
				}
			}
			_ = cmd.Decode(&v)
			action := ""
			for _, u := range v.Command.Updates {
				action = u.InstallAction
				if u.Priority != "" {
					action += "/" + u.Priority
				}
			}
			r.mu.Lock()
			r.list = append(r.list, sent{At: r.clk.Now().UTC().Format("01-02 15:04"), Mac: name, Type: cmd.RequestType, Action: action})
			r.mu.Unlock()
			return d.Builtin(ctx, cmd)
		}))
	}
	return opts
}

func (r *recorder) take() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.list
	r.list = nil
	// Macs connect one after another; order within an instant by Mac name.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].At != out[j].At {
			return out[i].At < out[j].At
		}
		return out[i].Mac < out[j].Mac
	})
	return out
}

type mac struct {
	name string
	dev  *mdmtest.Device
}

func (s *stack) enroll(t testing.TB, rec *recorder, name string, opts ...mdmtest.Option) *mac {
	t.Helper()
	all := []mdmtest.Option{mdmtest.WithKeyPool(testKeys(t)), mdmtest.WithHTTPClient(s.srv.Client()), mdmtest.WithClock(s.clk)}
	all = append(all, rec.options(name)...)
	d, err := mdmtest.New(append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Enroll(t.Context(), s.srv.Client(), s.srv.URL+"/mdm/enroll"); err != nil {
		t.Fatal(err)
	}
	return &mac{name: name, dev: d}
}

// drain connects every online Mac until none receives a command (what
// pushes would make them do).
// settle runs a pass and lets the Macs answer, twice: a result that only
// touches its Mac (an inventory the scheduler did not ask for) is
// evaluated at the next pass, as Run's settled pass would a moment later.
func (s *stack) settle(t testing.TB, macs ...*mac) {
	t.Helper()
	for range 2 {
		if _, err := s.sched.RunOnce(t.Context()); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		drain(t, macs...)
	}
}

func drain(t testing.TB, macs ...*mac) {
	t.Helper()
	for range 20 {
		n := 0
		for _, m := range macs {
			if !m.dev.Online() {
				continue
			}
			sess, err := m.dev.Connect(t.Context())
			if err != nil {
				t.Fatalf("%s connect: %v", m.name, err)
			}
			n += len(sess.Commands)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("Macs still receiving commands after 20 rounds")
}

func diffSent(have, want []sent) string {
	var b strings.Builder
	for i := 0; i < max(len(have), len(want)); i++ {
		var h, w string
		if i < len(have) {
			h = have[i].String()
		}
		if i < len(want) {
			w = want[i].String()
		}
		mark := "  "
		if h != w {
			mark = "!="
		}
		fmt.Fprintf(&b, "%s have %-60s want %s\n", mark, h, w)
	}
	return b.String()
}
