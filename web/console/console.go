// Package console serves Sundial's admin web console under /ui/: pages
// rendered on the server with html/template from the same functions the
// admin API uses, assets embedded, no JavaScript needed. Admins sign in with
// an API key, which is exchanged for a session cookie; every form carries a
// CSRF token, and a read-only key sees no edit controls and cannot post.
package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/ui/"

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Reports builds the compliance report and policy what-ifs
// (scheduler.Reporter, the same the API's /reports endpoints use).
type Reports interface {
	Compliance(ctx context.Context, withRows bool) (*scheduler.ComplianceReport, error)
	WhatIf(ctx context.Context, group string, p softwareupdate.Policy) (*scheduler.WhatIfResult, error)
}

// Devices reads devices (the storage).
type Devices interface {
	Device(ctx context.Context, id string) (*mdm.Device, error)
	Commands(ctx context.Context, id string) ([]*mdm.CommandRecord, error)
}

// Manager is the Managed OS admin surface (scheduler.Manager).
type Manager interface {
	Groups(ctx context.Context) ([]scheduler.Group, error)
	Policy(ctx context.Context, group string) (*scheduler.PolicyRecord, error)
	SetPolicy(ctx context.Context, actor, group string, p softwareupdate.Policy) (*scheduler.PolicyRecord, error)
	SetException(ctx context.Context, actor string, scope scheduler.ExceptionScope, id string, ex softwareupdate.Exception) (*scheduler.ExceptionRecord, error)
	ClearException(ctx context.Context, actor string, scope scheduler.ExceptionScope, id string) error
	Exceptions(ctx context.Context) ([]scheduler.ExceptionRecord, error)
	Device(ctx context.Context, id string, historyLimit int) (*scheduler.DeviceReport, error)
	Audit(ctx context.Context, after uint64, limit int) ([]scheduler.AuditEntry, error)
}

// Catalog lists the release catalog.
type Catalog interface {
	Releases() []catalog.Release
}

// Pusher pushes devices now (the push service).
type Pusher interface {
	Push(ctx context.Context, ids ...string) ([]push.Result, error)
}

// Retrier clears a device's surfaced failure and evaluates it again (the
// scheduler).
type Retrier interface {
	Retry(ctx context.Context, id, actor string) (*scheduler.State, error)
}

// AgentStates reads what a Mac's agent reported (its time zone, prompts).
type AgentStates interface {
	AgentState(ctx context.Context, id string) (*storage.AgentState, error)
}

// Declarations reads a Mac's declarative management state (ddm.Store).
type Declarations interface {
	DDMRecord(ctx context.Context, id string) (*ddm.Record, error)
}

// ComplianceDays keeps daily compliance per group for the chart over time
// (storage.ComplianceDayStore).
type ComplianceDays interface {
	PutComplianceDay(ctx context.Context, day string, rows []storage.ComplianceDay) error
	ComplianceDays(ctx context.Context, since string) ([]storage.ComplianceDay, error)
}

// Config is what the console needs. Auth, Reports, Devices, Manager,
// Catalog and Clock are required.
type Config struct {
	Auth    Authenticator
	Reports Reports
	Devices Devices
	Manager Manager
	Catalog Catalog
	Clock   Clock
	Log     *slog.Logger

	// Optional: without them the device page has no push or retry action,
	// and no agent status.
	Pusher  Pusher
	Retrier Retrier
	Agents  AgentStates
	// Declarations shows the enforcement declaration and status channel.
	Declarations Declarations
	// Days records each snapshot's compliance per group and feeds the
	// chart of compliance over time; without it there is no chart.
	Days ComplianceDays
	// Evidence serves the Evidence page; without it the page says so.
	Evidence EvidenceReporter
	// Forecasts, Rollouts and Gates feed the overview's readiness
	// forecast, pauses and ring gates (rollout.go); each may be nil.
	Forecasts ForecastMarks
	Rollouts  Rollouts
	Gates     GateStatuses

	// Secure marks cookies Secure (the server speaks TLS, or sits behind a
	// TLS-terminating proxy).
	Secure bool
	// SessionTTL is how long a sign-in lasts (default 8 hours).
	SessionTTL time.Duration
	// SnapshotAge is how old the fleet snapshot may get before a view
	// refreshes it (default DefaultSnapshotAge).
	SnapshotAge time.Duration
}

