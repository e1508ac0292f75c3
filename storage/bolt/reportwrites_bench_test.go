package bolt

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
)

// BenchmarkProfileReport stores a Mac's acknowledgement of its agent
// settings profile and looks up its next command (none), as the load
// test's phase 1b does, on a file of 10,000 enrolled Macs whose profiles
// are pending. The profile body is random, as a sealed one is. Each
// report is its own commit; pages/op is what bbolt wrote per report.
func BenchmarkProfileReport(b *testing.B) {
	s := openWriteBench(b)
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	const fleet = 10000
	type pending struct {
		id   string
		uuid string
	}
	ids := make([]string, fleet)
	for i := range ids {
		var msg *mdm.CheckinMessage
		ids[i], msg = benchMac(i)
		if err := s.Authenticate(ctx, ids[i], msg, "cert-"+ids[i], now); err != nil {
			b.Fatal(err)
		}
		if _, err := s.TokenUpdate(ctx, ids[i], msg, nil, now); err != nil {
			b.Fatal(err)
		}
	}
	// provision queues a settings profile for every Mac, in fleet order.
	provision := func() []pending {
		out := make([]pending, fleet)
		for i, id := range ids {
			now = now.Add(time.Millisecond)
			body := make([]byte, 3072)
			rand.Read(body)
			cmd, err := mdm.NewCommand("InstallProfile", map[string]any{"Payload": body})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.ProvisionAgent(ctx, id, "hash-"+id, cmd, now); err != nil {
				b.Fatal(err)
			}
			out[i] = pending{id, cmd.UUID}
		}
		return out
	}
	queue := provision()
	ack := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>CommandUUID</key><string>UUID</string><key>Status</key><string>Acknowledged</string><key>UDID</key><string>ID</string></dict></plist>`)
	var pages, reports int64
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(queue) {
			b.StopTimer()
			queue, i = provision(), 0
			b.StartTimer()
		}
		p := queue[i]
		i++
		now = now.Add(time.Millisecond)
		st := s.db.Stats().TxStats
		before := st.GetWrite()
		r := &mdm.Report{Enrollment: mdm.Enrollment{UDID: p.id}, Status: mdm.Acknowledged, CommandUUID: p.uuid}
		rt, _, next, err := s.StoreReportInventoryAndNext(ctx, p.id, r, ack, nil, now)
		if err != nil || rt != "InstallProfile" || next != nil {
			b.Fatal(rt, next, err)
		}
		st = s.db.Stats().TxStats
		pages += st.GetWrite() - before
		reports++
	}
	b.ReportMetric(float64(pages)/float64(reports), "pages/op")
}
