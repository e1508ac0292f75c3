package webhook

import (
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Rollout event types (issue 23): the kill switch, the ring gates and the
// readiness forecast.
const (
	TypeRolloutPaused  = "rollout.paused"
	TypeRolloutResumed = "rollout.resumed"
	TypeRingHeld       = "ring.held"
	TypeRingStarted    = "ring.started"
	TypeDeviceAtRisk   = "device.at_risk"
	TypeDeviceReady    = "device.ready"
)

func init() {
	Types = append(Types, TypeRolloutPaused, TypeRolloutResumed, TypeRingHeld, TypeRingStarted, TypeDeviceAtRisk, TypeDeviceReady)
}

// PauseData is the data of rollout.paused and rollout.resumed: the pause's
// scope ("fleet" or "group"), who paused, when and why, and for a resume
// who resumed and when.
type PauseData struct {
	Scope     string    `json:"scope"`
	GroupID   string    `json:"group_id,omitempty"`
	Reason    string    `json:"reason"`
	PausedBy  string    `json:"paused_by"`
	PausedAt  time.Time `json:"paused_at"`
	ResumedBy string    `json:"resumed_by,omitempty"`
	ResumedAt time.Time `json:"resumed_at,omitzero"`
}

func pauseData(p *scheduler.Pause) PauseData {
	scope := "group"
	if p.GroupID == scheduler.FleetPause {
		scope = "fleet"
	}
	return PauseData{Scope: scope, GroupID: p.GroupID, Reason: p.Reason, PausedBy: p.Actor, PausedAt: p.At.UTC()}
}

// PausedEvent is the rollout.paused event of a pause being stored (a new
// pause, or a paused group's new reason).
func PausedEvent(p *scheduler.Pause) (Event, error) {
	return New(TypeRolloutPaused, p.At, pauseData(p))
}

// ResumedEvent is the rollout.resumed event of pause p ending, by actor at
// at (the resume's audit entry; a zero at takes the pause's time).
func ResumedEvent(p *scheduler.Pause, actor string, at time.Time) (Event, error) {
	d := pauseData(p)
	if at.IsZero() {
		at = p.At
	}
	d.ResumedBy, d.ResumedAt = actor, at.UTC()
	return New(TypeRolloutResumed, at, d)
}
