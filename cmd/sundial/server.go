package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
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

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/enrollment"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/httpmdm"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
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

// app is a wired Sundial server.
type app struct {
	cfg       Config
	log       *slog.Logger
	clock     Clock
	store     *bolt.Store
	authority *certs.Authority
	svc       *service.Service
	handler   http.Handler
	topic     string
}

// newApp opens the data directory and wires every part.
func newApp(cfg Config, log *slog.Logger, clk Clock) (_ *app, err error) {
	if err := cfg.ensureDataDir(); err != nil {
		return nil, err
	}
	now := clk.Now()
	store, err := bolt.Open(cfg.path(dbFile), &bolt.Options{NoSync: cfg.NoSync})
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

	a.svc = service.New(store, clk, sealer, service.WithLogger(log))
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
	scep, err := enrollment.NewSCEPHandler(authority.CA(), ra, raKey, challenges, authority, clk, enrollment.WithSCEPLogger(log))
	if err != nil {
		return nil, err
	}

	r := mux.NewRouter()
	r.Handle("/mdm/checkin", devices.Checkin())
	r.Handle("/mdm/connect", devices.Connect())
	r.Handle("/mdm/enroll", profiles)
	r.Handle("/scep", scep)
	r.HandleFunc("/healthz", a.healthz)
	api.New(store, a.svc, log).Register(r)
	a.handler = r
	return a, nil
}

// pushTopic is the APNs topic written into enrollment profiles.
func (a *app) pushTopic(context.Context) (string, error) { return a.topic, nil }

func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"status\":\"ok\",\"time\":%q}\n", a.clock.Now().UTC().Format(time.RFC3339))
}

// Close releases the database.
func (a *app) Close() error { return a.store.Close() }

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
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("sundial serving", "addr", ln.Addr().String(), "public_url", a.cfg.PublicURL,
		"enroll_url", a.cfg.PublicURL+"/mdm/enroll", "tls", !a.cfg.NoTLS)
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		a.log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
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
