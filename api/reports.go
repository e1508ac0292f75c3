package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// ReportSource builds reports and policy what-ifs (scheduler.Reporter).
type ReportSource interface {
	// Compliance builds the fleet compliance report; withRows adds one row
	// per device.
	Compliance(ctx context.Context, withRows bool) (*scheduler.ComplianceReport, error)
	// WhatIf computes what policy p would do to group's Macs, saving
	// nothing. An invalid policy is a *softwareupdate.ValidationError; an
	// unknown group wraps storage.ErrNotFound.
	WhatIf(ctx context.Context, group string, p softwareupdate.Policy) (*scheduler.WhatIfResult, error)
}

// RegisterReports mounts the report endpoints on the root router r, under
// /api/v1 and behind the same API-key authentication as Register:
//
//	GET  /api/v1/reports/compliance            JSON report (?rows=false leaves out per-device rows)
//	GET  /api/v1/reports/compliance.csv        per-device rows as CSV
//	POST /api/v1/groups/{id}/policy/what-if    body: a policy; answers a scheduler.WhatIfResult
func (s *Server) RegisterReports(r *mux.Router, src ReportSource) {
	if src == nil {
		panic("api.RegisterReports: nil report source")
	}
	v1 := r.PathPrefix("/api/v1").Subrouter()
	v1.Use(s.authenticate)
	h := reportHandlers{s: s, src: src}
	v1.Handle("/reports/compliance", s.handle(h.compliance)).Methods(http.MethodGet)
	v1.HandleFunc("/reports/compliance.csv", h.complianceCSV).Methods(http.MethodGet)
	v1.Handle("/groups/{id}/policy/what-if", s.handle(h.whatIf)).Methods(http.MethodPost)
}

type reportHandlers struct {
	s   *Server
	src ReportSource
}

func (h reportHandlers) compliance(r *http.Request) (any, int, error) {
	rows := true
	if v := r.URL.Query().Get("rows"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, 0, &Error{Code: CodeInvalid, Message: "rows must be true or false"}
		}
		rows = b
	}
	rep, err := h.src.Compliance(r.Context(), rows)
	if err != nil {
		return nil, 0, err
	}
	return rep, http.StatusOK, nil
}

func (h reportHandlers) complianceCSV(w http.ResponseWriter, r *http.Request) {
	rep, err := h.src.Compliance(r.Context(), true)
	if err != nil {
		h.s.log.Error("api request failed", "path", r.URL.Path, "err", err)
		writeError(w, &Error{Code: CodeInternal, Message: "internal error"})
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="sundial-compliance.csv"`)
	if err := WriteComplianceCSV(w, rep); err != nil {
		h.s.log.Warn("write compliance csv", "err", err)
	}
}

// WriteComplianceCSV writes a report's rows as CSV with a header line
// (scheduler.CSVHeader). Cells that a spreadsheet would run as formulas
// are neutralised (csvSafe).
func WriteComplianceCSV(w io.Writer, rep *scheduler.ComplianceReport) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(scheduler.CSVHeader); err != nil {
		return err
	}
	for i := range rep.Rows {
		if err := cw.Write(csvSafeRow(rep.Rows[i].CSV())); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (h reportHandlers) whatIf(r *http.Request) (any, int, error) {
	group := mux.Vars(r)["id"]
	if !scheduler.ValidGroupID(group) {
		return nil, 0, &Error{Code: CodeInvalid, Message: fmt.Sprintf("group id %q: 1 to 64 of a-z, 0-9, '.', '_', '-'", reportTruncate(group))}
	}
	p, err := decodeWhatIfPolicy(r.Body)
	if err != nil {
		return nil, 0, err
	}
	res, err := h.src.WhatIf(r.Context(), group, p)
	var ve *softwareupdate.ValidationError
	if errors.As(err, &ve) {
		return nil, 0, &Error{Code: CodeInvalid, Message: ve.Error()}
	}
	if err != nil {
		return nil, 0, err
	}
	return res, http.StatusOK, nil
}

// decodeWhatIfPolicy reads one policy JSON object (at most maxAdminBody bytes,
// no unknown fields, nothing after it).
func decodeWhatIfPolicy(body io.Reader) (softwareupdate.Policy, error) {
	var p softwareupdate.Policy
	data, err := io.ReadAll(io.LimitReader(body, maxAdminBody+1))
	if err != nil {
		return p, &Error{Code: CodeInvalid, Message: "read body: " + err.Error()}
	}
	if len(data) > maxAdminBody {
		return p, &Error{Code: CodeInvalid, Message: fmt.Sprintf("body over %d bytes", maxAdminBody)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, &Error{Code: CodeInvalid, Message: "policy JSON: " + err.Error()}
	}
	if dec.More() {
		return p, &Error{Code: CodeInvalid, Message: "policy JSON: data after the object"}
	}
	return p, nil
}

func reportTruncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// ComplianceReport fetches the compliance report; withRows adds one row
// per device.
func (c *Client) ComplianceReport(ctx context.Context, withRows bool) (*scheduler.ComplianceReport, error) {
	var out scheduler.ComplianceReport
	return &out, c.do(ctx, http.MethodGet, "/api/v1/reports/compliance?rows="+strconv.FormatBool(withRows), nil, "", &out)
}

// ComplianceCSV copies the per-device compliance rows, as CSV, to w.
func (c *Client) ComplianceCSV(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/api/v1/reports/compliance.csv", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, errorFrom(resp.StatusCode, data)
	}
	return io.Copy(w, resp.Body)
}

// PolicyWhatIf asks what policy p would do to group's Macs (nothing is saved).
func (c *Client) PolicyWhatIf(ctx context.Context, group string, p softwareupdate.Policy) (*scheduler.WhatIfResult, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var out scheduler.WhatIfResult
	return &out, c.do(ctx, http.MethodPost, "/api/v1/groups/"+url.PathEscape(group)+"/policy/what-if", bytes.NewReader(body), "application/json", &out)
}
