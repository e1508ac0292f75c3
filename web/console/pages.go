package console

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// devicePageSize is how many devices a list page shows.
const devicePageSize = 50

// DevicesData is the device list page: one page of the snapshot's rows
// that match the filters, in the chosen order.
type DevicesData struct {
	Rows    []scheduler.ReportRow
	Total   int // rows that match
	Page    int // from 1
	Pages   int
	AsOf    time.Time
	Query   url.Values
	Groups  []scheduler.Group
	Phases  []softwareupdate.Phase
	Sorts   []string
	PrevURL string
	NextURL string
}

// deviceFilter is the device list's filters, with the meaning GET
// /api/v1/devices gives them.
type deviceFilter struct {
	search, group, phase, osVersion string
	failing, pastDeadline           bool
}

// match reports whether row r, with lower-case search text key, passes.
func (f *deviceFilter) match(r *scheduler.ReportRow, key string) bool {
	switch {
	case f.group != "" && r.GroupID != f.group:
	case f.phase != "" && string(r.Phase) != f.phase:
	case f.osVersion != "" && r.OSVersion != f.osVersion && !strings.HasPrefix(r.OSVersion, f.osVersion+"."):
	case f.failing && r.Failure == "":
	case f.pastDeadline && !r.PastDeadline:
	case f.search != "" && !strings.Contains(key, f.search):
	default:
		return true
	}
	return false
}

var listParams = []string{"search", "group", "phase", "os_version", "failing", "past_deadline", "sort", "desc"}

func (c *Console) devicesPage(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	in := r.URL.Query()
	q := url.Values{}
	for _, k := range listParams {
		if v := strings.TrimSpace(in.Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	f := deviceFilter{search: strings.ToLower(q.Get("search")), group: q.Get("group"), phase: q.Get("phase"), osVersion: q.Get("os_version")}
	if len(f.search) > 200 || len(f.osVersion) > 32 {
		return "", nil, &userError{http.StatusBadRequest, "search: at most 200 characters; macOS: at most 32"}
	}
	for name, dst := range map[string]*bool{"failing": &f.failing, "past_deadline": &f.pastDeadline} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", nil, &userError{http.StatusBadRequest, name + " must be true or false"}
			}
			*dst = b
		}
	}
	key := cmp.Or(q.Get("sort"), "id")
	if sortKeys[key] == nil {
		return "", nil, &userError{http.StatusBadRequest, "sort must be one of id, serial, name, group, os, phase, deadline, last_seen"}
	}
	desc := q.Get("desc") == "true"
	page := 1
	if v := in.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return "", nil, &userError{http.StatusBadRequest, "page must be a positive number"}
		}
		page = n
	}
	snap, err := c.snaps.get(r.Context())
	if err != nil {
		return "", nil, err
	}
	d := &DevicesData{Query: q, Groups: snap.Groups, Page: page, AsOf: snap.Report.GeneratedAt}
	for _, f := range funnel {
		d.Phases = append(d.Phases, f.phase)
	}
	for k := range sortKeys {
		d.Sorts = append(d.Sorts, k)
	}
	slices.Sort(d.Sorts)
	rows := snap.Report.Rows
	order := snap.sorted(key)
	var keys []string
	if f.search != "" {
		keys = snap.searchKeys()
	}
	from := (page - 1) * devicePageSize
	for i := range order {
		j := order[i]
		if desc {
			j = order[len(order)-1-i]
		}
		k := ""
		if keys != nil {
			k = keys[j]
		}
		if !f.match(&rows[j], k) {
			continue
		}
		if d.Total >= from && len(d.Rows) < devicePageSize {
			d.Rows = append(d.Rows, rows[j])
		}
		d.Total++
	}
	d.Pages = max(1, (d.Total+devicePageSize-1)/devicePageSize)
	pageURL := func(n int) string {
		u := url.Values{}
		for k, v := range q {
			u[k] = v
		}
		u.Set("page", strconv.Itoa(n))
		return Prefix + "devices?" + u.Encode()
	}
	if page > 1 {
		d.PrevURL = pageURL(page - 1)
	}
	if page < d.Pages {
		d.NextURL = pageURL(page + 1)
	}
	return "devices", &view{Title: "Devices", Nav: "devices", Data: d}, nil
}

