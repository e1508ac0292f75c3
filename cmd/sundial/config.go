package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sundial-mdm/sundial/internal/retention"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog/poll"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Config is `sundial server`'s configuration: flags with an environment
// fallback (SUNDIAL_<FLAG>, upper case, dashes as underscores).
type Config struct {
	Listen          string
	AdminListen     string
	DataDir         string
	OfflineGrace    time.Duration // scheduler.WithOfflineGrace
	PublicURL       string
	TLSCert         string
	TLSKey          string
	NoTLS           bool
	MutualTLS       bool
	CertHeader      string
	EnrollSecret    string
	SCEPChallenge   string
	ChallengeMode   string
	LogLevel        string
	LogFormat       string
	Simulate        int
	NoSync          bool
	ShutdownTimeout time.Duration
	PprofListen     string
	APNsURL         string
	APNsCA          string
	PushCert        string
	PushKey         string
	PushP12         string
	PushP12Password string
	CatalogCA       string
	CatalogInterval time.Duration
	CatalogGDMFURL  string
	CatalogSOFAURL  string
	Storage         string
	StorageDSN      string
	FlushInterval   time.Duration
	ADEAppleRoot    string
	ADESkipSetup    []string
	DEPCA           string
	DEPSyncInterval time.Duration
	// ConsoleReadKeys names the API keys (by ID or name) that may only
	// read in the web console.
	ConsoleReadKeys []string
	LeaseTTL        time.Duration
	ReplicaID       string
	RetainCommands  time.Duration
	RetainHistory   int

	// Values of deprecated flags, accepted and ignored (deprecatedFlags).
	ignoredInt  int
	ignoredBool bool
}

