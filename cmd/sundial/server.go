package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/api/agentapi"
	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/enrollment"
	"github.com/sundial-mdm/sundial/enrollment/ade"
	"github.com/sundial-mdm/sundial/enrollment/ade/abm"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/fleetmetrics"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/httpmdm"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/declarative"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
	"github.com/sundial-mdm/sundial/storage/pgsql"
	"github.com/sundial-mdm/sundial/web/console"
)

// Files in the data directory (beside those certs.LoadOrCreate writes).
const (
	dbFile        = "sundial.db"
	sealKeyFile   = "seal.key"
	challengeFile = "scep-challenge"
	topicFile     = "push-topic"
	adminKeyFile  = "admin-api-key"
)

// Clock tells the time.
type Clock interface{ Now() time.Time }

// backend is every store the server needs; bbolt and PostgreSQL both are.
type backend interface {
	storage.All
	storage.AgentStore
	storage.LeaseStore
	storage.CatalogStore
	storage.ADEStore
	storage.ADEUpdater
	api.Auditor
	storage.EnrollmentGuardStore
	api.EnrollmentGuards
	storage.RetentionStore
	storage.DEPServerStore
	ddm.Store
	scheduler.Store
	api.GroupMembers
	storage.ComplianceDayStore
	scheduler.AuditAppender
	scheduler.PauseStore
	storage.WebhookOutbox
	storage.WebhookEndpointStore
	storage.WebhookOnceStore
	storage.ForecastMarkStore
	scheduler.GroupPhaseStore
	storage.CatalogAnnounceStore
	scheduler.RingStore
	storage.EvidenceStore
	scheduler.ReadinessInputStore
}

var (
	_ backend = (*bolt.Store)(nil)
	_ backend = (*pgsql.Store)(nil)
)

// openBackend opens the configured storage.
func openBackend(ctx context.Context, cfg Config) (backend, error) {
	if cfg.Storage == "pgsql" {
		s, err := pgsql.Open(ctx, cfg.StorageDSN)
		if err != nil {
			return nil, fmt.Errorf("postgresql storage: %w", err)
		}
		return s, nil
	}
	return bolt.Open(cfg.path(dbFile), &bolt.Options{NoSync: cfg.NoSync})
}

// app is a wired Sundial server.
type app struct {
	cfg       Config
	log       *slog.Logger
	clock     Clock
	store     backend
	authority *certs.Authority
	svc       *service.Service
	handler   http.Handler
	admin     adminListener // --admin-listen
	topic     string
	pushMgr   *pushManager
	pusher    *push.Service
	registry  *prometheus.Registry
	catalog   *catalog.Catalog
	sched     *scheduler.Scheduler
	manager   *scheduler.Manager
	ddm       *ddm.Service
	catState  *catalogState
	schedMet  *fleetmetrics.Scheduler
	console   *console.Console
	faults    *faults
	lease     leaseOverrides
	dep       *abm.Connector
	hooks     *webhook.Worker
	// forecaster is the readiness forecast (API, leader check, console).
	forecaster *scheduler.Forecaster
}

