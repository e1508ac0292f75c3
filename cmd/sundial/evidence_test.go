package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// TestEvidenceCLIAndAPI: over the real server, `sundial report evidence`
// records today's evidence (admin) and shows it as a table, JSON and CSV
// (an exception reason that is a formula is neutralised); a read key may
// read it but not record; bad dates, a reversed range and a range beyond
// the days kept are refused with exit 2 and an invalid error.
func TestEvidenceCLIAndAPI(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	ctx := t.Context()
	read, err := ts.admin.CreateAPIKeyWithRole(ctx, "auditor", api.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	cliAs := func(key string, args ...string) (int, string) {
		env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": key}
		var out, errb bytes.Buffer
		code := run(ctx, append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	cli := func(args ...string) (int, string) { return cliAs(ts.admin.APIKey, args...) }

	behind := ts.enroll(t, mdmtest.WithOS("15.1", "24B83"))
	current := ts.enroll(t, mdmtest.WithOS("15.2", "24C101"))
	for _, m := range []*mdmtest.Device{behind, current} {
		if _, err := m.Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().UTC().AddDate(0, 0, 10)
	if _, err := ts.admin.SetPolicy(ctx, scheduler.DefaultGroupID, softwareupdate.Policy{Mode: softwareupdate.ModeManual,
		MinimumVersion: "15.2", Date: deadline.Format(time.DateOnly), TimeOfDay: "12:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.app.manager.SetException(ctx, "e2e-test", scheduler.ScopeDevice, current.UDID, softwareupdate.Exception{
		Exempt: true, Expires: time.Now().AddDate(0, 1, 0), Reason: "=HYPERLINK(\"http://x\")", GrantedBy: "cio@example.com"}); err != nil {
		t.Fatal(err)
	}
	schedState(t, ts, behind.UDID, func(st *scheduler.State) bool { return st.Phase == softwareupdate.PhasePending })
	schedState(t, ts, current.UDID, func(st *scheduler.State) bool { return st.Phase == softwareupdate.PhaseCompliant })

	// A read key may not record, but may read.
	if code, out := cliAs(read.Secret, "report", "evidence", "--record"); code != exitAuth {
		t.Errorf("record with a read key = %d %q, want exit %d", code, out, exitAuth)
	}
	code, out := cli("report", "evidence", "--record", "-o", "json")
	if code != 0 {
		t.Fatalf("report evidence --record = %d %q", code, out)
	}
	var rep scheduler.EvidenceReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if rep.Days != 1 || rep.To != today || rep.WithinDays != 14 || len(rep.Rows) != 2 || rep.Rows[0].GroupID != "" ||
		rep.Rows[0].Managed != 2 || rep.Rows[0].Exceptions != 1 || len(rep.Exceptions) != 1 || rep.Exceptions[0].GrantedBy != "cio@example.com" {
		t.Fatalf("report = %+v", rep)
	}
	if len(rep.Releases) != 1 || rep.Releases[0].Version != "15.2" || rep.Releases[0].Required != 1 || rep.Releases[0].Within != 0 {
		t.Errorf("releases = %+v", rep.Releases)
	}
	code, out = cliAs(read.Secret, "report", "evidence", "--from", today, "--to", today, "--within", "30d")
	if code != 0 || !strings.Contains(out, "WITHIN 30D") || !strings.Contains(out, "(fleet)") || !strings.Contains(out, "cio@example.com") {
		t.Errorf("table = %d %q", code, out)
	}
	code, out = cli("report", "evidence", "-o", "csv", "--group", "default")
	if code != 0 {
		t.Fatalf("csv = %d %q", code, out)
	}
	r := csv.NewReader(strings.NewReader(strings.ReplaceAll(out, "\n\n", "\n")))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	var exc []string
	for i, rec := range recs {
		if rec[0] == "exception_scope" && i+1 < len(recs) {
			exc = recs[i+1]
		}
	}
	if len(exc) < 7 || exc[6] != `'=HYPERLINK("http://x")` {
		t.Errorf("exception row %q: want the formula neutralised\n%s", exc, out)
	}
	if !strings.Contains(out, api.EvidenceCSVHeader[0]+","+api.EvidenceCSVHeader[1]) || !strings.Contains(out, today+",default,") {
		t.Errorf("csv lacks the daily rows:\n%s", out)
	}

	for _, bad := range [][]string{
		{"--from", "2026-13-01"},
		{"--to", "yesterday"},
		{"--within", "36h"},
		{"--from", today, "--to", time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)},
		{"--from", time.Now().UTC().AddDate(-2, 0, 0).Format(time.DateOnly)},
		{"--group", "Bad Group"},
	} {
		if code, out := cli(append([]string{"report", "evidence"}, bad...)...); code != exitUsage {
			t.Errorf("%q = %d %q, want exit %d", bad, code, out, exitUsage)
		}
	}
	// The API's CSV endpoint, with a read key.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/api/v1/reports/evidence.csv?within=14d", nil)
	req.Header.Set("Authorization", "Bearer "+read.Secret)
	resp, err := ts.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || !strings.HasPrefix(string(body), "summary,") {
		t.Errorf("evidence.csv = %s %q", resp.Status, body)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/api/v1/reports/evidence?from=2026-12-31&to=2026-01-01", nil)
	req.Header.Set("Authorization", "Bearer "+read.Secret)
	if resp, err = ts.hc.Do(req); err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"invalid"`) || !strings.Contains(string(body), "after to") {
		t.Errorf("reversed range = %s %s", resp.Status, body)
	}
}

// TestEvidenceDue: the leader records a day's evidence when it has none
// or the stored one is an hour old, so that a restarted or new leader
// does not retake a fresh snapshot.
func TestEvidenceDue(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := t.Context()
	taken := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	if due, err := evidenceDue(ctx, store, taken); err != nil || !due {
		t.Fatalf("no evidence yet: due %v, %v", due, err)
	}
	if err := store.PutEvidenceDay(ctx, storage.EvidenceDay{Day: "2026-12-07", TakenAt: taken, Rows: []storage.EvidenceRow{{}}, Exceptions: []storage.EvidenceException{}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at  time.Time
		due bool
	}{
		{taken.Add(59 * time.Minute), false},
		{taken.Add(evidenceInterval), true},
		{time.Date(2026, 12, 8, 0, 5, 0, 0, time.UTC), true}, // a new day
	} {
		if due, err := evidenceDue(ctx, store, tc.at); err != nil || due != tc.due {
			t.Errorf("at %s: due %v, %v; want %v", tc.at, due, err, tc.due)
		}
	}
}
