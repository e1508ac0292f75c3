package mdm

import "testing"

func TestKnownRequestType(t *testing.T) {
	for _, tc := range []struct {
		have string
		want bool
	}{
		{"ScheduleOSUpdate", true}, {"DeviceInformation", true}, {"DeclarativeManagement", true},
		{"scheduleosupdate", false}, {"ScheduleOSUpdates", false}, {"", false},
	} {
		if got := KnownRequestType(tc.have); got != tc.want {
			t.Errorf("KnownRequestType(%q) = %v, want %v", tc.have, got, tc.want)
		}
	}
}

func TestIsUUID(t *testing.T) {
	for _, tc := range []struct {
		have string
		want bool
	}{
		{NewUUID(), true}, {"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"my-command-1", false}, {"0f8fad5b-d9cb-469f-a165-70867728950", false}, {"", false},
	} {
		if got := IsUUID(tc.have); got != tc.want {
			t.Errorf("IsUUID(%q) = %v, want %v", tc.have, got, tc.want)
		}
	}
}
