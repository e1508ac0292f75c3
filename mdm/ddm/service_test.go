package ddm_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// queue records enqueued commands, like the MDM service's Enqueue.
type queue struct {
	mu   sync.Mutex
	cmds map[string][]*mdm.Command
	fail error
}

func (q *queue) Enqueue(ctx context.Context, ids []string, cmd *mdm.Command) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return q.fail
	}
	if q.cmds == nil {
		q.cmds = map[string][]*mdm.Command{}
	}
	for _, id := range ids {
		q.cmds[id] = append(q.cmds[id], cmd)
	}
	return nil
}

func (q *queue) count(id string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.cmds[id])
}

// lastTokens decodes the SyncTokens of the last command queued for id.
func (q *queue) lastTokens(t *testing.T, id string) ddm.SyncTokens {
	t.Helper()
	q.mu.Lock()
	cmds := q.cmds[id]
	q.mu.Unlock()
	if len(cmds) == 0 {
		t.Fatal("nothing queued")
	}
	c := cmds[len(cmds)-1]
	var v struct{ Command struct{ Data []byte } }
	if err := plist.Unmarshal(c.Raw, &v); err != nil || c.RequestType != "DeclarativeManagement" {
		t.Fatalf("queued %s: %v", c.RequestType, err)
	}
	tok, err := ddm.DecodeSyncTokens(v.Command.Data)
	if err != nil {
		t.Fatal(err)
	}
	return *tok
}

func newStore(t testing.TB) *bolt.Store {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 3, 16, 9, 0, 0, 0, time.UTC)

func decl(t *testing.T, s *ddm.Service, id, kind, ident string) ddm.Declaration {
	t.Helper()
	b, err := s.Declarative(t.Context(), id, "declaration/"+kind+"/"+ident, nil)
	if err != nil {
		t.Fatal(err)
	}
	var d ddm.Declaration
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func tokens(t *testing.T, s *ddm.Service, id string) ddm.SyncTokens {
	t.Helper()
	b, err := s.Declarative(t.Context(), id, "tokens", nil)
	if err != nil {
		t.Fatal(err)
	}
	var v ddm.TokensResponse
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.SyncTokens
}

func TestSetEnforcementQueuesSyncOnlyOnChange(t *testing.T) {
	clk := clock.NewFake(t0)
	q := &queue{}
	s := ddm.New(newStore(t), q, clk)
	ctx := t.Context()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	e := ddm.Enforcement{TargetOSVersion: "15.4", Deadline: t0.Add(72 * time.Hour), Location: berlin, DetailsURL: "https://it.example.com/os"}

	steps := []struct {
		name      string
		do        func() (bool, error)
		wantQueue int
		wantErr   error
	}{
		{"first enforcement", func() (bool, error) { return s.SetEnforcement(ctx, "MAC", e) }, 1, nil},
		{"the same again", func() (bool, error) { return s.SetEnforcement(ctx, "MAC", e) }, 1, nil},
		{"the same instant in another zone object", func() (bool, error) {
			e2 := e
			e2.Deadline = e.Deadline.In(time.UTC)
			return s.SetEnforcement(ctx, "MAC", e2)
		}, 1, nil},
		{"a new deadline", func() (bool, error) { e.Deadline = e.Deadline.Add(time.Hour); return s.SetEnforcement(ctx, "MAC", e) }, 2, nil},
		{"a new target", func() (bool, error) { e.TargetOSVersion = "15.5"; return s.SetEnforcement(ctx, "MAC", e) }, 3, nil},
		{"same wall clock in a zone with the same offset: stored, no sync", func() (bool, error) {
			paris, _ := time.LoadLocation("Europe/Paris")
			e.Location = paris
			return s.SetEnforcement(ctx, "MAC", e)
		}, 3, nil},
		{"invalid version", func() (bool, error) {
			bad := e
			bad.TargetOSVersion = "fifteen"
			return s.SetEnforcement(ctx, "MAC", bad)
		}, 3, ddm.ErrInvalid},
		{"user channel", func() (bool, error) { return s.SetEnforcement(ctx, "MAC:USER", e) }, 3, ddm.ErrInvalid},
		{"remove", func() (bool, error) { return s.RemoveEnforcement(ctx, "MAC") }, 4, nil},
		{"remove again", func() (bool, error) { return s.RemoveEnforcement(ctx, "MAC") }, 4, nil},
	}
	prev := 0
	for _, st := range steps {
		before, _ := s.Record(ctx, "MAC")
		clk.Advance(time.Minute)
		changed, err := st.do()
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
		}
		if got := q.count("MAC"); got != st.wantQueue || changed != (got > prev) {
			t.Fatalf("%s: queued %d (changed %v), want %d", st.name, got, changed, st.wantQueue)
		}
		if st.wantErr != nil {
			after, _ := s.Record(ctx, "MAC")
			if !reflect.DeepEqual(before, after) {
				t.Errorf("%s: a refused enforcement changed the record", st.name)
			}
		}
		if changed {
			// The command carries the tokens the endpoint now serves.
			if got, want := q.lastTokens(t, "MAC"), tokens(t, s, "MAC"); got != want {
				t.Errorf("%s: command tokens %+v, endpoint %+v", st.name, got, want)
			}
		}
		prev = q.count("MAC")
	}
	if q.count("MAC:USER") != 0 {
		t.Error("a command was queued for the user channel")
	}
}

