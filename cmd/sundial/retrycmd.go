package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// newDevicesRetryCmd is `sundial devices retry (DEVICE-ID | --group G)`:
// clear a Mac's surfaced failure and evaluate it now, or every failed Mac
// of a group. The server audits it.
func newDevicesRetryCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "retry (DEVICE-ID | --group GROUP)",
		Short: "Retry a failed Mac now (its next update step is queued at once), or every failed Mac of a group",
		Args: func(cmd *cobra.Command, args []string) error {
			if (group == "" && len(args) != 1) || (group != "" && len(args) != 0) {
				return usageError{errors.New("give one DEVICE-ID, or --group GROUP")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			var outs []scheduler.RetryOutcome
			if group != "" {
				res, err := c.RetryGroup(cmd.Context(), group)
				if err != nil {
					return err
				}
				outs = res.Devices
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), res)
				}
			} else {
				res, err := c.RetryDevice(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), res)
				}
				outs = []scheduler.RetryOutcome{*res}
			}
			if len(outs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no failed devices in group", group)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tPHASE\tSTEP\tCLEARED")
			for _, o := range outs {
				cleared := o.Cleared
				if cleared == "" {
					cleared = "(no failure: nothing to retry)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.DeviceID, orDash(string(o.Phase)), orDash(o.Step), cleared)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "retry every failed device of this group")
	return cmd
}
