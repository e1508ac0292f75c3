package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newCatalogRemoveCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "remove VERSION", Short: "Remove a release added by hand (releases from Apple's feed or SOFA stay)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			rel, err := c.RemoveRelease(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"removed": rel})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed macOS %s\n", args[0])
			return nil
		},
	}
}

func newCatalogStatusCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "status", Short: "How current the release catalog is: its age and each feed's last check", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			st, err := c.CatalogStatus(cmd.Context())
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			w := cmd.OutOrStdout()
			age := time.Duration(st.AgeSeconds) * time.Second
			state := "current"
			if st.Stale {
				state = "STALE (older than 3 days)"
			}
			polling := "on"
			if !st.Polling {
				polling = "off"
			}
			fmt.Fprintf(w, "age:      %s, %s\nreleases: %d\npolling:  %s\n", age.Round(time.Minute), state, st.Releases, polling)
			if len(st.HeldBack) > 0 {
				fmt.Fprintf(w, "held back (posted in the future): %s\n", strings.Join(st.HeldBack, ", "))
			}
			kinds := make([]string, 0, len(st.Feeds))
			for k := range st.Feeds {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FEED\tURL\tCHECKED\tCHANGED\tFAILURES\tLAST ERROR")
			for _, k := range kinds {
				f := st.Feeds[k]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", k, f.URL, when(f.CheckedAt), when(f.ChangedAt), f.Failures, f.LastError)
			}
			return tw.Flush()
		},
	}
}

// printHeldBack lists the releases a feed dated in the future.
func printHeldBack(w io.Writer, held []string) {
	if len(held) > 0 {
		fmt.Fprintf(w, "held back until their posting day: %s\n", strings.Join(held, ", "))
	}
}

// when formats an optional time for tables.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}
