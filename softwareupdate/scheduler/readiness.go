package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/storage"
)

// Forecast is what the readiness forecast expects of a Mac at its deadline.
type Forecast string

// Forecasts.
const (
	ForecastOnTime   Forecast = "will comply on time"
	ForecastAtRisk   Forecast = "at risk"
	ForecastWillFail Forecast = "will fail"
)

// Readiness thresholds. The free space needed is Sundial's conservative
// allowance (download, preparation and the install's working space), not a
// figure Apple publishes per update: the Mac's own size is not reported
// before AvailableOSUpdates.
const (
	// FreeGBMinor and FreeGBMajor are the free space (GB) a Mac should have
	// for a minor update and for a major upgrade.
	FreeGBMinor = 12.0
	FreeGBMajor = 35.0
	// CheckinStale: a Mac not seen for longer may not get its commands in time.
	CheckinStale = 72 * time.Hour
	// AgentStale: an agent silent for longer shows the user no countdown.
	AgentStale = 48 * time.Hour
	// DownloadLead: a legacy-path Mac that has not downloaded its update
	// this close to the deadline installs late (the download comes first).
	DownloadLead = 24 * time.Hour
	// MaxReadinessDays bounds the look-ahead of a forecast.
	MaxReadinessDays = 90
)

// ReadinessCheck is one input of a forecast.
type ReadinessCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// MacReadiness is one Mac's forecast with the checks it rests on.
type MacReadiness struct {
	DeviceID     string               `json:"device_id"`
	SerialNumber string               `json:"serial_number,omitempty"`
	GroupID      string               `json:"group_id"`
	Phase        softwareupdate.Phase `json:"phase"`
	Target       string               `json:"target,omitempty"`
	Deadline     time.Time            `json:"deadline,omitzero"`
	Forecast     Forecast             `json:"forecast"`
	// Reasons say why a Mac is at risk or will fail (empty when on time).
	Reasons []string         `json:"reasons,omitempty"`
	Checks  []ReadinessCheck `json:"checks"`
}

// ReadinessReport is the forecast of every Mac whose deadline falls before
// Until (or has passed) and that is not compliant yet.
type ReadinessReport struct {
	GeneratedAt time.Time        `json:"generated_at"`
	Until       time.Time        `json:"until"`
	Group       string           `json:"group,omitempty"`
	Counts      map[Forecast]int `json:"counts"`
	Macs        []MacReadiness   `json:"macs"`
}

// ReadinessInput is what the forecast knows of one Mac.
type ReadinessInput struct {
	Device  *mdm.Device
	GroupID string
	State   *State
	// DeclarationUnconfirmed: on the declarative path, the Mac has not
	// reported its enforcement declaration active and valid.
	DeclarationUnconfirmed bool
	// Agent is the companion agent's state; nil when it never registered.
	Agent *storage.AgentState
}

// Forecastable reports whether the readiness forecast covers a Mac in
// phase p (one that has yet to reach its target).
func Forecastable(p softwareupdate.Phase) bool { return forecastable(p) }

// forecastable phases are those of a Mac that has yet to reach its target.
func forecastable(p softwareupdate.Phase) bool {
	switch p {
	case softwareupdate.PhasePending, softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown, softwareupdate.PhaseEnforce,
		softwareupdate.PhaseFailed, softwareupdate.PhasePaused, softwareupdate.PhaseIneligible, softwareupdate.PhaseUnsupported:
		return true
	}
	return false
}