func TestDeclarativeEndpoints(t *testing.T) {
	clk := clock.NewFake(t0)
	s := ddm.New(newStore(t), &queue{}, clk)
	ctx := t.Context()
	ny, _ := time.LoadLocation("America/New_York")
	if _, err := s.SetEnforcement(ctx, "MAC", ddm.Enforcement{TargetOSVersion: "15.4", TargetBuildVersion: "24E248",
		Deadline: time.Date(2026, 3, 20, 9, 0, 0, 0, ny), Location: ny}); err != nil {
		t.Fatal(err)
	}
	b, err := s.Declarative(ctx, "MAC", "declaration-items", nil)
	if err != nil {
		t.Fatal(err)
	}
	var items ddm.DeclarationItemsResponse
	if err := json.Unmarshal(b, &items); err != nil {
		t.Fatal(err)
	}
	if items.DeclarationsToken != tokens(t, s, "MAC").DeclarationsToken {
		t.Error("declaration-items and tokens disagree")
	}
	got := map[string][]string{}
	for kind, list := range map[string][]ddm.ManifestItem{ddm.KindActivation: items.Declarations.Activations,
		ddm.KindConfiguration: items.Declarations.Configurations} {
		for _, it := range list {
			d := decl(t, s, "MAC", kind, it.Identifier)
			if d.ServerToken != it.ServerToken || d.Identifier != it.Identifier {
				t.Errorf("%s: served %+v for item %+v", it.Identifier, d, it)
			}
			got[kind] = append(got[kind], it.Identifier)
		}
	}
	want := map[string][]string{
		ddm.KindActivation:    {ddm.IDEnforcementActivate, ddm.IDStatusActivation},
		ddm.KindConfiguration: {ddm.IDEnforcement, ddm.IDStatusSubscriptions},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("items = %v, want %v", got, want)
	}
	enf := decl(t, s, "MAC", ddm.KindConfiguration, ddm.IDEnforcement)
	var p ddm.EnforcementPayload
	json.Unmarshal(enf.Payload, &p)
	if p != (ddm.EnforcementPayload{TargetOSVersion: "15.4", TargetBuildVersion: "24E248", TargetLocalDateTime: "2026-03-20T09:30:00"}) {
		t.Errorf("payload = %+v", p)
	}
	sub := decl(t, s, "MAC", ddm.KindConfiguration, ddm.IDStatusSubscriptions)
	var sp struct{ StatusItems []struct{ Name string } }
	json.Unmarshal(sub.Payload, &sp)
	var names []string
	for _, it := range sp.StatusItems {
		names = append(names, it.Name)
	}
	if !slices.Equal(names, ddm.SubscribedItems) {
		t.Errorf("subscribed to %v", names)
	}
	for _, ep := range []string{"declaration/configuration/nope", "declaration/activation/" + ddm.IDEnforcement, "declaration/bogus/x", "bogus"} {
		if _, err := s.Declarative(ctx, "MAC", ep, nil); !errors.Is(err, service.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", ep, err)
		}
	}
	// A user channel gets the empty set.
	b, _ = s.Declarative(ctx, "MAC:USER", "declaration-items", nil)
	if err := json.Unmarshal(b, &items); err != nil || len(items.Declarations.Configurations) != 0 {
		t.Errorf("user channel items = %s", b)
	}
}

