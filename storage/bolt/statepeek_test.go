package bolt

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestStoredRevDue: the revision and due time Commit reads without a full
// decode are the ones decodeState reads, for binary and JSON records,
// records written before the later fields, and long strings.
func TestStoredRevDue(t *testing.T) {
	full := fillState(t)
	long := *full
	long.Reason, long.StepCommand = string(make([]byte, 300)), "x"
	long.Attempts = -7
	short := &scheduler.State{DeviceID: "D1", Rev: 3, Phase: "notify", NextDue: time.Date(2026, 3, 20, 17, 0, 0, 0, time.UTC)}
	jsFull, _ := json.Marshal(full)
	for name, v := range map[string][]byte{
		"every field":           encodeState(full),
		"long strings":          encodeState(&long),
		"empty":                 encodeState(&scheduler.State{DeviceID: "D"}),
		"before the new fields": encodeState(short)[:len(encodeState(short))-12],
		"json":                  jsFull,
	} {
		want, err := decodeState("D", v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rev, due, err := storedRevDue("D", v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rev != want.Rev || !due.Equal(want.NextDue) {
			t.Errorf("%s: storedRevDue = %d, %v; want %d, %v", name, rev, due, want.Rev, want.NextDue)
		}
	}
	for name, v := range map[string][]byte{
		"empty":          nil,
		"unknown format": {0x7f, 1, 2},
		"truncated":      encodeState(full)[:40],
		"bad json":       []byte("{"),
	} {
		if _, _, err := storedRevDue("D", v); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestDecodeStateShared: a state decoded with its strings sharing one copy
// of the record equals one decoded field by field, and does not change
// when the record's bytes do (bbolt reuses them after the transaction).
func TestDecodeStateShared(t *testing.T) {
	want := fillState(t)
	v := encodeState(want)
	var got scheduler.State
	if err := decodeStateShared(&got, want.DeviceID, v, true); err != nil {
		t.Fatal(err)
	}
	clear(v)
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("shared decode\n got %+v\nwant %+v", &got, want)
	}
}

// TestEncodeSizeHints: a typical state and history entry encode without
// growing the buffer their hint sized.
func TestEncodeSizeHints(t *testing.T) {
	st := fillState(t)
	if n, hint := len(encodeState(st)), stateSizeHint(st); n > hint {
		t.Errorf("state: %d bytes, hint %d", n, hint)
	}
	tr := &scheduler.Transition{At: time.Now(), Kind: scheduler.EventStep, From: "notify", Step: "download",
		Reason: "deadline within 5 days: download 15.2: ScheduleOSUpdate Default version 15.2", Target: "15.2", Deadline: time.Now()}
	if n, hint := len(encodeTransition(tr)), transitionSizeHint(tr); n > hint {
		t.Errorf("transition: %d bytes, hint %d", n, hint)
	}
}

// TestArenaCopy: slices from an arena are copies with no room to grow into
// their neighbours; big ones get their own allocation.
func TestArenaCopy(t *testing.T) {
	var a arena
	x := a.copy([]byte("abc"))
	y := a.copy([]byte("de"))
	if string(x) != "abc" || string(y) != "de" || cap(x) != 3 {
		t.Fatalf("x = %q (cap %d), y = %q", x, cap(x), y)
	}
	_ = append(x, 'z')
	if string(y) != "de" {
		t.Fatalf("appending to x changed y: %q", y)
	}
	big := make([]byte, arenaBlock)
	if b := a.copy(big); len(b) != arenaBlock || &b[0] == &big[0] {
		t.Fatal("big copy")
	}
	var none *arena
	if b := none.copy([]byte("q")); string(b) != "q" {
		t.Fatalf("nil arena: %q", b)
	}
}