// newApp opens the data directory and wires every part.
func newApp(cfg Config, log *slog.Logger, clk Clock) (_ *app, err error) {
	if err := cfg.ensureDataDir(); err != nil {
		return nil, err
	}
	if err := tightenDataDir(cfg.DataDir, log); err != nil {
		return nil, err
	}
	now := clk.Now()
	store, err := openBackend(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	authority, err := certs.LoadOrCreate(cfg.DataDir, now)
	if err != nil {
		return nil, fmt.Errorf("certificate authority: %w", err)
	}
	sealer, err := seal.LoadOrCreate(cfg.path(sealKeyFile))
	if err != nil {
		return nil, err
	}
	topic, err := loadOrCreateTopic(cfg.path(topicFile))
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, clock: clk, store: store, authority: authority, topic: topic}
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newCatalogCollector(a), newPauseCollector(a),
		newRingsCollector(a))
	a.faults = newFaults(a.registry)
	if err := a.setupPush(); err != nil {
		return nil, err
	}

	mdmMet := fleetmetrics.NewMDM(a.registry)
	a.schedMet = fleetmetrics.NewScheduler(a.registry, replicaID())
	notifier := pushNotifier{a.pushMgr, a.pusher}
	enqueue := enqueueFunc(func(ctx context.Context, ids []string, cmd *mdm.Command) error { return a.svc.Enqueue(ctx, ids, cmd) })

	// The Managed OS engine: catalog, scheduler, both enforcement paths.
	a.catalog = catalog.Default()
	z := zones{agents: store, policies: store, log: log}
	observer := &declarative.Observer{Enq: enqueue, Log: log} // Sched is set below
	a.ddm = ddm.New(store, enqueue, clk, ddm.WithLogger(log), ddm.WithObserver(observer), ddm.WithObserver(mdmMet))
	a.sched = scheduler.New(mdmMet.SchedulerStore(store), store, a.catalog, clk,
		scheduler.WithLogger(log), scheduler.WithNotifier(notifier), scheduler.WithZones(z), scheduler.WithPassObserver(a.schedMet.Pass),
		scheduler.WithPauseStore(store), scheduler.WithRingStore(store), scheduler.WithOfflineGrace(cfg.OfflineGrace),
		scheduler.WithGateObserver(webhook.GateObserver(store, log)), scheduler.WithGroupPhases(store),
		scheduler.WithEnforcer(softwareupdate.PathLegacy, legacy.New(legacy.Config{})),
		scheduler.WithEnforcer(softwareupdate.PathDeclarative, declarative.New(a.ddm, z, log)))
	observer.Sched = a.sched
	a.manager = scheduler.NewManager(store, a.catalog, clk, a.sched)
	if err := a.loadCatalog(context.Background()); err != nil {
		return nil, fmt.Errorf("release catalog: %w", err)
	}

	caPEM := ""
	if cfg.TLSCert == "" && !cfg.NoTLS {
		caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: authority.CA().Raw}))
	}
	// The agent's settings profile carries its secret: stored sealed, in
	// one transaction with the secret's hash.
	sealCommand := sealFunc(func(cmd *mdm.Command) (*mdm.Command, error) { return a.svc.SealCommand(cmd) })
	provisioner := agentapi.NewProvisioner(mdmMet.AgentStore(store), sealCommand, notifier,
		clk, log, strings.TrimRight(cfg.PublicURL, "/"), caPEM)

	opts := []service.Option{service.WithLogger(log), service.WithNotifier(notifier),
		service.WithDeclarative(a.ddm), service.WithCheckinHook(a.ddm), service.WithCheckinHook(provisioner), service.WithCheckinHook(mdmMet)}
	opts = append(opts, a.sched.ServiceOptions()...)
	// Last: DeviceConfigured goes behind every enrollment command.
	opts = append(opts, service.WithCheckinHook(ade.NewSetup(enqueue, store, a.ddm, store, a.manager, clk, log)))
	a.svc = service.New(mdmMet.Store(store), clk, sealer, opts...)
	devices := httpmdm.New(a.svc, authority, clk, httpmdm.WithLogger(log), httpmdm.WithCertHeader(cfg.CertHeader))

	var challenges interface {
		enrollment.ChallengeIssuer
		enrollment.ChallengeVerifier
	}
	if cfg.ChallengeMode == "one-time" {
		challenges = enrollment.NewOneTimeChallenges(store, time.Hour)
	} else {
		secret := cfg.SCEPChallenge
		if secret == "" {
			if secret, err = loadOrCreateSecret(cfg.path(challengeFile)); err != nil {
				return nil, err
			}
		}
		if challenges, err = enrollment.NewSharedChallenge(secret); err != nil {
			return nil, err
		}
	}
	profileCert, profileKey := authority.ProfileSigner()
	pcfg := enrollment.ProfileConfig{
		PublicURL:        strings.TrimRight(cfg.PublicURL, "/"),
		CACert:           authority.CA(),
		AllowInsecureURL: strings.HasPrefix(cfg.PublicURL, "http://"),
	}
	profiles, err := enrollment.NewProfileHandler(pcfg, enrollment.TopicFunc(a.pushTopic), challenges,
		profileSigner{profileCert, profileKey}, clk,
		enrollment.WithEnrollmentSecret(cfg.EnrollSecret), enrollment.WithProfileLogger(log))
	if err != nil {
		return nil, err
	}
	ra, raKey := authority.RA()
	bound := enrollment.NewBoundChallenges(store, time.Hour)
	scep, err := enrollment.NewSCEPHandler(authority.CA(), ra, raKey, challenges, authority, clk, enrollment.WithSCEPLogger(log),
		enrollment.WithBoundChallenges(bound, authority))
	if err != nil {
		return nil, err
	}

	r := mux.NewRouter()
	r.Handle("/mdm/checkin", devices.Checkin())
	r.Handle("/mdm/connect", devices.Connect())
	if err := a.registerADE(r, profiles, bound); err != nil {
		return nil, err
	}
	if a.dep, err = a.newDEPConnector(sealer); err != nil {
		return nil, err
	}
	r.Handle("/mdm/enroll", profiles)
	r.Handle("/scep", scep)
	agentapi.New(store, planner{a.manager, z}, starter{a.sched}, clk, log).
		WithZoneObserver(func(ctx context.Context, id, tz string) { a.sched.Touch(id) }).Register(r)
	adm := api.New(store, a.svc, log).WithPush(a.pushMgr, a.pusher).
		WithManagedOS(a.manager, a.catalog).WithAPIKeys(store, clk.Now).WithCatalogSync(catalogSource{a}).WithStates(store).WithAgentRotation(provisioner).
		WithGroupMembers(store).
		WithAudit(store, clk.Now).
		WithEnrollmentGuards(store).
		WithDeviceZones(z).
		WithRetrier(scheduler.NewRetries(a.sched, store, clk)).
		WithDEP(depAdmin{a.dep, store, clk, log}).
		WithWebhooks(store, sealer, clk.Now).
		WithRingStatuses(a.sched)
	adm.WithAuditedEnqueue(auditedEnqueue{mdmMet.Store(store), notifier, clk.Now})
	a.hooks = a.newWebhookWorker(sealer)
	if b, ok := store.(api.BackupWriter); ok { // bbolt; PostgreSQL has its own tools
		adm.WithBackup(b)
	}
	admin := a.routeAdmin(r, adm, promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	adm.Register(admin)
	reporter := scheduler.NewReporter(store, store, a.catalog, clk)
	adm.RegisterReports(admin, reporter)
	a.forecaster = scheduler.NewForecaster(reporter, a.ddm, store, scheduler.WithReadinessInputs(store))
	adm.RegisterReadiness(admin, a.forecaster)
	adm.RegisterEvidence(admin, scheduler.NewEvidenceRecorder(store, a.catalog, clk, store))
	a.setupConsole(admin, reporter)
	// The fleet gauges share the console's snapshot of the fleet.
	a.registry.MustRegister(fleetmetrics.NewFleet(a.console, a.manager, a.catalog, clk, log, fleetmetrics.DefaultMaxAge))
	// A panic in any handler is logged, counted and turns /healthz degraded.
	r.Use(a.recoverPanics) // every route, the subrouters' included
	if ar, ok := a.admin.handler.(*mux.Router); ok && ar != r {
		ar.Use(a.recoverPanics)
	}
	a.handler = r
	return a, nil
}

