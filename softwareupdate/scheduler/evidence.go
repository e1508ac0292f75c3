package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/storage"
)

// recordEvidence keeps what compliance evidence needs of a phase change
// (to is the new phase, st still holds the old one and the deadline the Mac
// was told): when the Mac was first notified, and its patch: a move from a
// non-compliant phase to compliant records the target, the time, the notice
// and the deadline. It costs no read: the fields travel with the state.
func recordEvidence(st *State, to softwareupdate.Phase, now time.Time) {
	switch {
	case to == softwareupdate.PhaseCompliant && nonCompliant(st.Phase) && st.Target != "":
		st.PatchedTarget, st.PatchedAt, st.PatchedNotice, st.PatchedDeadline = st.Target, now, st.NotifiedAt, st.Deadline
		st.NotifiedAt = time.Time{}
	case to == softwareupdate.PhaseNotify || to == softwareupdate.PhaseCountdown || to == softwareupdate.PhaseEnforce:
		if st.NotifiedAt.IsZero() {
			st.NotifiedAt = now
		}
	case !nonCompliant(to): // exempt, unmanaged, unsupported...: the episode ends unfinished
		st.NotifiedAt = time.Time{}
	}
}

// EvidenceStateReader is a store that reads states for the evidence in
// pages, decoding only what the evidence needs (the PostgreSQL store's
// JSON states would otherwise be decoded whole).
type EvidenceStateReader interface {
	// EvidenceStates returns up to limit states after `after`, in ID order,
	// with at least DeviceID, GroupID, Phase, Target, Deadline, NotifiedAt
	// and the Patched fields set (others may be zero).
	EvidenceStates(ctx context.Context, after string, limit int) ([]*State, error)
}

// EvidenceRecorder takes the daily compliance evidence: it reads every
// update state (not the device records or histories, which the snapshot
// does not need), the exceptions and the ring plans.
type EvidenceRecorder struct {
	store Store
	cat   *catalog.Catalog
	clock Clock
	put   storage.EvidenceStore
}

// NewEvidenceRecorder returns a recorder writing to put; every argument is
// required.
func NewEvidenceRecorder(store Store, cat *catalog.Catalog, clk Clock, put storage.EvidenceStore) *EvidenceRecorder {
	if store == nil || cat == nil || clk == nil || put == nil {
		panic("scheduler.NewEvidenceRecorder: nil store, catalog, clock or evidence store")
	}
	return &EvidenceRecorder{store: store, cat: cat, clock: clk, put: put}
}

// evidencePage is how many states the recorder reads at once.
const evidencePage = 1000

// Record takes the evidence of the clock's UTC day so far and stores it as
// that day's (replacing an earlier one of the same day: a restart or a
// second leader never duplicates a day).
func (r *EvidenceRecorder) Record(ctx context.Context) (*storage.EvidenceDay, error) {
	now := r.clock.Now().UTC()
	exc, err := r.store.Exceptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("load exceptions: %w", err)
	}
	var plans []RingPlan
	if rs, ok := r.store.(RingStore); ok {
		if plans, err = rs.RingPlans(ctx); err != nil {
			return nil, fmt.Errorf("load ring plans: %w", err)
		}
	}
	b := NewEvidenceBuilder(now, r.cat, exc, plans)
	page := r.statePage
	if er, ok := r.store.(EvidenceStateReader); ok {
		page = er.EvidenceStates
	}
	for after := ""; ; {
		sts, err := page(ctx, after, evidencePage)
		if err != nil {
			return nil, fmt.Errorf("load update states: %w", err)
		}
		for _, st := range sts {
			b.Add(st)
		}
		if len(sts) < evidencePage {
			break
		}
		after = sts[len(sts)-1].DeviceID
	}
	d := b.Day()
	if err := r.put.PutEvidenceDay(ctx, d); err != nil {
		return nil, fmt.Errorf("store evidence: %w", err)
	}
	return &d, nil
}

