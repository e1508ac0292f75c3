// Package storagetest is the conformance suite every storage backend runs:
// storagetest.Run(t, newStore).
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/storage"
)

// Run runs the conformance suite. newStore must return an empty store; the
// suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) storage.All) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.All)
	}{
		{"Enrollment", testEnrollment},
		{"CertBinding", testCertBinding},
		{"UserChannel", testUserChannel},
		{"QueueFIFO", testQueueFIFO},
		{"NotNow", testNotNow},
		{"ErrorAndDuplicates", testErrorAndDuplicates},
		{"EnqueueValidation", testEnqueueValidation},
		{"ReauthenticateClearsQueue", testReauthenticate},
		{"Inventory", testInventory},
		{"InventoryMerge", testInventoryMerge},
		{"ReportInventory", testReportInventory},
		{"BoundReport", testBoundReport},
		{"APIKeys", testAPIKeys},
		{"Challenges", testChallenges},
		{"Push", testPush},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func authMsg(udid string) *mdm.CheckinMessage {
	return &mdm.CheckinMessage{
		Enrollment:  mdm.Enrollment{UDID: udid},
		MessageType: mdm.Authenticate, Topic: "com.apple.mgmt.External.test",
		OSVersion: "14.6", BuildVersion: "23G80", SerialNumber: "C02TEST" + udid[:3], ProductName: "Mac14,2",
	}
}

func tokenMsg(udid string) *mdm.CheckinMessage {
	return &mdm.CheckinMessage{
		Enrollment:  mdm.Enrollment{UDID: udid},
		MessageType: mdm.TokenUpdate, Topic: "com.apple.mgmt.External.test",
		Token: []byte("0123456789abcdef0123456789abcdef"), PushMagic: "MAGIC-" + udid,
	}
}

// Enroll authenticates and token-updates udid with certificate hash cert.
func enroll(t *testing.T, s storage.All, udid, cert string) {
	t.Helper()
	ctx := context.Background()
	if err := s.Authenticate(ctx, udid, authMsg(udid), cert, t0); err != nil {
		t.Fatalf("Authenticate %s: %v", udid, err)
	}
	first, err := s.TokenUpdate(ctx, udid, tokenMsg(udid), nil, t0.Add(time.Second))
	if err != nil {
		t.Fatalf("TokenUpdate %s: %v", udid, err)
	}
	if !first {
		t.Fatalf("TokenUpdate %s: first = false after Authenticate", udid)
	}
}

// enrollUser opens the user channel of user on the enrolled device udid
// (its first TokenUpdate) and returns the channel's ID.
func enrollUser(t *testing.T, s storage.All, udid, user string) string {
	t.Helper()
	msg := tokenMsg(udid)
	msg.UserID = user
	uid, err := msg.ID()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenUpdate(context.Background(), uid, msg, nil, t0); err != nil {
		t.Fatalf("TokenUpdate %s: %v", uid, err)
	}
	return uid
}

func cmd(t *testing.T, rt string) *mdm.Command {
	t.Helper()
	c, err := mdm.NewCommand(rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func report(udid, uuid string, st mdm.Status) *mdm.Report {
	return &mdm.Report{Enrollment: mdm.Enrollment{UDID: udid}, CommandUUID: uuid, Status: st}
}

func idle(udid string) *mdm.Report { return report(udid, "", mdm.Idle) }

func mustNext(t *testing.T, s storage.All, id string, r *mdm.Report, at time.Time) *mdm.Command {
	t.Helper()
	rt, c, err := s.StoreReportAndNext(context.Background(), id, r, []byte("<plist/>"), at)
	if r.Status == mdm.Idle && rt != "" {
		t.Errorf("Idle reported request type %q", rt)
	}
	if err != nil {
		t.Fatalf("StoreReportAndNext(%s, %s): %v", id, r.Status, err)
	}
	return c
}

func uuidOf(c *mdm.Command) string {
	if c == nil {
		return "<none>"
	}
	return c.UUID
}

func testEnrollment(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "hash1")
	d, err := s.Device(ctx, "AAA-1")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Enabled || d.OSVersion != "14.6" || d.PushMagic != "MAGIC-AAA-1" || string(d.PushToken) != "0123456789abcdef0123456789abcdef" {
		t.Errorf("device after enrollment = %+v", d)
	}
	if d.EnrolledAt != t0.Add(time.Second) || d.AuthenticatedAt != t0 {
		t.Errorf("times = %v %v", d.AuthenticatedAt, d.EnrolledAt)
	}
	// A second TokenUpdate is not the first.
	if first, err := s.TokenUpdate(ctx, "AAA-1", tokenMsg("AAA-1"), nil, t0.Add(time.Minute)); err != nil || first {
		t.Errorf("second TokenUpdate first=%v err=%v", first, err)
	}
	if err := s.SetBootstrapToken(ctx, "AAA-1", []byte("sealed"), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckOut(ctx, "AAA-1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, _ = s.Device(ctx, "AAA-1")
	if d.Enabled || d.CheckedOutAt.IsZero() || string(d.BootstrapToken) != "sealed" {
		t.Errorf("device after CheckOut = %+v", d)
	}
	if _, err := s.Device(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown device err = %v", err)
	}
	if _, err := s.TokenUpdate(ctx, "nope", tokenMsg("nope"), nil, t0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TokenUpdate of unknown device err = %v", err)
	}
	if err := s.TouchLastSeen(ctx, map[string]time.Time{"AAA-1": t0.Add(2 * time.Hour), "ghost": t0}); err != nil {
		t.Fatal(err)
	}
	d, _ = s.Device(ctx, "AAA-1")
	if !d.LastSeen.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("LastSeen = %v", d.LastSeen)
	}
	list, err := s.Devices(ctx, "", 0)
	if err != nil || len(list) != 1 || list[0].ID != "AAA-1" {
		t.Errorf("Devices = %v, %v", list, err)
	}
}

func testCertBinding(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "hash1")
	enroll(t, s, "BBB-2", "hash2")
	for _, tc := range []struct {
		id, hash string
		want     bool
	}{
		{"AAA-1", "hash1", true},
		{"AAA-1", "hash2", false},
		{"BBB-2", "hash2", true},
		{"BBB-2", "unknown", false},
		{"CCC-3", "hash1", false},
	} {
		if have, err := s.CertBound(ctx, tc.id, tc.hash); err != nil || have != tc.want {
			t.Errorf("CertBound(%s, %s) = %v, %v; want %v", tc.id, tc.hash, have, err, tc.want)
		}
	}
	// Device B cannot take A's certificate.
	if err := s.Authenticate(ctx, "BBB-2", authMsg("BBB-2"), "hash1", t0); !errors.Is(err, storage.ErrCertInUse) {
		t.Errorf("cert reuse err = %v", err)
	}
	if ok, _ := s.CertBound(ctx, "BBB-2", "hash2"); !ok {
		t.Error("failed reuse attempt changed B's binding")
	}
	// A re-enrolls with a new certificate: the old one stops working.
	if err := s.Authenticate(ctx, "AAA-1", authMsg("AAA-1"), "hash1b", t0); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.CertBound(ctx, "AAA-1", "hash1"); ok {
		t.Error("old certificate still bound after re-enrollment")
	}
	if ok, _ := s.CertBound(ctx, "AAA-1", "hash1b"); !ok {
		t.Error("new certificate not bound")
	}
}

func testUserChannel(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "hash1")
	uid := enrollUser(t, s, "AAA-1", "USER-1")
	d, err := s.Device(ctx, uid)
	if err != nil || d.ParentID != "AAA-1" || !d.Enabled {
		t.Fatalf("user channel = %+v, %v", d, err)
	}
	if ok, _ := s.CertBound(ctx, uid, "hash1"); !ok {
		t.Error("user channel does not accept the device certificate")
	}
	if err := s.CheckOut(ctx, "AAA-1", t0); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Device(ctx, uid); d.Enabled {
		t.Error("CheckOut of the device left its user channel enabled")
	}
	orphan := tokenMsg("ZZZ-9")
	orphan.UserID = "USER-1"
	oid, _ := orphan.ID()
	if _, err := s.TokenUpdate(ctx, oid, orphan, nil, t0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("user channel without device err = %v", err)
	}
}

func testQueueFIFO(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "h1")
	enroll(t, s, "BBB-2", "h2")
	var want []string
	for i := 0; i < 5; i++ {
		c := cmd(t, fmt.Sprintf("Type%d", i))
		if err := s.Enqueue(ctx, []string{"AAA-1"}, c, t0); err != nil {
			t.Fatal(err)
		}
		want = append(want, c.UUID)
	}
	shared := cmd(t, "Shared")
	if err := s.Enqueue(ctx, []string{"AAA-1", "BBB-2"}, shared, t0); err != nil {
		t.Fatal(err)
	}
	want = append(want, shared.UUID)
	if ok, _ := s.HasPending(ctx, "AAA-1"); !ok {
		t.Error("HasPending = false with a queue")
	}
	c := mustNext(t, s, "AAA-1", idle("AAA-1"), t0)
	for i, w := range want {
		if uuidOf(c) != w {
			t.Fatalf("command %d = %s, want %s", i, uuidOf(c), w)
		}
		if i == 0 && (c.RequestType != "Type0" || len(c.Raw) == 0) {
			t.Errorf("first command = %+v", c)
		}
		c = mustNext(t, s, "AAA-1", report("AAA-1", c.UUID, mdm.Acknowledged), t0.Add(time.Minute))
	}
	if c != nil {
		t.Fatalf("queue not empty: %s", c.UUID)
	}
	if ok, _ := s.HasPending(ctx, "AAA-1"); ok {
		t.Error("HasPending = true with an empty queue")
	}
	// B still has its copy of the shared command.
	if c := mustNext(t, s, "BBB-2", idle("BBB-2"), t0); uuidOf(c) != shared.UUID {
		t.Errorf("B's next = %s, want %s", uuidOf(c), shared.UUID)
	}
	rec, err := s.Command(ctx, "AAA-1", shared.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != string(mdm.Acknowledged) || rec.Pending() || string(rec.Result) != "<plist/>" || len(rec.History) != 2 || string(rec.Raw) != string(shared.Raw) {
		t.Errorf("record = %+v", rec)
	}
	recs, err := s.Commands(ctx, "AAA-1")
	if err != nil || len(recs) != 6 || recs[0].UUID != want[0] || recs[5].UUID != shared.UUID {
		t.Errorf("Commands = %d records, %v", len(recs), err)
	}
}

func testNotNow(t *testing.T, s storage.All) {
	enroll(t, s, "AAA-1", "h1")
	a, b := cmd(t, "A"), cmd(t, "B")
	for _, c := range []*mdm.Command{a, b} {
		if err := s.Enqueue(context.Background(), []string{"AAA-1"}, c, t0); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		r    *mdm.Report
		want string
	}{
		{idle("AAA-1"), a.UUID},
		{report("AAA-1", a.UUID, mdm.NotNow), b.UUID}, // skip A, don't starve B
		{report("AAA-1", b.UUID, mdm.NotNow), "<none>"},
		{idle("AAA-1"), a.UUID}, // a later connect offers A again
		{report("AAA-1", a.UUID, mdm.NotNow), b.UUID},
		{report("AAA-1", b.UUID, mdm.Acknowledged), "<none>"}, // not A again in this session
		{idle("AAA-1"), a.UUID},
		{report("AAA-1", a.UUID, mdm.Acknowledged), "<none>"},
		{report("AAA-1", a.UUID, mdm.Acknowledged), "<none>"}, // duplicate report: harmless
	}
	for i, st := range steps {
		if have := uuidOf(mustNext(t, s, "AAA-1", st.r, t0.Add(time.Duration(i)*time.Minute))); have != st.want {
			t.Fatalf("step %d (%s): next = %s, want %s", i, st.r.Status, have, st.want)
		}
	}
	rec, _ := s.Command(context.Background(), "AAA-1", a.UUID)
	var statuses []string
	for _, h := range rec.History {
		statuses = append(statuses, h.Status)
	}
	// Repeated NotNows are one entry with the latest time and a count.
	if fmt.Sprint(statuses) != "[Queued NotNow Acknowledged]" || rec.NotNowCount != 2 || !rec.History[1].At.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("A history = %v (NotNow at %v), not-now count %d", statuses, rec.History[1].At, rec.NotNowCount)
	}
	// A Mac answering NotNow at every connect cannot grow the record.
	c := cmd(t, "C")
	if err := s.Enqueue(context.Background(), []string{"AAA-1"}, c, t0); err != nil {
		t.Fatal(err)
	}
	const replays = 300
	for i := range replays {
		at := t0.Add(time.Hour + time.Duration(i)*time.Second)
		mustNext(t, s, "AAA-1", idle("AAA-1"), at)
		mustNext(t, s, "AAA-1", report("AAA-1", c.UUID, mdm.NotNow), at)
	}
	rec, _ = s.Command(context.Background(), "AAA-1", c.UUID)
	if len(rec.History) != 2 || rec.NotNowCount != replays || !rec.History[1].At.Equal(t0.Add(time.Hour+(replays-1)*time.Second)) {
		t.Errorf("after %d NotNows: %d history entries, count %d, last %v", replays, len(rec.History), rec.NotNowCount, rec.History[len(rec.History)-1].At)
	}
}

