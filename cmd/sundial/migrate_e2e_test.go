package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage/bolt"
	"github.com/sundial-mdm/sundial/storage/migrate"
	"github.com/sundial-mdm/sundial/storage/pgsql"
)

// TestServerCarriesOnAfterMigration: an installation run on bbolt is
// migrated to PostgreSQL and a server started on the result carries on:
// the queued command is still queued, the Mac keeps its phase, deadline and
// history and a new pass does not move them, and the admin key and the
// policy still work.
func TestServerCarriesOnAfterMigration(t *testing.T) {
	dsn := replicaSchema(t) // skips without SUNDIAL_PGSQL_TEST_DSN
	dir := t.TempDir()
	ts := startTestServer(t, dir)
	mac := ts.enroll(t)
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	board := ts.device(t, mac.UDID).Inventory.SoftwareUpdateDeviceID
	rel, ok := catalog.Default().LatestInMajor(board, 15)
	if !ok || !catalog.MustParseVersion(mac.OSVersion()).Less(rel.Version) {
		t.Skipf("no newer macOS 15 release for %s", board)
	}
	if _, err := ts.app.manager.SetPolicy(t.Context(), "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: rel.Version.String(),
		Date: time.Now().UTC().AddDate(0, 0, 20).Format("2006-01-02"), TimeOfDay: "17:00", TimeZone: "UTC",
	}); err != nil {
		t.Fatal(err)
	}
	var before *scheduler.DeviceReport
	waitFor(t, func() bool {
		ts.app.sched.RunOnce(t.Context())
		var err error
		before, err = ts.admin.DeviceUpdate(t.Context(), mac.UDID, 50)
		return err == nil && before.State != nil && before.State.Phase == softwareupdate.PhasePending
	})
	cmd, _ := mdm.NewCommand("ProfileList", nil)
	if _, err := ts.admin.Enqueue(t.Context(), mac.UDID, cmd.Raw); err != nil {
		t.Fatal(err)
	}
	// A webhook endpoint (its secret sealed) with a test event pending: the
	// receiver is down until after the migration.
	recv := newHookReceiver(t)
	hook, err := ts.admin.AddWebhook(t.Context(), "ops", recv.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv.set(hook.Secret, false)
	pending, err := ts.admin.TestWebhook(t.Context(), "ops")
	if err != nil {
		t.Fatal(err)
	}
	ts.stop()

	src, err := bolt.Open(dir+"/"+dbFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := pgsql.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := migrate.Run(t.Context(), src, dst, nil)
	src.Close()
	dst.Close()
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, rep.String())
	}

	// The same data dir (key material, admin key), now on PostgreSQL.
	ts2 := startTestServerWith(t, dir, func(c *Config) { c.Storage, c.StorageDSN = "pgsql", dsn })
	after, err := ts2.admin.DeviceUpdate(t.Context(), mac.UDID, 50)
	if err != nil {
		t.Fatal(err)
	}
	if after.State == nil || after.State.Phase != before.State.Phase || !after.State.Deadline.Equal(before.State.Deadline) ||
		after.State.Target != before.State.Target || len(after.History) != len(before.History) {
		t.Fatalf("update state after migration = %+v (history %d), want %+v (history %d)", after.State, len(after.History), before.State, len(before.History))
	}
	ts2.app.sched.Touch(mac.UDID)
	if _, err := ts2.app.sched.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	again, _ := ts2.admin.DeviceUpdate(t.Context(), mac.UDID, 50)
	if !again.State.Deadline.Equal(before.State.Deadline) || !again.State.FirstNonCompliant.Equal(before.State.FirstNonCompliant) {
		t.Errorf("a pass on the migrated data moved the deadline: %v → %v", before.State.Deadline, again.State.Deadline)
	}
	recs, err := ts2.admin.Commands(t.Context(), mac.UDID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.UUID == cmd.UUID && r.Status == mdm.StatusQueued {
			found = true
		}
	}
	if !found {
		t.Errorf("the queued command did not survive the migration")
	}
	if p, err := ts2.admin.Policy(t.Context(), scheduler.DefaultGroupID); err != nil || p.Policy.MinimumVersion != rel.Version.String() {
		t.Errorf("policy after migration = %+v, %v", p, err)
	}
	// The endpoint came across, and its secret still opens with the same
	// seal.key: the event pending before the migration and a new one both
	// arrive signed with the secret shown when it was added. The pending
	// one may wait for its retry (the first retry is 10 s after a failure).
	if hs, err := ts2.admin.Webhooks(t.Context()); err != nil || len(hs) != 1 || hs[0].ID != "ops" || hs[0].URL != recv.srv.URL {
		t.Fatalf("webhooks after migration = %+v, %v", hs, err)
	}
	recv.set(hook.Secret, true)
	fresh, err := ts2.admin.TestWebhook(t.Context(), "ops")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		n, bad := recv.count([]string{pending, fresh})
		if len(bad) != 0 {
			t.Fatalf("receiver refused deliveries after migration: %v", bad)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the pending and new webhook events arrived after migration", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStorageCompactCommand: `sundial storage compact` copies a stopped
// server's database into a file with other pages, and the server carries
// on from the copy.
func TestStorageCompactCommand(t *testing.T) {
	dir := t.TempDir()
	ts := startTestServer(t, dir)
	mac := ts.enroll(t)
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	cmd, _ := mdm.NewCommand("ProfileList", nil)
	if _, err := ts.admin.Enqueue(t.Context(), mac.UDID, cmd.Raw); err != nil {
		t.Fatal(err)
	}
	ts.stop()

	db := filepath.Join(dir, dbFile)
	copyPath := filepath.Join(t.TempDir(), "compact.db")
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"storage", "compact", "--from", db, "--to", copyPath, "--page-kb", "4"}, func(string) string { return "" }, &out, &errb)
	if code != 0 {
		t.Fatalf("compact exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "16 KB pages -> 4 KB pages") {
		t.Errorf("compact output = %q", out.String())
	}
	if code := run(t.Context(), []string{"storage", "compact", "--from", db, "--to", copyPath}, func(string) string { return "" }, &out, &errb); code == 0 {
		t.Error("compact onto an existing file succeeded")
	}
	if err := os.Rename(copyPath, db); err != nil {
		t.Fatal(err)
	}
	ts2 := startTestServer(t, dir)
	if d := ts2.device(t, mac.UDID); d == nil || d.Inventory.SerialNumber == "" {
		t.Fatalf("device after compaction = %+v", d)
	}
	cmds, err := ts2.admin.Commands(t.Context(), mac.UDID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cmds {
		found = found || c.UUID == cmd.UUID
	}
	if !found {
		t.Fatalf("queued ProfileList %s missing after compaction: %+v", cmd.UUID, cmds)
	}
	ts2.stop()
	st, err := bolt.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := st.PageSize(); got != 4096 {
		t.Errorf("page size of the server's file = %d, want the copy's 4096", got)
	}
}