// Console is the web console.
type Console struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	snaps    *snapshots
	fcMu     sync.Mutex
	fc       forecastCache
	pages    map[string]*template.Template
	static   http.Handler
}

// maxSessions bounds the sessions kept in memory.
const maxSessions = 10000

// New returns the console; a missing required dependency panics.
func New(cfg Config) *Console {
	if cfg.Auth == nil || cfg.Reports == nil || cfg.Devices == nil || cfg.Manager == nil || cfg.Catalog == nil || cfg.Clock == nil {
		panic("console.New: nil required dependency")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.SnapshotAge <= 0 {
		cfg.SnapshotAge = DefaultSnapshotAge
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	c := &Console{
		cfg: cfg, log: cfg.Log,
		sessions: newSessions(cfg.SessionTTL, maxSessions),
		pages:    parsePages(),
		static:   http.StripPrefix(Prefix+"static/", http.FileServer(http.FS(sub))),
	}
	c.snaps = &snapshots{build: c.buildSnapshot, clock: cfg.Clock, maxAge: cfg.SnapshotAge,
		onErr: func(err error) { c.log.Error("console: refresh the fleet snapshot", "err", err) }}
	return c
}

// Register mounts the console on r under /ui/.
func (c *Console) Register(r *mux.Router) {
	ui := r.PathPrefix("/ui").Subrouter()
	ui.Use(securityHeaders)
	ui.PathPrefix("/static/").Handler(c.static).Methods(http.MethodGet, http.MethodHead)
	ui.HandleFunc("/signin", c.signinPage).Methods(http.MethodGet)
	ui.HandleFunc("/signin", c.signin).Methods(http.MethodPost)
	ui.Handle("/signout", c.post(c.signout, false)).Methods(http.MethodPost)

	ui.Handle("/", c.page(c.overview)).Methods(http.MethodGet)
	ui.Handle("/devices", c.page(c.devicesPage)).Methods(http.MethodGet)
	ui.Handle("/readiness", c.page(c.readinessPage)).Methods(http.MethodGet)
	ui.Handle("/devices/{id}", c.page(c.devicePage)).Methods(http.MethodGet)
	ui.Handle("/devices/{id}/confirm", c.page(c.confirmPage)).Methods(http.MethodGet)
	ui.Handle("/devices/{id}/push", c.post(c.pushDevice, true)).Methods(http.MethodPost)
	ui.Handle("/devices/{id}/retry", c.post(c.retryDevice, true)).Methods(http.MethodPost)
	ui.Handle("/policies", c.page(c.policiesPage)).Methods(http.MethodGet)
	ui.Handle("/policies/{group}", c.page(c.policyPage)).Methods(http.MethodGet)
	ui.Handle("/policies/{group}/preview", c.post(c.previewPolicy, true)).Methods(http.MethodPost)
	ui.Handle("/policies/{group}", c.post(c.savePolicy, true)).Methods(http.MethodPost)
	ui.Handle("/exceptions", c.page(c.exceptionsPage)).Methods(http.MethodGet)
	ui.Handle("/exceptions", c.post(c.grantException, true)).Methods(http.MethodPost)
	ui.Handle("/exceptions/{scope}/{id}/clear", c.post(c.clearException, true)).Methods(http.MethodPost)
	ui.Handle("/catalog", c.page(c.catalogPage)).Methods(http.MethodGet)
	ui.Handle("/audit", c.page(c.auditPage)).Methods(http.MethodGet)
	ui.Handle("/evidence", c.page(c.evidencePage)).Methods(http.MethodGet)
	ui.Handle("/evidence.csv", c.page(c.evidenceCSV)).Methods(http.MethodGet)
	ui.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "not found", http.StatusNotFound)
		})).ServeHTTP(w, r)
	})
	r.Handle("/ui", http.RedirectHandler(Prefix, http.StatusMovedPermanently))
}