func testErrorAndDuplicates(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "h1")
	c := cmd(t, "Bogus")
	if err := s.Enqueue(ctx, []string{"AAA-1"}, c, t0); err != nil {
		t.Fatal(err)
	}
	r := report("AAA-1", c.UUID, mdm.Error)
	r.ErrorChain = []mdm.ErrorChainItem{{ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", USEnglishDescription: "Unknown command"}}
	if n := mustNext(t, s, "AAA-1", r, t0); n != nil {
		t.Fatalf("an Error'd command came back: %s", n.UUID)
	}
	mustNext(t, s, "AAA-1", report("AAA-1", c.UUID, mdm.Acknowledged), t0) // late duplicate
	mustNext(t, s, "AAA-1", report("AAA-1", "unknown-uuid", mdm.Acknowledged), t0)
	rec, _ := s.Command(ctx, "AAA-1", c.UUID)
	if rec.Status != "Error" || len(rec.ErrorChain) != 1 || rec.ErrorChain[0].ErrorCode != 12021 || len(rec.History) != 2 {
		t.Errorf("record = %+v", rec)
	}
	// A report for another enrollment's command changes nothing.
	enroll(t, s, "BBB-2", "h2")
	c2 := cmd(t, "X")
	s.Enqueue(ctx, []string{"BBB-2"}, c2, t0)
	mustNext(t, s, "AAA-1", report("AAA-1", c2.UUID, mdm.Acknowledged), t0)
	if rec, _ := s.Command(ctx, "BBB-2", c2.UUID); !rec.Pending() {
		t.Error("A's report finished B's command")
	}
}

func testEnqueueValidation(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "h1")
	c := cmd(t, "A")
	if err := s.Enqueue(ctx, []string{"AAA-1", "ghost"}, c, t0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("enqueue to unknown err = %v", err)
	}
	if ok, _ := s.HasPending(ctx, "AAA-1"); ok {
		t.Error("a failed enqueue left a command behind")
	}
	if err := s.Enqueue(ctx, []string{"AAA-1"}, c, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, []string{"AAA-1"}, c, t0); !errors.Is(err, storage.ErrExists) {
		t.Errorf("duplicate UUID err = %v", err)
	}
	// Once the command is finished its UUID is still taken.
	mustNext(t, s, "AAA-1", report("AAA-1", c.UUID, mdm.Acknowledged), t0)
	if err := s.Enqueue(ctx, []string{"AAA-1"}, c, t0); !errors.Is(err, storage.ErrExists) {
		t.Errorf("duplicate UUID of a finished command err = %v", err)
	}
	if _, err := s.Command(ctx, "AAA-1", "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown command err = %v", err)
	}
}

