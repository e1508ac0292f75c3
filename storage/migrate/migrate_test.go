package migrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
	"github.com/sundial-mdm/sundial/storage/migrate/record"
	"github.com/sundial-mdm/sundial/storage/pgsql"
)

const dsnEnv = "SUNDIAL_PGSQL_TEST_DSN"

// t0 has nanoseconds, to check that times survive at microsecond precision.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

// newPgsql opens a store on an empty schema of its own, dropped at cleanup.
func newPgsql(t testing.TB) *pgsql.Store {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skipf("%s is not set: skipping the migration tests (e.g. %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", dsnEnv, dsnEnv)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "sundial_migrate_test_" + hex.EncodeToString(b)
	exec := func(sql string) {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	ident := pgx.Identifier{schema}.Sanitize()
	exec(`CREATE SCHEMA ` + ident)
	t.Cleanup(func() { exec(`DROP SCHEMA ` + ident + ` CASCADE`) })
	s, err := pgsql.Open(t.Context(), dsn, pgsql.WithPoolConfig(func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["search_path"] = schema
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newBolt(t testing.TB) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// backend is what the comparison reads through: both stores' public APIs.
type backend interface {
	storage.All
	storage.AgentStore
	storage.CatalogStore
	storage.EnrollmentGuardStore
	storage.ADEStore
	storage.ADEUpdater
	storage.DEPServerStore
	ddm.Store
	scheduler.Store
	rolloutBackend
}

// fixture fills a store through its public API the way a running server
// would, and remembers what it created.
type fixture struct {
	t       *testing.T
	s       backend
	devices []string // device enrollments
	ids     []string // every enrollment, user channels included
	cmds    map[string][]*mdm.Command
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newCmd(t *testing.T, rt string) *mdm.Command {
	t.Helper()
	c, err := mdm.NewCommand(rt, nil)
	must(t, err)
	return c
}

func at(d time.Duration) time.Time { return t0.Add(d) }

func populate(t *testing.T, s backend) *fixture {
	ctx := t.Context()
	f := &fixture{t: t, s: s, cmds: map[string][]*mdm.Command{}}
	for i := range 5 {
		id := fmt.Sprintf("MAC-%02d", i)
		f.devices = append(f.devices, id)
		f.ids = append(f.ids, id)
		must(t, s.Authenticate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate,
			Topic: "com.apple.mgmt.test", SerialNumber: "SN" + id, ProductName: "Mac14,2", Model: "Mac14,2", ModelName: "MacBook Air",
			DeviceName: "Mac " + id, OSVersion: "14.6", BuildVersion: "23G80"}, "cert-"+id, at(time.Duration(i)*time.Minute)))
		first := newCmd(t, "DeviceInformation")
		f.cmds[id] = append(f.cmds[id], first)
		_, err := s.TokenUpdate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate,
			Topic: "com.apple.mgmt.test", Token: []byte("token-" + id), PushMagic: "magic-" + id}, first, at(time.Duration(i)*time.Minute+time.Second))
		must(t, err)
	}
	// A user channel, a re-enrollment (its queue is canceled), a check-out,
	// a bootstrap token and inventory.
	uc := "MAC-00:user-1"
	_, err := s.TokenUpdate(ctx, uc, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "MAC-00", UserID: "user-1"},
		MessageType: mdm.TokenUpdate, Topic: "com.apple.mgmt.test", Token: []byte("utok"), PushMagic: "umagic"}, nil, at(time.Hour))
	must(t, err)
	f.ids = append(f.ids, uc)
	must(t, s.Enqueue(ctx, []string{"MAC-03"}, newCmd(t, "ProfileList"), at(time.Hour)))
	must(t, s.Authenticate(ctx, "MAC-03", &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "MAC-03"}, MessageType: mdm.Authenticate,
		Topic: "com.apple.mgmt.test"}, "cert-MAC-03-new", at(2*time.Hour)))
	must(t, s.CheckOut(ctx, "MAC-04", at(3*time.Hour)))
	must(t, s.SetBootstrapToken(ctx, "MAC-01", []byte("sealed-bootstrap"), at(4*time.Hour)))
	must(t, s.UpdateInventory(ctx, "MAC-01", &mdm.Inventory{OSVersion: "14.6.1", BuildVersion: "23G93", ProductName: "Mac14,2",
		SerialNumber: "SNMAC-01", IsSupervised: true, IsAppleSilicon: true, AvailableDeviceCapacity: 123.5}, at(4*time.Hour)))
	must(t, s.MarkInventoryRequested(ctx, []string{"MAC-02"}, at(4*time.Hour)))

	// Command queues: finished (acknowledged with a result, error with a
	// chain), NotNow'd in the current session and still queued.
	for _, id := range []string{"MAC-00", "MAC-01", "MAC-02"} {
		for _, rt := range []string{"ProfileList", "InstalledApplicationList", "AvailableOSUpdates", "SecurityInfo"} {
			c := newCmd(t, rt)
			f.cmds[id] = append(f.cmds[id], c)
			must(t, s.Enqueue(ctx, []string{id}, c, at(5*time.Hour)))
		}
	}
	both := newCmd(t, "CertificateList")
	must(t, s.Enqueue(ctx, []string{"MAC-00", "MAC-02"}, both, at(5*time.Hour+time.Minute)))
	step := func(id string, r *mdm.Report, raw string, d time.Duration) {
		t.Helper()
		r.UDID = id
		_, _, err := s.StoreReportAndNext(ctx, id, r, []byte(raw), at(d))
		must(t, err)
	}
	for _, id := range []string{"MAC-00", "MAC-01", "MAC-02"} {
		q := f.cmds[id]
		step(id, &mdm.Report{Status: mdm.Idle}, "", 6*time.Hour)
		step(id, &mdm.Report{Status: mdm.Acknowledged, CommandUUID: q[0].UUID}, "<plist>result of "+q[0].UUID+"</plist>", 6*time.Hour+time.Second)
		step(id, &mdm.Report{Status: mdm.Error, CommandUUID: q[1].UUID, ErrorChain: []mdm.ErrorChainItem{
			{ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "nope"}}}, "<plist>error</plist>", 6*time.Hour+2*time.Second)
		step(id, &mdm.Report{Status: mdm.NotNow, CommandUUID: q[2].UUID}, "", 6*time.Hour+3*time.Second)
	}
	// MAC-01 answers NotNow twice, across sessions.
	step("MAC-01", &mdm.Report{Status: mdm.Idle}, "", 7*time.Hour)
	step("MAC-01", &mdm.Report{Status: mdm.NotNow, CommandUUID: f.cmds["MAC-01"][2].UUID}, "", 7*time.Hour+time.Second)

	// Last seen and push state (one due for a re-push, one flagged bad).
	seen := map[string]time.Time{}
	for i, id := range f.ids {
		seen[id] = at(8*time.Hour + time.Duration(i)*time.Second)
	}
	must(t, s.TouchLastSeen(ctx, seen))
	must(t, s.RecordPushes(ctx, []push.Record{
		{EnrollmentID: "MAC-00", At: at(9 * time.Hour), Outcome: push.OutcomeOK, Attempt: 2, NextRepush: at(10 * time.Hour)},
		{EnrollmentID: "MAC-02", At: at(9 * time.Hour), Outcome: push.OutcomeBadToken, Reason: "BadDeviceToken", Attempt: 1},
		{EnrollmentID: "MAC-01", At: at(7 * time.Hour), Outcome: push.OutcomeOK, Attempt: 1},
	}))

	// API keys and challenges.
	must(t, s.PutAPIKey(ctx, storage.APIKey{ID: "key-1", Name: "ci", Hash: "hash-1", CreatedAt: at(0)}))
	must(t, s.PutAPIKey(ctx, storage.APIKey{ID: "key-2", Name: "old", Hash: "hash-2", CreatedAt: at(time.Minute)}))
	must(t, s.RevokeAPIKey(ctx, "key-2", at(time.Hour)))
	must(t, s.PutChallenge(ctx, "chal-valid", at(48*time.Hour)))
	must(t, s.PutChallenge(ctx, "chal-expired", at(-time.Hour)))

	// Agents.
	for i, id := range []string{"MAC-00", "MAC-01"} {
		must(t, s.PutAgentSecret(ctx, id, "secret-hash-"+id, at(time.Duration(i)*time.Hour)))
	}
	var evs []storage.AgentEvent
	for i := range 7 {
		evs = append(evs, storage.AgentEvent{Kind: "prompt", At: at(time.Duration(i) * time.Minute), Prompt: "notify", TargetVersion: "14.7"})
	}
	must(t, s.AppendAgentReport(ctx, "MAC-00", storage.AgentReport{TimeZone: "Europe/Berlin", Events: evs[:4]}, at(11*time.Hour)))
	must(t, s.AppendAgentReport(ctx, "MAC-00", storage.AgentReport{Events: evs[4:]}, at(12*time.Hour)))

	// Declarative records: one unconfirmed enforcement, one confirmed, with
	// raw status items.
	for i, id := range []string{"MAC-00", "MAC-01"} {
		must(t, s.UpdateDDM(ctx, id, func(r *ddm.Record) ([]ddm.Event, error) {
			r.Enforcement = &ddm.EnforcementState{Deadline: at(72 * time.Hour), Zone: "UTC", ServerToken: "tok-" + id, SetAt: at(time.Hour), Confirmed: i == 1}
			r.SetChangedAt = at(time.Hour)
			r.Status.Items = map[string]json.RawMessage{"softwareupdate.install-state": json.RawMessage(`{"value":  "downloading"}`)}
			r.Status.Reports = 1
			return []ddm.Event{{At: at(time.Hour), FullReport: true, Items: []string{"softwareupdate.install-state"}}}, nil
		}))
		must(t, s.UpdateDDM(ctx, id, func(r *ddm.Record) ([]ddm.Event, error) {
			r.Status.Reports++
			return []ddm.Event{{At: at(2 * time.Hour), Items: []string{"os.version"}, Enforcement: "pending"}}, nil
		}))
	}

	// Managed OS: groups, memberships, policies, exceptions, states with
	// history and commands, audit.
	audit := func(action, subject string, after any) *scheduler.AuditEntry {
		a, err := scheduler.NewAuditEntry(at(13*time.Hour), "admin@example.com", action, subject, nil, after)
		must(t, err)
		return a
	}
	for _, g := range []scheduler.Group{{ID: "pilot", Name: "Pilot", CreatedAt: at(13 * time.Hour)}, {ID: "broad", Name: "Broad"}, {ID: "gone", Name: "Gone"}} {
		must(t, s.PutGroup(ctx, g, audit("group.create", g.ID, g)))
	}
	must(t, s.AssignDevices(ctx, "pilot", []string{"MAC-00", "MAC-01"}, audit("group.assign", "pilot", nil)))
	must(t, s.AssignDevices(ctx, "broad", []string{"MAC-02", "NOT-YET-ENROLLED"}, nil))
	must(t, s.AssignDevices(ctx, "gone", []string{"MAC-03"}, nil))
	pol := softwareupdate.Policy{Mode: softwareupdate.ModeAutomatic, DelayDays: 7, TimeOfDay: "17:00", TimeZone: "Europe/Berlin"}
	for range 2 {
		_, err := s.PutPolicy(ctx, scheduler.PolicyRecord{GroupID: "pilot", Policy: pol, UpdatedAt: at(14 * time.Hour), UpdatedBy: "admin"}, audit("policy.set", "pilot", pol))
		must(t, err)
	}
	_, err = s.PutPolicy(ctx, scheduler.PolicyRecord{GroupID: scheduler.DefaultGroupID, Policy: softwareupdate.Policy{Mode: softwareupdate.ModeUnmanaged}}, nil)
	must(t, err)
	_, err = s.PutPolicy(ctx, scheduler.PolicyRecord{GroupID: "gone", Policy: pol}, nil)
	must(t, err)
	must(t, s.DeleteGroup(ctx, "gone", audit("group.delete", "gone", nil)))
	ex := softwareupdate.Exception{Exempt: true, Expires: at(96 * time.Hour), Reason: "travelling", GrantedBy: "admin"}
	must(t, s.PutException(ctx, scheduler.ExceptionRecord{Scope: scheduler.ScopeDevice, ID: "MAC-02", Exception: ex, CreatedAt: at(15 * time.Hour)}, audit("exception.set", "MAC-02", ex)))
	must(t, s.PutException(ctx, scheduler.ExceptionRecord{Scope: scheduler.ScopeGroup, ID: "broad", Exception: ex, CreatedAt: at(15 * time.Hour)}, nil))

	for i, id := range []string{"MAC-00", "MAC-01", "MAC-02"} {
		st := &scheduler.State{DeviceID: id, GroupID: "pilot", PolicyRev: 2, Phase: softwareupdate.PhasePending, Target: "14.7", TargetBuild: "23H124",
			Deadline: at(240 * time.Hour), FirstNonCompliant: at(16 * time.Hour), NextDue: at(time.Duration(20+i) * time.Hour),
			Facts: scheduler.Facts{OSVersion: "14.6", Supervised: true, InventoryAt: at(4 * time.Hour)}}
		must(t, s.Commit(ctx, []scheduler.Commit{{State: st, History: []scheduler.Transition{
			{At: at(16 * time.Hour), Kind: scheduler.EventPhase, To: softwareupdate.PhasePending, Reason: "new target", Target: "14.7", Deadline: at(240 * time.Hour)},
		}}}, at(16*time.Hour)))
		st.Rev = 1
		st.Phase, st.Step, st.StepAt = softwareupdate.PhaseNotify, "scan", at(17*time.Hour)
		scan := newCmd(t, "ScheduleOSUpdateScan")
		f.cmds[id] = append(f.cmds[id], scan)
		st.StepCommand = scan.UUID
		if i == 2 {
			st.NextDue = time.Time{}
		}
		must(t, s.Commit(ctx, []scheduler.Commit{{State: st, Commands: []*mdm.Command{scan}, History: []scheduler.Transition{
			{At: at(17 * time.Hour), Kind: scheduler.EventPhase, From: softwareupdate.PhasePending, To: softwareupdate.PhaseNotify, Reason: "notice"},
			{At: at(17 * time.Hour), Kind: scheduler.EventStep, Step: "scan", Reason: "scan for updates"},
		}}}, at(17*time.Hour)))
	}
	// The release catalog: a synced feed, its poll state, releases added by hand.
	must(t, s.PutCatalogFeed(ctx, "gdmf", []byte(`{"PublicAssetSets":{}}`), at(18*time.Hour)))
	must(t, s.PutCatalogPoll(ctx, "gdmf", []byte(`{"etag":"\"abc\""}`)))
	must(t, s.PutManualRelease(ctx, "14.8", []byte(`{"version":"14.8"}`)))
	must(t, s.PutManualRelease(ctx, "14.9", []byte(`{"version":"14.9"}`)))
	// Enrollment guards: a bound certificate's expiry and history, an
	// admin's pending approval to re-bind.
	for i, id := range []string{"MAC-00", "MAC-02"} {
		must(t, s.UpdateEnrollmentGuard(ctx, id, func(g *mdm.EnrollmentGuard) error {
			g.CertNotAfter = at(time.Duration(8760+i) * time.Hour)
			g.AppendEvent(mdm.EnrollmentEvent{Kind: mdm.EventBound, At: at(19 * time.Hour), Actor: "device"})
			if i == 1 {
				g.ReenrollUntil, g.ReenrollBy = at(20*time.Hour), "admin"
				g.AppendEvent(mdm.EnrollmentEvent{Kind: mdm.EventReenrollAllowed, At: at(19*time.Hour + time.Second), Actor: "admin", Reason: "new logic board"})
			}
			return nil
		}))
	}
	// Apple Business Manager: two servers with sealed keys and tokens, a
	// synced page each, assignment results, a group, an enrolled serial.
	for _, name := range []string{"abm-main", "abm-lab"} {
		must(t, s.PutDEPServer(ctx, &storage.DEPServer{Name: name, CertPEM: []byte("-----BEGIN CERTIFICATE-----\n"),
			SealedKey: []byte("sealed-key-" + name), SealedTokens: []byte("sealed-tokens-" + name), TokenExpiry: at(9000 * time.Hour),
			OrgName: "Example", Profiles: map[string]storage.DEPProfile{"": {UUID: "P-" + name, Hash: "h1", DefinedAt: at(20 * time.Hour)}},
			UpdatedAt: at(20 * time.Hour)}))
		must(t, s.ApplyADEPage(ctx, storage.ADEPage{Server: name, Cursor: "cursor-" + name, Upsert: []storage.ADEDevice{
			{Serial: "ABM-" + name + "-1", Model: "MacBook Air", OS: "OSX", ProfileStatus: "assigned", DeviceAssignedDate: at(21 * time.Hour), OpType: "added"},
			{Serial: "ABM-" + name + "-2", Model: "Mac mini", OS: "OSX", ProfileStatus: "empty"},
		}}, at(21*time.Hour)))
	}
	must(t, s.SetADEAssignResults(ctx, map[string]string{"ABM-abm-main-1": "SUCCESS", "ABM-abm-lab-2": "NOT_ACCESSIBLE"}, at(22*time.Hour)))
	must(t, s.SetADEGroup(ctx, "ABM-abm-lab-1", "lab", at(22*time.Hour)))
	must(t, s.MarkADEEnrolled(ctx, "ABM-abm-main-1", "MAC-01", at(23*time.Hour)))
	populateRollout(t, s)
	return f
}

