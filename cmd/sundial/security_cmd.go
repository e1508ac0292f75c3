package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newDevicesAllowReenrollCmd is `sundial devices allow-reenroll`: an admin's
// time-limited approval for a Mac whose certificate is still valid and in
// use to re-enroll with a new identity (a wiped or reinstalled Mac that did
// not check out). The approval is audited and used up by one re-bind.
func newDevicesAllowReenrollCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "allow-reenroll DEVICE-ID",
		Short: "Let a Mac re-enroll with a new identity certificate within a time window (audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if window <= 0 || window > 7*24*time.Hour {
				return usageError{fmt.Errorf("--for %s: want a duration up to 168h", window)}
			}
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			until, err := c.AllowReenroll(cmd.Context(), args[0], window)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"id": args[0], "reenroll_until": until})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s may re-enroll with a new certificate until %s\n", args[0], until.Local().Format(time.DateTime+" MST"))
			return nil
		},
	}
	cmd.Flags().DurationVar(&window, "for", time.Hour, "how long the approval lasts (at most 168h)")
	return cmd
}

// newDevicesEnrollmentCmd is `sundial devices enrollment`: the bound
// certificate and the history of bindings, re-bindings and refusals.
func newDevicesEnrollmentCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "enrollment DEVICE-ID",
		Short: "Show a Mac's bound identity certificate and its re-enrollment history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			v, err := c.Enrollment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "device:       %s\ncertificate:  %s\n", v.ID, v.CertHash)
			if !v.CertNotAfter.IsZero() {
				fmt.Fprintf(w, "expires:      %s\n", v.CertNotAfter.Local().Format(time.DateTime+" MST"))
			}
			if !v.ReenrollUntil.IsZero() {
				fmt.Fprintf(w, "re-enroll:    allowed by %s until %s\n", v.ReenrollBy, v.ReenrollUntil.Local().Format(time.DateTime+" MST"))
			}
			if len(v.Events) == 0 {
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tEVENT\tOLD CERT\tNEW CERT\tREASON")
			for _, e := range v.Events {
				reason := e.Reason
				if e.Actor != "" {
					reason += " (" + e.Actor + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.Local().Format(time.DateTime), e.Kind, short(e.OldCert), short(e.NewCert), reason)
			}
			return tw.Flush()
		},
	}
}

// short abbreviates a certificate hash for tables.
func short(hash string) string {
	if len(hash) > 16 {
		return hash[:16]
	}
	return hash
}