// DeviceData is one Mac's page.
type DeviceData struct {
	Device   *mdm.Device
	Update   *scheduler.DeviceReport
	Commands []*mdm.CommandRecord
	Agent    *storage.AgentState
	DDM      *ddm.Record
	// MacZone is the Mac's time zone (from its agent, else its policy's);
	// nil when unknown.
	MacZone    *time.Location
	Policy     *scheduler.PolicyRecord
	CanPush    bool
	CanRetry   bool
	ExpiresDef string
}

// deviceHistory is how many history entries and commands the page shows.
const (
	deviceHistory  = 100
	deviceCommands = 50
)

func (c *Console) devicePage(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	ctx := r.Context()
	id := mux.Vars(r)["id"]
	dev, err := c.cfg.Devices.Device(ctx, id)
	if err != nil {
		return "", nil, err
	}
	d := &DeviceData{Device: dev, CanPush: c.cfg.Pusher != nil, CanRetry: c.cfg.Retrier != nil,
		ExpiresDef: c.cfg.Clock.Now().In(ss.zone).AddDate(0, 0, 14).Format("2006-01-02T15:04")}
	if d.Update, err = c.cfg.Manager.Device(ctx, id, deviceHistory); err != nil {
		return "", nil, err
	}
	slices.Reverse(d.Update.History) // newest first
	cmds, err := c.cfg.Devices.Commands(ctx, id)
	if err != nil {
		return "", nil, err
	}
	slices.SortFunc(cmds, func(a, b *mdm.CommandRecord) int { return cmp.Compare(b.Seq, a.Seq) })
	d.Commands = cmds[:min(deviceCommands, len(cmds))]
	if p, err := c.cfg.Manager.Policy(ctx, d.Update.GroupID); err == nil {
		d.Policy = p
	}
	if c.cfg.Agents != nil {
		if st, err := c.cfg.Agents.AgentState(ctx, id); err == nil {
			d.Agent = st
		} else if !errors.Is(err, storage.ErrNotFound) {
			return "", nil, err
		}
	}
	if c.cfg.Declarations != nil {
		if rec, err := c.cfg.Declarations.DDMRecord(ctx, id); err == nil {
			d.DDM = rec
		} else if !errors.Is(err, storage.ErrNotFound) {
			return "", nil, err
		}
	}
	zone := ""
	if d.Agent != nil {
		zone = d.Agent.TimeZone
	}
	if zone == "" && d.Policy != nil && d.Policy.Policy.TimeZone != softwareupdate.DeviceLocal {
		zone = d.Policy.Policy.TimeZone
	}
	if zone != "" {
		if loc, err := time.LoadLocation(zone); err == nil {
			d.MacZone = loc
		}
	}
	title := cmp.Or(dev.Inventory.DeviceName, dev.DeviceName, dev.Inventory.SerialNumber, dev.SerialNumber, dev.ID)
	return "device", &view{Title: title, Nav: "devices", Data: d}, nil
}

// ConfirmData asks before an action changes a Mac.
type ConfirmData struct {
	Device *mdm.Device
	Action string
	Label  string
	Detail string
	// Exception form defaults.
	ExpiresDef string
}

var actions = map[string]struct{ label, detail string }{
	"push":      {"Push now", "Sends an APNs push so the Mac checks in now."},
	"retry":     {"Retry", "Clears the Mac's surfaced failure and evaluates it again (do this once its cause is fixed)."},
	"exception": {"Grant exception", "Exempts the Mac from enforcement, or gives it a later deadline, until the exception expires."},
}

func (c *Console) confirmPage(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	if ss.principal.Role != RoleAdmin {
		return "", nil, &userError{http.StatusForbidden, "This API key may only read."}
	}
	act := r.URL.Query().Get("action")
	a, ok := actions[act]
	if !ok {
		return "", nil, &userError{http.StatusBadRequest, "Unknown action."}
	}
	dev, err := c.cfg.Devices.Device(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return "", nil, err
	}
	d := &ConfirmData{Device: dev, Action: act, Label: a.label, Detail: a.detail,
		ExpiresDef: c.cfg.Clock.Now().In(ss.zone).AddDate(0, 0, 14).Format("2006-01-02T15:04")}
	return "confirm", &view{Title: a.label, Nav: "devices", Data: d}, nil
}

func deviceURL(id string) string { return Prefix + "devices/" + url.PathEscape(id) }