// normalize truncates every time in v to microseconds (in UTC) and makes
// empty slices and maps nil, so that records read from the two backends
// compare with reflect.DeepEqual.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	case reflect.Struct:
		if t, ok := v.Interface().(time.Time); ok {
			if v.CanSet() {
				if t.IsZero() {
					v.Set(reflect.ValueOf(time.Time{}))
				} else {
					v.Set(reflect.ValueOf(t.Truncate(time.Microsecond).UTC()))
				}
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normalize(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			if v.CanSet() {
				v.Set(reflect.Zero(v.Type()))
			}
			return
		}
		for i := range v.Len() {
			normalize(v.Index(i))
		}
	case reflect.Map:
		if v.Len() == 0 && v.CanSet() {
			v.Set(reflect.Zero(v.Type()))
		}
	}
}

// same fails the test unless have and want are equal after normalizing.
func same[T any](t *testing.T, what string, have, want T) {
	t.Helper()
	normalize(reflect.ValueOf(&have).Elem())
	normalize(reflect.ValueOf(&want).Elem())
	if !reflect.DeepEqual(have, want) {
		hj, _ := json.MarshalIndent(have, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("%s differs:\npgsql: %s\nbolt:  %s", what, hj, wj)
	}
}

func read[T any](t *testing.T, fn func() (T, error)) T {
	t.Helper()
	v, err := fn()
	must(t, err)
	return v
}

// compareAll reads every kind through the public APIs of both stores.
func compareAll(t *testing.T, f *fixture, b, p backend) {
	ctx := t.Context()
	now := at(30 * time.Hour)
	same(t, "devices", read(t, func() ([]*mdm.Device, error) { return p.Devices(ctx, "", 0) }), read(t, func() ([]*mdm.Device, error) { return b.Devices(ctx, "", 0) }))
	for _, id := range f.ids {
		same(t, "commands of "+id, read(t, func() ([]*mdm.CommandRecord, error) { return p.Commands(ctx, id) }), read(t, func() ([]*mdm.CommandRecord, error) { return b.Commands(ctx, id) }))
		same(t, "pending of "+id, read(t, func() (bool, error) { return p.HasPending(ctx, id) }), read(t, func() (bool, error) { return b.HasPending(ctx, id) }))
		for _, cert := range []string{"cert-" + id, "cert-MAC-03-new"} {
			same(t, "cert bound "+id+" "+cert, read(t, func() (bool, error) { return p.CertBound(ctx, id, cert) }), read(t, func() (bool, error) { return b.CertBound(ctx, id, cert) }))
		}
	}
	// PushTargets promises no order.
	byID := func(s backend) func() ([]push.TargetState, error) {
		return func() ([]push.TargetState, error) {
			ts, err := s.PushTargets(ctx, f.ids)
			slices.SortFunc(ts, func(a, b push.TargetState) int { return strings.Compare(a.EnrollmentID, b.EnrollmentID) })
			return ts, err
		}
	}
	same(t, "push targets", read(t, byID(p)), read(t, byID(b)))
	same(t, "due re-pushes", read(t, func() ([]string, error) { return p.DueRepushes(ctx, now, 0) }), read(t, func() ([]string, error) { return b.DueRepushes(ctx, now, 0) }))
	same(t, "inventory due", read(t, func() ([]string, error) { return p.InventoryDue(ctx, now, 0) }), read(t, func() ([]string, error) { return b.InventoryDue(ctx, now, 0) }))
	same(t, "api keys", read(t, func() ([]storage.APIKey, error) { return p.APIKeys(ctx) }), read(t, func() ([]storage.APIKey, error) { return b.APIKeys(ctx) }))
	for _, h := range []string{"hash-1", "hash-2"} {
		same(t, "api key "+h, read(t, func() (*storage.APIKey, error) { return p.APIKeyByHash(ctx, h) }), read(t, func() (*storage.APIKey, error) { return b.APIKeyByHash(ctx, h) }))
	}
	for _, id := range f.devices {
		hb, errB := b.AgentSecretHash(ctx, id)
		hp, errP := p.AgentSecretHash(ctx, id)
		if hb != hp || errors.Is(errB, storage.ErrNotFound) != errors.Is(errP, storage.ErrNotFound) {
			t.Errorf("agent secret of %s: pgsql %q, %v; bolt %q, %v", id, hp, errP, hb, errB)
		}
		if errB == nil {
			same(t, "agent of "+id, read(t, func() (*storage.AgentState, error) { return p.AgentState(ctx, id) }), read(t, func() (*storage.AgentState, error) { return b.AgentState(ctx, id) }))
		}
		same(t, "ddm record of "+id, read(t, func() (*ddm.Record, error) { return p.DDMRecord(ctx, id) }), read(t, func() (*ddm.Record, error) { return b.DDMRecord(ctx, id) }))
		same(t, "ddm history of "+id, read(t, func() ([]ddm.Event, error) { return p.DDMHistory(ctx, id) }), read(t, func() ([]ddm.Event, error) { return b.DDMHistory(ctx, id) }))
		same(t, "update history of "+id, read(t, func() ([]scheduler.Transition, error) { return p.History(ctx, id, 0) }), read(t, func() ([]scheduler.Transition, error) { return b.History(ctx, id, 0) }))
	}
	same(t, "ddm unconfirmed", read(t, func() ([]string, error) { return p.DDMUnconfirmed(ctx, at(100*time.Hour), 0) }), read(t, func() ([]string, error) { return b.DDMUnconfirmed(ctx, at(100*time.Hour), 0) }))
	same(t, "groups", read(t, func() ([]scheduler.Group, error) { return p.Groups(ctx) }), read(t, func() ([]scheduler.Group, error) { return b.Groups(ctx) }))
	members := append(slices.Clone(f.ids), "NOT-YET-ENROLLED")
	same(t, "groups of", read(t, func() ([]string, error) { return p.GroupsOf(ctx, members) }), read(t, func() ([]string, error) { return b.GroupsOf(ctx, members) }))
	same(t, "policies", read(t, func() ([]scheduler.PolicyRecord, error) { return p.Policies(ctx) }), read(t, func() ([]scheduler.PolicyRecord, error) { return b.Policies(ctx) }))
	same(t, "exceptions", read(t, func() ([]scheduler.ExceptionRecord, error) { return p.Exceptions(ctx) }), read(t, func() ([]scheduler.ExceptionRecord, error) { return b.Exceptions(ctx) }))
	same(t, "states", read(t, func() ([]*scheduler.State, error) { return p.States(ctx, f.ids) }), read(t, func() ([]*scheduler.State, error) { return b.States(ctx, f.ids) }))
	same(t, "state ids", read(t, func() ([]string, error) { return p.StateIDs(ctx, "", 0) }), read(t, func() ([]string, error) { return b.StateIDs(ctx, "", 0) }))
	same(t, "unevaluated", read(t, func() ([]string, error) { return p.Unevaluated(ctx, "", 0) }), read(t, func() ([]string, error) { return b.Unevaluated(ctx, "", 0) }))
	same(t, "due devices", read(t, func() ([]string, error) { return p.DueDevices(ctx, now, 0) }), read(t, func() ([]string, error) { return b.DueDevices(ctx, now, 0) }))
	same(t, "audit", read(t, func() ([]scheduler.AuditEntry, error) { return p.Audit(ctx, 0, 0) }), read(t, func() ([]scheduler.AuditEntry, error) { return b.Audit(ctx, 0, 0) }))
	same(t, "catalog feeds", read(t, func() (map[string][]byte, error) { return p.CatalogFeeds(ctx) }), read(t, func() (map[string][]byte, error) { return b.CatalogFeeds(ctx) }))
	same(t, "catalog polls", read(t, func() (map[string][]byte, error) { return p.CatalogPolls(ctx) }), read(t, func() (map[string][]byte, error) { return b.CatalogPolls(ctx) }))
	same(t, "manual releases", read(t, func() ([][]byte, error) { return p.ManualReleases(ctx) }), read(t, func() ([][]byte, error) { return b.ManualReleases(ctx) }))
	for _, id := range f.ids {
		_, errB := b.EnrollmentGuard(ctx, id)
		_, errP := p.EnrollmentGuard(ctx, id)
		if (errB == nil) != (errP == nil) {
			t.Errorf("enrollment guard of %s: pgsql %v, bolt %v", id, errP, errB)
		}
		if errB == nil {
			same(t, "enrollment guard of "+id, read(t, func() (*mdm.EnrollmentGuard, error) { return p.EnrollmentGuard(ctx, id) }), read(t, func() (*mdm.EnrollmentGuard, error) { return b.EnrollmentGuard(ctx, id) }))
		}
	}
	same(t, "abm devices", read(t, func() ([]storage.ADEDevice, error) { return p.ADEDevices(ctx, "", 0) }), read(t, func() ([]storage.ADEDevice, error) { return b.ADEDevices(ctx, "", 0) }))
	for _, srv := range []string{"abm-main", "abm-lab", "abm-none"} {
		same(t, "abm cursor of "+srv, read(t, func() (string, error) { return p.ADECursor(ctx, srv) }), read(t, func() (string, error) { return b.ADECursor(ctx, srv) }))
	}
	same(t, "dep servers", read(t, func() ([]storage.DEPServer, error) { return p.DEPServers(ctx) }), read(t, func() ([]storage.DEPServer, error) { return b.DEPServers(ctx) }))
	compareRollout(t, b, p)
}

func TestRun(t *testing.T) {
	p := newPgsql(t)
	b := newBolt(t)
	f := populate(t, b)
	ctx := t.Context()

	src, err := b.Counts(ctx)
	must(t, err)
	type tick struct{ done, total int }
	ticks := map[string][]tick{}
	rep, err := Run(ctx, b, p, func(kind string, done, total int) { ticks[kind] = append(ticks[kind], tick{done, total}) })
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, rep)
	}
	t.Logf("report:\n%s", rep)
	if len(rep.Differences) != 0 || len(rep.Kinds) != len(record.Kinds) {
		t.Errorf("report = %+v", rep)
	}
	for _, k := range rep.Kinds {
		if k.Source != src[k.Kind] || k.Copied != k.Source || k.Target != k.Source {
			t.Errorf("kind %s = %+v, source has %d", k.Kind, k, src[k.Kind])
		}
	}
	// Every kind populated above is non-empty, so the comparison below
	// compares something.
	for _, k := range record.Kinds {
		if src[k] == 0 {
			t.Errorf("fixture has no %s", k)
		}
	}
	dst, err := p.Counts(ctx)
	must(t, err)
	if !reflect.DeepEqual(dst, src) {
		t.Errorf("target counts = %v, want %v", dst, src)
	}
	// Progress: per copied kind from 0 to the total, never backwards.
	for kind, ts := range ticks {
		last := ts[len(ts)-1]
		if ts[0].done != 0 || last.done != src[kind] || last.total != src[kind] {
			t.Errorf("progress of %s = %v, want 0 … %d", kind, ts, src[kind])
		}
		for i := 1; i < len(ts); i++ {
			if ts[i].done < ts[i-1].done {
				t.Errorf("progress of %s went backwards: %v", kind, ts)
			}
		}
	}
	if _, ok := ticks[record.Commands]; !ok {
		t.Errorf("no progress reported for commands: %v", ticks)
	}

	compareAll(t, f, b, p)

	// Both carry on alike: the next command handed out (a report skips the
	// NotNow'd command for the rest of the session; an Idle offers it
	// again), one-time challenges, and new records queue after the
	// imported ones.
	for _, id := range f.ids {
		for _, r := range []*mdm.Report{
			{Enrollment: mdm.Enrollment{UDID: id}, Status: mdm.Acknowledged, CommandUUID: "unknown"},
			{Enrollment: mdm.Enrollment{UDID: id}, Status: mdm.Idle},
		} {
			rtB, cB, err := b.StoreReportAndNext(ctx, id, r, nil, at(31*time.Hour))
			must(t, err)
			rtP, cP, err := p.StoreReportAndNext(ctx, id, r, nil, at(31*time.Hour))
			must(t, err)
			same(t, fmt.Sprintf("next for %s after %s", id, r.Status), [2]any{rtP, cP}, [2]any{rtB, cB})
		}
	}
	for _, key := range []string{"chal-valid", "chal-expired", "chal-unknown"} {
		same(t, "challenge "+key, read(t, func() (bool, error) { return p.TakeChallenge(ctx, key, at(0)) }), read(t, func() (bool, error) { return b.TakeChallenge(ctx, key, at(0)) }))
	}
	next := newCmd(t, "DeviceInformation")
	for _, s := range []backend{b, p} {
		must(t, s.Enqueue(ctx, []string{"MAC-00"}, next, at(32*time.Hour)))
		a, err := scheduler.NewAuditEntry(at(32*time.Hour), "admin", "group.create", "late", nil, nil)
		must(t, err)
		must(t, s.PutGroup(ctx, scheduler.Group{ID: "late"}, a))
		sts, err := s.States(ctx, []string{"MAC-00"})
		must(t, err)
		must(t, s.Commit(ctx, []scheduler.Commit{{State: sts[0], History: []scheduler.Transition{{At: at(32 * time.Hour), Kind: scheduler.EventReset, Reason: "later"}}}}, at(32*time.Hour)))
	}
	carryOnRollout(t, b, p)
	recs := read(t, func() ([]*mdm.CommandRecord, error) { return p.Commands(ctx, "MAC-00") })
	if l := recs[len(recs)-1]; l.UUID != next.UUID || l.Seq <= recs[len(recs)-2].Seq {
		t.Errorf("a new command is not queued last on pgsql: %+v", l)
	}
	compareAll(t, f, b, p)
}