// ForecastMac is the readiness forecast of one Mac at now. It is pure.
func ForecastMac(now time.Time, x ReadinessInput) MacReadiness {
	st, d := x.State, x.Device
	f := st.Facts
	m := MacReadiness{DeviceID: st.DeviceID, SerialNumber: cmp.Or(d.Inventory.SerialNumber, d.SerialNumber), GroupID: x.GroupID,
		Phase: st.Phase, Target: st.Target, Deadline: st.Deadline, Forecast: ForecastOnTime,
		Checks: make([]ReadinessCheck, 0, 7)} // at most 7 checks: one allocation
	worst := func(fc Forecast, reason string) {
		if fc == ForecastWillFail || m.Forecast == ForecastOnTime {
			m.Forecast = fc
		}
		m.Reasons = append(m.Reasons, reason)
	}
	check := func(name string, ok bool, detail string) {
		m.Checks = append(m.Checks, ReadinessCheck{name, ok, detail})
	}

	check("supervised", f.Supervised, "")
	if !f.Supervised {
		worst(ForecastWillFail, "not supervised: macOS refuses MDM update commands")
	}
	supported := st.Phase != softwareupdate.PhaseUnsupported
	check("hardware supported", supported, "")
	if !supported {
		worst(ForecastWillFail, "the hardware cannot install the target")
	}
	if f.AppleSilicon {
		check("bootstrap token escrowed", f.Bootstrap, "")
		switch {
		case NeedsBootstrapToken(st):
			worst(ForecastWillFail, "the update needs a bootstrap token that is not escrowed")
		case !f.Bootstrap:
			worst(ForecastAtRisk, "Apple silicon without an escrowed bootstrap token: the install may wait for the user's password")
		}
	} else {
		check("bootstrap token escrowed", true, "not needed (Intel)")
	}
	need := FreeGBMinor
	if st.MajorUpgrade {
		need = FreeGBMajor
	}
	switch free := d.Inventory.AvailableDeviceCapacity; {
	case free <= 0:
		check("free disk", false, "not reported")
		worst(ForecastAtRisk, "free disk space unknown")
	case free < need:
		check("free disk", false, fmt.Sprintf("%.1f GB free, about %.0f GB needed", free, need))
		worst(ForecastAtRisk, fmt.Sprintf("low disk: %.1f GB free, about %.0f GB needed", free, need))
	default:
		check("free disk", true, fmt.Sprintf("%.1f GB free", free))
	}
	if st.Path == softwareupdate.PathDeclarative {
		check("declaration acknowledged", !x.DeclarationUnconfirmed, "")
		if x.DeclarationUnconfirmed {
			worst(ForecastAtRisk, "the Mac has not acknowledged its enforcement declaration")
		}
	}
	switch a := x.Agent; {
	case a == nil || a.LastReportAt.IsZero():
		check("agent alive", false, "never reported")
		worst(ForecastAtRisk, "no agent report: the user may see no countdown before the forced restart")
	case now.Sub(a.LastReportAt) > AgentStale:
		check("agent alive", false, "last report "+ago(now, a.LastReportAt))
		worst(ForecastAtRisk, "agent silent since "+ago(now, a.LastReportAt))
	default:
		check("agent alive", true, "last report "+ago(now, a.LastReportAt))
	}
	if d.LastSeen.IsZero() || now.Sub(d.LastSeen) > CheckinStale {
		check("recent check-in", false, "last seen "+ago(now, d.LastSeen))
		worst(ForecastAtRisk, "last check-in "+ago(now, d.LastSeen))
	} else {
		check("recent check-in", true, "last seen "+ago(now, d.LastSeen))
	}
	if st.Path != softwareupdate.PathDeclarative {
		late := !st.Deadline.IsZero() && st.Deadline.Sub(now) < DownloadLead
		check("update downloaded", st.Downloaded || !late, map[bool]string{true: "downloaded", false: "not yet"}[st.Downloaded])
		if !st.Downloaded && late {
			worst(ForecastAtRisk, "the update is not downloaded and the deadline is less than a day away")
		}
	}
	switch {
	case st.Phase == softwareupdate.PhasePaused:
		worst(ForecastAtRisk, st.Reason)
	case st.Failure != "" && st.RetryAt.IsZero():
		worst(ForecastWillFail, "failed: "+st.Failure)
	case st.Failure != "":
		worst(ForecastAtRisk, "failed, retried at "+st.RetryAt.UTC().Format(time.RFC3339)+": "+st.Failure)
	}
	return m
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Minute).String() + " ago"
}

// DeclarationConfirmations lists the Macs that have not confirmed their
// enforcement declaration (ddm.Service).
type DeclarationConfirmations interface {
	Unconfirmed(ctx context.Context, before time.Time) ([]string, error)
}

// AgentStates reads the companion agent's state (storage.AgentStore).
type AgentStates interface {
	AgentState(ctx context.Context, id string) (*storage.AgentState, error)
}

// Forecaster builds readiness forecasts from the stores.
type Forecaster struct {
	r      *Reporter
	decls  DeclarationConfirmations // nil: declarations not checked
	agents AgentStates              // nil: every Mac counts as without agent
	inputs ReadinessInputStore      // nil: devices, states and agents read apart
}

