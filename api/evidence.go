package api

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// EvidenceSource keeps and reports the daily compliance evidence
// (scheduler.EvidenceRecorder).
type EvidenceSource interface {
	// Report builds the evidence report of q (empty fields take defaults).
	Report(ctx context.Context, q scheduler.EvidenceQuery) (*scheduler.EvidenceReport, error)
	// Record takes today's evidence so far, replacing today's.
	Record(ctx context.Context) (*storage.EvidenceDay, error)
}

// RegisterEvidence mounts, on the root router r behind API-key
// authentication:
//
//	GET  /api/v1/reports/evidence?from=&to=&group=&within=   a scheduler.EvidenceReport
//	GET  /api/v1/reports/evidence.csv?...                     the same as CSV
//	POST /api/v1/reports/evidence                             record today's evidence so far (admin)
func (s *Server) RegisterEvidence(r *mux.Router, src EvidenceSource) {
	if src == nil {
		panic("api.RegisterEvidence: nil source")
	}
	v1 := r.PathPrefix("/api/v1").Subrouter()
	v1.Use(s.authenticate)
	v1.Handle("/reports/evidence", s.handle(func(r *http.Request) (any, int, error) {
		rep, err := evidenceReport(r, src)
		if err != nil {
			return nil, 0, err
		}
		return rep, http.StatusOK, nil
	})).Methods(http.MethodGet)
	v1.HandleFunc("/reports/evidence.csv", func(w http.ResponseWriter, r *http.Request) {
		rep, err := evidenceReport(r, src)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				s.log.Error("api request failed", "path", r.URL.Path, "err", err)
				ae = &Error{Code: CodeInternal, Message: "internal error"}
			}
			writeError(w, ae)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="sundial-evidence-%s-%s.csv"`, rep.From, rep.To))
		if err := WriteEvidenceCSV(w, rep); err != nil {
			s.log.Warn("write evidence csv", "err", err)
		}
	}).Methods(http.MethodGet)
	v1.Handle("/reports/evidence", s.handle(func(r *http.Request) (any, int, error) {
		d, err := src.Record(r.Context())
		if err != nil {
			return nil, 0, mosError(err)
		}
		return d, http.StatusOK, nil
	})).Methods(http.MethodPost)
}

// EvidenceQueryOf reads an evidence query from URL parameters: from, to
// (YYYY-MM-DD), group and within (days, "14" or "14d").
func EvidenceQueryOf(v url.Values) (scheduler.EvidenceQuery, error) {
	q := scheduler.EvidenceQuery{From: v.Get("from"), To: v.Get("to"), Group: v.Get("group")}
	if w := strings.TrimSuffix(v.Get("within"), "d"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 {
			return q, &Error{Code: CodeInvalid, Message: "within must be a whole number of days such as 14 or 14d"}
		}
		q.WithinDays = n
	}
	return q, nil
}

func evidenceReport(r *http.Request, src EvidenceSource) (*scheduler.EvidenceReport, error) {
	q, err := EvidenceQueryOf(r.URL.Query())
	if err != nil {
		return nil, err
	}
	rep, err := src.Report(r.Context(), q)
	if err != nil {
		return nil, mosError(err)
	}
	return rep, nil
}

func evidenceValues(q scheduler.EvidenceQuery) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"from": q.From, "to": q.To, "group": q.Group} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.WithinDays != 0 {
		v.Set("within", strconv.Itoa(q.WithinDays))
	}
	return v
}

// Evidence fetches the evidence report of q.
func (c *Client) Evidence(ctx context.Context, q scheduler.EvidenceQuery) (*scheduler.EvidenceReport, error) {
	var out scheduler.EvidenceReport
	if err := c.doJSON(ctx, http.MethodGet, "/api/v1/reports/evidence?"+evidenceValues(q).Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RecordEvidence records today's evidence so far.
func (c *Client) RecordEvidence(ctx context.Context) (*storage.EvidenceDay, error) {
	var out storage.EvidenceDay
	if err := c.doJSON(ctx, http.MethodPost, "/api/v1/reports/evidence", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EvidenceCSVHeader heads the daily rows of WriteEvidenceCSV.
var EvidenceCSVHeader = []string{"day", "group", "plan", "ring", "managed", "compliant", "compliant_percent",
	"deadline_passed", "on_time", "on_time_percent", "patched",
	"from_release_median_days", "from_release_p90_days", "from_notice_median_days", "from_notice_p90_days", "exceptions"}

// WriteEvidenceCSV writes a report as CSV in four sections, each with its
// own header and separated by an empty line: the summary, the releases,
// the daily rows (group "" is the whole fleet, shown as "(fleet)") and the
// exceptions. Cells a spreadsheet would run as formulas are neutralised
// (csvSafe): reasons and grantors are admin input.
func WriteEvidenceCSV(w io.Writer, rep *scheduler.EvidenceReport) error {
	cw := csv.NewWriter(w)
	days := func(sec int64) string { return strconv.FormatFloat(float64(sec)/86400, 'f', 2, 64) }
	pct := func(p float64) string { return strconv.FormatFloat(p, 'f', 1, 64) }
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	group := func(g string) string {
		if g == "" {
			return "(fleet)"
		}
		return g
	}
	rows := [][]string{
		{"summary", "from", "to", "group", "within_days", "required", "within", "percent"},
		{rep.Summary.Text, rep.From, rep.To, group(rep.Group), strconv.Itoa(rep.WithinDays),
			strconv.Itoa(rep.Summary.Required), strconv.Itoa(rep.Summary.Within), pct(rep.Summary.Percent)},
		nil,
		{"release", "posted", "in_period", "figures_of", "required", "patched", "within", "percent"},
	}
	for _, r := range rep.Releases {
		rows = append(rows, []string{r.Version, ts(r.Posted), strconv.FormatBool(r.InPeriod), r.Day,
			strconv.Itoa(r.Required), strconv.Itoa(r.Patched), strconv.Itoa(r.Within), pct(r.Percent)})
	}
	rows = append(rows, nil, EvidenceCSVHeader)
	for _, r := range rep.Rows {
		rows = append(rows, []string{r.Day, group(r.GroupID), r.Plan, strconv.Itoa(r.Ring), strconv.Itoa(r.Managed), strconv.Itoa(r.Compliant),
			pct(r.CompliantPercent), strconv.Itoa(r.DeadlinePassed), strconv.Itoa(r.OnTime), pct(r.OnTimePercent), strconv.Itoa(r.Patched),
			days(r.FromReleaseMedian), days(r.FromReleaseP90), days(r.FromNoticeMedian), days(r.FromNoticeP90), strconv.Itoa(r.Exceptions)})
	}
	rows = append(rows, nil, []string{"exception_scope", "id", "group", "kind", "deadline_override", "expires", "reason", "granted_by", "granted_at", "first_day", "last_day"})
	for _, e := range rep.Exceptions {
		kind := "deadline override"
		if e.Exempt {
			kind = "exempt"
		}
		rows = append(rows, []string{e.Scope, e.ID, e.GroupID, kind, ts(e.DeadlineOverride), ts(e.Expires), e.Reason, e.GrantedBy, ts(e.GrantedAt), e.FirstDay, e.LastDay})
	}
	for _, row := range rows {
		if row == nil {
			// An empty line between sections (csv.Writer writes a record
			// of one empty field as a quoted "").
			cw.Flush()
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
			continue
		}
		if err := cw.Write(csvSafeRow(row)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