func (c *Config) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", ":8443", "address to listen on")
	fs.StringVar(&c.AdminListen, "admin-listen", "", "serve the admin API, /metrics and the detailed /healthz on this address only, not to devices (recommended: a private or loopback address)")
	fs.StringVar(&c.DataDir, "data-dir", "./sundial-data", "directory for the database, CA and TLS material")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL devices use to reach Sundial, written into enrollment profiles (default https://localhost:<port>)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate (PEM); default: one issued by Sundial's CA")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS key (PEM) for --tls-cert")
	fs.BoolVar(&c.NoTLS, "no-tls", false, "serve plain HTTP (behind a TLS-terminating proxy)")
	fs.BoolVar(&c.MutualTLS, "mtls", false, "ask devices for their identity as a TLS client certificate (the default relies on Mdm-Signature)")
	fs.StringVar(&c.CertHeader, "cert-header", "", "take device client certificates from this header set by a TLS-terminating proxy")
	fs.StringVar(&c.EnrollSecret, "enroll-secret", "", "require this secret (?secret= or basic auth password) to download the enrollment profile")
	fs.StringVar(&c.SCEPChallenge, "scep-challenge", "", "shared SCEP challenge (default: generated once and kept in the data dir)")
	fs.StringVar(&c.ChallengeMode, "scep-challenge-mode", "one-time", "one-time (a fresh challenge per profile download) or shared (one challenge for all: anyone who has the profile can get identities; offline profiles need it)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.IntVar(&c.Simulate, "simulate", 0, "enroll this many simulated Macs against this server after start (development and demos)")
	fs.BoolVar(&c.NoSync, "unsafe-no-sync", false, "skip fsync on database writes (throwaway data only)")
	fs.StringVar(&c.PprofListen, "pprof-listen", "", "serve Go profiling endpoints (/debug/pprof/) on this loopback address")
	fs.StringVar(&c.APNsURL, "apns-url", "https://api.push.apple.com", "APNs provider API base URL (https://api.development.push.apple.com for development certificates, or a mock)")
	fs.StringVar(&c.APNsCA, "apns-ca", "", "extra CA certificates (PEM) to trust for --apns-url, e.g. a mock's")
	fs.StringVar(&c.PushCert, "push-cert", "", "MDM push certificate (PEM); overrides one set through the API")
	fs.StringVar(&c.PushKey, "push-key", "", "key (PEM) for --push-cert")
	fs.StringVar(&c.PushP12, "push-p12", "", "MDM push certificate and key as PKCS#12")
	fs.StringVar(&c.PushP12Password, "push-p12-password", "", "password for --push-p12 (prefer the SUNDIAL_PUSH_P12_PASSWORD environment variable)")
	fs.StringVar(&c.Storage, "storage", "bolt", "bolt (embedded, one process) or pgsql (PostgreSQL, several replicas)")
	fs.StringVar(&c.StorageDSN, "storage-dsn", "", "PostgreSQL connection string for --storage pgsql (prefer SUNDIAL_STORAGE_DSN: it may hold a password)")
	fs.StringVar(&c.CatalogCA, "catalog-ca", "", "extra CA certificates (PEM) for release feed URLs (gdmf chains to Apple's own root, which some systems lack)")
	fs.StringVar(&c.ADEAppleRoot, "ade-apple-root", "", "Apple root CA certificates (PEM) that Macs' Automated Device Enrollment requests must chain to; without it POST /mdm/enroll answers 503")
	fs.DurationVar(&c.CatalogInterval, "catalog-interval", poll.DefaultInterval, "how often the scheduler leader checks the release feeds for new macOS releases (conditional requests); 0 turns automatic checks off")
	fs.StringVar(&c.CatalogGDMFURL, "catalog-gdmf-url", poll.GDMFURL, "Apple's software lookup feed the catalog polls; empty: do not poll it")
	fs.StringVar(&c.CatalogSOFAURL, "catalog-sofa-url", poll.SOFAURL, "the SOFA macOS feed the catalog polls; empty: do not poll it")
	fs.StringSliceVar(&c.ADESkipSetup, "ade-skip-setup", nil, "Setup Assistant panes ADE profiles skip (Apple's keys, comma-separated, e.g. Siri,Privacy)")
	fs.StringVar(&c.DEPCA, "dep-ca", "", "extra CA certificates (PEM) to trust for the DEP API, e.g. `sundial depmock`'s")
	fs.DurationVar(&c.OfflineGrace, "offline-grace", scheduler.DefaultOfflineGrace, "how long a Mac offline at its deadline has after its first check-in before the forced install (legacy path) or its fresh enforcement declaration (declarative path, if it never fetched its own); at most 72h; 0: none")
	fs.DurationVar(&c.DEPSyncInterval, "dep-sync-interval", 5*time.Minute, "how often the scheduler leader syncs devices from Apple Business Manager")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long graceful shutdown waits for requests")
	fs.DurationVar(&c.FlushInterval, "flush-interval", 5*time.Second, "how often last-seen times are written")
	fs.StringSliceVar(&c.ConsoleReadKeys, "console-read-keys", nil, "API keys (IDs or names, comma-separated) that see the web console read-only")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", DefaultLeaseTTL, "how long the scheduler lease lasts without renewal (renewed every third of it): with several replicas, another takes over within 4/3 of it after the leader dies, within a third after it stops cleanly (docs/replicas.md); 1s to 10m")
	c.RetainCommands = retention.DefaultRetainCommands
	fs.Var((*daysValue)(&c.RetainCommands), "retain-commands", "keep finished commands and their results this long (90d, or a duration), then delete them; queued commands, update states and the audit log are kept; 0: forever")
	fs.IntVar(&c.RetainHistory, "retain-history", retention.DefaultRetainHistory, "keep this many update history transitions per Mac, the newest; 0: all")
	fs.StringVar(&c.ReplicaID, "replica-id", "", "this replica's name in the scheduler lease and the logs, unique per replica (default: host name and process ID)")
	fs.IntVar(&c.ignoredInt, "bolt-mapped-mb", 0, "")
	fs.IntVar(&c.ignoredInt, "gc-percent", 0, "")
	fs.BoolVar(&c.ignoredBool, "adaptive-procs", false, "")
	for name, why := range deprecatedFlags {
		fs.MarkDeprecated(name, why)
	}
}

// deprecatedFlags tuned the Go runtime and bbolt's memory mapping; they are
// accepted and ignored for one release. The runtime's own knobs replace
// them (docs/operations.md, "Go runtime settings").
var deprecatedFlags = map[string]string{
	"adaptive-procs": "it is ignored; set GOMAXPROCS in the environment to limit the Go scheduler",
	"gc-percent":     "it is ignored; set GOGC (and GOMEMLIMIT) in the environment",
	"bolt-mapped-mb": "it is ignored; the database's file-backed pages are page cache the kernel reclaims",
}

// deprecations lists a warning for each deprecated flag given on the
// command line or through its SUNDIAL_* variable.
func (c *Config) deprecations(cmd *cobra.Command, getenv func(string) string) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(deprecatedFlags)) {
		if cmd.Flags().Changed(name) || getenv(envName(name)) != "" {
			out = append(out, "--"+name+" is deprecated: "+deprecatedFlags[name])
		}
	}
	return out
}

// DefaultLeaseTTL is the scheduler lease's default lifetime: a crashed
// leader is replaced within 40 s (ttl + ttl/3); measured 23–29 s after
// kill -9 and 2.2 s after SIGTERM (docs/operations.md).
const DefaultLeaseTTL = 30 * time.Second

// noEnv marks a flag that has no environment fallback.
const noEnv = "sundial-no-env"

