package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sundial-mdm/sundial/internal/retention"
)

// Config is `sundial server`'s configuration: flags with an environment
// fallback (SUNDIAL_<FLAG>, upper case, dashes as underscores).
type Config struct {
	Listen          string
	DataDir         string
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
	BoltMappedMB    int
	ShutdownTimeout time.Duration
	PprofListen     string
	APNsURL         string
	APNsCA          string
	PushCert        string
	PushKey         string
	PushP12         string
	PushP12Password string
	CatalogCA       string
	Storage         string
	StorageDSN      string
	FlushInterval   time.Duration
	AdaptiveProcs   bool
	GCPercent       int
	LeaseTTL        time.Duration
	ReplicaID       string
	RetainCommands  time.Duration
	RetainHistory   int
}

func (c *Config) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", ":8443", "address to listen on")
	fs.StringVar(&c.DataDir, "data-dir", "./sundial-data", "directory for the database, CA and TLS material")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL devices use to reach Sundial, written into enrollment profiles (default https://localhost:<port>)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate (PEM); default: one issued by Sundial's CA")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS key (PEM) for --tls-cert")
	fs.BoolVar(&c.NoTLS, "no-tls", false, "serve plain HTTP (behind a TLS-terminating proxy)")
	fs.BoolVar(&c.MutualTLS, "mtls", false, "ask devices for their identity as a TLS client certificate (the default relies on Mdm-Signature)")
	fs.StringVar(&c.CertHeader, "cert-header", "", "take device client certificates from this header set by a TLS-terminating proxy")
	fs.StringVar(&c.EnrollSecret, "enroll-secret", "", "require this secret (?secret= or basic auth password) to download the enrollment profile")
	fs.StringVar(&c.SCEPChallenge, "scep-challenge", "", "shared SCEP challenge (default: generated once and kept in the data dir)")
	fs.StringVar(&c.ChallengeMode, "scep-challenge-mode", "shared", "shared (one challenge for all) or one-time (a fresh challenge per profile download)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.IntVar(&c.Simulate, "simulate", 0, "enroll this many simulated Macs against this server after start (development and demos)")
	fs.BoolVar(&c.NoSync, "unsafe-no-sync", false, "skip fsync on database writes (throwaway data only)")
	fs.IntVar(&c.BoltMappedMB, "bolt-mapped-mb", 0, "with bolt storage, drop the database file's pages from Sundial's resident memory above this many MB of file-backed RSS (they stay in the page cache); 0: the default (100), negative: off")
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
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long graceful shutdown waits for requests")
	fs.DurationVar(&c.FlushInterval, "flush-interval", 5*time.Second, "how often last-seen times are written")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", DefaultLeaseTTL, "how long the scheduler lease lasts without renewal (renewed every third of it): with several replicas, another takes over within 4/3 of it after the leader dies, within a third after it stops cleanly (docs/replicas.md); 1s to 10m")
	c.RetainCommands = retention.DefaultRetainCommands
	fs.Var((*daysValue)(&c.RetainCommands), "retain-commands", "keep finished commands and their results this long (90d, or a duration), then delete them; queued commands, update states and the audit log are kept; 0: forever")
	fs.IntVar(&c.RetainHistory, "retain-history", retention.DefaultRetainHistory, "keep this many update history transitions per Mac, the newest; 0: all")
	fs.StringVar(&c.ReplicaID, "replica-id", "", "this replica's name in the scheduler lease and the logs, unique per replica (default: host name and process ID)")
	fs.IntVar(&c.GCPercent, "gc-percent", DefaultGCPercent, "Go's garbage collection target (GOGC) while the live heap is small: between collections the heap may grow this many percent of the live data, up to 24 MB and never less than Go's default of 100 allows; 100 or less: a fixed GOGC; 0 leaves the runtime alone; ignored when GOGC is set")
	fs.BoolVar(&c.AdaptiveProcs, "adaptive-procs", true, "run Go's scheduler on one CPU while the server uses less than 0.8 of a CPU, and on all of them as soon as it needs more (ignored when GOMAXPROCS is set), and start the server with GODEBUG=schedtrace set to its longest period so that the runtime's monitor thread backs off while idle; both cost less CPU per request")
}

// DefaultLeaseTTL is the scheduler lease's default lifetime: a crashed
// leader is replaced within 40 s (ttl + ttl/3); measured 23–29 s after
// kill -9 and 2.2 s after SIGTERM (docs/operations.md).
const DefaultLeaseTTL = 30 * time.Second

// DefaultGCPercent is the server's GOGC while its live heap is small
// (internal/procs/gc.go). Three interleaved pairs at 3,000 Macs
// (docs/benchmarks.md) measured 3.82–3.97 ms of server CPU per enrolment
// at 200 against 4.05–4.57 ms at Go's default of 100.
const DefaultGCPercent = 200

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
		name := "SUNDIAL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	return errors.Join(errs...)
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
	if c.GCPercent < 0 || c.GCPercent > 1000 {
		return fmt.Errorf("--gc-percent %d: want 0 (the runtime's setting) or 1 to 1000", c.GCPercent)
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