func (c *Console) pushDevice(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	id := mux.Vars(r)["id"]
	if c.cfg.Pusher == nil {
		return "", nil, &userError{http.StatusNotFound, "Push is not configured."}
	}
	if _, err := c.cfg.Devices.Device(r.Context(), id); err != nil {
		return "", nil, err
	}
	res, err := c.cfg.Pusher.Push(r.Context(), id)
	if err != nil {
		return "", nil, &userError{http.StatusBadGateway, "Push failed: " + err.Error()}
	}
	if len(res) == 0 {
		return "", nil, &userError{http.StatusBadGateway, "Push failed: the Mac has no push token yet."}
	}
	if res[0].Outcome != push.OutcomeOK {
		msg := "Push failed: " + string(res[0].Outcome)
		if res[0].Reason != "" {
			msg += " (" + res[0].Reason + ")"
		}
		return "", nil, &userError{http.StatusBadGateway, msg}
	}
	msg := "pushed"
	c.log.Info("console: device pushed", "enrollment_id", id, "actor", ss.principal.Name)
	http.Redirect(w, r, deviceURL(id)+"?done="+url.QueryEscape(msg), http.StatusSeeOther)
	return "", nil, nil
}

func (c *Console) retryDevice(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	id := mux.Vars(r)["id"]
	if c.cfg.Retrier == nil {
		return "", nil, &userError{http.StatusNotFound, "Retry is not available."}
	}
	if _, err := c.cfg.Devices.Device(r.Context(), id); err != nil {
		return "", nil, err
	}
	if _, err := c.cfg.Retrier.Retry(r.Context(), id, ss.principal.Name); err != nil {
		return "", nil, err
	}
	c.snaps.invalidate()
	c.log.Info("console: device retried", "enrollment_id", id, "actor", ss.principal.Name)
	http.Redirect(w, r, deviceURL(id)+"?done=retried", http.StatusSeeOther)
	return "", nil, nil
}

// PolicyRow is a group with its policy on the policies page.
type PolicyRow struct {
	Group  scheduler.Group
	Policy *scheduler.PolicyRecord
}

func (c *Console) policiesPage(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	groups, err := c.cfg.Manager.Groups(r.Context())
	if err != nil {
		return "", nil, err
	}
	var rows []PolicyRow
	for _, g := range groups {
		row := PolicyRow{Group: g}
		if p, err := c.cfg.Manager.Policy(r.Context(), g.ID); err == nil {
			row.Policy = p
		} else if !errors.Is(err, storage.ErrNotFound) {
			return "", nil, err
		}
		rows = append(rows, row)
	}
	return "policies", &view{Title: "Policies", Nav: "policies", Data: rows}, nil
}

// PolicyData is the policy editor: the form's values, and the what-if of
// the values when previewed.
type PolicyData struct {
	Group   scheduler.Group
	Current *scheduler.PolicyRecord
	Form    softwareupdate.Policy
	WhatIf  *scheduler.WhatIfResult
	Modes   []softwareupdate.Mode
	Paths   []softwareupdate.EnforcementPath
	Phases  []softwareupdate.Phase
}

func (c *Console) group(r *http.Request) (scheduler.Group, error) {
	id := mux.Vars(r)["group"]
	groups, err := c.cfg.Manager.Groups(r.Context())
	if err != nil {
		return scheduler.Group{}, err
	}
	for _, g := range groups {
		if g.ID == id {
			return g, nil
		}
	}
	return scheduler.Group{}, fmt.Errorf("group %q: %w", id, storage.ErrNotFound)
}

func (c *Console) policyData(r *http.Request) (*PolicyData, error) {
	g, err := c.group(r)
	if err != nil {
		return nil, err
	}
	d := &PolicyData{Group: g,
		Modes: []softwareupdate.Mode{softwareupdate.ModeUnmanaged, softwareupdate.ModeAutomatic, softwareupdate.ModeManual},
		Paths: []softwareupdate.EnforcementPath{"", softwareupdate.PathLegacy, softwareupdate.PathDeclarative}}
	for _, f := range funnel {
		d.Phases = append(d.Phases, f.phase)
	}
	if p, err := c.cfg.Manager.Policy(r.Context(), g.ID); err == nil {
		d.Current, d.Form = p, p.Policy
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	} else {
		d.Form = softwareupdate.Policy{Mode: softwareupdate.ModeUnmanaged}
	}
	return d, nil
}

func (c *Console) policyPage(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	d, err := c.policyData(r)
	if err != nil {
		return "", nil, err
	}
	return "policy", &view{Title: "Policy of " + d.Group.ID, Nav: "policies", Data: d}, nil
}

