package pgsql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

// dsnEnv names the PostgreSQL the tests run against, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable
const dsnEnv = "SUNDIAL_PGSQL_TEST_DSN"

func testDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		tb.Skipf("%s is not set: skipping the PostgreSQL tests (e.g. %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", dsnEnv, dsnEnv)
	}
	return dsn
}

// testDB is an empty schema of its own in the test database, dropped at
// cleanup, so that tests and packages running in parallel never meet.
type testDB struct {
	dsn    string
	schema string
}

func newTestDB(tb testing.TB) testDB {
	tb.Helper()
	dsn := testDSN(tb)
	b := make([]byte, 8)
	rand.Read(b)
	db := testDB{dsn: dsn, schema: "sundial_test_" + hex.EncodeToString(b)}
	db.exec(tb, `CREATE SCHEMA `+pgx.Identifier{db.schema}.Sanitize())
	tb.Cleanup(func() { db.exec(tb, `DROP SCHEMA `+pgx.Identifier{db.schema}.Sanitize()+` CASCADE`) })
	return db
}

// exec runs sql on a connection of its own, in the test schema.
func (db testDB) exec(tb testing.TB, sql string, args ...any) {
	tb.Helper()
	conn := db.conn(tb)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// conn is a plain connection in the test schema; the caller closes it.
func (db testDB) conn(tb testing.TB) *pgx.Conn {
	tb.Helper()
	cfg, err := pgx.ParseConfig(db.dsn)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = db.schema
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return conn
}

// option points a store at the test schema and names its connections
// after it (to find them in pg_stat_activity).
func (db testDB) option() Option {
	return WithPoolConfig(func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["search_path"] = db.schema
		c.ConnConfig.RuntimeParams["application_name"] = db.schema
	})
}

