// Package depmock is a mock of the parts of Apple's DEP API (Automated
// Device Enrollment, "mdmenrollment.apple.com") that Sundial uses: the OAuth
// session, account details, the device fetch and sync with cursors and
// pages, and profile define, assign and remove. It serves a seeded fleet and
// injects Apple's errors (expired token, expired cursor, rate limit), for
// tests, load runs and demos. Nothing in it talks to Apple.
//
// The fleet changes through the mock's own methods (Add, Modify, Delete,
// Move), which append to an event log that device sync replays, as ABM's
// does when an admin assigns or releases Macs.
package depmock

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Apple's limits and error bodies, as the DEP API documents them.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// CursorLifetime: "a cursor older than 7 days" is expired.
	CursorLifetime = 7 * 24 * time.Hour

	ErrExpiredCursor   = "EXPIRED_CURSOR"
	ErrInvalidCursor   = "INVALID_CURSOR"
	ErrExhaustedCursor = "EXHAUSTED_CURSOR"
	ErrForbidden       = "FORBIDDEN" // an expired or unknown session
	ErrTokenExpired    = "token_expired"
	ErrTokenRejected   = "token_rejected"
)

// Device is one Mac of the mock's fleet, as the DEP API describes it.
type Device struct {
	SerialNumber       string    `json:"serial_number"`
	Model              string    `json:"model,omitempty"`
	Description        string    `json:"description,omitempty"`
	Color              string    `json:"color,omitempty"`
	AssetTag           string    `json:"asset_tag,omitempty"`
	OS                 string    `json:"os,omitempty"`
	DeviceFamily       string    `json:"device_family,omitempty"`
	ProfileStatus      string    `json:"profile_status,omitempty"`
	ProfileUUID        string    `json:"profile_uuid,omitempty"`
	ProfileAssignTime  time.Time `json:"profile_assign_time,omitzero"`
	DeviceAssignedDate time.Time `json:"device_assigned_date,omitzero"`
	DeviceAssignedBy   string    `json:"device_assigned_by,omitempty"`
	OpType             string    `json:"op_type,omitempty"`
	OpDate             time.Time `json:"op_date,omitzero"`
}

// Tokens are the OAuth 1 credentials of the mock's one MDM server, as the
// server token ABM hands out carries them.
type Tokens struct {
	ConsumerKey       string    `json:"consumer_key"`
	ConsumerSecret    string    `json:"consumer_secret"`
	AccessToken       string    `json:"access_token"`
	AccessSecret      string    `json:"access_secret"`
	AccessTokenExpiry time.Time `json:"access_token_expiry"`
}

// Profile is a defined ADE profile (the keys Sundial sets).
type Profile struct {
	ProfileName           string   `json:"profile_name"`
	URL                   string   `json:"url"`
	IsSupervised          bool     `json:"is_supervised"`
	IsMandatory           bool     `json:"is_mandatory"`
	IsMDMRemovable        bool     `json:"is_mdm_removable"`
	AwaitDeviceConfigured bool     `json:"await_device_configured"`
	AnchorCerts           []string `json:"anchor_certs,omitempty"`
	SkipSetupItems        []string `json:"skip_setup_items,omitempty"`
	Department            string   `json:"department,omitempty"`
	Devices               []string `json:"devices,omitempty"`
}

type event struct {
	serial string
	op     string // added, modified, deleted
	at     time.Time
}

// Mock is the DEP API mock. It is safe for concurrent use.
type Mock struct {
	clock  Clock
	tokens Tokens

	mu       sync.Mutex
	devices  map[string]*Device
	order    []string // serials in fetch order (insertion)
	events   []event
	sessions map[string]bool
	profiles map[string]Profile
	failures []failure
	failOn   map[string]string // serial -> assignment result to return
	expire   bool              // cursors are all expired
	stats    Stats
}

