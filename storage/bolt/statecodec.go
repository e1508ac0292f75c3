package bolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Update states are read by every scheduler sweep (100,000 of them at a
// time), so they are stored in a compact binary form rather than JSON: about
// a third of the size, which keeps the pages a sweep touches (and maps into
// memory) few, and several times faster to decode. Records written by
// earlier versions as JSON (they start with '{') are still read.
//
// Version 1 layout, after the version byte: every field of scheduler.State
// but DeviceID (the record's key) in declaration order; strings as uvarint
// length + bytes, integers as uvarints (Attempts zig-zag), times as uvarint
// (0 = zero time, else zig-zag unix nanoseconds + 1), and the booleans as one
// uvarint of flags. Fields added later (Errors, then FailureSource,
// NotNowCount and NotNowSince, then OfflineAt and GraceUntil, then the
// evidence fields NotifiedAt to PatchedDeadline, then DeadlineMoved and
// Facts.TimeZone) follow NextDue, each group read only when
// present, so older records still decode.
const stateCodecV1 = 0x01

const (
	flagSupervised = 1 << iota
	flagAppleSilicon
	flagBootstrap
	flagEnabled
	flagMajorUpgrade
	flagDownloaded
	flagRequiresBootstrap
)

var errStateCorrupt = errors.New("corrupt update state record")

type stateWriter []byte

func (w *stateWriter) uint(v uint64) { *w = binary.AppendUvarint(*w, v) }
func (w *stateWriter) int(v int64)   { *w = binary.AppendVarint(*w, v) }
func (w *stateWriter) str(s string) {
	w.uint(uint64(len(s)))
	*w = append(*w, s...)
}
func (w *stateWriter) time(t time.Time) {
	if t.IsZero() {
		w.uint(0)
		return
	}
	n := t.UnixNano()
	w.uint(uint64(n<<1^n>>63) + 1)
}

func encodeState(st *scheduler.State) []byte {
	return appendState(make([]byte, 0, stateSizeHint(st)), st)
}

// stateSizeHint is about the encoded size of st: its strings plus the
// usual width of the other fields (times set in this century take 9
// bytes), so that encoding it rarely grows the buffer.
func stateSizeHint(st *scheduler.State) int {
	f := &st.Facts
	n := 24 + 9*18 // version, flags, revisions, counters; the times
	for _, s := range [...]string{st.GroupID, f.OSVersion, f.Build, f.BoardID, f.Model, string(st.Phase), st.Reason,
		st.Target, st.TargetBuild, string(st.Path), st.Step, st.StepCommand, st.Awaiting, st.InstallAction,
		st.ProductKey, st.Failure, st.FailureSource, st.PatchedTarget, st.DeadlineMoved, f.TimeZone} {
		n += 1 + len(s)
	}
	return n
}

// appendState appends the encoding of st to dst.
func appendState(dst []byte, st *scheduler.State) []byte {
	w := stateWriter(dst)
	w = append(w, stateCodecV1)
	f := &st.Facts
	var flags uint64
	for _, b := range []struct {
		set  bool
		flag uint64
	}{{f.Supervised, flagSupervised}, {f.AppleSilicon, flagAppleSilicon}, {f.Bootstrap, flagBootstrap},
		{f.Enabled, flagEnabled}, {st.MajorUpgrade, flagMajorUpgrade}, {st.Downloaded, flagDownloaded},
		{st.RequiresBootstrap, flagRequiresBootstrap}} {
		if b.set {
			flags |= b.flag
		}
	}
	w.uint(flags)
	w.uint(st.Rev)
	w.str(st.GroupID)
	w.uint(st.PolicyRev)
	w.str(f.OSVersion)
	w.str(f.Build)
	w.str(f.BoardID)
	w.str(f.Model)
	w.time(f.InventoryAt)
	w.time(st.UpdatedAt)
	w.str(string(st.Phase))
	w.str(st.Reason)
	w.time(st.PhaseSince)
	w.str(st.Target)
	w.str(st.TargetBuild)
	w.time(st.Deadline)
	w.time(st.FirstNonCompliant)
	w.str(string(st.Path))
	w.str(st.Step)
	w.time(st.StepAt)
	w.str(st.StepCommand)
	w.str(st.Awaiting)
	w.time(st.NextCheck)
	w.str(st.InstallAction)
	w.str(st.ProductKey)
	w.time(st.StartNowAt)
	w.int(int64(st.Attempts))
	w.str(st.Failure)
	w.time(st.FailureAt)
	w.time(st.RetryAt)
	w.time(st.NextDue)
	// Fields added after version 1 follow, each optional on reading.
	w.int(int64(st.Errors))
	w.str(st.FailureSource)
	w.int(int64(st.NotNowCount))
	w.time(st.NotNowSince)
	w.time(st.OfflineAt)
	w.time(st.GraceUntil)
	w.time(st.NotifiedAt)
	w.str(st.PatchedTarget)
	w.time(st.PatchedAt)
	w.time(st.PatchedNotice)
	w.time(st.PatchedDeadline)
	w.str(st.DeadlineMoved)
	w.str(f.TimeZone)
	return w
}

type stateReader struct {
	b   []byte
	err error
	// src, when set, is b as a string: str then returns substrings of it,
	// one allocation for all of a record's strings.
	src string
}

func (r *stateReader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errStateCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) int() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errStateCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) str() string {
	n := r.uint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errStateCorrupt
		return ""
	}
	var s string
	if n == 0 {
		// nothing to copy or share
	} else if r.src != "" {
		off := len(r.src) - len(r.b)
		s = r.src[off : off+int(n)]
	} else {
		s = string(r.b[:n])
	}
	r.b = r.b[n:]
	return s
}

