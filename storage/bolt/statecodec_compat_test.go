package bolt

import (
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestStateCodecReadsRecordsWithoutLaterFields: a version 1 record written
// before FailureSource, NotNowCount and NotNowSince existed ends at NextDue
// and still decodes, with those fields zero.
func TestStateCodecReadsRecordsWithoutLaterFields(t *testing.T) {
	st := &scheduler.State{DeviceID: "D1", Rev: 3, Phase: "notify", Target: "15.2",
		NextDue: time.Date(2026, 3, 20, 17, 0, 0, 0, time.UTC)}
	v := encodeState(st)
	old := v[:len(v)-12] // "" + 0 + zero time, two zero times (OfflineAt, GraceUntil), the 5 evidence fields, "" (DeadlineMoved, Facts.TimeZone): one byte each
	have, err := decodeState("D1", old)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(have, st) {
		t.Errorf("decoded %+v, want %+v", have, st)
	}
}

// TestStateCodecReadsRecordsWithoutOfflineGrace: a record written before
// OfflineAt and GraceUntil existed ends at NotNowSince and still decodes.
func TestStateCodecReadsRecordsWithoutOfflineGrace(t *testing.T) {
	st := &scheduler.State{DeviceID: "D1", Rev: 3, Phase: "enforce", Target: "15.2", FailureSource: "install", NotNowCount: 2,
		NotNowSince: time.Date(2026, 3, 20, 17, 0, 0, 0, time.UTC)}
	v := encodeState(st)
	have, err := decodeState("D1", v[:len(v)-9]) // two zero times, the 5 evidence fields and two "" (DeadlineMoved, Facts.TimeZone): one byte each
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(have, st) {
		t.Errorf("decoded %+v, want %+v", have, st)
	}
	st.OfflineAt, st.GraceUntil = time.Date(2026, 3, 21, 9, 0, 0, 0, time.UTC), time.Date(2026, 3, 21, 13, 0, 0, 0, time.UTC)
	if have, err := decodeState("D1", encodeState(st)); err != nil || !reflect.DeepEqual(have, st) {
		t.Errorf("round trip = %+v, %v; want %+v", have, err, st)
	}
}

// TestStateCodecReadsRecordsWithoutEvidence: a record written before the
// compliance evidence fields existed ends at GraceUntil and still decodes,
// with them zero; with them set it round-trips.
func TestStateCodecReadsRecordsWithoutEvidence(t *testing.T) {
	st := &scheduler.State{DeviceID: "D1", Rev: 3, Phase: "compliant", Target: "15.2",
		GraceUntil: time.Date(2026, 3, 21, 13, 0, 0, 0, time.UTC)}
	v := encodeState(st)
	have, err := decodeState("D1", v[:len(v)-7]) // the 5 evidence fields and two "" (DeadlineMoved, Facts.TimeZone): one byte each
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(have, st) {
		t.Errorf("decoded %+v, want %+v", have, st)
	}
	at := time.Date(2026, 3, 22, 9, 0, 0, 0, time.UTC)
	st.NotifiedAt, st.PatchedTarget, st.PatchedAt, st.PatchedNotice, st.PatchedDeadline = at, "15.2", at.Add(time.Hour), at.Add(-time.Hour), at.Add(48*time.Hour)
	if have, err := decodeState("D1", encodeState(st)); err != nil || !reflect.DeepEqual(have, st) {
		t.Errorf("round trip = %+v, %v; want %+v", have, err, st)
	}
}