// report builds a status report.
func report(full bool, items map[string]any) []byte {
	nested := map[string]any{}
	for name, v := range items {
		m := nested
		parts := splitDots(name)
		for _, p := range parts[:len(parts)-1] {
			if _, ok := m[p]; !ok {
				m[p] = map[string]any{}
			}
			m = m[p].(map[string]any)
		}
		m[parts[len(parts)-1]] = v
	}
	b, _ := json.Marshal(map[string]any{"StatusItems": nested, "Errors": []any{}, "FullReport": full})
	return b
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func declStatus(token string, active bool, valid string, reasons ...map[string]any) map[string]any {
	e := map[string]any{"identifier": ddm.IDEnforcement, "active": active, "valid": valid, "server-token": token}
	if len(reasons) > 0 {
		e["reasons"] = reasons
	}
	return map[string]any{"activations": []any{}, "configurations": []any{e}, "assets": []any{}, "management": []any{}}
}

func TestStatusChannel(t *testing.T) {
	clk := clock.NewFake(t0)
	var updates []ddm.StatusUpdate
	s := ddm.New(newStore(t), &queue{}, clk, ddm.WithObserver(ddm.ObserverFunc(func(ctx context.Context, id string, u ddm.StatusUpdate) {
		updates = append(updates, u)
	})))
	ctx := t.Context()
	if _, err := s.SetEnforcement(ctx, "MAC", ddm.Enforcement{TargetOSVersion: "15.4", Deadline: t0.Add(48 * time.Hour), Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	rec, _ := s.Record(ctx, "MAC")
	tok := rec.Enforcement.ServerToken

	steps := []struct {
		name      string
		body      []byte
		wantState string
		want      ddm.Current
		compliant bool
		failed    bool
	}{
		{"full report, enforcement still processing", report(true, map[string]any{
			ddm.ItemOSVersion: "15.3.1", ddm.ItemBuildVersion: "24D70", ddm.ItemInstallState: "none",
			ddm.ItemDeclarations: declStatus(tok, false, "unknown"), "device.model.family": "Mac",
		}), ddm.StatePending, ddm.Current{OSVersion: "15.3.1", BuildVersion: "24D70", InstallState: "none"}, false, false},
		{"incremental: an old token is not a confirmation", report(false, map[string]any{
			ddm.ItemDeclarations: declStatus("old-token", true, "valid"),
		}), ddm.StatePending, ddm.Current{OSVersion: "15.3.1", BuildVersion: "24D70", InstallState: "none"}, false, false},
		{"incremental: active and valid with the current token", report(false, map[string]any{
			ddm.ItemDeclarations: declStatus(tok, true, "valid"), ddm.ItemInstallState: "waiting",
			ddm.ItemPendingVersion: map[string]any{"os-version": "15.4", "build-version": "24E248", "target-local-date-time": "2026-03-18T09:30:00"},
		}), ddm.StateConfirmed, ddm.Current{OSVersion: "15.3.1", BuildVersion: "24D70", InstallState: "waiting",
			PendingVersion: ddm.PendingVersion{"15.4", "24E248", "2026-03-18T09:30:00"}}, false, false},
		{"incremental: install failed", report(false, map[string]any{
			ddm.ItemInstallState: "failed", ddm.ItemFailureReason: map[string]any{"count": 1, "reason": "InstallFailed", "timestamp": "2026-03-18T09:31:00Z"},
		}), ddm.StateConfirmed, ddm.Current{OSVersion: "15.3.1", BuildVersion: "24D70", InstallState: "failed",
			PendingVersion: ddm.PendingVersion{"15.4", "24E248", "2026-03-18T09:30:00"},
			FailureReason:  ddm.FailureReason{Count: 1, Reason: "InstallFailed", Timestamp: "2026-03-18T09:31:00Z"}}, false, true},
		{"incremental: the enforcement becomes invalid", report(false, map[string]any{
			ddm.ItemDeclarations: declStatus(tok, true, "invalid", map[string]any{"code": "Error.ConfigurationCannotBeApplied", "description": "Configuration cannot be applied"}),
		}), ddm.StateFailed, ddm.Current{OSVersion: "15.3.1", BuildVersion: "24D70", InstallState: "failed",
			PendingVersion: ddm.PendingVersion{"15.4", "24E248", "2026-03-18T09:30:00"},
			FailureReason:  ddm.FailureReason{Count: 1, Reason: "InstallFailed", Timestamp: "2026-03-18T09:31:00Z"}}, false, true},
		{"full report replaces everything: updated and compliant", report(true, map[string]any{
			ddm.ItemOSVersion: "15.4", ddm.ItemBuildVersion: "24E248", ddm.ItemInstallState: "none",
			ddm.ItemDeclarations: declStatus(tok, true, "valid"),
		}), ddm.StateConfirmed, ddm.Current{OSVersion: "15.4", BuildVersion: "24E248", InstallState: "none"}, true, false},
	}
	for i, st := range steps {
		clk.Advance(time.Minute)
		if _, err := s.Declarative(ctx, "MAC", "status", st.body); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		u := updates[i]
		if u.State != st.wantState || !reflect.DeepEqual(u.Current, st.want) || u.Compliant != st.compliant || u.InstallFailed != st.failed {
			t.Errorf("%s:\n got state %q compliant %v failed %v %+v\nwant state %q compliant %v failed %v %+v", st.name,
				u.State, u.Compliant, u.InstallFailed, u.Current, st.wantState, st.compliant, st.failed, st.want)
		}
		if st.wantState == ddm.StateFailed && (len(u.Reasons) != 1 || u.Reasons[0].Code != "Error.ConfigurationCannotBeApplied") {
			t.Errorf("%s: reasons %+v", st.name, u.Reasons)
		}
	}
	rec, _ = s.Record(ctx, "MAC")
	if _, ok := rec.Status.Items["device.model.family"]; ok {
		t.Error("a full report kept an item it did not carry")
	}
	if !rec.Enforcement.Confirmed || rec.Status.Reports != len(steps) {
		t.Errorf("record = %+v", rec)
	}
	hist, _ := s.History(ctx, "MAC")
	var states []string
	for _, ev := range hist {
		states = append(states, ev.Enforcement)
	}
	if want := []string{"pending", "pending", "confirmed", "confirmed", "failed", "confirmed"}; !slices.Equal(states, want) {
		t.Errorf("history states %v, want %v", states, want)
	}

	// A malformed report is a ParseError and stores nothing.
	before, _ := s.Record(ctx, "MAC")
	for _, bad := range [][]byte{nil, []byte(`{"StatusItems":{"softwareupdate":{"install-state":7}}}`), []byte(`{`)} {
		_, err := s.Declarative(ctx, "MAC", "status", bad)
		var pe *mdm.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("status %q: err = %v, want a ParseError", bad, err)
		}
	}
	after, _ := s.Record(ctx, "MAC")
	if h, _ := s.History(ctx, "MAC"); !reflect.DeepEqual(before, after) || len(h) != len(hist) || len(updates) != len(steps) {
		t.Error("a malformed report changed something")
	}
}

func TestUnconfirmedAndEnsureDelivery(t *testing.T) {
	clk := clock.NewFake(t0)
	q := &queue{}
	s := ddm.New(newStore(t), q, clk)
	ctx := t.Context()
	for i, id := range []string{"A", "B", "C"} {
		if _, err := s.SetEnforcement(ctx, id, ddm.Enforcement{TargetOSVersion: "15.4", Deadline: t0.Add(time.Duration(24*(i+1)) * time.Hour), Location: time.UTC}); err != nil {
			t.Fatal(err)
		}
	}
	// B confirms.
	rec, _ := s.Record(ctx, "B")
	if _, err := s.Declarative(ctx, "B", "status", report(false, map[string]any{ddm.ItemDeclarations: declStatus(rec.Enforcement.ServerToken, true, "valid")})); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Unconfirmed(ctx, t0.Add(100*time.Hour)); !slices.Equal(got, []string{"A", "C"}) {
		t.Errorf("Unconfirmed = %v, want [A C]", got)
	}
	steps := []struct {
		name    string
		advance time.Duration
		want    int
		queued  map[string]int
	}{
		{"nothing is due 6 h ahead yet", 0, 0, map[string]int{"A": 1, "B": 1, "C": 1}},
		{"A is 5 h from its deadline", 19 * time.Hour, 1, map[string]int{"A": 2, "B": 1, "C": 1}},
		{"not again within the hour", 30 * time.Minute, 0, map[string]int{"A": 2, "B": 1, "C": 1}},
		{"again after an hour", 31 * time.Minute, 1, map[string]int{"A": 3, "B": 1, "C": 1}},
		{"C is due, B confirmed never is", 48 * time.Hour, 2, map[string]int{"A": 4, "B": 1, "C": 2}},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		n, err := s.EnsureDelivery(ctx, 6*time.Hour, time.Hour)
		if err != nil || n != st.want {
			t.Fatalf("%s: EnsureDelivery = %d, %v; want %d", st.name, n, err, st.want)
		}
		for id, want := range st.queued {
			if got := q.count(id); got != want {
				t.Errorf("%s: %s has %d commands, want %d", st.name, id, got, want)
			}
		}
	}
	// A resync carries the current tokens.
	if got, want := q.lastTokens(t, "A"), tokens(t, s, "A"); got != want {
		t.Errorf("resync tokens %+v, endpoint %+v", got, want)
	}
}

func TestReenrollmentRedelivers(t *testing.T) {
	clk := clock.NewFake(t0)
	q := &queue{}
	s := ddm.New(newStore(t), q, clk)
	ctx := t.Context()
	if _, err := s.SetEnforcement(ctx, "MAC", ddm.Enforcement{TargetOSVersion: "15.4", Deadline: t0.Add(48 * time.Hour), Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	rec, _ := s.Record(ctx, "MAC")
	s.Declarative(ctx, "MAC", "status", report(false, map[string]any{ddm.ItemDeclarations: declStatus(rec.Enforcement.ServerToken, true, "valid")}))
	if got, _ := s.Unconfirmed(ctx, t0.Add(1000*time.Hour)); len(got) != 0 {
		t.Fatalf("confirmed device listed: %v", got)
	}
	tokenUpdate := &mdm.CheckinMessage{MessageType: mdm.TokenUpdate, Enrollment: mdm.Enrollment{UDID: "MAC"}}
	s.Checkin(ctx, "MAC", tokenUpdate)
	if q.count("MAC") != 1 {
		t.Fatal("a routine TokenUpdate queued a sync")
	}
	s.Checkin(ctx, "MAC", &mdm.CheckinMessage{MessageType: mdm.Authenticate, Enrollment: mdm.Enrollment{UDID: "MAC"}})
	rec, _ = s.Record(ctx, "MAC")
	if rec.Enforcement == nil || rec.Enforcement.Confirmed || !rec.NeedsSync || len(rec.Status.Declarations) != 0 {
		t.Errorf("after Authenticate: %+v", rec)
	}
	if got, _ := s.Unconfirmed(ctx, t0.Add(1000*time.Hour)); !slices.Equal(got, []string{"MAC"}) {
		t.Errorf("re-enrolled device not unconfirmed: %v", got)
	}
	s.Checkin(ctx, "MAC", tokenUpdate)
	s.Checkin(ctx, "MAC", tokenUpdate)
	if q.count("MAC") != 2 {
		t.Errorf("%d commands after re-enrollment, want 2 (one sync)", q.count("MAC"))
	}
	// A device Sundial never declared anything for gets no record.
	s.Checkin(ctx, "OTHER", &mdm.CheckinMessage{MessageType: mdm.Authenticate, Enrollment: mdm.Enrollment{UDID: "OTHER"}})
	if r, _ := s.Record(ctx, "OTHER"); !reflect.DeepEqual(*r, ddm.Record{}) {
		t.Errorf("record created for a device without declarations: %+v", r)
	}
}

func BenchmarkTokens(b *testing.B) {
	s := ddm.New(newStore(b), &queue{}, clock.NewFake(t0))
	ctx := context.Background()
	if _, err := s.SetEnforcement(ctx, "MAC", ddm.Enforcement{TargetOSVersion: "15.4", Deadline: t0.Add(48 * time.Hour), Location: time.UTC}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Declarative(ctx, "MAC", "tokens", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatusReport(b *testing.B) {
	s := ddm.New(newStore(b), &queue{}, clock.NewFake(t0))
	ctx := context.Background()
	body := report(false, map[string]any{ddm.ItemInstallState: "downloading", ddm.ItemOSVersion: "15.3.1"})
	for b.Loop() {
		if _, err := s.Declarative(ctx, "MAC", "status", body); err != nil {
			b.Fatal(err)
		}
	}
}
