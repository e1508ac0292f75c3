package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/migrate/record"
)

func TestExport(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var queued []string
	for _, id := range []string{"B-2", "A-1"} {
		must(s.Authenticate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate}, "cert-"+id, t0))
		_, err := s.TokenUpdate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate,
			Topic: "t", Token: []byte("tok"), PushMagic: "m"}, nil, t0)
		must(err)
		for _, rt := range []string{"First", "Second", "Third"} {
			c, err := mdm.NewCommand(rt, nil)
			must(err)
			must(s.Enqueue(ctx, []string{id}, c, t0))
			if id == "A-1" {
				queued = append(queued, c.UUID)
			}
		}
	}
	// the first acknowledged, the second NotNow'd.
	r := func(uuid string, st mdm.Status) *mdm.Report {
		return &mdm.Report{Enrollment: mdm.Enrollment{UDID: "A-1"}, CommandUUID: uuid, Status: st}
	}
	for _, rep := range []*mdm.Report{r("", mdm.Idle), r(queued[0], mdm.Acknowledged), r(queued[1], mdm.NotNow)} {
		_, _, err := s.StoreReportAndNext(ctx, "A-1", rep, []byte("<result/>"), t0)
		must(err)
	}
	must(s.PutAPIKey(ctx, storage.APIKey{ID: "k", Hash: "h", CreatedAt: t0}))
	must(s.PutChallenge(ctx, "c", t0))
	must(s.PutAgentSecret(ctx, "A-1", "sh", t0))
	must(s.AppendAgentReport(ctx, "A-1", storage.AgentReport{Events: []storage.AgentEvent{{Kind: "prompt", At: t0}, {Kind: "choice", At: t0}}}, t0))
	rawItem := json.RawMessage(`{"spaced":   true}`)
	for i := range 3 {
		must(s.UpdateDDM(ctx, "A-1", func(r *ddm.Record) ([]ddm.Event, error) {
			r.Status.Items = map[string]json.RawMessage{"x": rawItem}
			return []ddm.Event{{At: t0.Add(time.Duration(i) * time.Second)}}, nil
		}))
	}
	must(s.PutGroup(ctx, scheduler.Group{ID: "pilot"}, &scheduler.AuditEntry{At: t0, Action: "group.create"}))
	must(s.AssignDevices(ctx, "pilot", []string{"A-1"}, &scheduler.AuditEntry{At: t0, Action: "group.assign"}))
	_, err = s.PutPolicy(ctx, scheduler.PolicyRecord{GroupID: "pilot"}, nil)
	must(err)
	must(s.PutException(ctx, scheduler.ExceptionRecord{Scope: scheduler.ScopeDevice, ID: "A-1"}, nil))
	for i, id := range []string{"B-2", "A-1", "B-2"} {
		st := &scheduler.State{DeviceID: id}
		if i == 2 {
			st.Rev = 1
		}
		must(s.Commit(ctx, []scheduler.Commit{{State: st, History: []scheduler.Transition{{At: t0, Reason: id}}}}, t0))
	}

	must(s.PutCatalogFeed(ctx, "gdmf", []byte("{}"), t0))
	must(s.PutCatalogPoll(ctx, "gdmf", []byte("{}")))
	must(s.PutManualRelease(ctx, "15.4", []byte("{}")))
	must(s.UpdateEnrollmentGuard(ctx, "A-1", func(g *mdm.EnrollmentGuard) error {
		g.AppendEvent(mdm.EnrollmentEvent{Kind: mdm.EventBound, At: t0})
		return nil
	}))
	must(s.ApplyADEPage(ctx, storage.ADEPage{Server: "abm", Cursor: "c1", Upsert: []storage.ADEDevice{{Serial: "S1"}}}, t0))
	must(s.PutDEPServer(ctx, &storage.DEPServer{Name: "abm", SealedKey: []byte("sealed\x00key"), SealedTokens: []byte("sealed-tokens")}))
	putRolloutKinds(t, s, t0)
	counts, err := s.Counts(ctx)
	must(err)
	got := record.Counts{}
	var (
		cmds    []record.Command
		hist    []record.HistoryEntry
		audits  []uint64
		devices []string
		ddms    []record.DDM
	)
	count := func(kind string) { got[kind]++ }
	must(s.ExportDevices(ctx, func(d *mdm.Device) error {
		count(record.Devices)
		devices = append(devices, d.ID)
		if d.CertHash != "" {
			count(record.CertBindings)
		}
		if !d.LastSeen.IsZero() {
			count(record.LastSeen)
		}
		if !d.LastPush.At.IsZero() {
			count(record.PushStates)
		}
		return nil
	}))
	must(s.ExportCommands(ctx, func(c record.Command) error {
		count(record.Commands)
		if c.Queued {
			count(record.QueuedCommands)
		}
		if c.NotNow {
			count(record.NotNowCommands)
		}
		cmds = append(cmds, c)
		return nil
	}))
	must(s.ExportAPIKeys(ctx, func(k storage.APIKey) error { count(record.APIKeys); return nil }))
	must(s.ExportChallenges(ctx, func(c record.Challenge) error { count(record.Challenges); return nil }))
	must(s.ExportAgents(ctx, func(a record.Agent) error {
		count(record.Agents)
		got[record.AgentEvents] += len(a.State.Events)
		return nil
	}))
	must(s.ExportDDM(ctx, func(r record.DDM) error {
		count(record.DDMRecords)
		got[record.DDMEvents] += len(r.History)
		ddms = append(ddms, r)
		return nil
	}))
	must(s.ExportGroups(ctx, func(scheduler.Group) error { count(record.Groups); return nil }))
	must(s.ExportMemberships(ctx, func(record.Membership) error { count(record.Memberships); return nil }))
	must(s.ExportPolicies(ctx, func(scheduler.PolicyRecord) error { count(record.Policies); return nil }))
	must(s.ExportExceptions(ctx, func(scheduler.ExceptionRecord) error { count(record.Exceptions); return nil }))
	must(s.ExportStates(ctx, func(*scheduler.State) error { count(record.UpdateStates); return nil }))
	must(s.ExportHistory(ctx, func(e record.HistoryEntry) error { count(record.UpdateHistory); hist = append(hist, e); return nil }))
	must(s.ExportAudit(ctx, func(a scheduler.AuditEntry) error { count(record.AuditLog); audits = append(audits, a.Seq); return nil }))
	raw := map[string][]record.CatalogItem{}
	for _, k := range record.RawKinds {
		must(s.ExportCatalog(ctx, k, func(it record.CatalogItem) error { count(k); raw[k] = append(raw[k], it); return nil }))
	}
	// The DEP server's secrets leave as the sealed bytes stored.
	var srv storage.DEPServer
	if d := raw[record.DEPServers]; len(d) != 1 || d[0].Key != "abm" || json.Unmarshal(d[0].Value, &srv) != nil ||
		string(srv.SealedKey) != "sealed\x00key" || string(srv.SealedTokens) != "sealed-tokens" {
		t.Errorf("dep servers export = %+v", d)
	}
	if c := raw[record.ADECursors]; len(c) != 1 || c[0].Key != "abm" || string(c[0].Value) != "c1" {
		t.Errorf("abm cursors export = %+v", c)
	}
	exportRolloutKinds(t, s, t0, got, ddms, raw)
	if err := s.ExportCatalog(ctx, "bogus", func(record.CatalogItem) error { return nil }); err == nil {
		t.Error("ExportCatalog of an unknown kind succeeded")
	}

	for _, k := range record.Kinds {
		if k == record.LastSeen || k == record.PushStates {
			continue // none recorded above
		}
		if counts[k] != got[k] || got[k] == 0 {
			t.Errorf("%s: counted %d, exported %d", k, counts[k], got[k])
		}
	}
	if want := []string{"A-1", "B-2"}; !slices.Equal(devices, want) {
		t.Errorf("devices = %v, want %v", devices, want)
	}
	// A-1's commands in FIFO order, with their queue state.
	type cmdState struct {
		uuid           string
		queued, notNow bool
		result         string
	}
	var have []cmdState
	for _, c := range cmds {
		if c.Record.EnrollmentID != "A-1" {
			continue
		}
		have = append(have, cmdState{c.Record.UUID, c.Queued, c.NotNow, string(c.Record.Result)})
		if len(c.Record.Raw) == 0 {
			t.Errorf("command %s exported without its body", c.Record.UUID)
		}
	}
	want := []cmdState{{queued[0], false, false, "<result/>"}, {queued[1], true, true, ""}, {queued[2], true, false, ""}}
	if !slices.Equal(have, want) {
		t.Errorf("A-1 commands = %+v, want %+v", have, want)
	}
	for i := 1; i < len(cmds); i++ {
		if cmds[i].Record.Seq <= cmds[i-1].Record.Seq {
			t.Errorf("commands out of FIFO order: %d after %d", cmds[i].Record.Seq, cmds[i-1].Record.Seq)
		}
	}
	if len(hist) != 3 || hist[0].DeviceID != "A-1" || hist[1].DeviceID != "B-2" || hist[1].Seq >= hist[2].Seq {
		t.Errorf("history = %+v", hist)
	}
	if !slices.Equal(audits, []uint64{1, 2}) {
		t.Errorf("audit seqs = %v", audits)
	}
	var rec ddm.Record
	if len(ddms) != 1 || json.Unmarshal(ddms[0].Record, &rec) != nil || string(rec.Status.Items["x"]) != `{"spaced":true}` || len(ddms[0].History) != 3 {
		t.Errorf("ddm export = %d records, items %s", len(ddms), rec.Status.Items["x"])
	}

	// An error from fn stops the walk and comes back; so does a canceled
	// context.
	stop := errors.New("stop")
	n := 0
	if err := s.ExportCommands(ctx, func(record.Command) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("ExportCommands with failing fn = %v after %d", err, n)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.ExportDevices(canceled, func(*mdm.Device) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("ExportDevices with canceled context = %v", err)
	}
}
