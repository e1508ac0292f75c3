package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/api"
)

// newRingsCmd returns `sundial rings`: health-gated ring plans (set, show,
// promote, remove).
func newRingsCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	rings := &cobra.Command{Use: "rings", Short: "Order groups into health-gated rings: a ring's notice starts once the ring before it is healthy"}

	var groups []string
	var minCompliant, maxFailed int
	maxWait := daysValue(7 * 24 * time.Hour)
	set := &cobra.Command{
		Use:   "set PLAN --groups G1,G2[,G3...] [--min-compliant 90] [--max-failed 2] [--max-wait 7d]",
		Short: "Create or replace a ring plan (the groups in rollout order)",
		Long: "Create or replace a ring plan. The notice of each group after the first starts only when the group\n" +
			"before it has at least --min-compliant % of its eligible Macs on the target and at most --max-failed %\n" +
			"failed. After --max-wait with the gate shut, only `sundial rings promote` starts the next ring.\n" +
			"A group kept from the old plan keeps its progress.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(groups) == 0 {
				return usageError{errors.New("--groups is required: the groups in rollout order, e.g. --groups pilot,broad")}
			}
			b := api.RingPlanBody{Groups: groups}
			f := cmd.Flags()
			if f.Changed("min-compliant") {
				b.Gate.MinCompliantPercent = &minCompliant
			}
			if f.Changed("max-failed") {
				b.Gate.MaxFailedPercent = &maxFailed
			}
			if f.Changed("max-wait") {
				w := time.Duration(maxWait)
				if w%time.Hour != 0 {
					return usageError{fmt.Errorf("--max-wait %s: want whole hours or days, e.g. 36h or 7d", &maxWait)}
				}
				h := int(w / time.Hour)
				b.Gate.MaxWaitHours = &h
			}
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			v, err := c.SetRingPlan(cmd.Context(), args[0], b)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ring plan %s: %s (%s)\n", v.ID, strings.Join(v.Groups, " → "), gateText(v.Gate))
			return nil
		},
	}
	set.Flags().StringSliceVar(&groups, "groups", nil, "the groups in rollout order, comma-separated (2 to 16)")
	set.Flags().IntVar(&minCompliant, "min-compliant", 90, "percent of a ring's eligible Macs that must be on the target")
	set.Flags().IntVar(&maxFailed, "max-failed", 2, "percent of a ring's eligible Macs that may have failed")
	set.Flags().Var(&maxWait, "max-wait", "how long a gate waits before only a promotion opens it (1h to 30d)")
	setAPIField(set, "min-compliant", "min_compliant_percent")
	setAPIField(set, "max-failed", "max_failed_percent")
	setAPIField(set, "max-wait", "max_wait_hours")

	show := &cobra.Command{
		Use:   "show [PLAN]",
		Short: "Show ring plans: each ring's state, counts and why it is held",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			var plans []api.RingPlanView
			if len(args) == 1 {
				p, err := c.RingPlan(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				plans = []api.RingPlanView{*p}
			} else if plans, err = c.RingPlans(cmd.Context()); err != nil {
				return err
			}
			if plans == nil {
				plans = []api.RingPlanView{}
			}
			if cf.output == "json" {
				if len(args) == 1 {
					return writeJSON(cmd.OutOrStdout(), plans[0])
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"plans": plans})
			}
			return writeRings(cmd.OutOrStdout(), plans)
		},
	}

	promote := &cobra.Command{
		Use:   "promote PLAN GROUP",
		Short: "Start a held ring by hand, whatever the health gate in front of it says (audited)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			v, err := c.PromoteRing(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "promoted ring %s of plan %s: its notice starts at the next scheduler pass\n", args[1], v.ID)
			return nil
		},
	}

	remove := &cobra.Command{
		Use:   "remove PLAN",
		Short: "Remove a ring plan: its groups are no longer gated (audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			if err := c.DeleteRingPlan(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed ring plan %s: its held rings start their notice at the next scheduler pass\n", args[0])
			return nil
		},
	}
	rings.AddCommand(set, show, promote, remove)
	return rings
}

func gateText(g api.RingGateSettings) string {
	w := daysValue(time.Duration(g.MaxWaitHours) * time.Hour)
	return fmt.Sprintf("gate ≥ %d %% compliant, ≤ %d %% failed, max wait %s", g.MinCompliantPercent, g.MaxFailedPercent, &w)
}

// writeRings prints one row per ring and, under them, the plan's gate.
func writeRings(w io.Writer, plans []api.RingPlanView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLAN\tRING\tSTATE\tSTARTED\tCOMPLIANT\tFAILED\tWHY")
	for _, p := range plans {
		for i, r := range p.Rings {
			state, why := ringState(p, r, i == len(p.Rings)-1)
			started := "-"
			if r.Started != nil {
				started = r.Started.Local().Format(time.DateTime)
			}
			compliant, failed := "-", "-"
			if r.Tally != nil {
				compliant = fmt.Sprintf("%d/%d", r.Tally.Compliant, r.Tally.Eligible)
				failed = fmt.Sprint(r.Tally.Failed)
			}
			plan := ""
			if i == 0 {
				plan = p.ID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", plan, r.Group, state, started, compliant, failed, why)
		}
		fmt.Fprintf(tw, "\t\t\t\t\t\t(%s)\n", gateText(p.Gate))
	}
	return tw.Flush()
}

// ringState names a ring's state and says why; a started ring's gate
// concerns the ring after it, so the last ring's is not shown.
func ringState(p api.RingPlanView, r api.RingView, last bool) (state, why string) {
	switch {
	case !p.Evaluated && r.Started != nil:
		return "started", "gate not evaluated since the last change"
	case !p.Evaluated:
		return "waiting", "gate not evaluated since the last change"
	case r.NeedsPromotion:
		return "needs promotion", "held by " + r.HeldBy + ": " + r.Reason + " (sundial rings promote " + p.ID + " " + r.Group + ")"
	case r.Held:
		return "held", "held by " + r.HeldBy + ": " + r.Reason
	case last:
		return "started", ""
	case r.Promoted != nil:
		return "started", "gate to the next ring opened by hand by " + r.Promoted.Actor
	case r.Gate != nil:
		return "started", "gate: " + r.Gate.Reason
	}
	return "started", ""
}