// csp allows only the console's own stylesheet and images: no script runs,
// inline styles included.
const csp = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if r.Method != http.MethodGet || !isStatic(r.URL.Path) {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func isStatic(p string) bool {
	return len(p) > len(Prefix+"static/") && p[:len(Prefix+"static/")] == Prefix+"static/"
}

// Cookie names.
const (
	sessionCookie = "sundial_session"
	preCSRFCookie = "sundial_signin"
)

// maxForm caps console form bodies.
const maxForm = 64 << 10

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	User    *Principal
	CSRF    string
	CanEdit bool
	Zone    *time.Location
	Now     time.Time
	Flash   string
	Error   string
	Data    any
}

type pageFunc func(w http.ResponseWriter, r *http.Request, ss *session) (tmpl string, v *view, err error)

// page serves a signed-in GET page; without a session it redirects to the
// sign-in page.
func (c *Console) page(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss := c.session(r)
		if ss == nil {
			http.Redirect(w, r, Prefix+"signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		tmpl, v, err := fn(w, r, ss)
		if err != nil {
			c.fail(w, r, ss, err)
			return
		}
		if tmpl == "" { // fn answered
			return
		}
		if done := r.URL.Query().Get("done"); v.Flash == "" && len(done) <= 100 {
			v.Flash = done
		}
		c.render(w, r, http.StatusOK, tmpl, ss, v)
	})
}

// post serves a signed-in form post: a session and its CSRF token are
// required (else 403), and an admin role when edit is set (else 403).
func (c *Console) post(fn pageFunc, edit bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		ss := c.session(r)
		if ss == nil || !ss.validCSRF(r.PostForm.Get("csrf")) {
			http.Error(w, "forbidden: sign in again", http.StatusForbidden)
			return
		}
		if edit && ss.principal.Role != RoleAdmin {
			c.log.Warn("console: read-only key tried to change something", "actor", ss.principal.Name, "path", r.URL.Path)
			http.Error(w, "forbidden: this API key may only read", http.StatusForbidden)
			return
		}
		tmpl, v, err := fn(w, r, ss)
		if err != nil {
			c.fail(w, r, ss, err)
			return
		}
		if tmpl != "" {
			c.render(w, r, http.StatusOK, tmpl, ss, v)
		}
	})
}

// session returns the request's live session whose key is still valid.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	ss := c.sessions.get(ck.Value, c.cfg.Clock.Now())
	if ss == nil {
		return nil
	}
	p, err := c.cfg.Auth.ByHash(r.Context(), ss.principal.KeyHash)
	if err != nil {
		if !errors.Is(err, ErrBadKey) {
			c.log.Error("console: api key check failed", "err", err)
		}
		c.sessions.remove(ck.Value)
		return nil
	}
	ss.principal.Role = p.Role // a role change applies at once
	return ss
}

// userError is a problem with the admin's input, shown on the page.
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

func (c *Console) fail(w http.ResponseWriter, r *http.Request, ss *session, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong; the server log has the details."
	var ue *userError
	var ae *api.Error
	var ve *softwareupdate.ValidationError
	switch {
	case errors.As(err, &ue):
		status, msg = ue.status, ue.msg
	case errors.As(err, &ae) && ae.Code == api.CodeInvalid:
		status, msg = http.StatusBadRequest, ae.Message
	case errors.As(err, &ve), errors.Is(err, scheduler.ErrInvalid):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, storage.ErrNotFound):
		status, msg = http.StatusNotFound, "Not found."
	default:
		c.log.Error("console request failed", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, status, "error", ss, &view{Title: http.StatusText(status), Error: msg})
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, ss *session, v *view) {
	t := c.pages[name]
	if t == nil {
		panic("console: no template " + name)
	}
	if ss != nil {
		p := ss.principal
		v.User, v.CSRF, v.CanEdit, v.Zone = &p, ss.csrf, p.Role == RoleAdmin, ss.zone
	}
	if v.Zone == nil {
		v.Zone = time.UTC
	}
	v.Now = c.cfg.Clock.Now()
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: render", "template", name, "err", err)
		http.Error(w, "render error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
