package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/storage/bolt"
	"github.com/sundial-mdm/sundial/storage/migrate"
	"github.com/sundial-mdm/sundial/storage/pgsql"
)

func newStorageCmd(getenv func(string) string) *cobra.Command {
	st := &cobra.Command{Use: "storage", Short: "Check, compact and migrate the database"}
	var from, to string
	mig := &cobra.Command{
		Use:   "migrate --from bolt:PATH --to pgsql:DSN",
		Short: "Copy an installation from a bbolt file into an empty PostgreSQL database, then verify counts per kind",
		Long: `migrate copies devices, identities, command queues and results, push and agent
state, declarations, groups, policies, exceptions, update states, the audit
log, the release catalog, enrollment guards, the Apple Business Manager data,
rollout pauses, ring plans, webhook endpoints, pending deliveries and the
once-ledger, compliance and evidence days and forecast marks (sealed secrets
stay sealed; docs/operations.md lists what is not copied), in one
PostgreSQL transaction. Stop the Sundial server first (the
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
			// bolt.Open creates a missing file: an empty source would
			// "migrate" nothing and report every count matching.
			if fi, err := os.Stat(path); err != nil {
				return fmt.Errorf("--from: %w", err)
			} else if fi.Size() == 0 {
				return usageError{fmt.Errorf("--from %s is empty: not a Sundial database", path)}
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
			if err == nil {
				var cat []migrate.KindReport
				cat, err = migrate.CopyCatalog(cmd.Context(), src, dst, time.Now())
				rep.Kinds = append(rep.Kinds, cat...)
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.String())
			if errors.Is(err, migrate.ErrCountMismatch) && len(rep.Differences) > 0 {
				// The report above lists the differences: say it once.
				return &failedError{msg: "migration failed: the counts above differ; nothing was written to the target"}
			}
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
	st.AddCommand(newCompactCmd(), newStorageCheckCmd())
	return st
}

func newStorageCheckCmd() *cobra.Command {
	var file, dataDir string
	cmd := &cobra.Command{
		Use:   "check [--file PATH | --data-dir DIR]",
		Short: "Check a bbolt database file for damage (the server must be stopped; or check a backup)",
		Long: `check reads the file's meta pages, compares its size with what they say it
holds, reads every bucket and key, and runs bbolt's consistency check
(every page reachable once, free pages not in use). It exits 0 when the
file is sound, 1 when it is damaged (with how to restore from a backup) or
in use. The server runs the first two checks at every start and refuses a
damaged file, and reads every key in the background after start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				file = filepath.Join(dataDir, dbFile)
			}
			if _, err := os.Stat(file); err != nil {
				return err
			}
			rep, err := bolt.Check(cmd.Context(), file)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.String())
			if len(rep.Problems) > 0 {
				return &failedError{msg: fmt.Sprintf("%s is damaged.\n%s", file, bolt.RestoreHint(file))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the database file (default: sundial.db in --data-dir)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "./sundial-data", "the server's data directory")
	return cmd
}

func newCompactCmd() *cobra.Command {
	var from, to string
	var pageKB int
	cmd := &cobra.Command{
		Use:   "compact --from PATH --to PATH",
		Short: "Copy a bbolt database into a new, compacted file (for example to give an older file 16 KB pages)",
		Long: `compact copies every bucket, key and sequence of a bbolt database file into a
new file with full pages of --page-kb KB (default 16, the page size of new
files; files created by versions before it have 4 KB pages). Stop the
Sundial server first: the source must not be in use. The copy is written
beside the target, checked key count for key count against the source,
then renamed into place. To switch, stop the server, move the copy over
<data-dir>/sundial.db and start it again; keep the original until the
server runs on the copy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usageError{errors.New("--from and --to are required")}
			}
			rep, err := bolt.Compact(from, to, pageKB<<10)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the database file to copy (the server must be stopped)")
	cmd.Flags().StringVar(&to, "to", "", "the new file (must not exist)")
	cmd.Flags().IntVar(&pageKB, "page-kb", bolt.DefaultPageSize>>10, "page size of the copy, KB: 4, 8, 16, 32 or 64")
	return cmd
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
