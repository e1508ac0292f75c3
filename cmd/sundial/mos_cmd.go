package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

func newGroupsCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	groups := &cobra.Command{Use: "groups", Short: "Device groups (each has one update policy)"}
	list := &cobra.Command{
		Use: "list", Short: "List groups", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			gs, err := c.Groups(cmd.Context())
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"groups": gs})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME")
			for _, g := range gs {
				fmt.Fprintf(tw, "%s\t%s\n", g.ID, g.Name)
			}
			return tw.Flush()
		},
	}
	var name string
	create := &cobra.Command{
		Use: "create ID", Short: "Create a group", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			gs, err := c.Groups(cmd.Context())
			if err != nil {
				return err
			}
			for _, g := range gs {
				if g.ID == args[0] {
					return &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("group %s already exists (name %q); nothing changed", g.ID, g.Name)}
				}
			}
			g, err := c.CreateGroup(cmd.Context(), args[0], name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "group %s created\n", g.ID)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "display name")
	assign := &cobra.Command{
		Use: "assign GROUP DEVICE-ID...", Short: "Move devices into a group", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			ids, err := resolveDevices(cmd, c, args[1:])
			if err != nil {
				return err
			}
			if err := c.AssignDevices(cmd.Context(), args[0], ids); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d %s assigned to %s\n", len(ids), plural(len(ids), "device", "devices"), args[0])
			return nil
		},
	}
	groups.AddCommand(list, create, assign)
	return groups
}

func newPolicyCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	policy := &cobra.Command{Use: "policy", Short: "Show or set a group's macOS update policy"}
	show := &cobra.Command{
		Use: "show GROUP", Short: "Show a group's policy", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			rec, err := c.Policy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), rec)
			}
			p := rec.Policy
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "group:     %s (revision %d, set by %s at %s)\nmode:      %s\n", rec.GroupID, rec.Revision, rec.UpdatedBy, rec.UpdatedAt.Local().Format(time.DateTime), p.Mode)
			switch p.Mode {
			case softwareupdate.ModeAutomatic:
				fmt.Fprintf(w, "enforce:   new releases %d days after Apple posts them, at %s %s\n", p.DelayDays, p.TimeOfDay, p.TimeZone)
			case softwareupdate.ModeManual:
				fmt.Fprintf(w, "enforce:   macOS %s by %s %s %s\n", p.MinimumVersion, p.Date, p.TimeOfDay, p.TimeZone)
				if at, note := manualDeadline(p); !at.IsZero() {
					fmt.Fprintf(w, "deadline:  %s%s\n", zonesLine(at, p.TimeZone, ""), note)
				} else if p.TimeZone == softwareupdate.DeviceLocal {
					fmt.Fprintln(w, "deadline:  at that wall time in each Mac's own time zone")
				}
				if p.FallbackTimeZone != "" {
					fmt.Fprintf(w, "fallback:  %s until a Mac's agent reports its zone\n", p.FallbackTimeZone)
				}
			}
			fmt.Fprintf(w, "majors:    %v\nnotice:    %d days\nring:      +%d days\n", p.AllowMajorUpgrades, p.NoticeDays(), p.RingOffsetDays)
			fmt.Fprint(w, calendarLines(p.Calendar))
			return nil
		},
	}
	set := &cobra.Command{
		Use:   "set GROUP",
		Short: "Set a group's policy (validated; recorded in the audit log)",
		Example: `  sundial policy set default --mode manual --version 15.4 --date 2026-12-15 --time 17:00 --tz Europe/Berlin
  sundial policy set pilots --mode automatic --delay 1w --time 09:00 --tz America/New_York
  sundial policy set field --mode manual --version 15.4 --date 2026-12-15 --time 12:00 --tz device-local --fallback-tz Europe/Berlin
  sundial policy set lab --mode unmanaged
  sundial policy set office --mode manual --version 15.4 --date 2026-12-26 --time 12:00 --tz Europe/Berlin \
      --working-days mon-fri --working-hours 09:00-17:00 --holidays "2026-12-24=Christmas Eve,12-25=Christmas Day" --holidays-ics holidays.ics`,
		Args: cobra.ExactArgs(1),
	}
	setP := policyFlags(set)
	set.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client(cmd, getenv)
		if err != nil {
			return err
		}
		p, err := setP()
		if err != nil {
			return err
		}
		rec, err := c.SetPolicy(cmd.Context(), args[0], p)
		if err != nil {
			return err
		}
		if at, note := manualDeadline(p); note != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s %s in %s%s: the deadline is %s\n", p.Date, p.TimeOfDay, p.TimeZone, note, zonesLine(at, p.TimeZone, ""))
		}
		if cf.output == "json" {
			return writeJSON(cmd.OutOrStdout(), rec)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "policy of %s set (revision %d)\n", rec.GroupID, rec.Revision)
		return nil
	}
	whatIf := &cobra.Command{
		Use:   "what-if GROUP",
		Short: "Show what a candidate policy would do to a group tomorrow, without saving it",
		Args:  cobra.ExactArgs(1),
	}
	whatP := policyFlags(whatIf)
	whatIf.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client(cmd, getenv)
		if err != nil {
			return err
		}
		p, err := whatP()
		if err != nil {
			return err
		}
		res, err := c.PolicyWhatIf(cmd.Context(), args[0], p)
		if err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(cmd.OutOrStdout(), res)
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "group %s: %d Macs; tomorrow (%s) under this policy:\n", res.GroupID, res.Devices, res.At.Local().Format(time.DateTime))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PHASE\tNOW\tTOMORROW")
		seen := map[softwareupdate.Phase]bool{}
		for _, m := range []map[softwareupdate.Phase]int{res.Current, res.Tomorrow} {
			for ph := range m {
				if !seen[ph] {
					seen[ph] = true
					fmt.Fprintf(tw, "  %s\t%d\t%d\n", ph, res.Current[ph], res.Tomorrow[ph])
				}
			}
		}
		tw.Flush()
		fmt.Fprintf(w, "forced to install within 24 h: %d\ncrossing a major version:      %d\ncannot take the target:        %d\n",
			res.ForcedWithin24h, res.MajorUpgrades, res.Unsupported)
		fmt.Fprint(w, whatIfMoves(res))
		return nil
	}
	policy.AddCommand(show, set, whatIf)
	return policy
}

func newDevicesShowCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	var history int
	cmd := &cobra.Command{
		Use: "show DEVICE-ID", Short: "Show a device's update phase, deadline and history", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			id, err := resolveDevice(cmd, c, args[0])
			if err != nil {
				return err
			}
			rep, err := c.DeviceUpdate(cmd.Context(), id, history)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "device:    %s\ngroup:     %s\n", rep.DeviceID, rep.GroupID)
			if st := rep.State; st != nil {
				fmt.Fprintf(w, "phase:     %s (%s)\n", st.Phase, st.Reason)
				switch rep.Status {
				case scheduler.StatusDeferring:
					fmt.Fprintf(w, "status:    deferring: answered NotNow %d times since %s\n", st.NotNowCount, st.NotNowSince.Local().Format(time.DateTime+" MST"))
				case scheduler.StatusNeedsBootstrapToken:
					fmt.Fprintf(w, "status:    needs bootstrap token: the update to %s needs one on this Apple silicon Mac and none is escrowed\n", st.Target)
				}
				if st.Target != "" {
					fmt.Fprintf(w, "target:    macOS %s\n", st.Target)
				}
				if !st.Deadline.IsZero() {
					policyZone := ""
					if rec, err := c.Policy(cmd.Context(), rep.GroupID); err == nil {
						policyZone = rec.Policy.TimeZone
					}
					fmt.Fprintf(w, "deadline:  %s\n", zonesLine(st.Deadline, policyZone, rep.DeviceTimeZone))
					if st.DeadlineMoved != "" {
						fmt.Fprintf(w, "moved:     %s (business calendar)\n", st.DeadlineMoved)
					}
				}
				if st.Path != "" {
					fmt.Fprintf(w, "path:      %s\n", st.Path)
				}
				if st.Failure != "" {
					fmt.Fprintf(w, "failure:   %s\n", st.Failure)
					if !st.RetryAt.IsZero() {
						fmt.Fprintf(w, "retry at:  %s\n", st.RetryAt.Local().Format(time.DateTime+" MST"))
					}
				}
				if st.Attempts > 0 {
					fmt.Fprintf(w, "installs:  %d sent\n", st.Attempts)
				}
			} else {
				fmt.Fprintln(w, "phase:     not evaluated yet")
			}
			if len(rep.History) > 0 {
				fmt.Fprintln(w, "history:")
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				for _, h := range rep.History {
					what := string(h.Kind)
					if h.To != "" {
						what += " " + string(h.From) + "→" + string(h.To)
					}
					if h.Step != "" {
						what += " " + h.Step
					}
					fmt.Fprintf(tw, "  %s\t%s\t%s\n", h.At.Local().Format(time.DateTime), what, h.Reason)
				}
				tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&history, "history", 20, "history entries to show")
	return cmd
}

func newAuditCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	var after uint64
	var limit int
	cmd := &cobra.Command{
		Use: "audit", Short: "Show the audit log of admin changes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			if limit < 1 || limit > 1000 {
				return usageError{errors.New("--limit 1..1000")}
			}
			entries, err := c.Audit(cmd.Context(), after, limit)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"entries": entries})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tWHEN\tWHO\tACTION\tSUBJECT\tBEFORE\tAFTER")
			for _, e := range entries {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Local().Format(time.DateTime), e.Actor, e.Action, e.Subject,
					orDash(strings.TrimSpace(string(e.Before))), orDash(strings.TrimSpace(string(e.After))))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().Uint64Var(&after, "after", 0, "entries after this sequence number")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many entries")
	return cmd
}

func newAPIKeysCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	keys := &cobra.Command{Use: "apikeys", Short: "Create, list and revoke admin API keys"}
	var role string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create an API key (its secret is printed once)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			if !api.ValidRole(role) {
				return usageError{fmt.Errorf("--role %q: want read or admin", role)}
			}
			k, err := c.CreateAPIKeyWithRole(cmd.Context(), args[0], role)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), k)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "id:     %s\nname:   %s\nrole:   %s\nsecret: %s\n(store the secret now: Sundial keeps only its hash)\n", k.ID, k.Name, k.Role, k.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", api.RoleAdmin, "read (devices, reports, policies, audit; no changes) or admin")
	list := &cobra.Command{
		Use: "list", Short: "List API keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			ks, err := c.APIKeys(cmd.Context())
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"api_keys": ks})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tREVOKED")
			for _, k := range ks {
				rev := "-"
				if !k.RevokedAt.IsZero() {
					rev = k.RevokedAt.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, api.EffectiveRole(k.Role), k.CreatedAt.Local().Format(time.DateTime), rev)
			}
			return tw.Flush()
		},
	}
	var force bool
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an API key (the key the CLI itself uses only with --force)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			revoke := c.RevokeAPIKey
			if force {
				revoke = c.RevokeOwnAPIKey
			}
			if err := revoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	revoke.Flags().BoolVar(&force, "force", false, "revoke the key even if it is the one this CLI uses")
	setAPIField(revoke, "force", "force=true")
	keys.AddCommand(create, list, revoke)
	return keys
}

func newCatalogCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	cat := &cobra.Command{Use: "catalog", Short: "The macOS release catalog (Apple's gdmf feed, SOFA, releases added by hand)"}
	list := &cobra.Command{
		Use: "list", Short: "List macOS releases Sundial knows", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			rels, err := c.Catalog(cmd.Context())
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"releases": rels})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tBUILD\tPOSTED\tDEVICES\tEXPLOITED CVES")
			for _, r := range rels {
				if r.Supplemental {
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", r.Version, r.Build, r.PostingDate, r.SupportedDevices, r.ActivelyExploit)
			}
			return tw.Flush()
		},
	}
	var feedURL string
	sync := &cobra.Command{
		Use: "sync FEED-URL", Short: "Make the server fetch and merge a gdmf (v2/pmv) or SOFA macOS feed", Args: cobra.MaximumNArgs(1),
		Example: "  sundial catalog sync https://gdmf.apple.com/v2/pmv\n  sundial catalog sync --feed https://sofafeed.macadmins.io/v1/macos_data_feed.json",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if feedURL != "" && feedURL != args[0] {
					return usageError{errors.New("give the feed once: as the argument or as --feed")}
				}
				feedURL = args[0]
			}
			// --url is Sundial's own address, as in every other command; a
			// URL with a path is a feed given to the wrong flag, and the
			// API key must not be sent to it.
			if u, err := url.Parse(cf.url); cf.url != "" && err == nil && strings.Trim(u.Path, "/") != "" {
				return usageError{fmt.Errorf("--url %s names the Sundial server, not the feed: give the feed as the argument (sundial catalog sync %s)", cf.url, cf.url)}
			}
			if feedURL == "" {
				return usageError{errors.New("give the feed URL (e.g. sundial catalog sync https://gdmf.apple.com/v2/pmv)")}
			}
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			stop := spinner(cmd, "syncing "+feedURL)
			res, err := c.SyncCatalog(cmd.Context(), feedURL)
			stop()
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s feed: %d releases, %d new\n", res.Kind, res.Releases, res.New)
			printHeldBack(cmd.OutOrStdout(), res.HeldBack)
			return nil
		},
	}
	sync.Flags().StringVar(&feedURL, "feed", "", "feed URL (or give it as the argument)")
	sync.Flags().SetAnnotation("feed", noEnv, []string{"a feed, not the server"})
	var rr api.ReleaseRequest
	add := &cobra.Command{
		Use: "add", Short: "Add a release by hand", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			if err := c.AddRelease(cmd.Context(), rr); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added macOS %s\n", rr.Version)
			return nil
		},
	}
	add.Flags().StringVar(&rr.Version, "version", "", "version, e.g. 15.4.1")
	add.Flags().StringVar(&rr.Build, "build", "", "build, e.g. 24E263")
	add.Flags().StringVar(&rr.PostingDate, "posted", "", "posting date YYYY-MM-DD")
	add.Flags().StringSliceVar(&rr.SupportedDevices, "devices", nil, "supported board IDs (comma separated); empty means every Mac")
	for flag, field := range map[string]string{"version": "version", "build": "build", "posted": "posting_date", "devices": "supported_devices"} {
		setAPIField(add, flag, field)
	}
	cat.AddCommand(list, sync, add, newCatalogRemoveCmd(getenv, cf), newCatalogStatusCmd(getenv, cf))
	return cat
}

