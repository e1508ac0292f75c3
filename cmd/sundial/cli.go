package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/enrollment"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/procs"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// usageError marks errors in how the command was called (exit 2).
type usageError struct{ error }

func exitCodeFor(err error) int {
	var ue usageError
	var ae *api.Error
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ae) && ae.Code == api.CodeNotFound:
		return exitNotFound
	case errors.As(err, &ae) && ae.Code == api.CodeUnauthorized:
		return exitAuth
	case errors.As(err, &ae) && ae.Code == api.CodeInvalid:
		return exitUsage
	case errors.Is(err, bolt.ErrLocked):
		return exitError
	}
	return exitError
}

func newRootCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "sundial",
		Short:         "Sundial keeps a fleet of Macs on the macOS version you require, by the deadline you set",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServerCmd(getenv, stderr), newEnrollCmd(getenv), newLoadtestCmd(getenv), newAPNsMockCmd(getenv), newDemoCmd(getenv), newStorageCmd(getenv),
		newDEPMockCmd(getenv))
	cf := &clientFlags{}
	devices := &cobra.Command{Use: "devices", Short: "List and inspect enrolled Macs"}
	devices.AddCommand(newDevicesListCmd(getenv, cf), newDevicesPushCmd(getenv, cf), newDevicesShowCmd(getenv, cf))
	commands := &cobra.Command{Use: "commands", Short: "Queue raw MDM commands and read their history"}
	commands.AddCommand(newCommandsEnqueueCmd(getenv, cf), newCommandsListCmd(getenv, cf))
	for _, c := range []*cobra.Command{devices, commands, newPushCertCmd(getenv, cf), newBackupCmd(getenv, cf),
		newGroupsCmd(getenv, cf), newPolicyCmd(getenv, cf), newAuditCmd(getenv, cf), newAPIKeysCmd(getenv, cf), newCatalogCmd(getenv, cf), newReportCmd(getenv, cf),
		newDEPCmd(getenv, cf)} {
		cf.register(c)
		root.AddCommand(c)
	}
	return root
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func newServerCmd(getenv func(string) string, stderr io.Writer) *cobra.Command {
	cfg := &Config{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Sundial server (embedded bbolt database, generated certificates)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.load(cmd, getenv); err != nil {
				return err
			}
			log, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
			if err != nil {
				return err
			}
			if cfg.AdaptiveProcs && reexec != nil {
				// Before anything is opened: the runtime reads GODEBUG
				// once, at start (see internal/procs/sysmon.go).
				if env, changed := procs.QuietSysmonEnv(os.Environ()); changed {
					err := reexec(env)
					log.Warn("could not restart with the runtime's quiet sysmon setting; running without it", "err", err)
				}
			}
			a, err := newApp(*cfg, log, clock.System{})
			if err != nil {
				return err
			}
			defer a.Close()
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if cfg.PprofListen != "" {
				go servePprof(ctx, cfg.PprofListen, log)
			}
			if cfg.Simulate > 0 {
				go a.simulate(ctx, ln.Addr(), cfg.Simulate)
			}
			if cfg.GCPercent > 0 && getenv("GOGC") == "" {
				// Up to --gc-percent while the live heap is small; see
				// internal/procs/gc.go.
				tuner := procs.NewGCTuner(procs.Process{}, cfg.GCPercent, 0, 0, log)
				tuner.Observe()
				go tuner.Run(ctx)
			}
			if cfg.AdaptiveProcs && getenv("GOMAXPROCS") == "" {
				gov := procs.New(procs.Process{}, 0, log)
				go func() {
					if err := gov.Run(ctx); err != nil {
						log.Warn("adaptive GOMAXPROCS stopped", "err", err)
					}
				}()
			}
			return a.serve(ctx, ln)
		},
	}
	cfg.flags(cmd.Flags())
	return cmd
}