// setupPush loads the push certificate (flags first, then the one kept in
// the data directory) and builds the push service.
func (a *app) setupPush() error {
	var roots []*x509.Certificate
	if a.cfg.APNsCA != "" {
		pemBytes, err := os.ReadFile(a.cfg.APNsCA)
		if err != nil {
			return fmt.Errorf("--apns-ca: %w", err)
		}
		for block, rest := pem.Decode(pemBytes); block != nil; block, rest = pem.Decode(rest) {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return fmt.Errorf("--apns-ca: %w", err)
			}
			roots = append(roots, c)
		}
		if len(roots) == 0 {
			return fmt.Errorf("--apns-ca %s holds no PEM certificate", a.cfg.APNsCA)
		}
	}
	a.pushMgr = newPushManager(a.log, a.clock, a.cfg.APNsURL, roots, a.cfg.DataDir)
	var pc *certs.PushCert
	var err error
	switch {
	case a.cfg.PushCert != "":
		var c, k []byte
		if c, err = os.ReadFile(a.cfg.PushCert); err == nil {
			if k, err = os.ReadFile(a.cfg.PushKey); err == nil {
				pc, err = certs.LoadPushCertPEM(c, k)
			}
		}
	case a.cfg.PushP12 != "":
		var der []byte
		if der, err = os.ReadFile(a.cfg.PushP12); err == nil {
			pc, err = certs.LoadPushCertPKCS12(der, a.cfg.PushP12Password)
		}
	default:
		err = a.pushMgr.loadSaved()
	}
	if err != nil {
		return fmt.Errorf("push certificate: %w", err)
	}
	if pc != nil {
		if err := a.pushMgr.Set(pc, false); err != nil {
			return fmt.Errorf("push certificate: %w", err)
		}
	}
	if a.pushMgr.Topic() == "" {
		a.log.Warn("no MDM push certificate: Macs enroll but are not woken; set one with `sundial pushcert set`")
	}
	a.pusher, err = push.New(a.pushMgr, a.store, push.WithClock(a.clock), push.WithLogger(a.log),
		push.WithRegisterer(a.registry),
		push.WithCertErrorHandler(func(err error) { a.log.Error("push certificate refused", "err", err) }))
	if err != nil {
		return err
	}
	a.pushMgr.mu.Lock()
	a.pushMgr.changed = a.pusher.CertChanged
	a.pushMgr.mu.Unlock()
	return nil
}

