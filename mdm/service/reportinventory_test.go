package service_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/service"
)

func deviceInformationBody(responses string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>QueryResponses</key><dict>` + responses + `</dict>
<key>Status</key><string>Acknowledged</string><key>UDID</key><string>MAC</string></dict></plist>`)
}

// TestReportInventory: the inventory in an acknowledged DeviceInformation
// answer reaches the device record; one in the answer to another command
// does not; one that does not decode is logged and the report is still
// recorded.
func TestReportInventory(t *testing.T) {
	var logs bytes.Buffer
	svc, store, clk := newTestService(t,
		service.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	ctx := t.Context()
	who := service.Identity{CertHash: "cert", NotAfter: clk.Now().AddDate(1, 0, 0)}
	if _, err := svc.Checkin(ctx, who, authenticate("MAC")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Checkin(ctx, who, tokenUpdate("MAC")); err != nil {
		t.Fatal(err)
	}
	send := func(uuid string, st mdm.Status, raw []byte) {
		t.Helper()
		clk.Advance(time.Minute)
		r := &mdm.Report{Enrollment: mdm.Enrollment{UDID: "MAC"}, CommandUUID: uuid, Status: st}
		if _, err := svc.CommandReport(ctx, who, r, raw); err != nil {
			t.Fatal(err)
		}
	}
	enqueue := func(rt string) string {
		t.Helper()
		c, err := mdm.NewCommand(rt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Enqueue(ctx, []string{"MAC"}, c); err != nil {
			t.Fatal(err)
		}
		return c.UUID
	}
	device := func() *mdm.Device {
		t.Helper()
		d, err := store.Device(ctx, "MAC")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	acknowledged := func(uuid string) {
		t.Helper()
		rec, err := store.Command(ctx, "MAC", uuid)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status != string(mdm.Acknowledged) || len(rec.Result) == 0 {
			t.Errorf("command %s: status %s, %d bytes of result; want Acknowledged with its result", uuid, rec.Status, len(rec.Result))
		}
	}
	body := deviceInformationBody(`<key>OSVersion</key><string>15.2</string><key>BuildVersion</key><string>24C101</string>`)

	// Another command's answer that carries QueryResponses changes nothing.
	list := enqueue("ProfileList")
	send(list, mdm.Acknowledged, body)
	acknowledged(list)
	if d := device(); d.OSVersion != "" || !d.InventoryAt.IsZero() {
		t.Errorf("after a ProfileList answer: OS %q, inventory at %v; want neither", d.OSVersion, d.InventoryAt)
	}

	di := enqueue("DeviceInformation")
	send(di, mdm.Acknowledged, body)
	acknowledged(di)
	if d := device(); d.OSVersion != "15.2" || d.BuildVersion != "24C101" || !d.InventoryAt.Equal(clk.Now()) {
		t.Errorf("after the DeviceInformation answer: OS %s (%s) at %v; want 15.2 (24C101) at %v", d.OSVersion, d.BuildVersion, d.InventoryAt, clk.Now())
	}
	if !strings.Contains(logs.String(), `msg="inventory updated" enrollment_id=MAC os_version=15.2 build=24C101`) {
		t.Errorf("no inventory update logged:\n%s", logs.String())
	}

	// An answer whose inventory does not decode is recorded all the same.
	bad := enqueue("DeviceInformation")
	was := device()
	send(bad, mdm.Acknowledged, []byte(`<plist version="1.0"><dict><key>QueryResponses</key><dict><key>OSVersion</key>`))
	acknowledged(bad)
	if d := device(); d.OSVersion != was.OSVersion || !d.InventoryAt.Equal(was.InventoryAt) {
		t.Errorf("an undecodable answer changed the device: OS %s at %v", d.OSVersion, d.InventoryAt)
	}
	if !strings.Contains(logs.String(), `msg="inventory not stored" enrollment_id=MAC`) {
		t.Errorf("no warning for the undecodable answer:\n%s", logs.String())
	}

	// An answer without QueryResponses still counts as an inventory taken.
	empty := enqueue("DeviceInformation")
	send(empty, mdm.Acknowledged, []byte(`<plist version="1.0"><dict><key>Status</key><string>Acknowledged</string></dict></plist>`))
	acknowledged(empty)
	if d := device(); d.OSVersion != "15.2" || !d.InventoryAt.Equal(clk.Now()) {
		t.Errorf("after an answer without QueryResponses: OS %s at %v; want 15.2 at %v", d.OSVersion, d.InventoryAt, clk.Now())
	}
}