func newEnrollCmd(getenv func(string) string) *cobra.Command {
	enroll := &cobra.Command{Use: "enroll", Short: "Enrollment profiles"}
	cfg := &Config{}
	profile := &cobra.Command{
		Use:   "profile",
		Short: "Write the signed enrollment profile to standard output (for offline distribution)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.load(cmd, getenv); err != nil {
				return err
			}
			if cfg.ChallengeMode != "shared" {
				return usageError{errors.New("offline profiles need --scep-challenge-mode shared")}
			}
			if err := cfg.ensureDataDir(); err != nil {
				return err
			}
			now := time.Now()
			authority, err := certs.LoadOrCreate(cfg.DataDir, now)
			if err != nil {
				return err
			}
			challenge := cfg.SCEPChallenge
			if challenge == "" {
				if challenge, err = loadOrCreateSecret(cfg.path(challengeFile)); err != nil {
					return err
				}
			}
			topic, err := loadOrCreateTopic(cfg.path(topicFile))
			if err != nil {
				return err
			}
			raw, err := enrollment.BuildProfile(enrollment.ProfileConfig{
				PublicURL: strings.TrimRight(cfg.PublicURL, "/"), Topic: topic, Challenge: challenge,
				CACert: authority.CA(), AllowInsecureURL: strings.HasPrefix(cfg.PublicURL, "http://"),
			})
			if err != nil {
				return err
			}
			pc, pk := authority.ProfileSigner()
			signed, err := certs.SignProfile(raw, pc, pk)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(signed)
			return err
		},
	}
	cfg.flags(profile.Flags())
	enroll.AddCommand(profile)
	return enroll
}

// clientFlags are the admin CLI's connection settings.
type clientFlags struct {
	url, apiKey, caFile, dataDir, output string
	insecure                             bool
}

func (f *clientFlags) register(c *cobra.Command) {
	pf := c.PersistentFlags()
	// "catalog sync --url" names a feed, so there the server is --server.
	urlFlag := "url"
	if c.Name() == "catalog" {
		urlFlag = "server"
	}
	pf.StringVar(&f.url, urlFlag, "", "Sundial base URL (env SUNDIAL_URL; default https://localhost:8443)")
	pf.SetAnnotation(urlFlag, noEnv, []string{"SUNDIAL_URL is read explicitly"})
	pf.StringVar(&f.apiKey, "api-key", "", "admin API key (env SUNDIAL_API_KEY; default: the data dir's admin-api-key file)")
	pf.StringVar(&f.caFile, "ca-file", "", "CA certificate to trust for the server (default: the data dir's ca.pem when present)")
	pf.StringVar(&f.dataDir, "data-dir", "./sundial-data", "the server's data dir on this machine, for defaults")
	pf.BoolVar(&f.insecure, "insecure", false, "do not verify the server's TLS certificate")
	pf.StringVarP(&f.output, "output", "o", "table", "table or json")
}

func (f *clientFlags) client(cmd *cobra.Command, getenv func(string) string) (*api.Client, error) {
	if err := applyEnv(cmd, getenv); err != nil {
		return nil, usageError{err}
	}
	if f.output != "table" && f.output != "json" {
		return nil, usageError{fmt.Errorf("-o %q: want table or json", f.output)}
	}
	base := f.url
	if base == "" {
		base = getenv("SUNDIAL_URL")
	}
	if base == "" {
		base = "https://localhost:8443"
	}
	key := f.apiKey
	if key == "" {
		b, err := os.ReadFile(f.dataDir + "/" + adminKeyFile)
		if err != nil {
			return nil, &api.Error{Code: api.CodeUnauthorized, Message: "no API key: set SUNDIAL_API_KEY or --api-key"}
		}
		key = strings.TrimSpace(string(b))
	}
	tc := &tls.Config{InsecureSkipVerify: f.insecure}
	caFile := f.caFile
	if caFile == "" {
		if _, err := os.Stat(f.dataDir + "/" + certs.CACertFile); err == nil {
			caFile = f.dataDir + "/" + certs.CACertFile
		}
	}
	if caFile != "" && !f.insecure {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	return &api.Client{BaseURL: base, APIKey: key, HTTP: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true},
	}}, nil
}

func newDevicesListCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	var f api.DeviceFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List enrolled devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var all []any
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			if cf.output == "table" {
				fmt.Fprintln(tw, "ID\tSERIAL\tMODEL\tOS\tGROUP\tPHASE\tDEADLINE\tLAST SEEN")
			}
			after := ""
			for {
				page, err := c.DevicesFiltered(ctx, after, 500, f)
				if err != nil {
					return err
				}
				for _, d := range page.Devices {
					if cf.output == "json" {
						all = append(all, d)
						continue
					}
					seen := "-"
					if !d.LastSeen.IsZero() {
						seen = d.LastSeen.Local().Format(time.DateTime)
					}
					osv := d.OSVersion
					if osv == "" {
						osv = "unknown"
					}
					deadline := "-"
					if !d.Deadline.IsZero() {
						deadline = d.Deadline.Local().Format("2006-01-02 15:04")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.SerialNumber, d.ProductName, osv, orDash(d.GroupID), orDash(d.Phase), deadline, seen)
				}
				if page.Next == "" {
					break
				}
				after = page.Next
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"devices": nonNil(all)})
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Group, "group", "", "only devices in this group")
	fl.StringVar(&f.Phase, "phase", "", "only devices in this phase (pending, notify, countdown, enforce, compliant, failed, unsupported, ...)")
	fl.StringVar(&f.OSVersion, "os", "", "only devices on this macOS version (15 matches 15.x)")
	fl.BoolVar(&f.PastDeadline, "past-deadline", false, "only devices past their deadline and not compliant")
	fl.BoolVar(&f.Failing, "failing", false, "only devices with a surfaced failure")
	return cmd
}

func newCommandsEnqueueCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "enqueue (DEVICE-ID | --group GROUP) FILE",
		Short: "Queue a raw command plist ({CommandUUID, Command: {RequestType, ...}}) for a device or every device of a group; FILE - reads standard input",
		Args: func(cmd *cobra.Command, args []string) error {
			if (group == "" && len(args) != 2) || (group != "" && len(args) != 1) {
				return usageError{errors.New("give DEVICE-ID FILE, or --group GROUP FILE")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			file := args[len(args)-1]
			var raw []byte
			if file == "-" {
				raw, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20+1))
			} else {
				raw, err = os.ReadFile(file)
			}
			if err != nil {
				return usageError{err}
			}
			ids := args[:len(args)-1]
			if group != "" {
				if ids, err = groupDevices(cmd, c, group); err != nil {
					return err
				}
			}
			bar := newProgress(cmd.ErrOrStderr())
			var results []*api.EnqueueResult
			var queuedFor []string
			var failed error
			for i, id := range ids {
				res, err := c.Enqueue(cmd.Context(), id, raw)
				if len(ids) > 1 {
					bar.update("enqueue", i+1, len(ids))
				}
				if err != nil {
					var ae *api.Error
					if errors.As(err, &ae) && ae.Code == api.CodeInvalid {
						bar.done()
						return err // the command itself is bad: same for every device
					}
					failed = err
					fmt.Fprintf(cmd.ErrOrStderr(), "\n%s: %v\n", id, err)
					continue
				}
				results = append(results, res)
				queuedFor = append(queuedFor, id)
			}
			if len(ids) > 1 {
				bar.done()
			}
			if cf.output != "json" {
				for i, res := range results {
					fmt.Fprintf(cmd.OutOrStdout(), "queued %s %s for %s\n", res.RequestType, res.CommandUUID, queuedFor[i])
				}
			}
			if cf.output == "json" {
				if len(ids) == 1 && len(results) == 1 {
					return writeJSON(cmd.OutOrStdout(), results[0])
				}
				if err := writeJSON(cmd.OutOrStdout(), map[string]any{"queued": results}); err != nil {
					return err
				}
			}
			return failed
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "queue the command for every device of this group")
	return cmd
}

// groupDevices lists the IDs of a group's devices.
func groupDevices(cmd *cobra.Command, c *api.Client, group string) ([]string, error) {
	var ids []string
	after := ""
	for {
		page, err := c.DevicesFiltered(cmd.Context(), after, 1000, api.DeviceFilter{Group: group})
		if err != nil {
			return nil, err
		}
		for _, d := range page.Devices {
			ids = append(ids, d.ID)
		}
		if page.Next == "" || len(page.Devices) == 0 {
			return ids, nil
		}
		after = page.Next
	}
}

func newCommandsListCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list DEVICE-ID",
		Short: "Show a device's command history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			cmds, err := c.Commands(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"commands": cmds})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "COMMAND UUID\tREQUEST TYPE\tSTATUS\tQUEUED\tUPDATED\tERROR")
			for _, c := range cmds {
				errText := ""
				if len(c.ErrorChain) > 0 {
					errText = fmt.Sprintf("%d %s", c.ErrorChain[0].ErrorCode, c.ErrorChain[0].USEnglishDescription)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.UUID, c.RequestType, c.Status,
					c.QueuedAt.Local().Format(time.DateTime), c.UpdatedAt.Local().Format(time.DateTime), errText)
			}
			return tw.Flush()
		},
	}
}

func parseIP(s string) net.IP { return net.ParseIP(s) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func nonNil(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

func newBackupCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Download a consistent copy of the running server's database (hot backup)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			n, err := c.Backup(cmd.Context(), out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes)\n", out, n)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the backup to")
	return cmd
}
