package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
)

// BenchmarkEnrolmentWrites runs the store's writes of one enrolment, as
// the server makes them, on a file that already holds 10,000 enrolled
// Macs (so that the dense buckets span many pages, as in the load test):
// Authenticate, TokenUpdate queueing DeviceInformation, the agent secret
// with its settings profile (one transaction), and the DeviceInformation
// result with its inventory (one transaction), 10 ms apart.
// pages/op is what bbolt wrote (dirty pages) per enrolment.
// openWriteBench opens a store for the write benchmarks: no fsync, and no
// batch delay, since one caller writes.
func openWriteBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	s.db.MaxBatchDelay = 0
	return s
}

// benchMac returns the i-th simulated Mac's ID, spread over the key space
// as UDIDs are, and its check-in message.
func benchMac(i int) (string, *mdm.CheckinMessage) {
	id := fmt.Sprintf("%08X-%016X", uint32(i*2654435761), uint64(i)*0x9E3779B97F4A7C15)
	return id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, Topic: "com.apple.mgmt.External.test",
		OSVersion: "15.1", BuildVersion: "24B83", SerialNumber: "C02" + id[:8], ProductName: "Mac14,2",
		Token: make([]byte, 32), PushMagic: "MAGIC-" + id}
}

func BenchmarkEnrolmentWrites(b *testing.B) {
	s := openWriteBench(b)
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	profile, err := mdm.NewCommand("InstallProfile", map[string]any{"Payload": make([]byte, 2048)})
	if err != nil {
		b.Fatal(err)
	}
	enrol := func(i int) {
		now = now.Add(10 * time.Millisecond)
		id, msg := benchMac(i)
		if err := s.Authenticate(ctx, id, msg, "cert-"+id, now); err != nil {
			b.Fatal(err)
		}
		devInfo, err := mdm.NewCommand("DeviceInformation", nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.TokenUpdate(ctx, id, msg, devInfo, now); err != nil {
			b.Fatal(err)
		}
		cmd := *profile
		cmd.UUID = mdm.NewUUID()
		if err := s.ProvisionAgent(ctx, id, "hash-"+id, &cmd, now); err != nil {
			b.Fatal(err)
		}
		inv := &mdm.Inventory{OSVersion: "15.1", BuildVersion: "24B83", SerialNumber: "C02" + id[:8]}
		r := &mdm.Report{Enrollment: msg.Enrollment, Status: mdm.Acknowledged, CommandUUID: devInfo.UUID, RequestType: "DeviceInformation"}
		if _, stored, _, err := s.StoreReportInventoryAndNext(ctx, id, r, []byte("<plist/>"), inv, now); err != nil || !stored {
			b.Fatal(stored, err)
		}
	}
	const fleet = 10000
	for i := range fleet {
		enrol(i)
	}
	before := s.db.Stats().TxStats
	i := fleet
	b.ReportAllocs()
	for b.Loop() {
		enrol(i)
		i++
	}
	after := s.db.Stats().TxStats
	b.ReportMetric(float64(after.GetWrite()-before.GetWrite())/float64(b.N), "pages/op")
}
