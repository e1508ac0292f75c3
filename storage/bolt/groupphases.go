package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var _ scheduler.GroupPhaseStore = (*Store)(nil)

// GroupPhases implements scheduler.GroupPhaseStore: one cursor walk of the
// states, decoding each binary state only up to its phase.
func (s *Store) GroupPhases(ctx context.Context, after string, limit int) ([]scheduler.GroupPhase, error) {
	var out []scheduler.GroupPhase
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bMSState).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			gp, err := groupPhase(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, gp)
		}
		return nil
	})
	return out, err
}

// groupPhase reads a stored state's group and phase: the fields before
// the phase in the binary encoding (decodeState) are skipped, not kept.
func groupPhase(id string, v []byte) (scheduler.GroupPhase, error) {
	gp := scheduler.GroupPhase{DeviceID: id}
	if len(v) > 0 && v[0] == '{' {
		var st struct {
			GroupID string               `json:"group_id"`
			Phase   softwareupdate.Phase `json:"phase"`
		}
		if err := json.Unmarshal(v, &st); err != nil {
			return gp, fmt.Errorf("decode update state %s: %w", id, err)
		}
		gp.GroupID, gp.Phase = st.GroupID, st.Phase
		return gp, nil
	}
	if len(v) == 0 || v[0] != stateCodecV1 {
		return gp, fmt.Errorf("decode update state %s: %w: unknown encoding", id, errStateCorrupt)
	}
	r := &stateReader{b: v[1:]}
	r.uint() // flags
	r.uint() // rev
	gp.GroupID = r.str()
	r.uint()      // policy rev
	for range 4 { // OS version, build, board ID, model
		r.str()
	}
	r.time() // inventory at
	r.time() // updated at
	gp.Phase = softwareupdate.Phase(r.str())
	if r.err != nil {
		return gp, fmt.Errorf("decode update state %s: %w", id, r.err)
	}
	return gp, nil
}