// Stats counts requests per endpoint.
type Stats struct {
	Sessions, Account, Fetches, Syncs, Defines, Assigns, Removes int
	Injected                                                     int
}

type failure struct {
	path   string
	status int
	body   string
	header http.Header
	left   int
}

// Option configures a Mock.
type Option func(*Mock)

// WithClock injects the clock (cursor ages, dates).
func WithClock(c Clock) Option { return func(m *Mock) { m.clock = c } }

// WithTokens sets the OAuth credentials the mock accepts (default: random).
func WithTokens(t Tokens) Option { return func(m *Mock) { m.tokens = t } }

// New returns an empty mock.
func New(opts ...Option) *Mock {
	m := &Mock{
		clock:    systemClock{},
		devices:  map[string]*Device{},
		sessions: map[string]bool{},
		profiles: map[string]Profile{},
		failOn:   map[string]string{},
	}
	for _, o := range opts {
		o(m)
	}
	if m.tokens.ConsumerKey == "" {
		m.tokens = Tokens{ConsumerKey: "CK_" + randHex(8), ConsumerSecret: "CS_" + randHex(8),
			AccessToken: "AT_" + randHex(8), AccessSecret: "AS_" + randHex(8),
			AccessTokenExpiry: m.clock.Now().Add(365 * 24 * time.Hour).UTC().Truncate(time.Second)}
	}
	return m
}

// Tokens returns the OAuth credentials the mock accepts.
func (m *Mock) Tokens() Tokens { return m.tokens }

// Seed adds n Macs with serials prefix + a 6-digit number, assigned at now.
func (m *Mock) Seed(prefix string, n int) []string {
	now := m.clock.Now().UTC().Truncate(time.Second)
	models := []string{"MacBook Air", "MacBook Pro", "Mac mini", "iMac"}
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("%s%06d", prefix, i)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, s := range out {
		m.addLocked(&Device{SerialNumber: s, Model: models[i%len(models)], Description: models[i%len(models)],
			Color: "SPACE GRAY", OS: "OSX", DeviceFamily: "Mac", ProfileStatus: "empty",
			DeviceAssignedDate: now, DeviceAssignedBy: "admin@example.com"}, now)
	}
	return out
}

// Add assigns a Mac to the MDM server (op_type added).
func (m *Mock) Add(d Device) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now().UTC().Truncate(time.Second)
	if d.ProfileStatus == "" {
		d.ProfileStatus = "empty"
	}
	if d.DeviceAssignedDate.IsZero() {
		d.DeviceAssignedDate = now
	}
	m.addLocked(&d, now)
}

func (m *Mock) addLocked(d *Device, now time.Time) {
	if _, ok := m.devices[d.SerialNumber]; !ok {
		m.order = append(m.order, d.SerialNumber)
	}
	m.devices[d.SerialNumber] = d
	m.events = append(m.events, event{serial: d.SerialNumber, op: "added", at: now})
}

// Modify changes a Mac (op_type modified); false if unknown.
func (m *Mock) Modify(serial string, f func(d *Device)) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[serial]
	if !ok {
		return false
	}
	f(d)
	m.events = append(m.events, event{serial: serial, op: "modified", at: m.clock.Now().UTC().Truncate(time.Second)})
	return true
}