func TestRunRefusesNonEmptyTarget(t *testing.T) {
	p := newPgsql(t)
	must(t, p.PutAPIKey(t.Context(), storage.APIKey{ID: "existing", Hash: "h"}))
	b := newBolt(t)
	populate(t, b)
	_, err := Run(t.Context(), b, p, nil)
	if !errors.Is(err, ErrTargetNotEmpty) {
		t.Fatalf("Run into a non-empty target: err = %v, want ErrTargetNotEmpty", err)
	}
	c, err := p.Counts(t.Context())
	must(t, err)
	if want := (record.Counts{record.APIKeys: 1}); !reflect.DeepEqual(nonZero(c), want) {
		t.Errorf("target after refusal = %v, want %v", nonZero(c), want)
	}
}

func nonZero(c record.Counts) record.Counts {
	out := record.Counts{}
	for k, n := range c {
		if n != 0 {
			out[k] = n
		}
	}
	return out
}

// lying misreports one count of the source.
type lying struct {
	*bolt.Store
	kind string
}

func (l lying) Counts(ctx context.Context) (record.Counts, error) {
	c, err := l.Store.Counts(ctx)
	if err == nil {
		c[l.kind]++
	}
	return c, err
}

// failing fails exporting agents, after devices and commands were copied.
type failing struct{ *bolt.Store }