// applyEnv sets every flag not given on the command line from its
// SUNDIAL_* environment variable.
func applyEnv(cmd *cobra.Command, getenv func(string) string) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Annotations[noEnv] != nil {
			return
		}
		name := envName(f.Name)
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// envName is a flag's environment fallback: SUNDIAL_<FLAG>.
func envName(flag string) string {
	return "SUNDIAL_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// load fills the configuration from the environment for flags not given
// and validates it; errors are usage errors.
func (c *Config) load(cmd *cobra.Command, getenv func(string) string) error {
	if err := applyEnv(cmd, getenv); err != nil {
		return usageError{err}
	}
	if err := c.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// Validate checks the configuration and fills in derived defaults.
func (c *Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	if c.DataDir == "" {
		return errors.New("--data-dir is empty")
	}
	if c.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			return fmt.Errorf("--admin-listen %q: %w", c.AdminListen, err)
		}
		if c.AdminListen == c.Listen {
			return errors.New("--admin-listen must differ from --listen")
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.NoTLS && c.TLSCert != "" {
		return errors.New("--no-tls and --tls-cert exclude each other")
	}
	if c.PublicURL == "" {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		scheme := "https"
		if c.NoTLS {
			scheme = "http"
		}
		c.PublicURL = scheme + "://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("--public-url %q must be an absolute http(s) URL", c.PublicURL)
	}
	switch c.Storage {
	case "", "bolt":
		c.Storage = "bolt"
	case "pgsql":
		if c.StorageDSN == "" {
			return errors.New("--storage pgsql needs --storage-dsn (or SUNDIAL_STORAGE_DSN)")
		}
	default:
		return fmt.Errorf("--storage %q: want bolt or pgsql", c.Storage)
	}
	switch c.ChallengeMode {
	case "shared", "one-time":
	default:
		return fmt.Errorf("--scep-challenge-mode %q: want shared or one-time", c.ChallengeMode)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	if c.Simulate < 0 || c.Simulate > 100000 {
		return errors.New("--simulate must be between 0 and 100000")
	}
	if (c.PushCert == "") != (c.PushKey == "") {
		return errors.New("--push-cert and --push-key go together")
	}
	if c.PushCert != "" && c.PushP12 != "" {
		return errors.New("--push-cert and --push-p12 exclude each other")
	}
	if u, err := url.Parse(c.APNsURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("--apns-url %q must be an https URL", c.APNsURL)
	}
	if c.PprofListen != "" {
		h, _, err := net.SplitHostPort(c.PprofListen)
		if ip := net.ParseIP(h); err != nil || (h != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return fmt.Errorf("--pprof-listen %q must be a loopback address", c.PprofListen)
		}
	}
	if c.RetainCommands < 0 || (c.RetainCommands > 0 && c.RetainCommands < 24*time.Hour) {
		return fmt.Errorf("--retain-commands %s: want 0 (forever) or at least 1d", c.RetainCommands)
	}
	if c.RetainHistory < 0 || (c.RetainHistory > 0 && c.RetainHistory < 10) {
		return fmt.Errorf("--retain-history %d: want 0 (all) or at least 10", c.RetainHistory)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.LeaseTTL < time.Second || c.LeaseTTL > 10*time.Minute {
		return fmt.Errorf("--lease-ttl %s: want 1s to 10m (replicas' clocks must agree within a sixth of it)", c.LeaseTTL)
	}
	if c.ReplicaID == "" {
		c.ReplicaID = replicaID()
	}
	if len(c.ReplicaID) > 200 {
		return errors.New("--replica-id: at most 200 characters")
	}
	if c.FlushInterval <= 0 || c.ShutdownTimeout <= 0 {
		return errors.New("--flush-interval and --shutdown-timeout must be positive")
	}
	return c.validateCatalog()
}

// validateCatalog checks the catalog poller's flags: an interval of 0
// (off) or at least a minute, and absolute http(s) feed URLs.
func (c *Config) validateCatalog() error {
	if c.OfflineGrace > scheduler.MaxOfflineGrace {
		return fmt.Errorf("--offline-grace %v: at most %v (0: none)", c.OfflineGrace, scheduler.MaxOfflineGrace)
	}
	if c.CatalogInterval < 0 || (c.CatalogInterval > 0 && c.CatalogInterval < time.Minute) {
		return fmt.Errorf("--catalog-interval %v: want 0 (off) or at least 1m", c.CatalogInterval)
	}
	for _, f := range []struct{ flag, url string }{{"--catalog-gdmf-url", c.CatalogGDMFURL}, {"--catalog-sofa-url", c.CatalogSOFAURL}} {
		if f.url == "" {
			continue
		}
		if u, err := url.Parse(f.url); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return fmt.Errorf("%s %q must be an absolute http(s) URL", f.flag, f.url)
		}
	}
	return nil
}

func (c *Config) path(name string) string { return filepath.Join(c.DataDir, name) }

// ensureDataDir creates the data directory with private permissions.
func (c *Config) ensureDataDir() error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	return nil
}
