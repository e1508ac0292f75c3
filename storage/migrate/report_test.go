package migrate

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
	"github.com/sundial-mdm/sundial/storage/migrate/record"
)

func TestCompare(t *testing.T) {
	all := func(n int) record.Counts {
		c := record.Counts{}
		for _, k := range record.Kinds {
			c[k] = n
		}
		return c
	}
	with := func(c record.Counts, kind string, n int) record.Counts {
		c[kind] = n
		return c
	}
	tests := []struct {
		name             string
		src, copied, dst record.Counts
		want             []string // kinds that differ
	}{
		{"equal", all(3), all(3), all(3), nil},
		{"empty", record.Counts{}, record.Counts{}, record.Counts{}, nil},
		{"target short", all(3), all(3), with(all(3), record.Commands, 2), []string{record.Commands}},
		{"not all copied", all(3), with(all(3), record.AuditLog, 1), with(all(3), record.AuditLog, 1), []string{record.AuditLog}},
		{"two kinds", all(1), with(all(1), record.Devices, 0), with(all(1), record.Groups, 5), []string{record.Devices, record.Groups}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := compare(tc.src, tc.copied, tc.dst)
			if len(r.Kinds) != len(record.Kinds) {
				t.Errorf("%d kinds reported, want %d", len(r.Kinds), len(record.Kinds))
			}
			var have []string
			for _, d := range r.Differences {
				have = append(have, d[:strings.IndexByte(d, ':')])
			}
			if !slices.Equal(have, tc.want) {
				t.Errorf("differences = %q, want kinds %v", r.Differences, tc.want)
			}
			out := r.String()
			for _, k := range record.Kinds {
				if !strings.Contains(out, k) {
					t.Errorf("report does not mention %s:\n%s", k, out)
				}
			}
		})
	}
}

// BenchmarkRun migrates 1,000 devices with 10 commands each (half of them
// finished) and reports records per second.
func BenchmarkRun(b *testing.B) {
	src, _ := benchSource(b)
	benchRun(b, src)
}

// benchSource is BenchmarkRun's bbolt store: 1,000 devices with 10
// commands each, half of them finished.
func benchSource(b *testing.B) (*bolt.Store, []string) {
	src, err := bolt.Open(filepath.Join(b.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	ctx := b.Context()
	const devices, perDevice = 1000, 10
	// bbolt batches concurrent writes: populate from many goroutines.
	ids := make([]string, devices)
	each := func(fn func(id string) error) {
		var wg sync.WaitGroup
		errs := make(chan error, devices)
		for _, id := range ids {
			wg.Go(func() {
				if err := fn(id); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	for i := range ids {
		ids[i] = fmt.Sprintf("MAC-%04d", i)
	}
	each(func(id string) error {
		return src.Authenticate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate}, "cert-"+id, t0)
	})
	var cmds []*mdm.Command
	for range perDevice {
		c, err := mdm.NewCommand("ProfileList", nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := src.Enqueue(ctx, ids, c, t0); err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	each(func(id string) error {
		for _, c := range cmds[:perDevice/2] {
			r := &mdm.Report{Enrollment: mdm.Enrollment{UDID: id}, CommandUUID: c.UUID, Status: mdm.Acknowledged}
			if _, _, err := src.StoreReportAndNext(ctx, id, r, []byte("<plist>result</plist>"), t0); err != nil {
				return err
			}
		}
		return nil
	})
	return src, ids
}

// benchRun migrates src into a new schema per iteration.
func benchRun(b *testing.B, src *bolt.Store) {
	ctx := b.Context()
	var records int
	for b.Loop() {
		b.StopTimer()
		dst := newPgsql(b)
		b.StartTimer()
		rep, err := Run(ctx, src, dst, nil)
		if err != nil {
			b.Fatal(err)
		}
		records = 0
		for _, k := range rep.Kinds {
			records += k.Copied
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRunRollout is BenchmarkRun plus the per-device and per-day
// records of the rollout and reporting features at their bounds: a
// forecast mark and a pending webhook delivery per device, a year of
// compliance rows for 10 groups and of evidence days.
func BenchmarkRunRollout(b *testing.B) {
	src, ids := benchSource(b)
	ctx := b.Context()
	if err := src.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: "ep", URL: "https://hooks.example.com", Secret: []byte("sealed"), Created: t0}); err != nil {
		b.Fatal(err)
	}
	marks := make([]storage.ForecastMark, len(ids))
	ds := make([]storage.WebhookDelivery, len(ids))
	for i, id := range ids {
		marks[i] = storage.ForecastMark{DeviceID: id, GroupID: "pilot", Forecast: "at risk", Causes: []string{"free-space"},
			Reasons: []string{"8 GB free, 20 GB needed"}, Target: "15.4", Deadline: t0.Add(240 * time.Hour), Since: t0}
		ds[i] = storage.WebhookDelivery{EventID: fmt.Sprintf("evt-%04d", i), Endpoint: "ep", Type: "device.at_risk", Created: t0,
			Body: json.RawMessage(`{"device":"` + id + `","forecast":"at risk"}`), NextAt: t0}
	}
	if err := src.UpdateForecastMarks(ctx, marks, nil, ds); err != nil {
		b.Fatal(err)
	}
	for d := range 365 {
		day := t0.AddDate(0, 0, d)
		rows := make([]storage.ComplianceDay, 10)
		for g := range rows {
			rows[g] = storage.ComplianceDay{Day: day.Format(time.DateOnly), GroupID: fmt.Sprintf("group-%02d", g), Devices: 100, Managed: 90, Compliant: 80}
		}
		if err := src.PutComplianceDay(ctx, day.Format(time.DateOnly), rows); err != nil {
			b.Fatal(err)
		}
		ev := storage.EvidenceDay{Day: day.Format(time.DateOnly), TakenAt: day, Rows: []storage.EvidenceRow{{Managed: 900, Compliant: 800}}}
		for g := range 10 {
			ev.Rows = append(ev.Rows, storage.EvidenceRow{GroupID: fmt.Sprintf("group-%02d", g), Managed: 90, Compliant: 80})
		}
		if err := src.PutEvidenceDay(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	benchRun(b, src)
}