func testReauthenticate(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "h1")
	c := cmd(t, "A")
	s.Enqueue(ctx, []string{"AAA-1"}, c, t0)
	if err := s.Authenticate(ctx, "AAA-1", authMsg("AAA-1"), "h1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := mustNext(t, s, "AAA-1", idle("AAA-1"), t0); n != nil {
		t.Errorf("queue survived re-enrollment: %s", n.UUID)
	}
	rec, _ := s.Command(ctx, "AAA-1", c.UUID)
	if rec.Status != mdm.StatusCanceled {
		t.Errorf("status = %s, want Canceled", rec.Status)
	}
	// A late report on the cancelled command records nothing.
	mustNext(t, s, "AAA-1", report("AAA-1", c.UUID, mdm.Acknowledged), t0.Add(2*time.Hour))
	if rec, _ := s.Command(ctx, "AAA-1", c.UUID); rec.Status != mdm.StatusCanceled || len(rec.History) != 2 {
		t.Errorf("late report changed a cancelled command: %+v", rec)
	}
	d, _ := s.Device(ctx, "AAA-1")
	if d.Enabled || d.PushMagic != "" {
		t.Errorf("device enabled before TokenUpdate: %+v", d)
	}
	if first, _ := s.TokenUpdate(ctx, "AAA-1", tokenMsg("AAA-1"), nil, t0.Add(2*time.Hour)); !first {
		t.Error("TokenUpdate after re-enrollment is not first")
	}
}