func (db testDB) open(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(context.Background(), db.dsn, db.option())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	testDSN(t)
	storagetest.Run(t, func(t *testing.T) storage.All {
		db := newTestDB(t)
		s, err := Open(t.Context(), db.dsn, db.option())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenBadDSN(t *testing.T) {
	_, err := Open(t.Context(), "postgres://u:secret@127.0.0.1:5432/x?sslmode=bogus")
	if err == nil {
		t.Fatal("Open with a bad DSN succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fs      fstest.MapFS
		want    []int
		wantErr string
	}{
		{"ordered", fstest.MapFS{"migrations/0002_b.sql": file("B"), "migrations/0001_a.sql": file("A")}, []int{1, 2}, ""},
		{"gap", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0003_c.sql": file("C")}, nil, "want 2"},
		{"bad name", fstest.MapFS{"migrations/first.sql": file("A")}, nil, "NNNN_name.sql"},
		{"zero", fstest.MapFS{"migrations/0000_a.sql": file("A")}, nil, "NNNN_name.sql"},
		{"empty", fstest.MapFS{}, nil, "no migrations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMigrations(tc.fs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var have []int
			for _, m := range ms {
				have = append(have, m.version)
			}
			if fmt.Sprint(have) != fmt.Sprint(tc.want) {
				t.Errorf("versions = %v, want %v", have, tc.want)
			}
		})
	}
	ms, err := loadMigrations(migrationFiles)
	if err != nil || len(ms) == 0 || SchemaVersion() != ms[len(ms)-1].version {
		t.Errorf("embedded migrations: %d, %v; SchemaVersion = %d", len(ms), err, SchemaVersion())
	}
}

// recordedVersions lists the rows of sundial_schema_migrations.
func recordedVersions(t *testing.T, db testDB) []string {
	t.Helper()
	conn := db.conn(t)
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT version || ':' || name FROM sundial_schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return have
}

func TestMigrationsRecorded(t *testing.T) {
	db := newTestDB(t)
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range ms {
		want = append(want, strconv.Itoa(m.version)+":"+m.name)
	}
	db.open(t).Close()
	if have := recordedVersions(t, db); fmt.Sprint(have) != fmt.Sprint(want) {
		t.Errorf("recorded = %v, want %v", have, want)
	}
	// A second start applies nothing and keeps the data.
	s := db.open(t)
	if err := s.PutAPIKey(t.Context(), storage.APIKey{ID: "k", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = db.open(t)
	if _, err := s.APIKeyByHash(t.Context(), "h"); err != nil {
		t.Errorf("after reopen: %v", err)
	}
	if have := recordedVersions(t, db); fmt.Sprint(have) != fmt.Sprint(want) {
		t.Errorf("recorded after reopen = %v, want %v", have, want)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	db := newTestDB(t)
	db.open(t).Close()
	newer := SchemaVersion() + 1
	db.exec(t, `INSERT INTO sundial_schema_migrations (version, name) VALUES ($1, 'from_the_future')`, newer)
	before := recordedVersions(t, db)
	_, err := Open(t.Context(), db.dsn, db.option())
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open err = %v, want ErrSchemaTooNew", err)
	}
	for _, v := range []int{newer, SchemaVersion()} {
		if !strings.Contains(err.Error(), strconv.Itoa(v)) {
			t.Errorf("error %q does not name version %d", err, v)
		}
	}
	if after := recordedVersions(t, db); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused Open changed the recorded versions: %v -> %v", before, after)
	}
}

func TestConcurrentFirstStart(t *testing.T) {
	db := newTestDB(t)
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			s, err := Open(t.Context(), db.dsn, db.option())
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	if have := recordedVersions(t, db); len(have) != SchemaVersion() {
		t.Errorf("recorded = %v", have)
	}
}

// TestBatchIsOneTransaction checks what StoreReportAndNext relies on: a
// pipelined batch runs as one implicit transaction, so a failing statement
// undoes the ones before it.
func TestBatchIsOneTransaction(t *testing.T) {
	s := newTestDB(t).open(t)
	var b pgx.Batch
	b.Queue(`INSERT INTO api_keys (id, hash) VALUES ('k', 'h')`)
	b.Queue(`SELECT 1 / 0`)
	if err := s.pool.SendBatch(t.Context(), &b).Close(); err == nil {
		t.Fatal("batch with a division by zero succeeded")
	}
	if _, err := s.APIKeyByHash(t.Context(), "h"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("first statement of a failed batch was kept: %v", err)
	}
}

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func enroll(tb testing.TB, s *Store, udid string) {
	tb.Helper()
	ctx := context.Background()
	msg := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: udid}, MessageType: mdm.Authenticate, Topic: "com.apple.mgmt.External.test"}
	if err := s.Authenticate(ctx, udid, msg, "cert-"+udid, t0); err != nil {
		tb.Fatal(err)
	}
	msg.MessageType, msg.Token, msg.PushMagic = mdm.TokenUpdate, []byte("0123456789abcdef0123456789abcdef"), "magic"
	if _, err := s.TokenUpdate(ctx, udid, msg, nil, t0); err != nil {
		tb.Fatal(err)
	}
}

func queue(tb testing.TB, s *Store, id string, n int) []*mdm.Command {
	tb.Helper()
	var out []*mdm.Command
	for i := range n {
		c, err := mdm.NewCommand(fmt.Sprintf("Type%d", i), nil)
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.Enqueue(context.Background(), []string{id}, c, t0); err != nil {
			tb.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func report(id, uuid string, st mdm.Status) *mdm.Report {
	return &mdm.Report{Enrollment: mdm.Enrollment{UDID: id}, CommandUUID: uuid, Status: st}
}

func uuidOf(c *mdm.Command) string {
	if c == nil {
		return "<none>"
	}
	return c.UUID
}

// waitForLockWait waits until a connection of the store under test is
// blocked on a row lock.
func waitForLockWait(t *testing.T, db testDB) {
	t.Helper()
	conn := db.conn(t)
	defer conn.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, db.schema).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no connection of the store waited for the row lock")
}

// TestRowLocks plays a second replica by hand: while it holds a command in
// an open transaction, a connect of the same device is not handed that
// command, and a report of it waits and is then recorded only once.
func TestRowLocks(t *testing.T) {
	db := newTestDB(t)
	s := db.open(t)
	ctx := t.Context()
	const dev = "AAA-1"
	enroll(t, s, dev)
	cmds := queue(t, s, dev, 2)
	a, b := cmds[0], cmds[1]

	other := db.conn(t)
	defer other.Close(context.Background())
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	var held string
	if err := tx.QueryRow(ctx, nextSQL, dev).Scan(&held, new(string), new([]byte)); err != nil || held != a.UUID {
		t.Fatalf("other replica locked %s, %v; want %s", held, err, a.UUID)
	}

	// The held command is not offered; the next one is, without waiting.
	idleCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, c, err := s.StoreReportAndNext(idleCtx, dev, report(dev, "", mdm.Idle), nil, t0)
	if err != nil || uuidOf(c) != b.UUID {
		t.Fatalf("Idle while %s is held = %s, %v; want %s", a.UUID, uuidOf(c), err, b.UUID)
	}

	// The other replica records A's acknowledgement; a duplicate report of A
	// on this replica waits for it, then records nothing.
	ack, err := historyJSON(mdm.StatusEvent{Status: string(mdm.Acknowledged), At: t0})
	if err != nil {
		t.Fatal(err)
	}
	var rt string
	if err := tx.QueryRow(ctx, finishSQL, dev, a.UUID, string(mdm.Acknowledged), ts(t0), ack, nil, []byte("<plist/>")).Scan(&rt); err != nil || rt != a.RequestType {
		t.Fatalf("other replica's ack = %q, %v", rt, err)
	}
	type result struct {
		rt  string
		c   *mdm.Command
		err error
	}
	done := make(chan result, 1)
	go func() {
		rt, c, err := s.StoreReportAndNext(ctx, dev, report(dev, a.UUID, mdm.Acknowledged), []byte("<plist/>"), t0.Add(time.Second))
		done <- result{rt, c, err}
	}()
	waitForLockWait(t, db)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.rt != "" || uuidOf(res.c) != b.UUID {
		t.Errorf("duplicate report = (%q, %s, %v); want (\"\", %s, nil)", res.rt, uuidOf(res.c), res.err, b.UUID)
	}
	rec, err := s.Command(ctx, dev, a.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != string(mdm.Acknowledged) || len(rec.History) != 2 {
		t.Errorf("record of A = %s, history %v", rec.Status, rec.History)
	}
}

// TestConcurrentConnects lets several connects of one device work through
// its queue at the same time, as if they landed on different replicas:
// every command ends acknowledged exactly once and none is lost.
func TestConcurrentConnects(t *testing.T) {
	s := newTestDB(t).open(t)
	ctx := t.Context()
	const (
		dev      = "AAA-1"
		commands = 60
		connects = 8
	)
	enroll(t, s, dev)
	cmds := queue(t, s, dev, commands)

	var (
		mu       sync.Mutex
		recorded = map[string]int{} // reports that recorded something, by UUID
		handed   = map[string]int{} // times a command was handed out
		wg       sync.WaitGroup
		errs     = make(chan error, connects)
	)
	for g := range connects {
		wg.Go(func() {
			for round := 0; ; round++ {
				_, c, err := s.StoreReportAndNext(ctx, dev, report(dev, "", mdm.Idle), nil, t0)
				if err != nil {
					errs <- err
					return
				}
				if c == nil {
					return
				}
				for c != nil {
					mu.Lock()
					handed[c.UUID]++
					mu.Unlock()
					st := mdm.Acknowledged
					if (g+round)%5 == 0 {
						st = mdm.Error
					}
					var (
						uuid = c.UUID
						rt   string
					)
					rt, c, err = s.StoreReportAndNext(ctx, dev, report(dev, uuid, st), []byte("<plist/>"), t0.Add(time.Minute))
					if err != nil {
						errs <- err
						return
					}
					if rt != "" {
						mu.Lock()
						recorded[uuid]++
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if ok, err := s.HasPending(ctx, dev); err != nil || ok {
		t.Fatalf("HasPending = %v, %v after every connect finished", ok, err)
	}
	for _, c := range cmds {
		rec, err := s.Command(ctx, dev, c.UUID)
		if err != nil {
			t.Fatal(err)
		}
		if mdm.Status(rec.Status) != mdm.Acknowledged && mdm.Status(rec.Status) != mdm.Error {
			t.Errorf("%s: status %s", c.UUID, rec.Status)
		}
		if len(rec.History) != 2 {
			t.Errorf("%s: history %v, want Queued and one final status", c.UUID, rec.History)
		}
		if recorded[c.UUID] != 1 {
			t.Errorf("%s: %d reports recorded, want exactly 1", c.UUID, recorded[c.UUID])
		}
	}
	again := 0
	for _, n := range handed {
		again += n - 1
	}
	t.Logf("%d commands, %d connects: %d hand-outs of a command that an earlier connect had already received", commands, connects, again)
}

// BenchmarkIdle measures the Idle StoreReportAndNext of a connect: with an
// empty queue, and with a command queued that is handed out each time.
func BenchmarkIdle(b *testing.B) {
	s := newTestDB(b).open(b)
	ctx := context.Background()
	enroll(b, s, "EMPTY-1")
	enroll(b, s, "QUEUED-1")
	queue(b, s, "QUEUED-1", 1)
	for _, dev := range []string{"EMPTY-1", "QUEUED-1"} {
		b.Run(strings.ToLower(strings.TrimSuffix(dev, "-1")), func(b *testing.B) {
			r := report(dev, "", mdm.Idle)
			for b.Loop() {
				if _, _, err := s.StoreReportAndNext(ctx, dev, r, nil, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIdleParallel runs Idles of 64 devices from parallel goroutines,
// each device with a command queued.
func BenchmarkIdleParallel(b *testing.B) {
	s := newTestDB(b).open(b)
	const devices = 64
	for i := range devices {
		id := fmt.Sprintf("DEV-%02d", i)
		enroll(b, s, id)
		queue(b, s, id, 1)
	}
	var (
		mu   sync.Mutex
		next int
	)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		id := fmt.Sprintf("DEV-%02d", next%devices)
		next++
		mu.Unlock()
		r := report(id, "", mdm.Idle)
		for pb.Next() {
			if _, c, err := s.StoreReportAndNext(context.Background(), id, r, nil, t0); err != nil || c == nil {
				b.Fatal(c, err)
			}
		}
	})
}

// BenchmarkEnqueueAck measures a command round trip: Enqueue, the Idle that
// hands it out, and the Acknowledged report.
func BenchmarkEnqueueAck(b *testing.B) {
	s := newTestDB(b).open(b)
	ctx := context.Background()
	const dev = "AAA-1"
	enroll(b, s, dev)
	idle := report(dev, "", mdm.Idle)
	for b.Loop() {
		c, err := mdm.NewCommand("DeviceInformation", nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Enqueue(ctx, []string{dev}, c, t0); err != nil {
			b.Fatal(err)
		}
		if _, got, err := s.StoreReportAndNext(ctx, dev, idle, nil, t0); err != nil || uuidOf(got) != c.UUID {
			b.Fatalf("Idle = %s, %v; want %s", uuidOf(got), err, c.UUID)
		}
		if rt, got, err := s.StoreReportAndNext(ctx, dev, report(dev, c.UUID, mdm.Acknowledged), []byte("<plist/>"), t0); err != nil || rt == "" || got != nil {
			b.Fatalf("Ack = %q, %s, %v", rt, uuidOf(got), err)
		}
	}
}

func TestEdgeInput(t *testing.T) {
	s := newTestDB(t).open(t)
	ctx := t.Context()
	enroll(t, s, "AAA-1")
	enroll(t, s, "BBB-2")

	// An empty ID names no device; it must not match the devices that have
	// no parent.
	if err := s.CheckOut(ctx, "", t0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("CheckOut(\"\") err = %v", err)
	}
	if err := s.MarkInventoryRequested(ctx, []string{"AAA-1", "ghost"}, t0.Add(time.Hour)); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("MarkInventoryRequested with an unknown ID err = %v", err)
	}
	if err := s.Enqueue(ctx, []string{"AAA-1", "ghost"}, &mdm.Command{UUID: "u1", RequestType: "X", Raw: []byte("<plist/>")}, t0); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("Enqueue to an unknown ID err = %v", err)
	}

	// Last-seen times only move forward, whatever order they arrive in.
	for _, tc := range []struct {
		have time.Time
		want time.Time
	}{
		{t0.Add(2 * time.Hour), t0.Add(2 * time.Hour)},
		{t0.Add(time.Hour), t0.Add(2 * time.Hour)},
		{t0.Add(3 * time.Hour), t0.Add(3 * time.Hour)},
	} {
		if err := s.TouchLastSeen(ctx, map[string]time.Time{"AAA-1": tc.have}); err != nil {
			t.Fatal(err)
		}
		d, err := s.Device(ctx, "AAA-1")
		if err != nil {
			t.Fatal(err)
		}
		if d.LastSeen != tc.want {
			t.Errorf("after touching %v: LastSeen = %v, want %v", tc.have, d.LastSeen, tc.want)
		}
	}
	for _, id := range []string{"AAA-1", "BBB-2"} {
		d, err := s.Device(ctx, id)
		if err != nil || !d.Enabled || !d.InventoryRequestedAt.IsZero() {
			t.Errorf("%s after refused writes = %+v, %v", id, d.Redacted(), err)
		}
	}
}
