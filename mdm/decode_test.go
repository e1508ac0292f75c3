package mdm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/micromdm/plist"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeCheckinFixtures(t *testing.T) {
	tests := []struct {
		file     string
		wantType MessageType
		wantID   string
		check    func(*CheckinMessage) bool
	}{
		{"Authenticate.macos-10.12.6.plist", Authenticate, "66ADE930-5FDF-5EC4-8429-15640684C489", func(m *CheckinMessage) bool {
			return m.OSVersion == "10.12.6" && m.BuildVersion == "16G2136" && m.SerialNumber == "C02MT66KFLHH" && m.Model == "iMac14,2" && strings.HasPrefix(m.Topic, "com.apple.mgmt.")
		}},
		{"Authenticate.ipados-9.3.5.plist", Authenticate, "", nil},
		{"TokenUpdate.macos-10.12.6.plist", TokenUpdate, "66ADE930-5FDF-5EC4-8429-15640684C489", func(m *CheckinMessage) bool {
			return len(m.Token) == 32 && m.PushMagic == "888CEB39-BFFA-40F6-89FA-B60752EB63C2" && !m.AwaitingConfiguration
		}},
		{"CheckOut.SYNTHETIC.plist", CheckOut, "66ADE930-5FDF-5EC4-8429-15640684C489", nil},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m, err := DecodeCheckin(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if m.MessageType != tc.wantType {
				t.Errorf("MessageType = %s, want %s", m.MessageType, tc.wantType)
			}
			id, err := m.ID()
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantID != "" && id != tc.wantID {
				t.Errorf("ID = %s, want %s", id, tc.wantID)
			}
			if tc.check != nil && !tc.check(m) {
				t.Errorf("decoded = %+v", m)
			}
		})
	}
}

func TestDecodeReportFixtures(t *testing.T) {
	tests := []struct {
		file       string
		wantStatus Status
	}{
		{"Idle.device.SYNTHETIC.plist", Idle},
		{"DeviceInformation.Acknowledged.minimal.macos.plist", Acknowledged},
		{"ScheduleOSUpdate.response.Acknowledged.plist", Acknowledged},
		{"AvailableOSUpdates.response.Acknowledged.plist", Acknowledged},
		{"OSUpdateStatus.response.Acknowledged.plist", Acknowledged},
		{"ScheduleOSUpdateScan.response.Acknowledged.macos.plist", Acknowledged},
		{"DeclarativeManagement.response.Acknowledged.plist", Acknowledged},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			r, err := DecodeReport(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.wantStatus {
				t.Errorf("Status = %s, want %s", r.Status, tc.wantStatus)
			}
			if _, err := r.ID(); err != nil {
				t.Error(err)
			}
		})
	}
	inv, err := DecodeDeviceInformation(readTestdata(t, "DeviceInformation.Acknowledged.minimal.macos.plist"))
	if err != nil {
		t.Fatal(err)
	}
	if inv.OSVersion != "" {
		t.Errorf("OSVersion = %q, want unknown", inv.OSVersion)
	}
}

