package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// newPauseCmds returns `sundial pause` (with `pause list`) and
// `sundial resume`: the rollout kill switch.
func newPauseCmds(getenv func(string) string, cf *clientFlags) []*cobra.Command {
	var group, reason string
	pause := &cobra.Command{
		Use:   "pause [--group ID] --reason TEXT",
		Short: "Stop every forced update step (the whole fleet, or one group) until resume",
		Long: "Stop every forced update step: no new forced install, enforcement declarations withdrawn.\n" +
			"Takes effect at the next scheduler pass on every replica. Without --group the whole fleet is paused.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reason == "" {
				return usageError{errors.New("--reason is required (it is shown on every held Mac and in the audit log)")}
			}
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			p, err := c.Pause(cmd.Context(), group, reason)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "paused %s: %s\n", pauseScope(p.GroupID), p.Reason)
			return nil
		},
	}
	pause.Flags().StringVar(&group, "group", "", "pause only this group")
	pause.Flags().StringVar(&reason, "reason", "", "why (shown on every held Mac and in the audit log)")

	list := &cobra.Command{
		Use: "list", Short: "List the pauses in force", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			ps, err := c.Pauses(cmd.Context())
			if err != nil {
				return err
			}
			if ps == nil {
				ps = []scheduler.Pause{}
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"pauses": ps})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCOPE\tSINCE\tBY\tREASON")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", pauseScope(p.GroupID), p.At.Local().Format(time.DateTime), p.Actor, p.Reason)
			}
			return tw.Flush()
		},
	}
	pause.AddCommand(list)

	var rgroup string
	resume := &cobra.Command{
		Use:   "resume [--group ID]",
		Short: "End a pause: every Mac it held gets a fresh minimum notice",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			if err := c.Resume(cmd.Context(), rgroup); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "resumed %s: held Macs get a fresh minimum notice\n", pauseScope(rgroup))
			return nil
		},
	}
	resume.Flags().StringVar(&rgroup, "group", "", "resume this group (without: the fleet-wide pause)")
	return []*cobra.Command{pause, resume}
}

func pauseScope(group string) string {
	if group == scheduler.FleetPause {
		return "the fleet"
	}
	return "group " + group
}
