package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// newReportCmd is `sundial report compliance [-o table|json|csv]`.
func newReportCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	report := &cobra.Command{Use: "report", Short: "Fleet reports"}
	compliance := &cobra.Command{
		Use:   "compliance",
		Short: "Show the fleet's update compliance: phases, OS versions, Macs past deadline, failures, deadlines ahead (-o csv: one row per Mac)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// csv is this command's own output format; the shared client
			// flags know table and json.
			format := cf.output
			if format == "csv" {
				cf.output = "table"
				defer func() { cf.output = format }()
			}
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			switch format {
			case "csv":
				_, err := c.ComplianceCSV(ctx, w)
				return err
			case "json":
				rep, err := c.ComplianceReport(ctx, true)
				if err != nil {
					return err
				}
				return writeJSON(w, rep)
			}
			rep, err := c.ComplianceReport(ctx, false)
			if err != nil {
				return err
			}
			return printComplianceReport(w, rep)
		},
	}
	report.AddCommand(compliance, newEvidenceCmd(getenv, cf))
	return report
}

// reportPhases is the order phases are shown in.
var reportPhases = []softwareupdate.Phase{
	softwareupdate.PhaseCompliant, softwareupdate.PhasePending, softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown,
	softwareupdate.PhaseEnforce, softwareupdate.PhasePaused, softwareupdate.PhaseFailed, softwareupdate.PhaseIneligible, softwareupdate.PhaseExempt, softwareupdate.PhaseUnsupported,
	softwareupdate.PhaseUnknown, softwareupdate.PhaseUnmanaged, scheduler.PhaseUnevaluated,
}

// printComplianceReport writes a readable summary of rep.
func printComplianceReport(w io.Writer, rep *scheduler.ComplianceReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	pct := 0.0
	if rep.Managed > 0 {
		pct = 100 * float64(rep.Compliant) / float64(rep.Managed)
	}
	fmt.Fprintf(tw, "Compliance at %s: %d of %d managed Macs compliant (%.0f%%), %d Macs in all\n\n",
		rep.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"), rep.Compliant, rep.Managed, pct, rep.Devices)

	fmt.Fprintln(tw, "PHASE\tMACS")
	for _, p := range reportPhases {
		if n := rep.ByPhase[p]; n > 0 {
			fmt.Fprintf(tw, "%s\t%d\n", p, n)
		}
	}
	fmt.Fprintln(tw, "\nOS VERSION\tMACS")
	vers := make([]string, 0, len(rep.ByOSVersion))
	for v := range rep.ByOSVersion {
		vers = append(vers, v)
	}
	reportSortVersions(vers)
	for _, v := range vers {
		fmt.Fprintf(tw, "%s\t%d\n", v, rep.ByOSVersion[v])
	}

	if len(rep.PastDeadline) > 0 {
		fmt.Fprintln(tw, "\nPAST DEADLINE\tGROUP\tOS\tTARGET\tDEADLINE\tPHASE")
		for _, d := range rep.PastDeadline {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", reportName(d), d.GroupID, reportDash(d.OSVersion), reportDash(d.Target), d.Deadline.UTC().Format("2006-01-02 15:04"), d.Phase)
		}
	}
	if len(rep.Unsupported) > 0 {
		fmt.Fprintln(tw, "\nUNSUPPORTED\tGROUP\tOS\tREASON")
		for _, d := range rep.Unsupported {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", reportName(d), d.GroupID, reportDash(d.OSVersion), d.Reason)
		}
	}
	if len(rep.Ineligible) > 0 {
		fmt.Fprintln(tw, "\nINELIGIBLE\tGROUP\tOS\tREASON")
		for _, d := range rep.Ineligible {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", reportName(d), d.GroupID, reportDash(d.OSVersion), d.Reason)
		}
	}
	if len(rep.Deferring) > 0 {
		fmt.Fprintln(tw, "\nDEFERRING\tGROUP\tTARGET\tDEADLINE\tNOTNOW\tSINCE")
		for _, d := range rep.Deferring {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", reportName(d), d.GroupID, reportDash(d.Target),
				d.Deadline.UTC().Format("2006-01-02 15:04"), d.NotNowCount, d.NotNowSince.UTC().Format("2006-01-02 15:04"))
		}
	}
	if len(rep.NeedsBootstrapToken) > 0 {
		fmt.Fprintln(tw, "\nNEEDS BOOTSTRAP TOKEN\tGROUP\tTARGET\tDEADLINE\tPHASE")
		for _, d := range rep.NeedsBootstrapToken {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", reportName(d), d.GroupID, reportDash(d.Target), d.Deadline.UTC().Format("2006-01-02 15:04"), d.Phase)
		}
	}
	if len(rep.HeldRings) > 0 {
		fmt.Fprintln(tw, "\nHELD BY A RING GATE\tMACS\tREASON")
		for _, h := range rep.HeldRings {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", h.GroupID, h.Macs, h.Reason)
		}
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintln(tw, "\nFAILURE\tMACS")
		for _, f := range rep.Failures {
			fmt.Fprintf(tw, "%s\t%d\n", f.Reason, f.Count)
		}
	}
	var ahead []scheduler.DayCount
	for _, d := range rep.DeadlinesAhead {
		if d.Count > 0 {
			ahead = append(ahead, d)
		}
	}
	if len(ahead) > 0 {
		fmt.Fprintf(tw, "\nDEADLINES AHEAD (%d DAYS)\tMACS\n", scheduler.DeadlineDays)
		for _, d := range ahead {
			fmt.Fprintf(tw, "%s\t%d\n", d.Date, d.Count)
		}
	}
	if len(rep.TimeToCompliance) > 0 {
		fmt.Fprintln(tw, "\nTARGET\tREACHED\tOUTSTANDING\tMEDIAN\tP90")
		for _, t := range rep.TimeToCompliance {
			med, p90 := "-", "-"
			if t.Reached > 0 {
				med, p90 = reportDuration(t.Median()), reportDuration(t.P90())
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", t.Target, t.Reached, t.Outstanding, med, p90)
		}
	}
	return tw.Flush()
}

func reportName(d scheduler.DeviceBrief) string {
	if d.SerialNumber != "" {
		return d.SerialNumber
	}
	return d.DeviceID
}

func reportDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// reportDuration renders a duration in days and hours ("3d 4h", "5h 10m").
func reportDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	m := (d - h*time.Hour) / time.Minute
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

// reportSortVersions sorts OS versions newest first; unparsable ones
// ("unknown") go last.
func reportSortVersions(vs []string) {
	slices.SortFunc(vs, func(a, b string) int {
		va, ea := catalog.ParseVersion(a)
		vb, eb := catalog.ParseVersion(b)
		switch {
		case ea == nil && eb == nil:
			return vb.Compare(va)
		case ea == nil:
			return -1
		case eb == nil:
			return 1
		}
		return strings.Compare(a, b)
	})
}