// spinner shows progress on stderr while a long request runs, when stderr
// is a terminal; it returns the function that stops it.
func spinner(cmd *cobra.Command, what string) func() {
	f, ok := cmd.ErrOrStderr().(*os.File)
	if !ok {
		return func() {}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		frames := `|/-\`
		t := time.NewTicker(120 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(f, "\r%c %s", frames[i%len(frames)], what)
			select {
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// policyFlags adds the policy flags to cmd and returns the function that
// builds the policy from them.
func policyFlags(cmd *cobra.Command) func() (softwareupdate.Policy, error) {
	p := new(softwareupdate.Policy)
	var mode, delay string
	f := cmd.Flags()
	f.StringVar(&mode, "mode", "", "unmanaged, automatic or manual")
	f.StringVar(&delay, "delay", "", "automatic: days after Apple's release (1d 2d 1w 2w 3w 1mo 2mo 3mo or a number of days)")
	f.StringVar(&p.MinimumVersion, "version", "", "manual: minimum macOS version")
	f.StringVar(&p.Date, "date", "", "manual: deadline date YYYY-MM-DD")
	f.StringVar(&p.TimeOfDay, "time", "", "deadline time of day HH:MM")
	f.StringVar(&p.TimeZone, "tz", "", "IANA time zone, or device-local")
	f.StringVar(&p.FallbackTimeZone, "fallback-tz", "", "device-local: IANA zone used until a Mac's agent reports its own (required)")
	f.BoolVar(&p.AllowMajorUpgrades, "allow-major", false, "allow upgrades to a new major version")
	f.IntVar(&p.MinimumNoticeDays, "notice", 0, fmt.Sprintf("minimum notice in days, 1 to %d (default %d)", softwareupdate.MaxMinimumNoticeDays, softwareupdate.DefaultMinimumNoticeDays))
	f.IntVar(&p.RingOffsetDays, "ring", 0, "ring offset in days added to the deadline")
	f.IntVar(&p.OfflineGraceHours, "offline-grace-hours", 0, fmt.Sprintf("hours a Mac offline at its deadline has after its first check-in before the forced install, 1 to %d (default: the server's --offline-grace)", softwareupdate.MaxOfflineGraceHours))
	f.StringVar(&p.DetailsURL, "details-url", "", "page shown to users about the update")
	f.StringVar(&p.SetupMinimum, "setup-minimum", "", "ADE Macs below the target wait at Setup Assistant until they update: required or off (default: required for manual policies)")
	f.BoolVar(&p.AllowUnknownVersion, "allow-unknown-version", false, "manual: accept a --version the release catalog does not know")
	setCalendar := calendarFlags(cmd)
	for flag, field := range map[string]string{"mode": "mode", "delay": "delay_days", "version": "minimum_version", "date": "date",
		"time": "time_of_day", "tz": "time_zone", "allow-major": "allow_major_upgrades", "notice": "minimum_notice_days",
		"ring": "ring_offset_days", "details-url": "details_url", "allow-unknown-version": "allow_unknown_version", "fallback-tz": "fallback_time_zone", "setup-minimum": "setup_minimum", "offline-grace-hours": "offline_grace_hours"} {
		setAPIField(cmd, flag, field)
	}
	return func() (softwareupdate.Policy, error) {
		out := *p
		if f.Changed("notice") && p.MinimumNoticeDays < 1 {
			return out, usageError{fmt.Errorf("--notice %d: give 1 to %d days, or leave it out for the default %d", p.MinimumNoticeDays, softwareupdate.MaxMinimumNoticeDays, softwareupdate.DefaultMinimumNoticeDays)}
		}
		out.Mode = softwareupdate.Mode(mode)
		if delay != "" {
			n, err := softwareupdate.ParseDelay(delay)
			if err != nil {
				return out, usageError{fmt.Errorf("--delay: %w", err)}
			}
			out.DelayDays = n
		}
		if err := setCalendar(&out); err != nil {
			return out, err
		}
		return out, nil
	}
}

// manualDeadline is the instant of a manual policy's deadline in a named
// zone (zero otherwise), with a note when clocks there skip or repeat that
// wall time on that day (daylight saving), saying which instant is used.
func manualDeadline(p softwareupdate.Policy) (time.Time, string) {
	if p.Mode != softwareupdate.ModeManual || p.TimeZone == "" || p.TimeZone == softwareupdate.DeviceLocal {
		return time.Time{}, ""
	}
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		return time.Time{}, ""
	}
	day, err1 := time.Parse(time.DateOnly, p.Date)
	tod, err2 := time.Parse("15:04", p.TimeOfDay)
	if err1 != nil || err2 != nil {
		return time.Time{}, ""
	}
	y, m, d := day.Date()
	at, kind := softwareupdate.ResolveWallTime(y, m, d, tod.Hour(), tod.Minute(), loc)
	switch kind {
	case softwareupdate.WallTimeSkipped:
		return at, " does not exist (clocks spring forward over it); Sundial uses the same time after the jump"
	case softwareupdate.WallTimeRepeated:
		return at, " happens twice (clocks fall back); Sundial uses the first"
	}
	return at, ""
}

// zonesLine shows an instant in the policy's zone, the Mac's zone (when
// known and different) and UTC, so nobody has to convert a deadline.
func zonesLine(at time.Time, policyZone, macZone string) string {
	const layout = "2006-01-02 15:04 MST"
	var parts []string
	seen := map[string]bool{"UTC": true, "": true, softwareupdate.DeviceLocal: true}
	for _, z := range []struct{ name, what string }{{policyZone, "policy"}, {macZone, "Mac"}} {
		if seen[z.name] {
			continue
		}
		seen[z.name] = true
		if loc, err := time.LoadLocation(z.name); err == nil {
			parts = append(parts, fmt.Sprintf("%s (%s, %s)", at.In(loc).Format(layout), z.name, z.what))
		}
	}
	parts = append(parts, at.UTC().Format(layout))
	return strings.Join(parts, " = ")
}
