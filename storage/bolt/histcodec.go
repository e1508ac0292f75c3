package bolt

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Update history entries (mshist) are written for every phase change: a
// pass in which 40,000 Macs change phase writes 40,000, and JSON encoding
// them was a tenth of such a pass. They are stored in a compact binary
// form; entries written by earlier versions as JSON (starting with '{')
// are still read.
//
// Version 1 layout, after the version byte, with the primitives of the
// update state codec (statecodec.go): At, Kind, From, To, Step, Reason,
// Target, Deadline.
const histCodecV1 = 0x01

var errHistCorrupt = errors.New("corrupt update history entry")

func encodeTransition(t *scheduler.Transition) []byte {
	return appendTransition(make([]byte, 0, transitionSizeHint(t)), t)
}

// transitionSizeHint is about the encoded size of t (see stateSizeHint).
func transitionSizeHint(t *scheduler.Transition) int {
	return 1 + 2*9 + 8 + len(t.Kind) + len(t.From) + len(t.To) + len(t.Step) + len(t.Reason) + len(t.Target)
}

// appendTransition appends the encoding of t to dst.
func appendTransition(dst []byte, t *scheduler.Transition) []byte {
	w := stateWriter(dst)
	w = append(w, histCodecV1)
	w.time(t.At)
	w.str(string(t.Kind))
	w.str(string(t.From))
	w.str(string(t.To))
	w.str(t.Step)
	w.str(t.Reason)
	w.str(t.Target)
	w.time(t.Deadline)
	return w
}

// decodeTransition reads a stored history entry into t.
func decodeTransition(v []byte, t *scheduler.Transition) error {
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, t); err != nil {
			return fmt.Errorf("decode update history entry: %w", err)
		}
		return nil
	}
	if len(v) == 0 || v[0] != histCodecV1 {
		return fmt.Errorf("decode update history entry: %w: unknown encoding", errHistCorrupt)
	}
	r := &stateReader{b: v[1:]}
	*t = scheduler.Transition{
		At:     r.time(),
		Kind:   scheduler.EventKind(r.str()),
		From:   softwareupdate.Phase(r.str()),
		To:     softwareupdate.Phase(r.str()),
		Step:   r.str(),
		Reason: r.str(),
		Target: r.str(),
	}
	t.Deadline = r.time()
	if r.err == nil && len(r.b) != 0 {
		r.err = errHistCorrupt
	}
	if r.err != nil {
		*t = scheduler.Transition{}
		return fmt.Errorf("decode update history entry: %w", errHistCorrupt)
	}
	return nil
}
