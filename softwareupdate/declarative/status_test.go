package declarative

import (
	"strings"
	"testing"

	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

func TestStatusOf(t *testing.T) {
	many := make([]ddm.Reason, 6)
	for i := range many {
		many[i] = ddm.Reason{Code: "Error.Code" + string(rune('A'+i))}
	}
	tests := []struct {
		name string
		have ddm.StatusUpdate
		want scheduler.DeviceStatus
	}{
		{"applied, downloading", ddm.StatusUpdate{State: ddm.StateConfirmed, Current: ddm.Current{InstallState: ddm.InstallDownloading}},
			scheduler.DeviceStatus{DeclarationApplied: true, Installing: true}},
		{"inactive without a reason", ddm.StatusUpdate{State: ddm.StateFailed},
			scheduler.DeviceStatus{DeclarationFailure: "enforcement declaration rejected by the Mac (inactive, no reason given)"}},
		{"six reasons", ddm.StatusUpdate{State: ddm.StateFailed, Reasons: many},
			scheduler.DeviceStatus{DeclarationFailure: "enforcement declaration rejected by the Mac: Error.CodeA; Error.CodeB; Error.CodeC; Error.CodeD; and 2 more"}},
		{"install failed", ddm.StatusUpdate{State: ddm.StateConfirmed, InstallFailed: true,
			Current: ddm.Current{InstallState: ddm.InstallFailed, FailureReason: ddm.FailureReason{Count: 2, Reason: "Not enough space"}}},
			scheduler.DeviceStatus{DeclarationApplied: true, InstallFailure: "software update failed: Not enough space (2 failed attempts)", RequiresBootstrap: true}},
		{"failure count rose while downloading again", ddm.StatusUpdate{State: ddm.StateConfirmed, InstallFailed: true,
			Current: ddm.Current{InstallState: ddm.InstallDownloading, FailureReason: ddm.FailureReason{Count: 1}}},
			scheduler.DeviceStatus{DeclarationApplied: true, InstallFailure: "software update failed (1 failed attempts)", RequiresBootstrap: true}},
		{"compliant", ddm.StatusUpdate{State: ddm.StateConfirmed, Compliant: true}, scheduler.DeviceStatus{DeclarationApplied: true, Compliant: true}},
	}
	for _, tt := range tests {
		if have := statusOf(tt.have); have != tt.want {
			t.Errorf("%s:\nhave %+v\nwant %+v", tt.name, have, tt.want)
		}
	}
	if s := statusOf(ddm.StatusUpdate{State: ddm.StateFailed, Reasons: many}).DeclarationFailure; strings.Count(s, "Error.") != 4 {
		t.Errorf("reasons are not bounded: %q", s)
	}
}
