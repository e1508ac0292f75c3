package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/storage"
)

// WhatIfHorizon is how far ahead a what-if looks ("tomorrow").
const WhatIfHorizon = 24 * time.Hour

// WhatIfResult is what a candidate policy would do to a group's Macs,
// computed with ResolveTarget, PersonalDeadline and Decide and nothing
// saved. Setting a policy gives every Mac fresh minimum notice, so the
// what-if counts minimum notice from now.
type WhatIfResult struct {
	GroupID string                `json:"group_id"`
	Policy  softwareupdate.Policy `json:"policy"`
	// Now is when the what-if was computed; At is Now + WhatIfHorizon, the
	// instant Tomorrow describes.
	Now time.Time `json:"now"`
	At  time.Time `json:"at"`
	// Devices counts the group's device enrollments.
	Devices int `json:"devices"`
	// Current counts the group's Macs per phase as stored now (under the
	// current policy); Tomorrow per phase at At under the candidate.
	Current  map[softwareupdate.Phase]int `json:"current"`
	Tomorrow map[softwareupdate.Phase]int `json:"tomorrow"`
	// ForcedWithin24h counts Macs whose forced install (enforce phase)
	// would start before At.
	ForcedWithin24h int `json:"forced_within_24h"`
	// MajorUpgrades counts Macs whose target is in a newer major version.
	MajorUpgrades int `json:"major_upgrades"`
	// Unsupported counts Macs whose hardware cannot take the target.
	Unsupported int `json:"unsupported"`
	// MovedByCalendar counts Macs whose deadline the policy's business
	// calendar moves to working time (each row says why).
	MovedByCalendar int `json:"moved_by_calendar"`
	// ByTarget counts Macs that would have to update, per target version.
	ByTarget map[string]int `json:"by_target"`
	// FirstDeadline and LastDeadline bound the personal deadlines.
	FirstDeadline time.Time `json:"first_deadline,omitzero"`
	LastDeadline  time.Time `json:"last_deadline,omitzero"`
	// Rows is one row per Mac, by device ID.
	Rows []WhatIfRow `json:"rows"`
}

// WhatIfRow is one Mac under the candidate policy.
type WhatIfRow struct {
	DeviceID     string               `json:"device_id"`
	OSVersion    string               `json:"os_version,omitempty"`
	CurrentPhase softwareupdate.Phase `json:"current_phase"`
	Phase        softwareupdate.Phase `json:"phase"` // at At
	Reason       string               `json:"reason,omitempty"`
	Target       string               `json:"target,omitempty"`
	MajorUpgrade bool                 `json:"major_upgrade,omitempty"`
	Deadline     time.Time            `json:"deadline,omitzero"`
	// DeadlineMoved says why and where the business calendar moved the
	// deadline, read in the Mac's zone as the scheduler does.
	DeadlineMoved string `json:"deadline_moved,omitempty"`
	Forced        bool   `json:"forced_within_24h,omitempty"`
}

// WhatIfInput is one Mac of the group for WhatIf.
type WhatIfInput struct {
	DeviceID string
	Facts    Facts
	// Current is the stored phase ("" if never evaluated).
	Current softwareupdate.Phase
	// Exception is the device's (or else its group's) exception; nil if none.
	Exception *softwareupdate.Exception
}