// skip passes over a string without copying it.
func (r *stateReader) skip() {
	n := r.uint()
	if r.err != nil {
		return
	}
	if n > uint64(len(r.b)) {
		r.err = errStateCorrupt
		return
	}
	r.b = r.b[n:]
}

func (r *stateReader) time() time.Time {
	v := r.uint()
	if v == 0 || r.err != nil {
		return time.Time{}
	}
	v--
	return time.Unix(0, int64(v>>1)^-int64(v&1)).UTC()
}

// decodeState reads a stored update state of device id.
func decodeState(id string, v []byte) (*scheduler.State, error) {
	st := new(scheduler.State)
	if err := decodeStateInto(st, id, v); err != nil {
		return nil, err
	}
	return st, nil
}

// decodeStateInto is decodeState into st, which it zeroes first, for a
// caller that reuses one State for many (ReadinessInputs).
func decodeStateInto(st *scheduler.State, id string, v []byte) error {
	return decodeStateShared(st, id, v, false)
}

// decodeStateShared is decodeStateInto; with shared, st's strings share
// one copy of the record (one allocation instead of one per string), for
// states that live no longer than a scheduler pass's chunk.
func decodeStateShared(st *scheduler.State, id string, v []byte, shared bool) error {
	*st = scheduler.State{}
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, st); err != nil {
			return fmt.Errorf("decode update state %s: %w", id, err)
		}
		return nil
	}
	if len(v) == 0 || v[0] != stateCodecV1 {
		return fmt.Errorf("decode update state %s: %w: unknown encoding", id, errStateCorrupt)
	}
	r := &stateReader{b: v[1:]}
	if shared {
		r.src = string(r.b)
	}
	f := &st.Facts
	flags := r.uint()
	st.DeviceID = id
	st.Rev = r.uint()
	st.GroupID = r.str()
	st.PolicyRev = r.uint()
	f.OSVersion = r.str()
	f.Build = r.str()
	f.BoardID = r.str()
	f.Model = r.str()
	f.InventoryAt = r.time()
	st.UpdatedAt = r.time()
	st.Phase = softwareupdate.Phase(r.str())
	st.Reason = r.str()
	st.PhaseSince = r.time()
	st.Target = r.str()
	st.TargetBuild = r.str()
	st.Deadline = r.time()
	st.FirstNonCompliant = r.time()
	st.Path = softwareupdate.EnforcementPath(r.str())
	st.Step = r.str()
	st.StepAt = r.time()
	st.StepCommand = r.str()
	st.Awaiting = r.str()
	st.NextCheck = r.time()
	st.InstallAction = r.str()
	st.ProductKey = r.str()
	st.StartNowAt = r.time()
	st.Attempts = int(r.int())
	st.Failure = r.str()
	st.FailureAt = r.time()
	st.RetryAt = r.time()
	st.NextDue = r.time()
	if r.err == nil && len(r.b) > 0 { // absent in records written before it
		st.Errors = int(r.int())
	}
	if r.err == nil && len(r.b) > 0 { // absent in records written before these fields
		st.FailureSource = r.str()
		st.NotNowCount = int(r.int())
		st.NotNowSince = r.time()
	}
	if r.err == nil && len(r.b) > 0 { // absent in records written before the offline grace
		st.OfflineAt = r.time()
		st.GraceUntil = r.time()
	}
	if r.err == nil && len(r.b) > 0 { // absent in records written before the compliance evidence
		st.NotifiedAt = r.time()
		st.PatchedTarget = r.str()
		st.PatchedAt = r.time()
		st.PatchedNotice = r.time()
		st.PatchedDeadline = r.time()
	}
	if r.err == nil && len(r.b) > 0 { // absent in records written before business calendars
		st.DeadlineMoved = r.str()
		f.TimeZone = r.str()
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errStateCorrupt
	}
	if r.err != nil {
		return fmt.Errorf("decode update state %s: %w", id, r.err)
	}
	f.Supervised = flags&flagSupervised != 0
	f.AppleSilicon = flags&flagAppleSilicon != 0
	f.Bootstrap = flags&flagBootstrap != 0
	f.Enabled = flags&flagEnabled != 0
	st.MajorUpgrade = flags&flagMajorUpgrade != 0
	st.Downloaded = flags&flagDownloaded != 0
	st.RequiresBootstrap = flags&flagRequiresBootstrap != 0
	return nil
}

// storedRevDue reads the revision and due time of a stored state without
// decoding the rest: what Commit needs of the state it replaces.
func storedRevDue(id string, v []byte) (rev uint64, due time.Time, err error) {
	if len(v) > 0 && v[0] == '{' {
		st, err := decodeState(id, v)
		if err != nil {
			return 0, time.Time{}, err
		}
		return st.Rev, st.NextDue, nil
	}
	if len(v) == 0 || v[0] != stateCodecV1 {
		return 0, time.Time{}, fmt.Errorf("decode update state %s: %w: unknown encoding", id, errStateCorrupt)
	}
	// The fields between Rev and NextDue, in encodeState's order: s a
	// string, u an unsigned integer or a time, i a signed integer.
	r := &stateReader{b: v[1:]}
	r.uint() // flags
	rev = r.uint()
	for _, k := range "sussssuu" + "ssussuu" + "ssussussu" + "isuu" {
		switch k {
		case 's':
			r.skip()
		case 'u':
			r.uint()
		case 'i':
			r.int()
		}
	}
	due = r.time()
	if r.err != nil {
		return 0, time.Time{}, fmt.Errorf("decode update state %s: %w", id, r.err)
	}
	return rev, due, nil
}