// policyFromForm reads the editor's fields; numbers that do not parse are
// reported as the API reports a bad body.
func policyFromForm(f url.Values) (softwareupdate.Policy, error) {
	p := softwareupdate.Policy{
		Mode:                softwareupdate.Mode(f.Get("mode")),
		MinimumVersion:      strings.TrimSpace(f.Get("minimum_version")),
		Date:                strings.TrimSpace(f.Get("date")),
		TimeOfDay:           strings.TrimSpace(f.Get("time_of_day")),
		TimeZone:            strings.TrimSpace(f.Get("time_zone")),
		AllowMajorUpgrades:  f.Get("allow_major_upgrades") == "true",
		DetailsURL:          strings.TrimSpace(f.Get("details_url")),
		Path:                softwareupdate.EnforcementPath(f.Get("path")),
		AllowUnknownVersion: f.Get("allow_unknown_version") == "true",
		Calendar:            calendarFromForm(f),
		FallbackTimeZone:    strings.TrimSpace(f.Get("fallback_time_zone")),
		SetupMinimum:        strings.TrimSpace(f.Get("setup_minimum")),
	}
	for name, dst := range map[string]*int{"delay_days": &p.DelayDays, "minimum_notice_days": &p.MinimumNoticeDays,
		"ring_offset_days": &p.RingOffsetDays, "offline_grace_hours": &p.OfflineGraceHours} {
		v := strings.TrimSpace(f.Get(name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, &userError{http.StatusBadRequest, name + " must be a whole number"}
		}
		*dst = n
	}
	return p, nil
}

func (c *Console) previewPolicy(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	d, err := c.policyData(r)
	if err != nil {
		return "", nil, err
	}
	v := &view{Title: "Policy of " + d.Group.ID, Nav: "policies", Data: d}
	if d.Form, err = policyFromForm(r.PostForm); err != nil {
		v.Error = err.Error()
		return "policy", v, nil
	}
	res, err := c.cfg.Reports.WhatIf(r.Context(), d.Group.ID, d.Form)
	var ve *softwareupdate.ValidationError
	if errors.As(err, &ve) {
		v.Error = ve.Error()
		return "policy", v, nil
	}
	if err != nil {
		return "", nil, err
	}
	d.WhatIf = res
	return "policy", v, nil
}

func (c *Console) savePolicy(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	d, err := c.policyData(r)
	if err != nil {
		return "", nil, err
	}
	v := &view{Title: "Policy of " + d.Group.ID, Nav: "policies", Data: d}
	if d.Form, err = policyFromForm(r.PostForm); err != nil {
		v.Error = err.Error()
		return "policy", v, nil
	}
	rec, err := c.cfg.Manager.SetPolicy(r.Context(), ss.principal.Name, d.Group.ID, d.Form)
	var ve *softwareupdate.ValidationError
	if errors.As(err, &ve) || errors.Is(err, scheduler.ErrInvalid) {
		v.Error = err.Error()
		return "policy", v, nil
	}
	if err != nil {
		return "", nil, err
	}
	c.snaps.invalidate()
	c.log.Info("console: policy set", "group", rec.GroupID, "revision", rec.Revision, "actor", ss.principal.Name)
	http.Redirect(w, r, Prefix+"policies/"+url.PathEscape(d.Group.ID)+"?done=saved", http.StatusSeeOther)
	return "", nil, nil
}

// ExceptionsData is the exceptions page.
type ExceptionsData struct {
	Exceptions []scheduler.ExceptionRecord
	ExpiresDef string
	Form       url.Values
}

func (c *Console) exceptionsPage(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	ex, err := c.cfg.Manager.Exceptions(r.Context())
	if err != nil {
		return "", nil, err
	}
	slices.SortFunc(ex, func(a, b scheduler.ExceptionRecord) int {
		return cmp.Or(cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.ID, b.ID))
	})
	return "exceptions", &view{Title: "Exceptions", Nav: "exceptions", Data: &ExceptionsData{Exceptions: ex,
		ExpiresDef: c.cfg.Clock.Now().In(ss.zone).AddDate(0, 0, 14).Format("2006-01-02T15:04"), Form: url.Values{}}}, nil
}

// localTime reads a datetime-local field ("2006-01-02T15:04") in zone.
func localTime(name, v string, zone *time.Location) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, v, zone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &userError{http.StatusBadRequest, name + " must be a date and time (YYYY-MM-DDTHH:MM)"}
}

