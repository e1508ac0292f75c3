// Package pgsql is Sundial's PostgreSQL storage backend, for several Sundial
// replicas sharing one database. It passes the same conformance suite
// (storagetest) as the embedded bbolt backend.
//
// The schema is created and upgraded by the migrations embedded in the
// binary (migrations/*.sql), applied in order by Open in one transaction and
// recorded in the sundial_schema_migrations table. A binary refuses a
// database whose schema is newer than it knows (ErrSchemaTooNew).
//
// Tables:
//
//	devices        one row per enrollment: check-in data, push token and
//	               push state (the re-push due index is a partial index on
//	               next_repush), inventory as JSON
//	commands       every command queued, with status, history and result
//	command_queue  the pending commands, FIFO by a bigserial sequence
//	api_keys       admin API keys by hash
//	challenges     one-time SCEP challenges by hash
//
// Concurrency: two connects of one device may land on different replicas at
// the same time. A report removes (or marks NotNow) its command's queue row
// with a row-locking write, so of two reports of one command only one is
// recorded; the next command is picked with SELECT ... FOR UPDATE SKIP
// LOCKED, so a command another connect is working on at that moment is not
// handed out again, and every command stays queued until a final report.
package pgsql

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sundial-mdm/sundial/storage"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned by Open when the database was migrated by a
// newer Sundial than this one.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary supports")

// Store is the PostgreSQL backend. It is safe for concurrent use, also by
// several processes on one database.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

var _ storage.All = (*Store)(nil)

// Option tunes Open.
type Option func(*options)

type options struct {
	log      *slog.Logger
	poolConf []func(*pgxpool.Config)
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithPoolConfig lets the caller adjust the pool configuration parsed from
// the DSN before the pool is created (pool size, runtime parameters such as
// search_path, tracing).
func WithPoolConfig(fn func(*pgxpool.Config)) Option {
	return func(o *options) { o.poolConf = append(o.poolConf, fn) }
}

// Open connects to the database named by dsn (a postgres:// URL or a
// keyword/value string), applies the pending schema migrations and returns
// the store. It fails with ErrSchemaTooNew if the database is ahead of this
// binary.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse postgres dsn: %w", err) // pgconn redacts the password
	}
	for _, fn := range o.poolConf {
		fn(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	s := &Store{pool: pool, log: o.log}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads migrations/NNNN_name.sql from fsys. Versions must
// count up from 1 without gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []migration
	for i, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", base)
		}
		if v != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d (versions count up from 1)", base, v, i+1)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", base, err)
		}
		out = append(out, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	if len(out) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return out, nil
}

// SchemaVersion is the schema version this binary migrates databases to.
func SchemaVersion() int {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrate applies the pending migrations in one transaction. A
// transaction-scoped advisory lock (per schema) makes concurrent first
// starts of several replicas wait for each other instead of racing.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return fmt.Errorf("load schema migrations: %w", err)
	}
	latest := ms[len(ms)-1].version
	var from int
	var applied []string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('sundial_schema_migrations ' || coalesce(current_schema(), ''), 0))`); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS sundial_schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create sundial_schema_migrations: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM sundial_schema_migrations`).Scan(&from); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if from > latest {
			return fmt.Errorf("%w: the database is at version %d, this binary knows versions up to %d (upgrade sundial)", ErrSchemaTooNew, from, latest)
		}
		applied = applied[:0]
		for _, m := range ms {
			if m.version <= from {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO sundial_schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
			applied = append(applied, m.name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	if len(applied) > 0 {
		s.log.Info("applied schema migrations", "from_version", from, "to_version", latest, "migrations", applied)
	}
	return nil
}

// querier is what a pool and a transaction share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// maxAttempts bounds the retries of a transaction that PostgreSQL aborted
// for a deadlock or a serialization failure.
const maxAttempts = 5

// retryable reports whether err is a transient conflict worth retrying.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// retry runs fn again while it fails with a transient conflict. fn must
// reset whatever it reports on each run.
func retry(ctx context.Context, fn func() error) error {
	var err error
	for range maxAttempts {
		if err = fn(); !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// inTx runs fn in a transaction, retrying on transient conflicts.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return retry(ctx, func() error { return pgx.BeginFunc(ctx, s.pool, fn) })
}

// uniqueViolation reports whether err is a unique violation, of the named
// constraint if constraint is not empty.
func uniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.ConstraintName == constraint)
}

// foreignKeyViolation reports whether err is a foreign key violation.
func foreignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// ts is t as a nullable timestamptz: the zero time is NULL.
func ts(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// timeDst scans a nullable timestamptz into a time.Time: NULL is the zero
// time, anything else is in UTC (the suite and callers compare with ==).
type timeDst struct{ dst *time.Time }

func scanTime(dst *time.Time) *timeDst { return &timeDst{dst} }

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (s *timeDst) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		*s.dst = time.Time{}
		return nil
	}
	*s.dst = v.Time.UTC()
	return nil
}

// limitArg is a LIMIT parameter: limit <= 0 means no limit (NULL).
func limitArg(limit int) any {
	if limit <= 0 {
		return nil
	}
	return int64(limit)
}

// parentID is the device enrollment of a user channel ID ("<dev>:<user>").
func parentID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		return id[:i]
	}
	return id
}

// dedupe returns ids without repeats, in first-seen order.
func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}
