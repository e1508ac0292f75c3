package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

type noEnqueue struct{}

func (noEnqueue) Enqueue(context.Context, []string, *mdm.Command) error { return nil }

// reportEnv is the admin API with the report endpoints over a real bbolt
// store holding two Macs evaluated by the scheduler.
type reportEnv struct {
	store   *bolt.Store
	mgr     *scheduler.Manager
	srv     *httptest.Server
	client  *Client
	revoked *Client
	none    *Client
}

func newReportEnv(t *testing.T) *reportEnv {
	t.Helper()
	ctx := t.Context()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rel := func(v, build, posted string) catalog.Release {
		d, _ := time.Parse(time.DateOnly, posted)
		return catalog.Release{Version: catalog.MustParseVersion(v), Build: build, PostingDate: d, SupportedDevices: []string{"J413AP"}}
	}
	cat, err := catalog.New(rel("15.1", "24B83", "2025-10-28"), rel("15.2", "24C101", "2026-02-20"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(now)
	for i, osv := range []string{"15.1", "15.2"} {
		id := []string{"MAC-A", "MAC-B"}[i]
		if err := store.Authenticate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t", OSVersion: osv}, "cert-"+id, now); err != nil {
			t.Fatal(err)
		}
		if _, err := store.TokenUpdate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("tok" + id), PushMagic: "m"}, nil, now); err != nil {
			t.Fatal(err)
		}
		if err := store.UpdateInventory(ctx, id, &mdm.Inventory{OSVersion: osv, SoftwareUpdateDeviceID: "J413AP", SerialNumber: "SN-" + id, IsSupervised: true}, now); err != nil {
			t.Fatal(err)
		}
	}
	sched := scheduler.New(store, store, cat, clk)
	mgr := scheduler.NewManager(store, cat, clk, sched)
	if _, err := mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{Mode: "manual", MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sched.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []storage.APIKey{{ID: "good", Hash: HashKey("good-key"), CreatedAt: now}, {ID: "old", Hash: HashKey("old-key"), CreatedAt: now}} {
		if err := store.PutAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.RevokeAPIKey(ctx, "old", now); err != nil {
		t.Fatal(err)
	}
	s := New(store, noEnqueue{}, nil)
	r := mux.NewRouter()
	s.Register(r)
	s.RegisterReports(r, scheduler.NewReporter(store, store, cat, clk))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &reportEnv{store: store, mgr: mgr, srv: srv,
		client:  &Client{BaseURL: srv.URL, APIKey: "good-key"},
		revoked: &Client{BaseURL: srv.URL, APIKey: "old-key"},
		none:    &Client{BaseURL: srv.URL},
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != code || ae.Message == "" {
		t.Errorf("error = %v, want code %s with a message", err, code)
	}
}

func TestReportEndpointsAuth(t *testing.T) {
	e := newReportEnv(t)
	ctx := t.Context()
	p := softwareupdate.Policy{Mode: "unmanaged"}
	for name, c := range map[string]*Client{"no key": e.none, "revoked key": e.revoked} {
		_, err := c.ComplianceReport(ctx, true)
		wantCode(t, err, CodeUnauthorized)
		_, err = c.ComplianceCSV(ctx, &bytes.Buffer{})
		wantCode(t, err, CodeUnauthorized)
		_, err = c.PolicyWhatIf(ctx, scheduler.DefaultGroupID, p)
		wantCode(t, err, CodeUnauthorized)
		t.Log(name, "refused")
	}
}

func TestComplianceReportEndpoints(t *testing.T) {
	e := newReportEnv(t)
	ctx := t.Context()
	rep, err := e.client.ComplianceReport(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Devices != 2 || rep.ByPhase[softwareupdate.PhasePending] != 1 || rep.ByPhase[softwareupdate.PhaseCompliant] != 1 || len(rep.Rows) != 2 {
		t.Errorf("report = %+v", rep)
	}
	if rep, err := e.client.ComplianceReport(ctx, false); err != nil || rep.Rows != nil || rep.Devices != 2 {
		t.Errorf("report without rows = %+v, %v", rep, err)
	}
	var buf bytes.Buffer
	if _, err := e.client.ComplianceCSV(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != strings.Join(scheduler.CSVHeader, ",") || recs[1][0] != "MAC-A" || recs[1][8] != "pending" || recs[2][8] != "compliant" {
		t.Errorf("csv = %v", recs)
	}
	resp, err := http.Get(e.srv.URL + "/api/v1/reports/compliance?rows=maybe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated status %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/v1/reports/compliance?rows=maybe", nil)
	req.Header.Set("Authorization", "Bearer good-key")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("rows=maybe status %d, want 400", resp.StatusCode)
	}
}

func TestPolicyWhatIfEndpoint(t *testing.T) {
	e := newReportEnv(t)
	ctx := t.Context()
	audit := func() int {
		a, err := e.mgr.Audit(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(a)
	}
	before, err := e.mgr.Policy(ctx, scheduler.DefaultGroupID)
	if err != nil {
		t.Fatal(err)
	}
	n := audit()
	res, err := e.client.PolicyWhatIf(ctx, scheduler.DefaultGroupID, softwareupdate.Policy{Mode: "manual", MinimumVersion: "15.2", Date: "2026-03-12", TimeOfDay: "17:00", TimeZone: "UTC", MinimumNoticeDays: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 2 || res.Tomorrow[softwareupdate.PhaseNotify] != 1 || res.Tomorrow[softwareupdate.PhaseCompliant] != 1 || res.ByTarget["15.2"] != 1 {
		t.Errorf("what-if = %+v", res)
	}
	tests := []struct {
		name, group, body, code string
	}{
		{"past deadline", scheduler.DefaultGroupID, `{"mode":"manual","minimum_version":"15.2","date":"2020-01-01","time_of_day":"17:00","time_zone":"UTC"}`, CodeInvalid},
		{"unknown zone", scheduler.DefaultGroupID, `{"mode":"automatic","delay_days":7,"time_of_day":"17:00","time_zone":"Mars/Olympus"}`, CodeInvalid},
		{"unknown field", scheduler.DefaultGroupID, `{"mode":"unmanaged","colour":"blue"}`, CodeInvalid},
		{"not json", scheduler.DefaultGroupID, `mode=manual`, CodeInvalid},
		{"two objects", scheduler.DefaultGroupID, `{"mode":"unmanaged"}{}`, CodeInvalid},
		{"bad group id", "Bad!", `{"mode":"unmanaged"}`, CodeInvalid},
		{"unknown group", "nope", `{"mode":"unmanaged"}`, CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.client.do(ctx, http.MethodPost, "/api/v1/groups/"+tt.group+"/policy/what-if", strings.NewReader(tt.body), "application/json", nil)
			wantCode(t, err, tt.code)
		})
	}
	after, err := e.mgr.Policy(ctx, scheduler.DefaultGroupID)
	if err != nil || after.Revision != before.Revision || audit() != n {
		t.Errorf("what-if saved something: policy %+v -> %+v, audit %d -> %d", before, after, n, audit())
	}
}

func FuzzDecodeWhatIfPolicy(f *testing.F) {
	f.Add([]byte(`{"mode":"manual","minimum_version":"15.2","date":"2026-03-20","time_of_day":"17:00","time_zone":"UTC"}`))
	f.Add([]byte(`{"mode":"automatic","delay_days":7}`))
	f.Add([]byte(`{}{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeWhatIfPolicy(bytes.NewReader(b))
		if err == nil {
			_ = p.Validate(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), nil)
		}
	})
}
