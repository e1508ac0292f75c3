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
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/enrollment"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
)

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
	devices.AddCommand(newDevicesListCmd(getenv, cf), newDevicesPushCmd(getenv, cf), newDevicesShowCmd(getenv, cf),
		newDevicesAllowReenrollCmd(getenv, cf), newDevicesEnrollmentCmd(getenv, cf), newDevicesRetryCmd(getenv, cf))
	commands := &cobra.Command{Use: "commands", Short: "Queue raw MDM commands and read their history"}
	commands.AddCommand(newCommandsEnqueueCmd(getenv, cf), newCommandsListCmd(getenv, cf))
	for _, c := range []*cobra.Command{devices, commands, newPushCertCmd(getenv, cf), newBackupCmd(getenv, cf),
		newGroupsCmd(getenv, cf), newPolicyCmd(getenv, cf), newAuditCmd(getenv, cf), newAPIKeysCmd(getenv, cf), newCatalogCmd(getenv, cf), newReportCmd(getenv, cf),
		newExceptionsCmd(getenv, cf), newDEPCmd(getenv, cf), newWebhooksCmd(getenv, cf)} {
		cf.register(c)
		root.AddCommand(c)
	}
	for _, c := range append(newPauseCmds(getenv, cf), newReadinessCmd(getenv, cf), newRingsCmd(getenv, cf)) {
		cf.register(c)
		root.AddCommand(c)
	}
	keepPromises(root) // last: it adapts every command added above
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
			for _, w := range cfg.deprecations(cmd, getenv) {
				log.Warn(w)
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
	pf.StringVar(&f.url, "url", "", "Sundial base URL (env SUNDIAL_URL; default https://localhost:8443)")
	pf.SetAnnotation("url", noEnv, []string{"SUNDIAL_URL is read explicitly"})
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
			return nil, &api.Error{Code: api.CodeUnauthorized, Message: fmt.Sprintf("no API key: set SUNDIAL_API_KEY or --api-key, or point --data-dir at the server's data directory (no %s in %s)", adminKeyFile, f.dataDir)}
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
			if f.Phase != "" && !knownPhase(f.Phase) {
				return usageError{fmt.Errorf("--phase %q: want one of %s", f.Phase, strings.Join(phaseNames(), ", "))}
			}
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if f.Group != "" {
				if err := groupExists(cmd, c, f.Group); err != nil {
					return err
				}
			}
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
	fl.StringVar(&f.Phase, "phase", "", "only devices in this phase ("+strings.Join(phaseNames(), ", ")+")")
	fl.StringVar(&f.Status, "status", "", "only devices in this state (a phase, deferring or needs-bootstrap-token)")
	fl.StringVar(&f.OSVersion, "os", "", "only devices on this macOS version (15 matches 15.x)")
	fl.BoolVar(&f.PastDeadline, "past-deadline", false, "only devices past their deadline and not compliant")
	fl.BoolVar(&f.Failing, "failing", false, "only devices with a surfaced failure")
	for flag, field := range map[string]string{"os": "os_version", "past-deadline": "past_deadline"} {
		setAPIField(cmd, flag, field)
	}
	return cmd
}

func newCommandsEnqueueCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	var group string
	var rawCmd bool
	cmd := &cobra.Command{
		Use:   "enqueue (DEVICE-ID... | --group GROUP) FILE",
		Short: "Queue a raw command plist ({CommandUUID, Command: {RequestType, ...}}) for devices or every device of a group; FILE - reads standard input",
		Long: `enqueue queues one command for one or more devices, or for every device of a
group. Devices are queued in requests of up to 10,000, each one transaction
on the server: all of a request's devices or, on an error, none of them.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if (group == "" && len(args) < 2) || (group != "" && len(args) != 1) {
				return usageError{errors.New("give DEVICE-ID... FILE, or --group GROUP FILE")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			file := args[len(args)-1]
			raw, err := readCommandFile(cmd, file)
			if err != nil {
				return err
			}
			if err := checkCommand(raw, rawCmd); err != nil {
				return usageError{fmt.Errorf("%s: %w", file, err)}
			}
			ids := args[:len(args)-1]
			if group != "" {
				if err := groupExists(cmd, c, group); err != nil {
					return err
				}
			} else if ids, err = resolveDevices(cmd, c, ids); err != nil {
				return err
			}
			opts := api.EnqueueOptions{Raw: rawCmd}
			if group == "" && len(ids) == 1 {
				res, err := c.EnqueueWith(cmd.Context(), ids[0], raw, opts)
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), res)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "queued %s %s for %s\n", res.RequestType, res.CommandUUID, ids[0])
				return nil
			}
			res, err := enqueuePaged(cmd, c, group, ids, raw, opts)
			if res == nil {
				return err
			}
			if group != "" && len(res.DeviceIDs) == 0 && err == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "group %s has no devices: nothing queued\n", group)
			}
			if cf.output == "json" {
				if jerr := writeJSON(cmd.OutOrStdout(), res); jerr != nil {
					return jerr
				}
				return err
			}
			for _, id := range res.DeviceIDs {
				fmt.Fprintf(cmd.OutOrStdout(), "queued %s %s for %s\n", res.RequestType, res.CommandUUID, id)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "queue the command for every device of this group")
	cmd.Flags().BoolVar(&rawCmd, "raw", false, "queue a RequestType Sundial does not know (sent as is)")
	return cmd
}

// enqueuePaged queues raw for ids, or for group's devices, in requests of
// up to api.MaxBulkEnqueue. It returns what was queued (nil if nothing)
// and the error that stopped it: the pages before it stay queued.
func enqueuePaged(cmd *cobra.Command, c *api.Client, group string, ids []string, raw []byte, opts api.EnqueueOptions) (*api.BulkEnqueueResult, error) {
	var all *api.BulkEnqueueResult
	add := func(r *api.BulkEnqueueResult) {
		if all == nil {
			all = &api.BulkEnqueueResult{CommandUUID: r.CommandUUID, RequestType: r.RequestType, DeviceIDs: []string{}}
		}
		all.DeviceIDs = append(all.DeviceIDs, r.DeviceIDs...)
	}
	bar := newProgress(cmd.ErrOrStderr())
	defer func() {
		if all != nil && len(all.DeviceIDs) > api.MaxBulkEnqueue {
			bar.done()
		}
	}()
	if group != "" {
		after := ""
		for {
			res, err := c.EnqueueGroup(cmd.Context(), group, after, raw, opts)
			if err != nil {
				return all, err
			}
			add(res)
			if res.Next == "" {
				return all, nil
			}
			bar.update("enqueue", len(all.DeviceIDs), len(all.DeviceIDs)+1)
			after = res.Next
		}
	}
	for page := range slices.Chunk(ids, api.MaxBulkEnqueue) {
		res, err := c.EnqueueBulk(cmd.Context(), page, raw, opts)
		if err != nil {
			return all, err
		}
		add(res)
		if len(ids) > api.MaxBulkEnqueue {
			bar.update("enqueue", len(all.DeviceIDs), len(ids))
		}
	}
	return all, nil
}

// groupDevices lists the IDs of a group's devices; a group that does not
// exist is not found (exit 3).
func groupDevices(cmd *cobra.Command, c *api.Client, group string) ([]string, error) {
	if err := groupExists(cmd, c, group); err != nil {
		return nil, err
	}
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
			id, err := resolveDevice(cmd, c, args[0])
			if err != nil {
				return err
			}
			cmds, err := c.Commands(cmd.Context(), id)
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

// phases a device listing can filter on.
var listPhases = []softwareupdate.Phase{
	softwareupdate.PhasePending, softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown,
	softwareupdate.PhaseEnforce, softwareupdate.PhaseCompliant, softwareupdate.PhaseFailed,
	softwareupdate.PhaseUnsupported, softwareupdate.PhaseExempt, softwareupdate.PhaseUnmanaged,
	softwareupdate.PhaseUnknown,
}

func phaseNames() []string {
	out := make([]string, len(listPhases))
	for i, p := range listPhases {
		out[i] = string(p)
	}
	return out
}

func knownPhase(s string) bool {
	for _, p := range listPhases {
		if string(p) == s {
			return true
		}
	}
	return false
}

// groupExists is nil when the group exists and a not-found error (exit 3)
// otherwise: filtering on a misspelt group must not look like an empty one.
func groupExists(cmd *cobra.Command, c *api.Client, group string) error {
	gs, err := c.Groups(cmd.Context())
	if err != nil {
		return err
	}
	for _, g := range gs {
		if g.ID == group {
			return nil
		}
	}
	return &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("no group %q (sundial groups list shows them)", group)}
}

// udidRE matches both forms of a Mac's UDID (Intel 8-4-4-4-12 and Apple
// silicon 8-16 hex digits), in either case.
var udidRE = regexp.MustCompile(`^(?i:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{8}-[0-9a-f]{16})$`)

// resolveDevice turns what an admin typed into a device ID: a UDID in
// either case becomes the upper-case form Macs report, and a serial number
// is looked up. Anything else is passed on as given.
func resolveDevice(cmd *cobra.Command, c *api.Client, arg string) (string, error) {
	ids, err := resolveDevices(cmd, c, []string{arg})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// resolveDevices resolves several arguments, listing the fleet at most
// once (only when one of them is not a UDID).
func resolveDevices(cmd *cobra.Command, c *api.Client, args []string) ([]string, error) {
	out := make([]string, len(args))
	var serials map[string]string
	for i, a := range args {
		if udidRE.MatchString(a) {
			out[i] = strings.ToUpper(a)
			continue
		}
		if serials == nil {
			serials = map[string]string{}
			after := ""
			for {
				page, err := c.Devices(cmd.Context(), after, 1000)
				if err != nil {
					return nil, err
				}
				for _, d := range page.Devices {
					if d.SerialNumber != "" && d.ParentID == "" {
						serials[strings.ToUpper(d.SerialNumber)] = d.ID
					}
				}
				if page.Next == "" || len(page.Devices) == 0 {
					break
				}
				after = page.Next
			}
		}
		if id, ok := serials[strings.ToUpper(a)]; ok {
			out[i] = id
		} else {
			out[i] = a
		}
	}
	return out, nil
}

// maxCommandFile is the admin API's limit on a command plist.
const maxCommandFile = 1 << 20

// readCommandFile reads a command plist from file ("-": standard input),
// refusing one over the API's 1 MiB limit before sending it.
func readCommandFile(cmd *cobra.Command, file string) ([]byte, error) {
	var r io.Reader
	if file == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, usageError{err}
		}
		defer f.Close()
		r = f
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxCommandFile+1))
	if err != nil {
		return nil, usageError{err}
	}
	if len(raw) > maxCommandFile {
		return nil, usageError{fmt.Errorf("%s: command plist larger than 1 MiB, the API's limit", file)}
	}
	return raw, nil
}

// checkCommand decodes and checks a command plist as the server will, so
// a bad file fails before any device is touched.
func checkCommand(raw []byte, rawOK bool) error {
	c, err := mdm.DecodeCommand(raw)
	if err != nil {
		return err
	}
	return api.CheckCommand(c, rawOK)
}

// batch collects the failures of a per-device operation.
type batch struct {
	cmd     *cobra.Command
	total   int
	failed  int
	code    int
	lastErr error
}

func newBatch(cmd *cobra.Command, total int) *batch { return &batch{cmd: cmd, total: total} }

// fail records that id failed. With several devices each failure gets its
// own line on standard error; with one, the error itself is the result.
func (b *batch) fail(id string, err error) {
	b.failed++
	b.lastErr = err
	code := exitCodeFor(runError{err})
	if b.failed == 1 {
		b.code = code
	} else if b.code != code {
		b.code = exitError
	}
	if b.total > 1 {
		fmt.Fprintf(b.cmd.ErrOrStderr(), "\n%s: %s\n", id, explain(b.cmd, err))
	}
}

// err is nil when nothing failed, the failure itself for one device, and a
// count (exit 3 if every failure was "not found", else 1) for several.
func (b *batch) err(verb string) error {
	switch {
	case b.failed == 0:
		return nil
	case b.total == 1:
		return b.lastErr
	}
	return &failedError{msg: fmt.Sprintf("%d of %d devices failed (%d %s)", b.failed, b.total, b.total-b.failed, verb), code: b.code}
}