// Delete releases a Mac from the MDM server (op_type deleted).
func (m *Mock) Delete(serial string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.devices[serial]; !ok {
		return false
	}
	delete(m.devices, serial)
	for i, s := range m.order {
		if s == serial {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
	m.events = append(m.events, event{serial: serial, op: "deleted", at: m.clock.Now().UTC().Truncate(time.Second)})
	return true
}

// Device returns a copy of one Mac.
func (m *Mock) Device(serial string) (Device, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[serial]
	if !ok {
		return Device{}, false
	}
	return *d, true
}

// Profile returns a defined profile.
func (m *Mock) Profile(uuid string) (Profile, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.profiles[uuid]
	return p, ok
}

// Stats returns the request counts.
func (m *Mock) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Fail makes the next n requests to path answer status and body (with
// header, e.g. Retry-After), before anything else is checked. path is an
// endpoint such as "/session" or "/devices/sync"; "" matches any.
func (m *Mock) Fail(path string, n, status int, body string, header http.Header) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures = append(m.failures, failure{path: path, status: status, body: body, header: header, left: n})
}

// RateLimit makes the next n requests to path answer 429 with Retry-After.
func (m *Mock) RateLimit(path string, n int, retryAfter time.Duration) {
	h := http.Header{}
	h.Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
	m.Fail(path, n, http.StatusTooManyRequests, `"TOO_MANY_REQUESTS"`, h)
}

// ExpireToken makes the server token expired: sessions are refused with
// 403 token_expired and open sessions end. RenewToken undoes it.
func (m *Mock) ExpireToken() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens.AccessTokenExpiry = m.clock.Now().Add(-time.Minute)
	m.sessions = map[string]bool{}
}

// ExpireCursors makes every cursor issued so far expired, as if a week passed.
func (m *Mock) ExpireCursors() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire = true
}

// FailAssign makes profile assignment answer result (FAILED,
// NOT_ACCESSIBLE) for serial.
func (m *Mock) FailAssign(serial, result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failOn[serial] = result
}

// ServeHTTP implements http.Handler.
func (m *Mock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if f := m.injected(path); f != nil {
		for k, v := range f.header {
			w.Header()[k] = v
		}
		writeBody(w, f.status, f.body)
		return
	}
	if path == "/session" {
		m.session(w, r)
		return
	}
	if path == "/mock/server-token" && r.Method == http.MethodPost {
		m.serverToken(w, r)
		return
	}
	if path == "/mock/inject" && r.Method == http.MethodPost {
		m.inject(w, r)
		return
	}
	if !m.authorized(r) {
		writeBody(w, http.StatusForbidden, `"`+ErrForbidden+`"`)
		return
	}
	switch {
	case path == "/account" && r.Method == http.MethodGet:
		m.account(w)
	case path == "/server/devices" && r.Method == http.MethodPost:
		m.fetch(w, r, true)
	case path == "/devices/sync" && r.Method == http.MethodPost:
		m.fetch(w, r, false)
	case path == "/profile" && r.Method == http.MethodPost:
		m.define(w, r)
	case path == "/profile/devices" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		m.assign(w, r)
	case path == "/profile/devices" && r.Method == http.MethodDelete:
		m.remove(w, r)
	default:
		writeBody(w, http.StatusNotFound, `"NOT_FOUND"`)
	}
}

func (m *Mock) injected(path string) *failure {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.failures {
		f := &m.failures[i]
		if f.left > 0 && (f.path == "" || f.path == path) {
			f.left--
			m.stats.Injected++
			out := *f
			return &out
		}
	}
	return nil
}

// session checks the OAuth 1 Authorization header's consumer key and
// access token (not its HMAC: the mock trusts its loopback clients) and
// opens a session.
func (m *Mock) session(w http.ResponseWriter, r *http.Request) {
	params := oauthParams(r.Header.Get("Authorization"))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Sessions++
	switch {
	case params["oauth_consumer_key"] != m.tokens.ConsumerKey || params["oauth_token"] != m.tokens.AccessToken ||
		params["oauth_signature"] == "" || params["oauth_signature_method"] != "HMAC-SHA1":
		writeBody(w, http.StatusUnauthorized, ErrTokenRejected)
		return
	case !m.clock.Now().Before(m.tokens.AccessTokenExpiry):
		writeBody(w, http.StatusForbidden, ErrTokenExpired)
		return
	}
	tok := "ST_" + randHex(16)
	m.sessions[tok] = true
	w.Header().Set("Content-Type", "application/json;charset=UTF8")
	json.NewEncoder(w).Encode(map[string]string{"auth_session_token": tok})
}