func TestDecodeCommandFixtures(t *testing.T) {
	for _, f := range []string{"ScheduleOSUpdate.command.plist", "AvailableOSUpdates.command.plist", "OSUpdateStatus.command.plist", "ScheduleOSUpdateScan.command.plist", "DeviceInformation.command.plist"} {
		c, err := DecodeCommand(readTestdata(t, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !strings.HasPrefix(f, c.RequestType) {
			t.Errorf("%s: RequestType %s", f, c.RequestType)
		}
	}
	// Apple's published DeclarativeManagement example nests the envelope: it
	// has no top-level CommandUUID, so it is refused rather than guessed at.
	if _, err := DecodeCommand(readTestdata(t, "DeclarativeManagement.command.AS-PUBLISHED.plist")); err == nil {
		t.Error("doubly nested envelope accepted")
	}
	c, err := NewCommand("DeviceInformation", map[string]any{"Queries": InventoryQueries})
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCommand(c.Raw)
	if err != nil || back.UUID != c.UUID || back.RequestType != "DeviceInformation" {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"empty", "", "empty body"},
		{"binary", "bplist00\xd1\x01\x02", "binary property lists"},
		{"json", `{"MessageType":"Authenticate"}`, "not an XML property list"},
		{"truncated", `<?xml version="1.0"?><plist version="1.0"><dict><key>MessageType</key>`, "property list"},
		{"no type", plistDict(`<key>UDID</key><string>A</string>`), "missing MessageType"},
		{"unknown type", plistDict(`<key>MessageType</key><string>Bogus</string><key>UDID</key><string>A</string>`), "unknown MessageType"},
		{"no udid", plistDict(`<key>MessageType</key><string>CheckOut</string>`), "neither UDID"},
		{"bad udid", plistDict(`<key>MessageType</key><string>CheckOut</string><key>UDID</key><string>a/b</string>`), "invalid form"},
		{"token update without token", plistDict(`<key>MessageType</key><string>TokenUpdate</string><key>UDID</key><string>A</string>`), "without Token"},
		{"wrong type", plistDict(`<key>MessageType</key><array/><key>UDID</key><string>A</string>`), "property list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCheckin([]byte(tc.body))
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a ParseError containing %q", err, tc.want)
			}
		})
	}
	for _, body := range []string{
		plistDict(`<key>Status</key><string>Acknowledged</string><key>UDID</key><string>A</string>`),
		plistDict(`<key>Status</key><string>Weird</string><key>UDID</key><string>A</string>`),
		plistDict(`<key>UDID</key><string>A</string>`),
	} {
		if _, err := DecodeReport([]byte(body)); err == nil {
			t.Errorf("DecodeReport accepted %s", body)
		}
	}
}

func plistDict(inner string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>` + inner + `</dict></plist>`
}

func FuzzDecodeCheckin(f *testing.F) {
	for _, name := range []string{"Authenticate.macos-10.12.6.plist", "TokenUpdate.macos-10.12.6.plist", "CheckOut.SYNTHETIC.plist"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := DecodeCheckin(body)
		if err == nil {
			if _, err := m.ID(); err != nil {
				t.Fatalf("accepted message without a valid ID: %v", err)
			}
		}
	})
}

func FuzzDecodeReport(f *testing.F) {
	for _, name := range []string{"Idle.device.SYNTHETIC.plist", "DeviceInformation.Acknowledged.minimal.macos.plist", "ScheduleOSUpdate.response.Acknowledged.plist"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeReport(body)
		if err == nil && r.Status != Idle && r.CommandUUID == "" {
			t.Fatal("accepted a result without CommandUUID")
		}
		DecodeDeviceInformation(body)
	})
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(readTestdata(f, "ScheduleOSUpdate.command.plist"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeCommand(body)
		if err == nil && (c.UUID == "" || c.RequestType == "") {
			t.Fatal("accepted command without UUID or RequestType")
		}
	})
}

func BenchmarkDecodeReportIdle(b *testing.B) {
	body := readTestdata(b, "Idle.device.SYNTHETIC.plist")
	for b.Loop() {
		if _, err := DecodeReport(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode covers the bodies decoded on every enrolment and
// command round trip; -run '^$' -bench Decode compares the fast path with
// the plist library (the "library" sub-benchmarks).
func BenchmarkDecode(b *testing.B) {
	install, err := NewCommand("InstallProfile", map[string]any{"Payload": bytes.Repeat([]byte("profile "), 512)})
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name   string
		body   []byte
		decode func([]byte) error
		lib    any
	}{
		{"Authenticate", readTestdata(b, "Authenticate.macos-10.12.6.plist"), func(p []byte) error { _, err := DecodeCheckin(p); return err }, new(CheckinMessage)},
		{"TokenUpdate", readTestdata(b, "TokenUpdate.macos-10.12.6.plist"), func(p []byte) error { _, err := DecodeCheckin(p); return err }, new(CheckinMessage)},
		{"DeviceInformationReport", readTestdata(b, "DeviceInformation.Acknowledged.minimal.macos.plist"), func(p []byte) error { _, err := DecodeReport(p); return err }, new(Report)},
		{"InstallProfileCommand", install.Raw, func(p []byte) error { _, err := DecodeCommand(p); return err }, new(commandEnvelope)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.decode(c.body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/library", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := plist.Unmarshal(c.body, c.lib); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
