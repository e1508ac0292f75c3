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
	old := v[:len(v)-3] // "" + 0 + zero time: one byte each
	have, err := decodeState("D1", old)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(have, st) {
		t.Errorf("decoded %+v, want %+v", have, st)
	}
}
