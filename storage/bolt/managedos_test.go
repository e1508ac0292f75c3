package bolt

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestManagedOSConformance(t *testing.T) {
	storagetest.RunManagedOS(t, func(t *testing.T) storagetest.ManagedOSStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestPreparedCommitStoresTheSame: a commit prepared ahead
// (PrepareCommits) stores exactly the bytes an unprepared one does, and a
// prepared commit still checks revisions.
func TestPreparedCommitStoresTheSame(t *testing.T) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	cmd, err := mdm.NewCommand("ScheduleOSUpdateScan", map[string]any{"Force": true})
	if err != nil {
		t.Fatal(err)
	}
	commitsFor := func(rev uint64) []scheduler.Commit {
		var out []scheduler.Commit
		for _, id := range []string{"A", "B"} {
			out = append(out, scheduler.Commit{
				State: &scheduler.State{DeviceID: id, Rev: rev, GroupID: "default", Phase: softwareupdate.PhaseNotify,
					Reason: "notify window open", Target: "15.2", Deadline: t0.AddDate(0, 0, 5), NextDue: t0.Add(time.Hour)},
				History: []scheduler.Transition{
					{At: t0, Kind: scheduler.EventPhase, From: softwareupdate.PhasePending, To: softwareupdate.PhaseNotify, Reason: "notify"},
					{At: t0, Kind: scheduler.EventStep, Reason: "scan"},
				},
				Commands: []*mdm.Command{{UUID: fmt.Sprintf("%s-%s-%d", cmd.UUID, id, rev), RequestType: cmd.RequestType, Raw: cmd.Raw}},
			})
		}
		return out
	}
	var dumps [2]map[string]string
	for i, prepare := range []bool{false, true} {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, id := range []string{"A", "B"} {
			msg := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t"}
			if err := s.Authenticate(ctx, id, msg, "cert-"+id, t0); err != nil {
				t.Fatal(err)
			}
		}
		for rev := range uint64(2) {
			commits := commitsFor(rev)
			if prepare {
				s.PrepareCommits(commits)
				if commits[0].Prepared == nil {
					t.Fatal("PrepareCommits prepared nothing")
				}
			}
			if err := s.Commit(ctx, commits, t0); err != nil {
				t.Fatal(err)
			}
		}
		// A prepared commit with a stale revision is refused.
		stale := commitsFor(0)
		if prepare {
			s.PrepareCommits(stale)
		}
		if err := s.Commit(ctx, stale, t0); !errors.Is(err, scheduler.ErrConflict) {
			t.Fatalf("stale commit (prepared %v): %v, want ErrConflict", prepare, err)
		}
		dumps[i] = dumpBuckets(t, s, bMSState, bMSHist, bMSDue, bQueue, bCmdRaw)
	}
	if !maps.Equal(dumps[0], dumps[1]) {
		t.Fatalf("prepared commits stored\n%v\nunprepared\n%v", dumps[1], dumps[0])
	}
}

// dumpBuckets returns every key and value of the named buckets.
func dumpBuckets(t *testing.T, s *Store, names ...[]byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		for _, name := range names {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				out[string(name)+"/"+string(k)] = string(v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("nothing stored")
	}
	return out
}