func testInventory(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "h1")
	enroll(t, s, "BBB-2", "h2")
	due, err := s.InventoryDue(ctx, t0.Add(time.Hour), 0)
	if err != nil || len(due) != 2 {
		t.Fatalf("InventoryDue = %v, %v", due, err)
	}
	if err := s.MarkInventoryRequested(ctx, []string{"AAA-1"}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	due, _ = s.InventoryDue(ctx, t0.Add(time.Hour), 0)
	if len(due) != 1 || due[0] != "BBB-2" {
		t.Errorf("InventoryDue after mark = %v", due)
	}
	invRes := &mdm.Inventory{OSVersion: "15.1", BuildVersion: "24B83", SerialNumber: "SER1", IsSupervised: true, SoftwareUpdateDeviceID: "J413AP"}
	if err := s.UpdateInventory(ctx, "AAA-1", invRes, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, _ := s.Device(ctx, "AAA-1")
	if d.OSVersion != "15.1" || d.BuildVersion != "24B83" || d.Inventory != *invRes || !d.InventoryAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("device = %+v", d)
	}
	// Unknown OS version keeps the old one, not blanked.
	s.UpdateInventory(ctx, "AAA-1", &mdm.Inventory{SerialNumber: "SER1"}, t0)
	if d, _ := s.Device(ctx, "AAA-1"); d.OSVersion != "15.1" {
		t.Errorf("OSVersion after empty report = %q", d.OSVersion)
	}
	// The first TokenUpdate queues onFirst atomically; later ones do not.
	if err := s.Authenticate(ctx, "CCC-3", authMsg("CCC-3"), "h3", t0); err != nil {
		t.Fatal(err)
	}
	inv := cmd(t, "DeviceInformation")
	for i := 0; i < 2; i++ {
		if _, err := s.TokenUpdate(ctx, "CCC-3", tokenMsg("CCC-3"), inv, t0); err != nil {
			t.Fatal(err)
		}
	}
	recs, _ := s.Commands(ctx, "CCC-3")
	if len(recs) != 1 || recs[0].UUID != inv.UUID {
		t.Fatalf("commands after TokenUpdate with onFirst = %d", len(recs))
	}
	if due, _ := s.InventoryDue(ctx, t0, 0); slices.Contains(due, "CCC-3") {
		t.Errorf("inventory due right after it was queued: %v", due)
	}

	// The longest-waiting devices come first (never requested before
	// anything), the limit takes that many, and neither a user channel nor a
	// checked-out Mac is ever due.
	enroll(t, s, "DDD-4", "h4")
	enrollUser(t, s, "DDD-4", "USER-1")
	if err := s.MarkInventoryRequested(ctx, []string{"BBB-2"}, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(3 * time.Hour)
	due, _ = s.InventoryDue(ctx, later, 0)
	if want := []string{"DDD-4", "BBB-2", "CCC-3", "AAA-1"}; !slices.Equal(due, want) {
		t.Errorf("InventoryDue = %v, want %v (longest waiting first)", due, want)
	}
	if due, _ = s.InventoryDue(ctx, later, 2); !slices.Equal(due, []string{"DDD-4", "BBB-2"}) {
		t.Errorf("InventoryDue with limit 2 = %v", due)
	}
	if due, _ = s.InventoryDue(ctx, t0, 0); !slices.Equal(due, []string{"DDD-4", "BBB-2"}) {
		t.Errorf("InventoryDue before t0 = %v (requested strictly before)", due)
	}
	if err := s.CheckOut(ctx, "BBB-2", later); err != nil {
		t.Fatal(err)
	}
	if due, _ = s.InventoryDue(ctx, later, 0); !slices.Equal(due, []string{"DDD-4", "CCC-3", "AAA-1"}) {
		t.Errorf("InventoryDue after CheckOut = %v", due)
	}
	// Enrolled again, it is due again.
	if _, err := s.TokenUpdate(ctx, "BBB-2", tokenMsg("BBB-2"), nil, later); err != nil {
		t.Fatal(err)
	}
	if due, _ = s.InventoryDue(ctx, later, 0); !slices.Equal(due, []string{"DDD-4", "BBB-2", "CCC-3", "AAA-1"}) {
		t.Errorf("InventoryDue after a new TokenUpdate = %v", due)
	}
}

func testAPIKeys(t *testing.T, s storage.All) {
	ctx := context.Background()
	k := storage.APIKey{ID: "k1", Name: "ci", Hash: "abc", CreatedAt: t0}
	if err := s.PutAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAPIKey(ctx, k); !errors.Is(err, storage.ErrExists) {
		t.Errorf("duplicate key err = %v", err)
	}
	got, err := s.APIKeyByHash(ctx, "abc")
	if err != nil || got.ID != "k1" || got.Name != "ci" || !got.RevokedAt.IsZero() {
		t.Fatalf("APIKeyByHash = %+v, %v", got, err)
	}
	if _, err := s.APIKeyByHash(ctx, "zzz"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown hash err = %v", err)
	}
	if err := s.RevokeAPIKey(ctx, "k1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.APIKeyByHash(ctx, "abc")
	if !got.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("RevokedAt = %v", got.RevokedAt)
	}
	if keys, _ := s.APIKeys(ctx); len(keys) != 1 {
		t.Errorf("APIKeys = %v", keys)
	}
	if err := s.RevokeAPIKey(ctx, "nope", t0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("revoke unknown err = %v", err)
	}
}

func testChallenges(t *testing.T, s storage.All) {
	ctx := context.Background()
	s.PutChallenge(ctx, "c1", t0.Add(time.Hour))
	s.PutChallenge(ctx, "c2", t0.Add(time.Hour))
	for _, tc := range []struct {
		key  string
		at   time.Time
		want bool
	}{
		{"c1", t0, true},
		{"c1", t0, false},                    // one time only
		{"c2", t0.Add(2 * time.Hour), false}, // expired
		{"c2", t0, false},                    // and gone
		{"nope", t0, false},
	} {
		if have, err := s.TakeChallenge(ctx, tc.key, tc.at); err != nil || have != tc.want {
			t.Errorf("TakeChallenge(%s) = %v, %v; want %v", tc.key, have, err, tc.want)
		}
	}
}

func testPush(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "h1")
	enroll(t, s, "BBB-2", "h2")
	if err := s.Authenticate(ctx, "CCC-3", authMsg("CCC-3"), "h3", t0); err != nil { // no token yet
		t.Fatal(err)
	}
	tg, err := s.PushTargets(ctx, []string{"AAA-1", "BBB-2", "CCC-3", "ghost"})
	if err != nil || len(tg) != 2 {
		t.Fatalf("PushTargets = %+v, %v", tg, err)
	}
	for _, x := range tg {
		if x.PushMagic != "MAGIC-"+x.EnrollmentID || len(x.Token) != 32 || x.Topic == "" || x.Attempt != 0 {
			t.Errorf("target = %+v", x)
		}
	}
	// A has pending work and is pushed; B has none.
	s.Enqueue(ctx, []string{"AAA-1"}, cmd(t, "A"), t0)
	p1 := t0.Add(time.Minute)
	recs := []push.Record{
		{EnrollmentID: "AAA-1", At: p1, Outcome: push.OutcomeOK, Attempt: 1, NextRepush: p1.Add(time.Minute)},
		{EnrollmentID: "BBB-2", At: p1, Outcome: push.OutcomeOK, Attempt: 1, NextRepush: p1.Add(time.Minute)},
		{EnrollmentID: "ghost", At: p1, Outcome: push.OutcomeOK, Attempt: 1},
	}
	if err := s.RecordPushes(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueRepushes(ctx, p1.Add(30*time.Second), 0); len(due) != 0 {
		t.Errorf("due before NextRepush: %v", due)
	}
	due, err := s.DueRepushes(ctx, p1.Add(time.Minute), 0)
	if err != nil || len(due) != 1 || due[0] != "AAA-1" {
		t.Errorf("DueRepushes = %v, %v; want [AAA-1] (B has no pending work)", due, err)
	}
	if d, _ := s.Device(ctx, "AAA-1"); d.LastPush.Attempt != 1 || !d.LastPush.At.Equal(p1) || d.LastPush.Outcome != "ok" {
		t.Errorf("LastPush = %+v", d.LastPush)
	}
	if tg, _ := s.PushTargets(ctx, []string{"AAA-1"}); len(tg) != 1 || tg[0].Attempt != 1 {
		t.Errorf("Attempt not kept: %+v", tg)
	}
	// Seen before the push: still due. Seen after it: schedule reset.
	s.TouchLastSeen(ctx, map[string]time.Time{"AAA-1": t0})
	if due, _ := s.DueRepushes(ctx, p1.Add(time.Hour), 0); len(due) != 1 {
		t.Errorf("a check-in before the push cancelled the re-push: %v", due)
	}
	s.TouchLastSeen(ctx, map[string]time.Time{"AAA-1": p1.Add(time.Second)})
	if due, _ := s.DueRepushes(ctx, p1.Add(time.Hour), 0); len(due) != 0 {
		t.Errorf("still due after the device connected: %v", due)
	}
	if d, _ := s.Device(ctx, "AAA-1"); d.LastPush.Attempt != 0 || !d.LastPush.NextRepush.IsZero() || d.LastPush.Outcome != "ok" {
		t.Errorf("schedule not reset: %+v", d.LastPush)
	}
	// 410: the token is marked invalid until the next TokenUpdate.
	s.RecordPushes(ctx, []push.Record{{EnrollmentID: "AAA-1", At: p1, Outcome: push.OutcomeUnregistered, Reason: "Unregistered", Attempt: 1, NextRepush: p1.Add(time.Minute)}})
	if tg, _ := s.PushTargets(ctx, []string{"AAA-1"}); len(tg) != 0 {
		t.Errorf("invalid token still targeted: %+v", tg)
	}
	if due, _ := s.DueRepushes(ctx, p1.Add(time.Hour), 0); len(due) != 0 {
		t.Errorf("invalid token due for re-push: %v", due)
	}
	if d, _ := s.Device(ctx, "AAA-1"); !d.TokenInvalid || d.LastPush.Reason != "Unregistered" {
		t.Errorf("device = %+v", d.Redacted())
	}
	if _, err := s.TokenUpdate(ctx, "AAA-1", tokenMsg("AAA-1"), nil, p1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if tg, _ := s.PushTargets(ctx, []string{"AAA-1"}); len(tg) != 1 {
		t.Errorf("TokenUpdate did not clear the invalid mark: %+v", tg)
	}
}
