package scheduler

import (
	"context"
	"log/slog"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

// compileCalendars compiles the business calendar of every policy once per
// configuration load, so a pass does not parse holidays per Mac. Policies
// are validated before they are stored; a calendar that does not compile
// (a policy stored by hand) is logged and ignored.
func compileCalendars(policies map[string]*PolicyRecord, log *slog.Logger) map[string]*softwareupdate.WorkCalendar {
	var out map[string]*softwareupdate.WorkCalendar
	for g, rec := range policies {
		if rec.Policy.Calendar == nil {
			continue
		}
		w, err := softwareupdate.CompileCalendar(rec.Policy.Calendar)
		if err != nil {
			log.Error("business calendar ignored", "group", g, "err", err)
			continue
		}
		if out == nil {
			out = map[string]*softwareupdate.WorkCalendar{}
		}
		out[g] = w
	}
	return out
}

// zonesFor returns the zone a device-local policy's deadline is computed in
// (the Mac's own zone, nil when the policy is not device-local or the agent
// has not reported one) and the zone the business calendar is read in: the
// zone the Mac's agent reported (Facts.TimeZone), else the policy's
// deadline zone.
func zonesFor(p *softwareupdate.Policy, cal *softwareupdate.WorkCalendar, zone string) (deviceLoc, calLoc *time.Location) {
	var mac *time.Location
	if zone != "" {
		mac = softwareupdate.LoadZone(zone)
	}
	if p.Mode == softwareupdate.ModeManual && p.TimeZone == softwareupdate.DeviceLocal {
		deviceLoc = mac
	}
	if cal != nil {
		calLoc = mac
		if calLoc == nil {
			calLoc = softwareupdate.DeadlineLocation(*p, deviceLoc)
		}
	}
	return deviceLoc, calLoc
}

// noteMove moves *deadline to working time (cal, read in loc), keeps the
// explanation on the state and records it in the history when the moved
// deadline is new. The explanation is built only then: a pass that finds
// the same move allocates nothing for it. A Mac held by a ring gate has no
// deadline yet, so nothing is recorded for it.
func noteMove(st *State, cal *softwareupdate.WorkCalendar, loc *time.Location, deadline *time.Time, held bool, target string, now time.Time) []Transition {
	from := *deadline
	to, moved := cal.Move(from, loc)
	*deadline = to
	if held || !moved {
		st.DeadlineMoved = ""
		return nil
	}
	same := to.Equal(st.Deadline)
	if same && softwareupdate.Explains(st.DeadlineMoved, from, to, loc) {
		return nil
	}
	old := st.DeadlineMoved
	st.DeadlineMoved = cal.Explain(from, to, loc)
	if same && old == st.DeadlineMoved {
		return nil
	}
	return []Transition{{At: now.UTC(), Kind: EventMoved, From: st.Phase, Target: target, Deadline: to.UTC(),
		Reason: "deadline moved by the business calendar: " + st.DeadlineMoved}}
}

// agentZone is the zone a Mac's agent reported, kept in its facts: an IANA
// name (at most 64 bytes, as the agent API accepts), "" for anything else.
func agentZone(ctx context.Context, z ZoneReader, id string) string {
	name := z.DeviceZone(ctx, id)
	if len(name) > 64 || softwareupdate.LoadZone(name) == nil {
		return ""
	}
	return name
}