// WhatIf computes what policy p would do to the Macs of group at now. It
// validates p first (a *softwareupdate.ValidationError; nothing is
// computed). It is pure.
func WhatIf(now time.Time, cat *catalog.Catalog, group string, p softwareupdate.Policy, in []WhatIfInput) (*WhatIfResult, error) {
	if err := p.Validate(now, cat); err != nil {
		return nil, err
	}
	now = now.UTC()
	at := now.Add(WhatIfHorizon)
	cal, err := softwareupdate.CompileCalendar(p.Calendar) // validated above
	if err != nil {
		return nil, err
	}
	res := &WhatIfResult{GroupID: group, Policy: p, Now: now, At: at,
		Current: map[softwareupdate.Phase]int{}, Tomorrow: map[softwareupdate.Phase]int{}, ByTarget: map[string]int{}, Rows: []WhatIfRow{}}
	for _, x := range in {
		ver, _ := catalog.ParseVersion(x.Facts.OSVersion)
		facts := softwareupdate.DeviceFacts{OSVersion: ver, Build: x.Facts.Build, BoardID: x.Facts.BoardID, Model: x.Facts.Model}
		// The scheduler would resolve the target at its next pass (now)
		// and start the fresh minimum notice then.
		tgt := softwareupdate.ResolveTarget(p, facts, cat, now)
		first := time.Time{}
		if tgt.Status == softwareupdate.StatusRequired {
			first = now
		}
		// By tomorrow an automatic policy may require a newer release.
		if t2 := softwareupdate.ResolveTarget(p, facts, cat, at); t2.Status != tgt.Status || t2.Version != tgt.Version {
			tgt = t2
			if first.IsZero() && tgt.Status == softwareupdate.StatusRequired {
				first = at
			}
		}
		deviceLoc, calLoc := zonesFor(&p, cal, x.Facts.TimeZone)
		deadline := softwareupdate.PersonalDeadline(p, tgt, first, x.Exception, deviceLoc)
		deadline, moved := softwareupdate.WorkingDeadline(cal, deadline, calLoc)
		dec := softwareupdate.Decide(at, softwareupdate.DeviceState{Target: tgt, Exception: x.Exception, Ineligible: ineligibility(&x.Facts)}, deadline)
		cur := x.Current
		if cur == "" {
			cur = PhaseUnevaluated
		}
		row := WhatIfRow{DeviceID: x.DeviceID, OSVersion: x.Facts.OSVersion, CurrentPhase: cur, Phase: dec.Phase, Reason: dec.Reason,
			MajorUpgrade: tgt.MajorUpgrade, Deadline: utc(dec.Deadline), DeadlineMoved: moved}
		if moved != "" && !dec.Deadline.IsZero() {
			res.MovedByCalendar++
		} else {
			row.DeadlineMoved = ""
		}
		if !tgt.Version.IsZero() {
			row.Target = tgt.Version.String()
		}
		row.Forced = dec.Phase == softwareupdate.PhaseEnforce
		res.Devices++
		res.Current[cur]++
		res.Tomorrow[dec.Phase]++
		if row.Forced {
			res.ForcedWithin24h++
		}
		if tgt.Status == softwareupdate.StatusRequired {
			res.ByTarget[row.Target]++
			if tgt.MajorUpgrade {
				res.MajorUpgrades++
			}
			if d := row.Deadline; !d.IsZero() {
				if res.FirstDeadline.IsZero() || d.Before(res.FirstDeadline) {
					res.FirstDeadline = d
				}
				if d.After(res.LastDeadline) {
					res.LastDeadline = d
				}
			}
		}
		if tgt.Status == softwareupdate.StatusUnsupported {
			res.Unsupported++
		}
		res.Rows = append(res.Rows, row)
	}
	slices.SortFunc(res.Rows, func(a, b WhatIfRow) int { return cmp.Compare(a.DeviceID, b.DeviceID) })
	return res, nil
}

// WhatIf computes what policy p would do to the Macs of group now (see the
// function WhatIf). An unknown group gives storage.ErrNotFound; an invalid
// policy a *softwareupdate.ValidationError. Nothing is saved.
func (r *Reporter) WhatIf(ctx context.Context, group string, p softwareupdate.Policy) (*WhatIfResult, error) {
	now := r.clock.Now()
	if err := p.Validate(now, r.cat); err != nil {
		return nil, err
	}
	groups, err := r.store.Groups(ctx)
	if err != nil {
		return nil, fmt.Errorf("load groups: %w", err)
	}
	if !slices.ContainsFunc(groups, func(g Group) bool { return g.ID == group }) {
		return nil, fmt.Errorf("group %s: %w", truncate(group), storage.ErrNotFound)
	}
	exc, err := r.store.Exceptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("load exceptions: %w", err)
	}
	var groupEx *softwareupdate.Exception
	deviceEx := map[string]*softwareupdate.Exception{}
	for i := range exc {
		switch {
		case exc[i].Scope == ScopeDevice:
			deviceEx[exc[i].ID] = &exc[i].Exception
		case exc[i].Scope == ScopeGroup && exc[i].ID == group:
			groupEx = &exc[i].Exception
		}
	}
	var in []WhatIfInput
	err = r.eachPage(ctx, func(devs []*mdm.Device, ids []string) error {
		gs, err := r.store.GroupsOf(ctx, ids)
		if err != nil {
			return fmt.Errorf("load group membership: %w", err)
		}
		var mine []string
		var mineDevs []*mdm.Device
		for i, g := range gs {
			if g == group {
				mine = append(mine, ids[i])
				mineDevs = append(mineDevs, devs[i])
			}
		}
		if len(mine) == 0 {
			return nil
		}
		states, err := r.store.States(ctx, mine)
		if err != nil {
			return fmt.Errorf("load update states: %w", err)
		}
		for i, d := range mineDevs {
			x := WhatIfInput{DeviceID: d.ID, Facts: FactsOf(d), Exception: groupEx}
			if ex := deviceEx[d.ID]; ex != nil {
				x.Exception = ex
			}
			if st := states[i]; st != nil {
				x.Current = st.Phase
				x.Facts.TimeZone = st.Facts.TimeZone // the agent's, kept by the scheduler
			}
			in = append(in, x)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return WhatIf(now, r.cat, group, p, in)
}