func (m *Mock) authorized(r *http.Request) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[r.Header.Get("X-ADM-Auth-Session")]
}

func (m *Mock) account(w http.ResponseWriter) {
	m.mu.Lock()
	m.stats.Account++
	m.mu.Unlock()
	writeJSON(w, map[string]any{
		"server_name": "Sundial (mock)", "server_uuid": "4B3C1A54-0A3E-4E2B-9C0B-7D1F0A0E0001",
		"admin_id": "admin@example.com", "facilitator_id": "admin@example.com",
		"org_name": "Example Org", "org_email": "it@example.com", "org_phone": "555-0100",
		"org_address": "1 Infinite Loop", "org_type": "org", "org_version": "v2", "org_id": "1234567",
	})
}

// cursor is the position a fetch or sync continues from: for a fetch the
// offset into the fleet snapshot and the event log length when the fetch
// began; for a sync the event log position. Issued is its age.
type cursor struct {
	Fetch  bool  `json:"f"`
	Offset int   `json:"o"`
	Events int   `json:"e"`
	Issued int64 `json:"t"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, bool) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || c.Offset < 0 || c.Events < 0 {
		return c, false
	}
	return c, true
}

func (m *Mock) fetch(w http.ResponseWriter, r *http.Request, isFetch bool) {
	var req struct {
		Cursor *string `json:"cursor"`
		Limit  int     `json:"limit"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil && err != io.EOF {
		writeBody(w, http.StatusBadRequest, `"MALFORMED_REQUEST_BODY"`)
		return
	}
	limit := req.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	var cur cursor
	if req.Cursor != nil && *req.Cursor != "" {
		c, ok := decodeCursor(*req.Cursor)
		if !ok || c.Events > len(m.events) {
			writeBody(w, http.StatusBadRequest, `"`+ErrInvalidCursor+`"`)
			return
		}
		if m.expire || now.Sub(time.Unix(c.Issued, 0)) > CursorLifetime {
			writeBody(w, http.StatusBadRequest, `"`+ErrExpiredCursor+`"`)
			return
		}
		cur = c
	} else if isFetch {
		cur = cursor{Fetch: true, Events: len(m.events)}
	} else {
		writeBody(w, http.StatusBadRequest, `"`+ErrInvalidCursor+`"`)
		return
	}
	var out []Device
	next := cur
	next.Issued = now.Unix()
	more := false
	if isFetch {
		m.stats.Fetches++
		if !cur.Fetch || cur.Offset >= len(m.order) {
			writeBody(w, http.StatusBadRequest, `"`+ErrExhaustedCursor+`"`)
			return
		}
		end := min(cur.Offset+limit, len(m.order))
		for _, s := range m.order[cur.Offset:end] {
			d := *m.devices[s]
			d.OpType, d.OpDate = "", time.Time{}
			out = append(out, d)
		}
		next.Offset, more = end, end < len(m.order)
		if !more {
			next.Fetch = false // the final fetch cursor continues as a sync cursor
		}
	} else {
		m.stats.Syncs++
		end := min(cur.Events+limit, len(m.events))
		for _, e := range m.events[cur.Events:end] {
			d := Device{SerialNumber: e.serial}
			if cur, ok := m.devices[e.serial]; ok && e.op != "deleted" {
				d = *cur
			}
			d.OpType, d.OpDate = e.op, e.at
			out = append(out, d)
		}
		next.Fetch, next.Events, more = false, end, end < len(m.events)
	}
	if out == nil {
		out = []Device{}
	}
	writeJSON(w, map[string]any{
		"devices": out, "cursor": next.encode(), "more_to_follow": more,
		"fetched_until": now.UTC().Format(time.RFC3339),
	})
}