// statePage reads a page of states through the StateStore.
func (r *EvidenceRecorder) statePage(ctx context.Context, after string, limit int) ([]*State, error) {
	ids, err := r.store.StateIDs(ctx, after, limit)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	sts, err := r.store.States(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i, st := range sts {
		if st == nil { // deleted between the two reads: an empty state, which Add skips
			sts[i] = &State{DeviceID: ids[i]}
		}
	}
	return sts, nil
}

// EvidenceBuilder folds update states into a day of evidence. It is pure:
// the same states give the same day.
type EvidenceBuilder struct {
	now       time.Time
	cat       *catalog.Catalog
	deviceExc map[string]*ExceptionRecord
	groupExc  map[string]*ExceptionRecord
	ringOf    map[string]ringPos
	fleet     *evidenceAcc
	groups    map[string]*evidenceAcc
	posted    map[string]time.Time
	seenDev   map[string]string // device ID -> group, for device exceptions in force
}

// ringPos places a group in a ring plan (ring 1 is the first).
type ringPos struct {
	plan string
	ring int
}

type evidenceAcc struct {
	row         storage.EvidenceRow
	fromRelease []time.Duration
	fromNotice  []time.Duration
	releases    map[string]*evidenceRel
}

type evidenceRel struct {
	required int
	days     map[int]int
}

// NewEvidenceBuilder starts the evidence at now with the exceptions and
// ring plans in force.
func NewEvidenceBuilder(now time.Time, cat *catalog.Catalog, exc []ExceptionRecord, plans []RingPlan) *EvidenceBuilder {
	b := &EvidenceBuilder{now: now.UTC(), cat: cat, deviceExc: map[string]*ExceptionRecord{}, groupExc: map[string]*ExceptionRecord{},
		ringOf: map[string]ringPos{}, fleet: newAcc(""), groups: map[string]*evidenceAcc{}, posted: map[string]time.Time{}, seenDev: map[string]string{}}
	for i := range exc {
		e := &exc[i]
		if !e.Exception.Active(b.now) {
			continue
		}
		if e.Scope == ScopeGroup {
			b.groupExc[e.ID] = e
		} else {
			b.deviceExc[e.ID] = e
		}
	}
	for _, p := range plans {
		for i, g := range p.Groups {
			b.ringOf[g] = ringPos{p.ID, i + 1}
		}
	}
	return b
}

func newAcc(group string) *evidenceAcc {
	return &evidenceAcc{row: storage.EvidenceRow{GroupID: group}, releases: map[string]*evidenceRel{}}
}

// postedOf returns Apple's posting date of version v (zero if unknown).
func (b *EvidenceBuilder) postedOf(v string) time.Time {
	if t, ok := b.posted[v]; ok {
		return t
	}
	var t time.Time
	if pv, err := catalog.ParseVersion(v); err == nil {
		if rel, ok := b.cat.Lookup(pv); ok {
			t = rel.PostingDate
		}
	}
	b.posted[v] = t
	return t
}

// Add counts one state.
func (b *EvidenceBuilder) Add(st *State) {
	if st.Phase == "" || st.Phase == softwareupdate.PhaseUnmanaged {
		return // not managed: no evidence to give
	}
	if _, ok := b.deviceExc[st.DeviceID]; ok {
		b.seenDev[st.DeviceID] = st.GroupID
	}
	g := b.groups[st.GroupID]
	if g == nil {
		if len(b.groups) >= storage.MaxEvidenceRows-1 {
			g = nil // beyond the bound: counted in the fleet row only
		} else {
			g = newAcc(st.GroupID)
			b.groups[st.GroupID] = g
		}
	}
	_, devExc := b.deviceExc[st.DeviceID]
	_, grpExc := b.groupExc[st.GroupID]
	for _, a := range []*evidenceAcc{b.fleet, g} {
		if a == nil {
			continue
		}
		a.add(b, st, devExc || grpExc)
	}
}

func (a *evidenceAcc) add(b *EvidenceBuilder, st *State, excepted bool) {
	r := &a.row
	r.Managed++
	if excepted {
		r.Exceptions++
	}
	patched := st.Phase == softwareupdate.PhaseCompliant && !st.PatchedAt.IsZero() && st.PatchedTarget != ""
	switch {
	case st.Phase == softwareupdate.PhaseCompliant:
		r.Compliant++
		if patched && !st.PatchedDeadline.IsZero() && (!b.now.Before(st.PatchedDeadline) || st.PatchedAt.After(st.PatchedDeadline)) {
			r.DeadlinePassed++
			if !st.PatchedAt.After(st.PatchedDeadline) {
				r.OnTime++
			}
		}
	case nonCompliant(st.Phase) && !st.Deadline.IsZero() && !b.now.Before(st.Deadline):
		r.DeadlinePassed++
	}
	// A patch recorded for a target the Mac has since moved on from still
	// counts for that release.
	if !st.PatchedAt.IsZero() && st.PatchedTarget != "" {
		posted := b.postedOf(st.PatchedTarget)
		rel := a.release(st.PatchedTarget)
		rel.required++
		days := 0
		if !posted.IsZero() && st.PatchedAt.After(posted) {
			days = min(int(st.PatchedAt.Sub(posted)/(24*time.Hour)), storage.MaxEvidencePatchDays)
		}
		rel.days[days]++
		if patched {
			r.Patched++
			if !posted.IsZero() {
				a.fromRelease = append(a.fromRelease, max(0, st.PatchedAt.Sub(posted)))
			}
			var fromNotice time.Duration
			if !st.PatchedNotice.IsZero() {
				fromNotice = max(0, st.PatchedAt.Sub(st.PatchedNotice))
			}
			a.fromNotice = append(a.fromNotice, fromNotice)
		}
	}
	if nonCompliant(st.Phase) && st.Target != "" && st.Target != st.PatchedTarget {
		a.release(st.Target).required++
	}
}

func (a *evidenceAcc) release(v string) *evidenceRel {
	rel := a.releases[v]
	if rel == nil {
		rel = &evidenceRel{days: map[int]int{}}
		a.releases[v] = rel
	}
	return rel
}

func (a *evidenceAcc) finish(b *EvidenceBuilder) storage.EvidenceRow {
	r := a.row
	secs := func(ds []time.Duration, p float64) int64 {
		if len(ds) == 0 {
			return 0
		}
		return int64(percentile(ds, p) / time.Second)
	}
	slices.Sort(a.fromRelease)
	slices.Sort(a.fromNotice)
	r.FromReleaseMedian, r.FromReleaseP90 = secs(a.fromRelease, 0.5), secs(a.fromRelease, 0.9)
	r.FromNoticeMedian, r.FromNoticeP90 = secs(a.fromNotice, 0.5), secs(a.fromNotice, 0.9)
	for v, rel := range a.releases {
		er := storage.EvidenceRelease{Version: v, Posted: b.postedOf(v), Required: rel.required}
		for d, n := range rel.days {
			er.PatchedAfter = append(er.PatchedAfter, [2]int{d, n})
		}
		slices.SortFunc(er.PatchedAfter, func(x, y [2]int) int { return cmp.Compare(x[0], y[0]) })
		r.Releases = append(r.Releases, er)
	}
	// Newest releases first; beyond the bound the oldest are left out.
	slices.SortFunc(r.Releases, func(x, y storage.EvidenceRelease) int { return compareVersions(y.Version, x.Version) })
	r.Releases = r.Releases[:min(len(r.Releases), storage.MaxEvidenceReleases)]
	if ring, ok := b.ringOf[r.GroupID]; ok && r.GroupID != "" {
		r.Plan, r.Ring = ring.plan, ring.ring
	}
	return r
}

// Day returns the evidence: the fleet's row first, then the groups' by ID,
// and the exceptions in force (device exceptions of Macs with a state and
// every group exception).
func (b *EvidenceBuilder) Day() storage.EvidenceDay {
	d := storage.EvidenceDay{Day: b.now.Format(time.DateOnly), TakenAt: b.now, Rows: []storage.EvidenceRow{b.fleet.finish(b)}}
	ids := make([]string, 0, len(b.groups))
	for id := range b.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		d.Rows = append(d.Rows, b.groups[id].finish(b))
	}
	var exc []storage.EvidenceException
	add := func(e *ExceptionRecord, group string) {
		exc = append(exc, storage.EvidenceException{Scope: string(e.Scope), ID: e.ID, GroupID: group,
			Exempt: e.Exception.Exempt, DeadlineOverride: e.Exception.DeadlineOverride, Expires: e.Exception.Expires,
			Reason: clip(e.Exception.Reason), GrantedBy: clip(e.Exception.GrantedBy), GrantedAt: e.CreatedAt})
	}
	for id, e := range b.groupExc {
		add(e, id)
	}
	for id, group := range b.seenDev {
		add(b.deviceExc[id], group)
	}
	slices.SortFunc(exc, func(x, y storage.EvidenceException) int {
		return cmp.Or(cmp.Compare(x.Scope, y.Scope), cmp.Compare(x.ID, y.ID))
	})
	d.ExceptionsTotal = len(exc)
	d.Exceptions = exc[:min(len(exc), storage.MaxEvidenceExceptions)]
	if d.Exceptions == nil {
		d.Exceptions = []storage.EvidenceException{}
	}
	return d
}

// DefaultEvidenceDays is the period of an evidence report whose start is
// not given: the 30 days up to its end.
const DefaultEvidenceDays = 30

// Report builds the evidence report of q from the stored days. An empty To
// is the clock's UTC day, an empty From the DefaultEvidenceDays up to To, a
// zero WithinDays DefaultEvidenceWithinDays. Bad input wraps ErrInvalid.
func (r *EvidenceRecorder) Report(ctx context.Context, q EvidenceQuery) (*EvidenceReport, error) {
	now := r.clock.Now().UTC()
	if q.To == "" {
		q.To = now.Format(time.DateOnly)
	}
	if q.From == "" {
		if to, err := storage.ParseDay(q.To); err == nil {
			q.From = to.AddDate(0, 0, 1-DefaultEvidenceDays).Format(time.DateOnly)
		}
	}
	if q.WithinDays == 0 {
		q.WithinDays = DefaultEvidenceWithinDays
	}
	if err := q.Check(now); err != nil {
		return nil, err
	}
	days, err := r.put.EvidenceDays(ctx, q.From, q.To)
	if err != nil {
		return nil, fmt.Errorf("load evidence: %w", err)
	}
	return BuildEvidenceReport(q, days), nil
}
