package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// scopeFlags are --device and --group, exactly one of which names what an
// exception applies to.
type scopeFlags struct{ device, group string }

func (s *scopeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.device, "device", "", "the Mac's enrollment ID (UDID)")
	cmd.Flags().StringVar(&s.group, "group", "", "a group ID (applies to every Mac in it)")
}

func (s *scopeFlags) scope() (scheduler.ExceptionScope, string, error) {
	switch {
	case s.device != "" && s.group != "":
		return "", "", usageError{errors.New("give --device or --group, not both")}
	case s.device != "":
		return scheduler.ScopeDevice, s.device, nil
	case s.group != "":
		return scheduler.ScopeGroup, s.group, nil
	}
	return "", "", usageError{errors.New("--device or --group is required")}
}

// parseWhen reads an instant for the CLI: RFC 3339, "YYYY-MM-DD HH:MM" in
// the local zone, or a span from now such as "14d" or "36h".
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, time.Local); err == nil {
		return t, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d > 0 && d <= 366 {
			return now.AddDate(0, 0, d), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339, \"YYYY-MM-DD HH:MM\", or a span such as 14d or 36h", s)
}

func newExceptionsCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	exc := &cobra.Command{Use: "exceptions", Short: "Grant, list and revoke exceptions: more time for a Mac or a group, or no enforcement until a date"}

	var gs scopeFlags
	var exempt bool
	var deadline, expires, reason string
	grant := &cobra.Command{
		Use:   "grant (--device ID | --group ID) (--exempt | --deadline WHEN) --expires WHEN --reason TEXT",
		Short: "Grant an exception (replaces the one the Mac or group had)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scope, id, err := gs.scope()
			if err != nil {
				return err
			}
			now := time.Now()
			var ex softwareupdate.Exception
			ex.Exempt, ex.Reason = exempt, reason
			if ex.DeadlineOverride, err = parseWhen(deadline, now); err != nil {
				return usageError{fmt.Errorf("--deadline %w", err)}
			}
			if ex.Expires, err = parseWhen(expires, now); err != nil {
				return usageError{fmt.Errorf("--expires %w", err)}
			}
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			rec, err := c.SetException(cmd.Context(), scope, id, ex)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), rec)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s until %s\n", rec.Scope, rec.ID, describeException(rec.Exception),
				rec.Exception.Expires.Local().Format(time.DateTime))
			return nil
		},
	}
	gs.register(grant)
	grant.Flags().BoolVar(&exempt, "exempt", false, "enforce nothing until the exception expires")
	grant.Flags().StringVar(&deadline, "deadline", "", "a later personal deadline instead (not after --expires)")
	grant.Flags().StringVar(&expires, "expires", "", "when the exception ends (at most a year ahead)")
	grant.Flags().StringVar(&reason, "reason", "", "why (shown in reports and the audit log)")

	list := &cobra.Command{
		Use: "list", Short: "List exceptions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			recs, err := c.Exceptions(cmd.Context())
			if err != nil {
				return err
			}
			if recs == nil {
				recs = []scheduler.ExceptionRecord{}
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"exceptions": recs})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCOPE\tID\tKIND\tEXPIRES\tGRANTED BY\tREASON")
			for _, r := range recs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Scope, r.ID, describeException(r.Exception),
					r.Exception.Expires.Local().Format(time.DateTime), r.Exception.GrantedBy, r.Exception.Reason)
			}
			return tw.Flush()
		},
	}

	var rs scopeFlags
	revoke := &cobra.Command{
		Use: "revoke (--device ID | --group ID)", Short: "Revoke an exception: the policy applies again, with a fresh minimum notice", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scope, id, err := rs.scope()
			if err != nil {
				return err
			}
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			if err := c.ClearException(cmd.Context(), scope, id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked the exception of %s %s\n", scope, id)
			return nil
		},
	}
	rs.register(revoke)
	exc.AddCommand(grant, list, revoke)
	return exc
}

// describeException says what an exception does, for tables.
func describeException(e softwareupdate.Exception) string {
	if e.Exempt {
		return "exempt"
	}
	return "deadline " + e.DeadlineOverride.Local().Format("2006-01-02 15:04")
}
