package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// newReadinessCmd is `sundial readiness [--group G] [--days N]`: which
// Macs will meet their deadline, and why the others will not.
func newReadinessCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	var group string
	var days int
	cmd := &cobra.Command{
		Use:   "readiness [--group ID] [--days N]",
		Short: "Forecast which Macs will meet their deadline: will comply on time, at risk (why) or will fail",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days < 1 || days > scheduler.MaxReadinessDays {
				return usageError{fmt.Errorf("--days must be 1 to %d", scheduler.MaxReadinessDays)}
			}
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			rep, err := c.Readiness(cmd.Context(), group, days)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Deadlines until %s: %d will comply on time, %d at risk, %d will fail\n\n", rep.Until.Local().Format(time.DateTime),
				rep.Counts[scheduler.ForecastOnTime], rep.Counts[scheduler.ForecastAtRisk], rep.Counts[scheduler.ForecastWillFail])
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tSERIAL\tGROUP\tTARGET\tDEADLINE\tFORECAST\tWHY")
			for _, m := range rep.Macs {
				deadline := "-"
				if !m.Deadline.IsZero() {
					deadline = m.Deadline.Local().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.DeviceID, m.SerialNumber, m.GroupID, m.Target, deadline, m.Forecast,
					strings.Join(m.Reasons, "; "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "only this group")
	cmd.Flags().IntVar(&days, "days", api.DefaultReadinessDays, "forecast the deadlines within this many days (and those passed)")
	return cmd
}