// NewForecaster returns a Forecaster over r's stores; decls and agents may be nil.
func NewForecaster(r *Reporter, decls DeclarationConfirmations, agents AgentStates, opts ...ForecasterOption) *Forecaster {
	fc := &Forecaster{r: r, decls: decls, agents: agents}
	for _, o := range opts {
		o(fc)
	}
	return fc
}

// Readiness forecasts every non-compliant Mac (of group, "" for all) whose
// deadline is within days of now or has passed.
func (fc *Forecaster) Readiness(ctx context.Context, group string, days int) (*ReadinessReport, error) {
	if days < 1 || days > MaxReadinessDays {
		return nil, fmt.Errorf("%w: days must be 1 to %d", ErrInvalid, MaxReadinessDays)
	}
	if group != "" && !ValidGroupID(group) {
		return nil, fmt.Errorf("%w: group %q", ErrInvalid, truncate(group))
	}
	now := fc.r.clock.Now().UTC()
	rep := &ReadinessReport{GeneratedAt: now, Until: now.Add(time.Duration(days) * 24 * time.Hour), Group: group,
		Counts: map[Forecast]int{}, Macs: []MacReadiness{}}
	err := fc.EachForecast(ctx, group, days, func(m *MacReadiness) error {
		rep.Counts[m.Forecast]++
		rep.Macs = append(rep.Macs, *m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	order := map[Forecast]int{ForecastWillFail: 0, ForecastAtRisk: 1, ForecastOnTime: 2}
	slices.SortStableFunc(rep.Macs, func(a, b MacReadiness) int {
		return cmp.Or(cmp.Compare(order[a.Forecast], order[b.Forecast]), a.Deadline.Compare(b.Deadline), cmp.Compare(a.DeviceID, b.DeviceID))
	})
	return rep, nil
}

// EachForecast calls fn with the forecast of every non-compliant Mac (of
// group, "" for all) whose deadline is within days of now or has passed,
// page by page in device order, keeping none: the leader's periodic check
// (webhook.CheckReadiness) walks the fleet without holding its forecasts.
func (fc *Forecaster) EachForecast(ctx context.Context, group string, days int, fn func(*MacReadiness) error) error {
	now := fc.r.clock.Now().UTC()
	until := now.Add(time.Duration(days) * 24 * time.Hour)
	unconfirmed := map[string]bool{}
	if fc.decls != nil {
		ids, err := fc.decls.Unconfirmed(ctx, until.Add(time.Hour))
		if err != nil {
			return fmt.Errorf("load unconfirmed declarations: %w", err)
		}
		for _, id := range ids {
			unconfirmed[id] = true
		}
	}
	if fc.inputs != nil {
		// One MacReadiness for every Mac: fn keeps none (each forecast's
		// slices are its own).
		var m MacReadiness
		return fc.eachInput(ctx, group, until, unconfirmed, func(x *ReadinessInput) error {
			m = ForecastMac(now, *x)
			return fn(&m)
		})
	}
	return fc.r.eachPage(ctx, func(devs []*mdm.Device, ids []string) error {
		states, err := fc.r.store.States(ctx, ids)
		if err != nil {
			return fmt.Errorf("load update states: %w", err)
		}
		groups, err := fc.r.store.GroupsOf(ctx, ids)
		if err != nil {
			return fmt.Errorf("load group membership: %w", err)
		}
		for i, d := range devs {
			st := states[i]
			if st == nil || !forecastable(st.Phase) || (group != "" && groups[i] != group) {
				continue
			}
			if !st.Deadline.IsZero() && st.Deadline.After(until) {
				continue
			}
			x := ReadinessInput{Device: d, GroupID: groups[i], State: st, DeclarationUnconfirmed: unconfirmed[d.ID]}
			if fc.agents != nil {
				a, err := fc.agents.AgentState(ctx, d.ID)
				switch {
				case errors.Is(err, storage.ErrNotFound):
				case err != nil:
					return fmt.Errorf("load agent of %s: %w", d.ID, err)
				default:
					x.Agent = a
				}
			}
			m := ForecastMac(now, x)
			if err := fn(&m); err != nil {
				return err
			}
		}
		return nil
	})
}