func (c *Console) grantException(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	f := r.PostForm
	scope := scheduler.ExceptionScope(f.Get("scope"))
	id := strings.TrimSpace(f.Get("id"))
	again := func(msg string) (string, *view, error) {
		ex, err := c.cfg.Manager.Exceptions(r.Context())
		if err != nil {
			return "", nil, err
		}
		return "exceptions", &view{Title: "Exceptions", Nav: "exceptions", Error: msg,
			Data: &ExceptionsData{Exceptions: ex, ExpiresDef: f.Get("expires"), Form: f}}, nil
	}
	var ex softwareupdate.Exception
	var err error
	if ex.Expires, err = localTime("expires", f.Get("expires"), ss.zone); err != nil {
		return again(err.Error())
	}
	switch f.Get("kind") {
	case "exempt":
		ex.Exempt = true
	case "override":
		if ex.DeadlineOverride, err = localTime("deadline", f.Get("deadline"), ss.zone); err != nil {
			return again(err.Error())
		}
	default:
		return again("Choose an exemption or a later deadline.")
	}
	ex.Reason = strings.TrimSpace(f.Get("reason"))
	if scope == scheduler.ScopeDevice {
		if _, err := c.cfg.Devices.Device(r.Context(), id); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return again("No device " + id + ".")
			}
			return "", nil, err
		}
	}
	if _, err := c.cfg.Manager.SetException(r.Context(), ss.principal.Name, scope, id, ex); err != nil {
		var ve *softwareupdate.ValidationError
		if errors.As(err, &ve) || errors.Is(err, scheduler.ErrInvalid) {
			return again(err.Error())
		}
		return "", nil, err
	}
	c.snaps.invalidate()
	c.log.Info("console: exception granted", "scope", string(scope), "id", id, "actor", ss.principal.Name)
	back := Prefix + "exceptions?done=granted"
	if scope == scheduler.ScopeDevice && f.Get("back") == "device" {
		back = deviceURL(id) + "?done=exception+granted"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return "", nil, nil
}

func (c *Console) clearException(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	scope := scheduler.ExceptionScope(mux.Vars(r)["scope"])
	id := mux.Vars(r)["id"]
	if err := c.cfg.Manager.ClearException(r.Context(), ss.principal.Name, scope, id); err != nil {
		return "", nil, err
	}
	c.snaps.invalidate()
	c.log.Info("console: exception cleared", "scope", string(scope), "id", id, "actor", ss.principal.Name)
	http.Redirect(w, r, Prefix+"exceptions?done=cleared", http.StatusSeeOther)
	return "", nil, nil
}

// CatalogData is the release catalog page, newest first.
type CatalogData struct {
	Releases []catalog.Release
}

func (c *Console) catalogPage(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	rels := slices.Clone(c.cfg.Catalog.Releases())
	slices.SortFunc(rels, func(a, b catalog.Release) int { return b.Version.Compare(a.Version) })
	return "catalog", &view{Title: "Release catalog", Nav: "catalog", Data: &CatalogData{Releases: rels}}, nil
}

// auditPage size.
const auditPageSize = 100

// AuditData is a page of the audit log, newest first.
type AuditData struct {
	Entries []scheduler.AuditEntry
	// OlderURL pages back ("" at the start of the log).
	OlderURL string
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	// The log pages forward by sequence; the page shows the newest entries
	// first, so it reads forward from a point and reverses. before=0: the end.
	var before uint64
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return "", nil, &userError{http.StatusBadRequest, "before must be a sequence number"}
		}
		before = n
	}
	entries, err := c.lastAudit(r, before)
	if err != nil {
		return "", nil, err
	}
	d := &AuditData{Entries: entries}
	if len(entries) > 0 && entries[len(entries)-1].Seq > 1 {
		d.OlderURL = Prefix + "audit?before=" + strconv.FormatUint(entries[len(entries)-1].Seq, 10)
	}
	return "audit", &view{Title: "Audit log", Nav: "audit", Data: d}, nil
}

// lastAudit returns up to auditPageSize entries with Seq < before (0: any),
// newest first.
func (c *Console) lastAudit(r *http.Request, before uint64) ([]scheduler.AuditEntry, error) {
	from := uint64(0)
	if before > auditPageSize {
		from = before - auditPageSize - 1
	}
	var out []scheduler.AuditEntry
	for after := from; ; {
		page, err := c.cfg.Manager.Audit(r.Context(), after, 1000)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if before != 0 && e.Seq >= before {
				page = nil
				break
			}
			out = append(out, e)
			after = e.Seq
		}
		if len(out) > auditPageSize {
			out = out[len(out)-auditPageSize:]
		}
		if len(page) < 1000 {
			break
		}
	}
	slices.Reverse(out)
	return out, nil
}
