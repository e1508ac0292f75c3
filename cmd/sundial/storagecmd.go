package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/storage/bolt"
	"github.com/sundial-mdm/sundial/storage/migrate"
	"github.com/sundial-mdm/sundial/storage/pgsql"
)

func newStorageCmd(getenv func(string) string) *cobra.Command {
	st := &cobra.Command{Use: "storage", Short: "Move an installation between storage backends"}
	var from, to string
	mig := &cobra.Command{
		Use:   "migrate --from bolt:PATH --to pgsql:DSN",
		Short: "Copy an installation from a bbolt file into an empty PostgreSQL database, then verify counts per kind",
		Long: `migrate copies devices, identities, command queues and results, push and agent
state, declarations, groups, policies, exceptions, update states and the
audit log, in one PostgreSQL transaction. Stop the Sundial server first (the
bbolt file is locked while it runs) and start no replica on the target
until the migration has finished. The target must be empty.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, ok := strings.CutPrefix(from, "bolt:")
			if !ok || path == "" {
				return usageError{errors.New("--from must be bolt:PATH")}
			}
			dsn, ok := strings.CutPrefix(to, "pgsql:")
			if !ok || dsn == "" {
				return usageError{errors.New("--to must be pgsql:DSN")}
			}
			src, err := bolt.Open(path, nil)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := pgsql.Open(cmd.Context(), dsn)
			if err != nil {
				return err
			}
			defer dst.Close()
			bar := newProgress(cmd.ErrOrStderr())
			rep, err := migrate.Run(cmd.Context(), src, dst, bar.update)
			bar.done()
			fmt.Fprint(cmd.OutOrStdout(), rep.String())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "migration complete: every count matches")
			return nil
		},
	}
	mig.Flags().StringVar(&from, "from", "", "source, bolt:PATH")
	mig.Flags().StringVar(&to, "to", "", "target, pgsql:DSN")
	st.AddCommand(mig)
	return st
}

// progress prints one updating line per kind.
type progress struct {
	w    io.Writer
	kind string
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) update(kind string, done, total int) {
	if kind != p.kind && p.kind != "" {
		fmt.Fprintln(p.w)
	}
	p.kind = kind
	width := 30
	filled := width
	if total > 0 {
		filled = done * width / total
	}
	fmt.Fprintf(p.w, "\r%-14s [%s%s] %d/%d", kind, strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
}

func (p *progress) done() {
	if p.kind != "" {
		fmt.Fprintln(p.w)
	}
}