func (m *Mock) define(w http.ResponseWriter, r *http.Request) {
	var p Profile
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p); err != nil || p.ProfileName == "" || p.URL == "" {
		writeBody(w, http.StatusBadRequest, `"MALFORMED_REQUEST_BODY"`)
		return
	}
	uuid := strings.ToUpper(randHex(16))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Defines++
	m.profiles[uuid] = p
	res := m.assignLocked(uuid, p.Devices)
	writeJSON(w, map[string]any{"profile_uuid": uuid, "devices": res})
}

func (m *Mock) assign(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ProfileUUID string   `json:"profile_uuid"`
		Devices     []string `json:"devices"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Devices) == 0 || len(req.Devices) > MaxLimit {
		writeBody(w, http.StatusBadRequest, `"MALFORMED_REQUEST_BODY"`)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Assigns++
	if _, ok := m.profiles[req.ProfileUUID]; !ok {
		writeBody(w, http.StatusBadRequest, `"PROFILE_NOT_FOUND"`)
		return
	}
	writeJSON(w, map[string]any{"profile_uuid": req.ProfileUUID, "devices": m.assignLocked(req.ProfileUUID, req.Devices)})
}

// assignLocked assigns a profile: SUCCESS for the fleet's Macs (a modified
// event each), NOT_ACCESSIBLE for serials not in it, or the injected result.
func (m *Mock) assignLocked(uuid string, serials []string) map[string]string {
	res := make(map[string]string, len(serials))
	now := m.clock.Now().UTC().Truncate(time.Second)
	for _, s := range serials {
		if f, ok := m.failOn[s]; ok {
			res[s] = f
			continue
		}
		d, ok := m.devices[s]
		if !ok {
			res[s] = "NOT_ACCESSIBLE"
			continue
		}
		d.ProfileUUID, d.ProfileStatus, d.ProfileAssignTime = uuid, "assigned", now
		m.events = append(m.events, event{serial: s, op: "modified", at: now})
		res[s] = "SUCCESS"
	}
	return res
}

func (m *Mock) remove(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Devices []string `json:"devices"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Devices) == 0 {
		writeBody(w, http.StatusBadRequest, `"MALFORMED_REQUEST_BODY"`)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Removes++
	res := map[string]string{}
	now := m.clock.Now().UTC().Truncate(time.Second)
	for _, s := range req.Devices {
		d, ok := m.devices[s]
		if !ok {
			res[s] = "NOT_ACCESSIBLE"
			continue
		}
		d.ProfileUUID, d.ProfileStatus = "", "empty"
		m.events = append(m.events, event{serial: s, op: "modified", at: now})
		res[s] = "SUCCESS"
	}
	writeJSON(w, map[string]any{"devices": res})
}

// Serials lists the fleet in fetch order.
func (m *Mock) Serials() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]string(nil), m.order...)
	sort.Strings(out)
	return out
}

// oauthParams parses an `Authorization: OAuth k="v", ...` header.
func oauthParams(h string) map[string]string {
	out := map[string]string{}
	rest, ok := strings.CutPrefix(h, "OAuth ")
	if !ok {
		return out
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		if u, err := url.QueryUnescape(strings.Trim(v, `"`)); err == nil {
			out[k] = u
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF8")
	json.NewEncoder(w).Encode(v)
}

func writeBody(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// inject answers POST /mock/inject?error=KIND (not an Apple endpoint), so a
// running `sundial depmock` can be made to fail like Apple: token_expired
// (the server token expires), cursor_expired (every cursor so far is older
// than 7 days), rate_limit (the next n requests, default 3, get 429).
func (m *Mock) inject(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch q.Get("error") {
	case "token_expired":
		m.ExpireToken()
	case "cursor_expired":
		m.ExpireCursors()
	case "rate_limit":
		n, err := strconv.Atoi(q.Get("n"))
		if err != nil || n < 1 || n > 1000 {
			n = 3
		}
		m.RateLimit("", n, time.Minute)
	default:
		writeBody(w, http.StatusBadRequest, "error must be token_expired, cursor_expired or rate_limit")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
