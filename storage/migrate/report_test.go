package migrate

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sundial-mdm/sundial/mdm"
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
	src, err := bolt.Open(filepath.Join(b.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
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
