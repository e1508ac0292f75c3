package bolt

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/retention"
	"github.com/sundial-mdm/sundial/mdm"
)

// yearOfFleet builds, once per run, a file holding a 10,000-Mac fleet with
// a year of one finished command a week per Mac (520,000 records with
// bodies and results), queued and answered through the store's own paths,
// a week per transaction pair.
var yearOfFleet = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sundial-retention-bench")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "year.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		return "", err
	}
	defer s.Close()
	ctx := context.Background()
	ids := make([]string, benchMacs)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08X-%016X", i, i)
		msg := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: ids[i]}, MessageType: mdm.Authenticate,
			Topic: "com.apple.mgmt.External.bench", OSVersion: "14.6", SerialNumber: fmt.Sprintf("C02B%06d", i)}
		if err := s.Authenticate(ctx, ids[i], msg, "cert-"+ids[i], benchStart); err != nil {
			return "", err
		}
	}
	result := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Status</key><string>Acknowledged</string>` +
		`<key>QueryResponses</key><dict><key>OSVersion</key><string>14.6</string><key>BuildVersion</key><string>23G80</string></dict></dict></plist>`)
	for week := range benchWeeks {
		at := benchStart.Add(time.Duration(week) * 7 * 24 * time.Hour)
		c, err := mdm.NewCommand("DeviceInformation", map[string]any{"Queries": []string{"OSVersion", "BuildVersion"}})
		if err != nil {
			return "", err
		}
		if err := s.Enqueue(ctx, ids, c, at); err != nil {
			return "", err
		}
		err = s.db.Update(func(tx *bbolt.Tx) error {
			for _, id := range ids {
				r := &mdm.Report{Enrollment: mdm.Enrollment{UDID: id}, CommandUUID: c.UUID, Status: mdm.Acknowledged}
				if _, err := s.storeReport(tx, id, r, result, at.Add(time.Hour)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return path, nil
})

const (
	benchMacs  = 10_000
	benchWeeks = 52
)

var benchStart = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BenchmarkCheckinWhilePruning measures a Mac's check-in (a TokenUpdate,
// one write transaction, as every Mac sends after enrolling and whenever
// its push token changes) on a year of a 10,000-Mac fleet's
// records, alone and while the leader's pruner (internal/retention) deletes
// the oldest weeks, and reports the check-in latency's median, 99th percentile and maximum.
// go test -run '^$' -bench CheckinWhilePruning -benchtime 20000x ./storage/bolt/
func BenchmarkCheckinWhilePruning(b *testing.B) {
	src, err := yearOfFleet()
	if err != nil {
		b.Fatal(err)
	}
	for _, pruning := range []bool{false, true} {
		b.Run(fmt.Sprintf("pruning=%v", pruning), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "sundial.db")
			if err := copyFile(path, src); err != nil {
				b.Fatal(err)
			}
			s, err := Open(path, nil) // fsync on, as the server runs
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var pruned int
			if pruning {
				// The leader's pruner (internal/retention), on a clock a
				// week further at each run, as days pass on a server: the
				// first run after an upgrade deletes a whole year.
				clk := clock.NewFake(benchStart.Add(retention.DefaultRetainCommands + 2*time.Hour))
				p := retention.NewPruner(s, clk, nil, retention.DefaultRetainCommands, 0)
				wg.Go(func() {
					for week := 1; week <= benchWeeks && ctx.Err() == nil; week++ {
						clk.Set(benchStart.Add(retention.DefaultRetainCommands + time.Duration(week)*7*24*time.Hour + 2*time.Hour))
						n, _, err := p.RunOnce(ctx)
						if err != nil && ctx.Err() == nil {
							b.Error(err)
							return
						}
						pruned += n
					}
				})
			}
			lat := make([]time.Duration, 0, b.N)
			now := benchStart.Add(benchWeeks * 7 * 24 * time.Hour)
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprintf("%08X-%016X", i%benchMacs, i%benchMacs)
				start := time.Now()
				msg := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate,
					Topic: "com.apple.mgmt.External.bench", Token: []byte(fmt.Sprintf("token-%031d", i)), PushMagic: "magic"}
				if _, err := s.TokenUpdate(ctx, id, msg, nil, now); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			cancel()
			wg.Wait()
			slices.Sort(lat)
			us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
			b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
			b.ReportMetric(us(lat[len(lat)*99/100]), "p99-µs")
			b.ReportMetric(us(lat[len(lat)-1]), "max-µs")
			b.ReportMetric(float64(pruned), "pruned")
		})
	}
}
