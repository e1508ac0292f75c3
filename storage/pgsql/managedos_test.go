package pgsql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestManagedOSConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunManagedOS(t, func(t *testing.T) storagetest.ManagedOSStore {
		return newTestDB(t).open(t)
	})
}

// TestDueNanoseconds: the due index compares at the nanosecond, as the
// bbolt backend does, so a device is never due a moment early.
func TestDueNanoseconds(t *testing.T) {
	s := newTestDB(t).open(t)
	ctx := t.Context()
	due := t0.Add(1500 * time.Nanosecond)
	if err := s.Commit(ctx, []scheduler.Commit{{State: &scheduler.State{DeviceID: "A", NextDue: due}}}, t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now  time.Time
		want []string
	}{
		{t0.Add(time.Microsecond), nil},
		{due.Add(-time.Nanosecond), nil},
		{due, []string{"A"}},
		{due.Add(time.Nanosecond), []string{"A"}},
	}
	for _, tc := range tests {
		have, err := s.DueDevices(ctx, tc.now, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(have, tc.want) {
			t.Errorf("DueDevices(t0+%v) = %v, want %v", tc.now.Sub(t0), have, tc.want)
		}
	}
	sts, err := s.States(ctx, []string{"A"})
	if err != nil || !sts[0].NextDue.Equal(due) {
		t.Errorf("stored NextDue = %v, %v; want %v", sts[0].NextDue, err, due)
	}
}

// TestCommitReplicas plays several replicas committing the same devices at
// once: per device and revision exactly one commit wins, and every win
// (and nothing else) leaves its history entry and its command.
func TestCommitReplicas(t *testing.T) {
	db := newTestDB(t)
	replicas := []*Store{db.open(t), db.open(t), db.open(t)}
	ctx := t.Context()
	devs := []string{"AAA-1", "AAA-2"}
	for _, d := range devs {
		enroll(t, replicas[0], d)
	}
	const workers, rounds = 6, 8
	var (
		mu   sync.Mutex
		wins = map[string]int{}
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			s := replicas[w%len(replicas)]
			for r := range rounds {
				// Both devices in one batch, in an order that varies, so
				// that row locks are taken in different orders.
				ids := slices.Clone(devs)
				if (w+r)%2 == 1 {
					slices.Reverse(ids)
				}
				sts, err := s.States(ctx, ids)
				if err != nil {
					t.Error(err)
					return
				}
				var commits []scheduler.Commit
				for i, id := range ids {
					st := sts[i]
					if st == nil {
						st = &scheduler.State{DeviceID: id}
					}
					st.Step = fmt.Sprintf("w%d-r%d", w, r)
					c, err := mdm.NewCommand("ScheduleOSUpdateScan", nil)
					if err != nil {
						t.Error(err)
						return
					}
					commits = append(commits, scheduler.Commit{State: st, Commands: []*mdm.Command{c},
						History: []scheduler.Transition{{At: t0, Kind: scheduler.EventStep, Step: st.Step, Reason: "race"}}})
				}
				err = s.Commit(ctx, commits, t0)
				var ce *scheduler.ConflictError
				switch {
				case err == nil:
					mu.Lock()
					for _, id := range ids {
						wins[id]++
					}
					mu.Unlock()
				case errors.As(err, &ce):
				default:
					t.Errorf("commit: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("wins of %d attempts: %v", workers*rounds, wins)
	s := replicas[0]
	sts, err := s.States(ctx, devs)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range devs {
		if wins[id] == 0 {
			t.Errorf("%s: no commit won", id)
		}
		h, err := s.History(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		cmds, err := s.Commands(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if have := []int{int(sts[i].Rev), len(h), len(cmds)}; !slices.Equal(have, []int{wins[id], wins[id], wins[id]}) {
			t.Errorf("%s: rev, history, commands = %v; want %d wins each", id, have, wins[id])
		}
	}
}

// TestPolicyRevisionsReplicas: concurrent policy changes from several
// replicas each get a revision of their own.
func TestPolicyRevisionsReplicas(t *testing.T) {
	db := newTestDB(t)
	replicas := []*Store{db.open(t), db.open(t)}
	ctx := t.Context()
	const n = 12
	revs := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec, err := replicas[i%2].PutPolicy(ctx, scheduler.PolicyRecord{GroupID: scheduler.DefaultGroupID,
				Policy: softwareupdate.Policy{Mode: softwareupdate.ModeAutomatic, DelayDays: i}}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			revs[i] = int(rec.Revision)
		})
	}
	wg.Wait()
	slices.Sort(revs)
	for i, r := range revs {
		if r != i+1 {
			t.Fatalf("revisions = %v, want 1…%d", revs, n)
		}
	}
	ps, err := replicas[0].Policies(ctx)
	if err != nil || len(ps) != 1 || ps[0].Revision != n {
		t.Errorf("Policies = %+v, %v; want revision %d", ps, err, n)
	}
}

// TestDeleteGroupRace: a group deleted while devices are assigned to it
// either keeps none of them or never lost them: no membership outlives
// its group.
func TestDeleteGroupRace(t *testing.T) {
	db := newTestDB(t)
	a, b := db.open(t), db.open(t)
	ctx := t.Context()
	for i := range 10 {
		g := fmt.Sprintf("g%d", i)
		if err := a.PutGroup(ctx, scheduler.Group{ID: g}, nil); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := a.AssignDevices(ctx, g, []string{"X", "Y"}, nil); err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("assign: %v", err)
			}
		})
		wg.Go(func() {
			if err := b.DeleteGroup(ctx, g, nil); err != nil {
				t.Errorf("delete: %v", err)
			}
		})
		wg.Wait()
		have, err := a.GroupsOf(ctx, []string{"X", "Y"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(have, []string{scheduler.DefaultGroupID, scheduler.DefaultGroupID}) {
			t.Errorf("after deleting %s: GroupsOf = %v", g, have)
		}
	}
}

// BenchmarkCommit commits a batch of 100 devices (state, one history
// entry, one command each), as a scheduler pass does.
func BenchmarkCommit(b *testing.B) {
	s := newTestDB(b).open(b)
	ctx := context.Background()
	const batch = 100
	ids := make([]string, batch)
	for i := range ids {
		ids[i] = fmt.Sprintf("BENCH-%03d", i)
		enroll(b, s, ids[i])
	}
	b.ReportAllocs()
	for b.Loop() {
		sts, err := s.States(ctx, ids)
		if err != nil {
			b.Fatal(err)
		}
		commits := make([]scheduler.Commit, batch)
		for i, id := range ids {
			st := sts[i]
			if st == nil {
				st = &scheduler.State{DeviceID: id}
			}
			st.NextDue = t0.Add(time.Duration(i) * time.Minute)
			c, err := mdm.NewCommand("ScheduleOSUpdateScan", nil)
			if err != nil {
				b.Fatal(err)
			}
			commits[i] = scheduler.Commit{State: st, Commands: []*mdm.Command{c},
				History: []scheduler.Transition{{At: t0, Kind: scheduler.EventStep, Step: "scan", Reason: "bench"}}}
		}
		if err := s.Commit(ctx, commits, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "µs/device")
}

// BenchmarkDueDevices lists the first 500 due devices of 5,000.
func BenchmarkDueDevices(b *testing.B) {
	s := newTestDB(b).open(b)
	ctx := context.Background()
	const n = 5000
	var commits []scheduler.Commit
	for i := range n {
		commits = append(commits, scheduler.Commit{State: &scheduler.State{DeviceID: fmt.Sprintf("D%05d", i), NextDue: t0.Add(time.Duration(i) * time.Second)}})
	}
	if err := s.Commit(ctx, commits, t0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ids, err := s.DueDevices(ctx, t0.Add(time.Hour), 500)
		if err != nil || len(ids) != 500 {
			b.Fatalf("DueDevices = %d, %v", len(ids), err)
		}
	}
}