var errExport = errors.New("disk on fire")

func (failing) ExportAgents(context.Context, func(record.Agent) error) error { return errExport }

// failingLast fails exporting the last kind copied, the once-ledger, after
// every other kind was copied.
type failingLast struct{ *bolt.Store }

func (failingLast) ExportWebhookOnce(context.Context, func(record.OnceEntry) error) error {
	return errExport
}

func TestRunLeavesTargetEmptyOnFailure(t *testing.T) {
	b := newBolt(t)
	populate(t, b)
	tests := []struct {
		name string
		src  Source
		want error
	}{
		{"count mismatch", lying{b, record.QueuedCommands}, ErrCountMismatch},
		{"export error", failing{b}, errExport},
		{"count mismatch of ddm items", lying{b, record.DDMItems}, ErrCountMismatch},
		{"export error of the last kind", failingLast{b}, errExport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPgsql(t)
			rep, err := Run(t.Context(), tc.src, p, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if l, ok := tc.src.(lying); ok && (len(rep.Differences) != 1 || !strings.HasPrefix(rep.Differences[0], l.kind+":")) {
				t.Errorf("differences = %q, want one about %s", rep.Differences, l.kind)
			}
			c, err := p.Counts(t.Context())
			must(t, err)
			if !c.Empty() {
				t.Errorf("target after a failed run = %v, want empty", nonZero(c))
			}
			// And a second, honest run succeeds.
			if _, err := Run(t.Context(), b, p, nil); err != nil {
				t.Errorf("run after a failed one: %v", err)
			}
		})
	}
}