// pushNotifier passes new work to the push service while a push
// certificate is configured; without one there is nobody to push with, and
// recording a failed push per device would only cost writes.
type pushNotifier struct {
	mgr *pushManager
	svc *push.Service
}

func (n pushNotifier) Notify(ids ...string) {
	if n.mgr.Topic() != "" {
		n.svc.Notify(ids...)
	}
}

// pushTopic is the APNs topic written into enrollment profiles: the push
// certificate's, or a stable placeholder until one is set.
func (a *app) pushTopic(context.Context) (string, error) {
	if t := a.pushMgr.Topic(); t != "" {
		return t, nil
	}
	return a.topic, nil
}

// health is what /healthz reports.
type health struct {
	Status  string             `json:"status"` // ok, warn, degraded (a fault inside the server: see issues)
	Time    time.Time          `json:"time"`
	Push    api.PushCertInfo   `json:"push"`
	Catalog *api.CatalogStatus `json:"catalog,omitempty"`
	Issues  []string           `json:"issues,omitempty"`
}

func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	h := health{Status: "ok", Time: a.clock.Now().UTC(), Push: a.pushMgr.Info()}
	switch {
	case !h.Push.Configured:
		h.Issues = append(h.Issues, "no MDM push certificate: devices are not woken")
	case h.Push.Problem != "":
		h.Issues = append(h.Issues, "push certificate: "+h.Push.Problem)
	case h.Push.ExpiresInDays < 30:
		h.Issues = append(h.Issues, fmt.Sprintf("push certificate expires in %d days: renew it at identity.apple.com (keep the same topic)", h.Push.ExpiresInDays))
	}
	if err := a.pusher.CertError(); err != nil {
		h.Issues = append(h.Issues, "APNs refused the push certificate: "+err.Error())
	}
	a.catalogHealth(r.Context(), &h)
	h.Issues = append(h.Issues, a.depWarnings(r.Context())...)
	h.Issues = append(h.Issues, a.pauseWarnings(r.Context())...)
	if len(h.Issues) > 0 {
		h.Status = "warn"
	}
	if f := a.faults.issues(); len(f) > 0 {
		h.Status = "degraded"
		h.Issues = append(f, h.Issues...)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(h)
}

