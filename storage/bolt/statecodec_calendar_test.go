package bolt

import (
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestStateCodecDeadlineMoved: DeadlineMoved and Facts.TimeZone
// round-trip, and a record written before business calendars (it ends at
// GraceUntil) decodes with them empty.
func TestStateCodecDeadlineMoved(t *testing.T) {
	st := &scheduler.State{DeviceID: "D1", Rev: 2, Phase: "notify", Target: "15.2",
		Deadline:   time.Date(2026, 12, 28, 8, 0, 0, 0, time.UTC),
		GraceUntil: time.Date(2026, 12, 28, 9, 0, 0, 0, time.UTC)}
	v := encodeState(st)
	have, err := decodeState("D1", v[:len(v)-2]) // two "" (DeadlineMoved, Facts.TimeZone): one byte each
	if err != nil || !reflect.DeepEqual(have, st) {
		t.Fatalf("record without DeadlineMoved = %+v, %v; want %+v", have, err, st)
	}
	st.Facts.TimeZone = "Europe/Berlin"
	st.DeadlineMoved = "Sat 2026-12-26 12:00 is a holiday (Boxing Day) → Mon 2026-12-28 09:00 Europe/Berlin"
	if have, err := decodeState("D1", encodeState(st)); err != nil || !reflect.DeepEqual(have, st) {
		t.Errorf("round trip = %+v, %v; want %+v", have, err, st)
	}
}
