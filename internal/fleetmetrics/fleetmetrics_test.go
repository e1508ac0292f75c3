package fleetmetrics

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

func TestLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMDM(reg)
	// A flood of made-up message types from devices adds at most
	// maxMessageTypes series plus "other".
	for i := range 1000 {
		m.Checkin(context.Background(), "d", &mdm.CheckinMessage{MessageType: mdm.MessageType(fmt.Sprintf("Made-Up-%d", i))})
	}
	if n := testutil.CollectAndCount(m.checkins); n != maxMessageTypes+1 {
		t.Fatalf("%d check-in series, want %d", n, maxMessageTypes+1)
	}
	if got := testutil.ToFloat64(m.checkins.WithLabelValues(Other)); got != 1000-maxMessageTypes {
		t.Fatalf("other = %v", got)
	}
	if got := newBounded(2).label(strings.Repeat("x", 65)); got != Other {
		t.Fatalf("a long value is labelled %q", got)
	}
}

func TestDDMStatusErrors(t *testing.T) {
	m := NewMDM(prometheus.NewRegistry())
	ctx := context.Background()
	m.StatusChanged(ctx, "d", ddm.StatusUpdate{State: ddm.StateConfirmed})
	m.StatusChanged(ctx, "d", ddm.StatusUpdate{State: ddm.StateFailed, Reasons: []ddm.Reason{{Code: "Error.ConfigurationCannotBeApplied"}}})
	m.StatusChanged(ctx, "d", ddm.StatusUpdate{InstallFailed: true})
	want := `
# HELP sundial_ddm_status_errors_total Declarative status reports that show a failed enforcement or install, by Apple's reason code.
# TYPE sundial_ddm_status_errors_total counter
sundial_ddm_status_errors_total{reason="Error.ConfigurationCannotBeApplied"} 1
sundial_ddm_status_errors_total{reason="unspecified"} 1
`
	if err := testutil.CollectAndCompare(m.ddmStatus, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestSchedulerPasses(t *testing.T) {
	s := NewScheduler(prometheus.NewRegistry(), "r1")
	s.Pass(scheduler.Stats{Evaluated: 10, Changed: 3, Commands: 2}, 20*time.Millisecond, nil)
	s.Pass(scheduler.Stats{}, time.Second, fmt.Errorf("boom"))
	s.Leading(true)
	for name, tc := range map[string]struct {
		c    prometheus.Collector
		want float64
	}{
		"errors": {s.errors, 1}, "evaluated": {s.evaluated, 10}, "changed": {s.changed, 3}, "commands": {s.commands, 2}, "leader": {s.leader, 1},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s = %v, want %v", name, got, tc.want)
		}
	}
	s.Leading(false)
	if got := testutil.ToFloat64(s.leader); got != 0 {
		t.Errorf("leader after losing the lease = %v", got)
	}
}

func TestSchedulerStoreKeepsCommitPreparer(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := NewMDM(prometheus.NewRegistry())
	_, want := any(s).(scheduler.CommitPreparer)
	if _, got := m.SchedulerStore(s).(scheduler.CommitPreparer); got != want {
		t.Fatalf("wrapped store prepares commits: %v, the store: %v", got, want)
	}
}