// Close releases the database and the push client.
func (a *app) Close() error {
	a.pushMgr.Close()
	return a.store.Close()
}

// ensureAdminKey creates the first admin API key when none exists and writes
// it to the data directory (mode 0600) for the CLI on this machine.
func (a *app) ensureAdminKey(ctx context.Context) error {
	keys, err := a.store.APIKeys(ctx)
	if err != nil || len(keys) > 0 {
		return err
	}
	secret := "sdl_" + randomHex(32)
	if err := writePrivateFile(a.cfg.path(adminKeyFile), []byte(secret+"\n")); err != nil {
		return err
	}
	k := storage.APIKey{ID: randomHex(8), Name: "initial admin", Hash: api.HashKey(secret), CreatedAt: a.clock.Now()}
	if err := a.store.PutAPIKey(ctx, k); err != nil {
		return err
	}
	a.log.Info("created the initial admin API key", "file", a.cfg.path(adminKeyFile))
	return nil
}

type profileSigner struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (p profileSigner) SignProfile(profile []byte) ([]byte, error) {
	return certs.SignProfile(profile, p.cert, p.key)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func writePrivateFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func loadOrCreateSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("%s is empty", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	s := randomHex(16)
	return s, writePrivateFile(path, []byte(s+"\n"))
}

// loadOrCreateTopic returns the push topic used until an MDM push
// certificate is configured: a stable com.apple.mgmt.External.<uuid>.
func loadOrCreateTopic(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	t := "com.apple.mgmt.External." + strings.ToLower(mdm.NewUUID())
	return t, writePrivateFile(path, []byte(t+"\n"))
}

// serve runs the HTTP(S) server on ln until ctx ends, then shuts down
// gracefully and flushes buffered state.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	if err := a.ensureAdminKey(ctx); err != nil {
		return fmt.Errorf("admin API key: %w", err)
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	if !a.cfg.NoTLS {
		tc, err := a.tlsConfig()
		if err != nil {
			return err
		}
		srv.TLSConfig = tc
		ln = tls.NewListener(ln, tc)
	}
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.svc.Run(bg, a.cfg.FlushInterval)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.runScheduler(bg)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.console.Run(bg, consoleRefresh)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.checkStorage(bg)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.pusher.Run(bg); err != nil {
			a.log.Error("push service stopped", "err", err)
		}
	}()
	errc := make(chan error, 2)
	// The admin server copies the device server's settings, so it starts
	// first, before serving touches them.
	adminSrv, err := a.serveAdmin(srv, errc)
	if err != nil {
		stopBG()
		wg.Wait()
		return err
	}
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("sundial serving", "addr", ln.Addr().String(), "public_url", a.cfg.PublicURL,
		"enroll_url", a.cfg.PublicURL+"/mdm/enroll", "tls", !a.cfg.NoTLS)
	select {
	case err = <-errc:
	case <-ctx.Done():
		a.log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		if adminSrv != nil {
			adminSrv.Shutdown(sctx)
		}
		err = srv.Shutdown(sctx)
		cancel()
	}
	// One listener failing ends both.
	srv.Close()
	if adminSrv != nil {
		adminSrv.Close()
	}
	stopBG()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (a *app) tlsConfig() (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	if a.cfg.TLSCert != "" {
		cert, err = tls.LoadX509KeyPair(a.cfg.TLSCert, a.cfg.TLSKey)
	} else {
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if u, perr := url.Parse(a.cfg.PublicURL); perr == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
		cert, err = certs.LoadOrCreateServerTLS(a.cfg.DataDir, dedupe(hosts), a.authority, a.clock.Now())
	}
	if err != nil {
		return nil, fmt.Errorf("server TLS certificate: %w", err)
	}
	tc := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if a.cfg.MutualTLS {
		// Devices present their identity as a client certificate; the
		// handlers check it against the CA.
		tc.ClientAuth = tls.RequestClientCert
	}
	return tc, nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

var _ Clock = clock.System{}
