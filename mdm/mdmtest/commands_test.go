package mdmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/plist"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeMap(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := plist.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// shape describes a plist value by its types only: dicts by their keys,
// arrays by their first element.
func shape(v any, ignore map[string]bool) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if !ignore[k] {
				out[k] = shape(e, ignore)
			}
		}
		return out
	case []any:
		if len(x) == 0 {
			return "array"
		}
		return []any{shape(x[0], ignore)}
	case string:
		return "string"
	case bool:
		return "bool"
	case int64, uint64:
		return "integer"
	case float32, float64:
		return "real"
	case []byte:
		return "data"
	case time.Time:
		return "date"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func handle(t testing.TB, d *Device, raw []byte) (CommandResult, map[string]any) {
	t.Helper()
	res, err := d.HandleCommand(context.Background(), raw)
	if err != nil {
		t.Fatalf("HandleCommand: %v", err)
	}
	return res, decodeMap(t, res.Report)
}

// TestAnswersMatchAppleExamples feeds Apple's example commands to a simulated
// Mac and checks that each report has the shape of Apple's example response.
func TestAnswersMatchAppleExamples(t *testing.T) {
	tests := []struct {
		name     string
		command  string
		response string
		setup    func(d *Device, c *fakeClock)
		ignore   []string // keys Apple's (iOS) example has that macOS does not send
		check    func(t *testing.T, report map[string]any)
	}{
		{
			name: "DeviceInformation", command: "commands/DeviceInformation.command.plist",
			response: "connect/DeviceInformation.Acknowledged.minimal.macos.plist",
			// The minimal macOS capture only answered HostName and UDID.
			ignore: []string{"HostName"},
			check: func(t *testing.T, report map[string]any) {
				qr := report["QueryResponses"].(map[string]any)
				for _, k := range []string{"UDID", "DeviceName", "OSVersion", "BuildVersion", "ModelName", "Model", "ProductName",
					"SerialNumber", "DeviceCapacity", "AvailableDeviceCapacity", "IsSupervised", "OSUpdateSettings", "HostName", "LocalHostName", "AwaitingConfiguration"} {
					if _, ok := qr[k]; !ok {
						t.Errorf("QueryResponses lacks %s", k)
					}
				}
				for _, k := range []string{"IMEI", "BatteryLevel", "ICCID", "PhoneNumber", "Languages", "IsActivationLockEnabled", "CatalogURL"} {
					if _, ok := qr[k]; ok {
						t.Errorf("QueryResponses has %s, which macOS does not answer", k)
					}
				}
			},
		},
		{
			name: "AvailableOSUpdates", command: "commands/AvailableOSUpdates.command.plist",
			response: "commands/AvailableOSUpdates.response.Acknowledged.plist",
			setup: func(d *Device, _ *fakeClock) {
				d.SetCatalog(MinorUpdate("15.4", "24E248"))
				d.mu.Lock()
				d.scanLocked(d.clock.Now(), false)
				d.mu.Unlock()
			},
			ignore: []string{"InstallSize", "ProductName", "RequestType",
				"IsConfigDataUpdate", "IsFirmwareUpdate", "IsMajorOSUpdate", "IsSecurityResponse", "RequiresBootstrapToken"},
			check: func(t *testing.T, report map[string]any) {
				u := report["AvailableOSUpdates"].([]any)[0].(map[string]any)
				if u["ProductKey"] != "MSU_UPDATE_24E248_patch_15.4_minor" || u["Version"] != "15.4" || u["Build"] != "24E248" {
					t.Errorf("update = %v", u)
				}
			},
		},
		{
			name: "ScheduleOSUpdate", command: "commands/ScheduleOSUpdate.command.plist",
			response: "commands/ScheduleOSUpdate.response.Acknowledged.plist",
			setup: func(d *Device, _ *fakeClock) {
				u := MinorUpdate("13.0", "22A380")
				u.ProductKey = "iOSUpdate17A576"
				d.mu.Lock()
				d.os = osState{version: "12.6", build: "21G115", suppBuild: "21G115"}
				d.mu.Unlock()
				d.SetCatalog(u)
			},
			ignore: []string{"RequestType"},
			check: func(t *testing.T, report map[string]any) {
				r := report["UpdateResults"].([]any)[0].(map[string]any)
				want := map[string]any{"ProductKey": "iOSUpdate17A576", "InstallAction": "DownloadOnly", "Status": "Downloading"}
				if !reflect.DeepEqual(r, want) {
					t.Errorf("UpdateResults[0] = %v, want %v", r, want)
				}
			},
		},
		{
			name: "OSUpdateStatus", command: "commands/OSUpdateStatus.command.plist",
			response: "commands/OSUpdateStatus.response.Acknowledged.plist",
			setup: func(d *Device, c *fakeClock) {
				d.SetCatalog(MinorUpdate("15.4", "24E248"))
				handle(t, d, commandPlist(t, "s1", "ScheduleOSUpdate", map[string]any{
					"Updates": []any{map[string]any{"ProductVersion": "15.4", "InstallAction": "DownloadOnly"}}}))
				c.Advance(DefaultTimings().Download / 2)
			},
			ignore: []string{"RequestType"},
			check: func(t *testing.T, report map[string]any) {
				s := report["OSUpdateStatus"].([]any)[0].(map[string]any)
				if s["DownloadPercentComplete"] != 0.5 || s["IsDownloaded"] != false || s["Status"] != "Downloading" {
					t.Errorf("OSUpdateStatus[0] = %v", s)
				}
			},
		},
		{
			name: "ScheduleOSUpdateScan", command: "commands/ScheduleOSUpdateScan.command.plist",
			response: "commands/ScheduleOSUpdateScan.response.Acknowledged.macos.plist",
			ignore:   []string{"RequestType"},
			check: func(t *testing.T, report map[string]any) {
				if report["ScanInitiated"] != true {
					t.Errorf("ScanInitiated = %v", report["ScanInitiated"])
				}
			},
		},
		{
			name: "DeclarativeManagement", command: "", // Apple's example is doubly nested; see TestDeclarativeManagementExample
			response: "commands/DeclarativeManagement.response.Acknowledged.plist",
			ignore:   []string{"RequestType", "EnrollmentID", "UDID"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			d := newTestDevice(t, WithClock(clock), WithOS("15.3.1", "24D70"))
			if tt.setup != nil {
				tt.setup(d, clock)
			}
			raw := commandPlist(t, "0001_DeclarativeManagement", "DeclarativeManagement", nil)
			if tt.command != "" {
				raw = readFixture(t, tt.command)
			}
			res, report := handle(t, d, raw)
			if res.Status != StatusAcknowledged {
				t.Fatalf("status %s, report %s", res.Status, res.Report)
			}
			apple := decodeMap(t, readFixture(t, tt.response))
			ign := map[string]bool{}
			for _, k := range tt.ignore {
				ign[k] = true
			}
			got, want := shape(report, ign), shape(apple, ign)
			if tt.name == "DeviceInformation" {
				// Compare the envelope; the query list is checked below.
				got.(map[string]any)["QueryResponses"] = want.(map[string]any)["QueryResponses"]
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("report shape\n got %v\nwant %v", got, want)
			}
			if cmd, _ := ParseCommand(raw); report["CommandUUID"] != cmd.CommandUUID {
				t.Errorf("CommandUUID = %v, want %v", report["CommandUUID"], cmd.CommandUUID)
			}
			if report["UDID"] != d.UDID {
				t.Errorf("UDID = %v, want %v", report["UDID"], d.UDID)
			}
			if tt.check != nil {
				tt.check(t, report)
			}
		})
	}
}

func TestDeclarativeManagementExample(t *testing.T) {
	d := newTestDevice(t)
	// Apple's published example nests the envelope in a second Command dict;
	// there is no top-level CommandUUID to answer to.
	if _, err := d.HandleCommand(context.Background(), readFixture(t, "commands/DeclarativeManagement.command.AS-PUBLISHED.plist")); err == nil {
		t.Error("doubly nested envelope accepted")
	}
	var called *Command
	d = newTestDevice(t, WithHandler("DeclarativeManagement", func(ctx context.Context, d *Device, cmd *Command) Result {
		called = cmd
		return d.Builtin(ctx, cmd)
	}))
	res, _ := handle(t, d, commandPlist(t, "dm-1", "DeclarativeManagement", map[string]any{"Data": []byte(`{"SyncTokens":{}}`)}))
	if res.Status != StatusAcknowledged || called == nil || string(called.Payload["Data"].([]byte)) != `{"SyncTokens":{}}` {
		t.Errorf("status %s, hook saw %+v", res.Status, called)
	}
}

func TestScheduleOSUpdateScanForce(t *testing.T) {
	tests := []struct {
		name       string
		fields     map[string]any
		wantForced bool
	}{
		{name: "Apple example key ForceUpdateScan false", fields: map[string]any{"ForceUpdateScan": false}},
		{name: "ForceUpdateScan true", fields: map[string]any{"ForceUpdateScan": true}, wantForced: true},
		{name: "schema key Force true", fields: map[string]any{"Force": true}, wantForced: true},
		{name: "no key", fields: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			d := newTestDevice(t, WithClock(clock))
			_, report := handle(t, d, commandPlist(t, "scan", "ScheduleOSUpdateScan", tt.fields))
			scan := d.LastScan()
			if report["ScanInitiated"] != true || !scan.Done || scan.Forced != tt.wantForced || !scan.At.Equal(clock.Now()) {
				t.Errorf("report %v, scan %+v, want forced %v", report, scan, tt.wantForced)
			}
		})
	}
	// Apple's example, as published.
	d := newTestDevice(t)
	_, report := handle(t, d, readFixture(t, "commands/ScheduleOSUpdateScan.command.plist"))
	if report["ScanInitiated"] != true || d.LastScan().Forced {
		t.Errorf("Apple example: report %v, scan %+v", report, d.LastScan())
	}
}

func statusOf(t *testing.T, d *Device) []any {
	t.Helper()
	_, r := handle(t, d, commandPlist(t, "st", "OSUpdateStatus", nil))
	return r["OSUpdateStatus"].([]any)
}

func infoOf(t *testing.T, d *Device, queries ...string) map[string]any {
	t.Helper()
	_, r := handle(t, d, commandPlist(t, "di", "DeviceInformation", map[string]any{"Queries": queries}))
	return r["QueryResponses"].(map[string]any)
}

func availableOf(t *testing.T, d *Device) []string {
	t.Helper()
	_, r := handle(t, d, commandPlist(t, "av", "AvailableOSUpdates", nil))
	var keys []string
	for _, u := range r["AvailableOSUpdates"].([]any) {
		keys = append(keys, u.(map[string]any)["ProductKey"].(string))
	}
	return keys
}

func schedule(t *testing.T, d *Device, productKey, action string) map[string]any {
	t.Helper()
	_, r := handle(t, d, commandPlist(t, "so", "ScheduleOSUpdate", map[string]any{
		"Updates": []any{map[string]any{"ProductKey": productKey, "InstallAction": action}}}))
	return r["UpdateResults"].([]any)[0].(map[string]any)
}

// TestUpdateTimeline walks a Mac from 15.3.1 to 15.4 with a fake clock:
// scan, list, download, install, restart, new version.
func TestUpdateTimeline(t *testing.T) {
	clock := newFakeClock()
	minor, major := MinorUpdate("15.4", "24E248"), MajorUpdate("26.0", "25A354")
	d := newTestDevice(t, WithClock(clock), WithOS("15.3.1", "24D70"), WithCapacity(494.38, 200),
		WithCatalog(minor, major), WithTimings(Timings{Download: 10 * time.Minute, Install: 6 * time.Minute, Restart: 2 * time.Minute}))

	if got := availableOf(t, d); len(got) != 0 {
		t.Fatalf("AvailableOSUpdates before any scan = %v, want none", got)
	}
	handle(t, d, commandPlist(t, "scan", "ScheduleOSUpdateScan", map[string]any{"Force": true}))
	if got, want := availableOf(t, d), []string{minor.ProductKey, major.ProductKey}; !slices.Equal(got, want) {
		t.Fatalf("AvailableOSUpdates = %v, want %v", got, want)
	}
	if got := statusOf(t, d); len(got) != 0 {
		t.Fatalf("OSUpdateStatus with nothing scheduled = %v, want empty", got)
	}

	if r := schedule(t, d, minor.ProductKey, ActionDownloadOnly); r["Status"] != UpdateDownloading || r["InstallAction"] != ActionDownloadOnly {
		t.Fatalf("DownloadOnly = %v", r)
	}
	steps := []struct {
		advance time.Duration
		want    map[string]any
	}{
		{0, map[string]any{"Status": "Downloading", "IsDownloaded": false, "DownloadPercentComplete": 0.0}},
		{2*time.Minute + 30*time.Second, map[string]any{"Status": "Downloading", "IsDownloaded": false, "DownloadPercentComplete": 0.25}},
		{7*time.Minute + 30*time.Second, map[string]any{"Status": "Idle", "IsDownloaded": true, "DownloadPercentComplete": 1.0}},
		{time.Hour, map[string]any{"Status": "Idle", "IsDownloaded": true, "DownloadPercentComplete": 1.0}},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		got := statusOf(t, d)
		if len(got) != 1 {
			t.Fatalf("step %d: OSUpdateStatus = %v", i, got)
		}
		st.want["ProductKey"] = minor.ProductKey
		if !reflect.DeepEqual(got[0], st.want) {
			t.Errorf("step %d: OSUpdateStatus[0] = %v, want %v", i, got[0], st.want)
		}
	}
	if d.OSVersion() != "15.3.1" {
		t.Fatalf("a download changed the OS to %s", d.OSVersion())
	}

	if r := schedule(t, d, minor.ProductKey, ActionInstallForceRestart); r["Status"] != UpdateInstalling {
		t.Fatalf("InstallForceRestart after download = %v", r)
	}
	clock.Advance(5 * time.Minute)
	if got := statusOf(t, d); len(got) != 1 || got[0].(map[string]any)["Status"] != "Installing" {
		t.Fatalf("while installing: %v", got)
	}
	if !d.Online() || d.OSVersion() != "15.3.1" {
		t.Fatalf("before the restart: online %v, OS %s", d.Online(), d.OSVersion())
	}
	clock.Advance(time.Minute) // install done: the Mac restarts
	if d.Online() {
		t.Error("Mac online during its restart")
	}
	if d.OSVersion() != "15.4" || d.BuildVersion() != "24E248" || d.SupplementalBuildVersion() != "24E248" {
		t.Errorf("after install: %s (%s, supplemental %s)", d.OSVersion(), d.BuildVersion(), d.SupplementalBuildVersion())
	}
	clock.Advance(2 * time.Minute)
	if !d.Online() {
		t.Error("Mac still offline after the restart")
	}
	qr := infoOf(t, d, "OSVersion", "BuildVersion")
	if qr["OSVersion"] != "15.4" || qr["BuildVersion"] != "24E248" {
		t.Errorf("DeviceInformation after update = %v", qr)
	}
	if got := statusOf(t, d); len(got) != 0 {
		t.Errorf("OSUpdateStatus after install = %v, want empty", got)
	}
	if got := availableOf(t, d); len(got) != 0 {
		t.Errorf("AvailableOSUpdates right after restart = %v, want none until a scan", got)
	}
	handle(t, d, commandPlist(t, "scan2", "ScheduleOSUpdateScan", nil))
	if got, want := availableOf(t, d), []string{major.ProductKey}; !slices.Equal(got, want) {
		t.Errorf("AvailableOSUpdates after rescan = %v, want %v", got, want)
	}
}

func TestInstallASAPDownloadsFirst(t *testing.T) {
	clock := newFakeClock()
	u := MinorUpdate("15.4", "24E248")
	d := newTestDevice(t, WithClock(clock), WithOS("15.3.1", "24D70"), WithCapacity(494.38, 200), WithCatalog(u))
	tm := DefaultTimings()
	if r := schedule(t, d, u.ProductKey, ActionInstallASAP); r["Status"] != UpdateDownloading || r["InstallAction"] != ActionInstallASAP {
		t.Fatalf("InstallASAP = %v", r)
	}
	clock.Advance(tm.Download)
	if got := d.Updates(); len(got) != 1 || got[0].Status != UpdateInstalling {
		t.Fatalf("after download: %+v, want Installing", got)
	}
	clock.Advance(tm.Install)
	if d.OSVersion() != "15.4" || d.Online() {
		t.Fatalf("after install: OS %s, online %v", d.OSVersion(), d.Online())
	}
}

func TestScheduleOSUpdateResults(t *testing.T) {
	u := MinorUpdate("15.4", "24E248")
	rsr := Update{ProductKey: "MSU_UPDATE_24D70a_patch_15.3.1_rsr", Version: "15.3.1", Build: "24D70a",
		SupplementalBuildVersion: "24D70a", SupplementalOSVersionExtra: "(a)", RestartRequired: true, DownloadSize: 1e8}
	tests := []struct {
		name    string
		opts    []Option
		prepare func(d *Device)
		item    map[string]any
		want    map[string]any
	}{
		{name: "by version", item: map[string]any{"ProductVersion": "15.4", "InstallAction": "DownloadOnly"},
			want: map[string]any{"ProductKey": u.ProductKey, "InstallAction": "DownloadOnly", "Status": "Downloading"}},
		{name: "major version prefix", item: map[string]any{"ProductVersion": "15", "InstallAction": "Default"},
			want: map[string]any{"ProductKey": u.ProductKey, "InstallAction": "DownloadOnly", "Status": "Downloading"}},
		{name: "not enough space", opts: []Option{WithCapacity(245.11, 3)},
			item: map[string]any{"ProductKey": u.ProductKey, "InstallAction": "InstallASAP"},
			want: map[string]any{"ProductKey": u.ProductKey, "InstallAction": "InstallASAP", "Status": "DownloadInsufficientSpace"}},
		{name: "forced failure", prepare: func(d *Device) { d.SetUpdateFailure("InstallFailed") },
			item: map[string]any{"ProductKey": u.ProductKey, "InstallAction": "InstallForceRestart"},
			want: map[string]any{"ProductKey": u.ProductKey, "InstallAction": "InstallForceRestart", "Status": "InstallFailed"}},
		{name: "rsr", item: map[string]any{"ProductKey": rsr.ProductKey, "InstallAction": "DownloadOnly"},
			want: map[string]any{"ProductKey": rsr.ProductKey, "InstallAction": "DownloadOnly", "Status": "Downloading"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]Option{WithOS("15.3.1", "24D70"), WithCapacity(494.38, 200), WithCatalog(u, rsr)}, tt.opts...)
			d := newTestDevice(t, opts...)
			if tt.prepare != nil {
				tt.prepare(d)
			}
			_, r := handle(t, d, commandPlist(t, "so", "ScheduleOSUpdate", map[string]any{"Updates": []any{tt.item}}))
			if got := r["UpdateResults"].([]any)[0]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("UpdateResults[0] = %v, want %v", got, tt.want)
			}
		})
	}

	// An unknown key is reported per item with InstallAction Error.
	d := newTestDevice(t, WithCatalog(u))
	_, r := handle(t, d, commandPlist(t, "so", "ScheduleOSUpdate", map[string]any{
		"Updates": []any{map[string]any{"ProductKey": "nope", "InstallAction": "InstallASAP"}}}))
	item := r["UpdateResults"].([]any)[0].(map[string]any)
	if item["InstallAction"] != "Error" || item["ErrorChain"] == nil {
		t.Errorf("unknown product key result = %v", item)
	}
}

func TestRSRInstall(t *testing.T) {
	clock := newFakeClock()
	rsr := Update{ProductKey: "MSU_UPDATE_22F770820d_patch_13.4.1_rsr", Version: "13.4.1", Build: "22F770820d",
		SupplementalBuildVersion: "22F770820d", SupplementalOSVersionExtra: "(a)", RestartRequired: true, DownloadSize: 1e8}
	d := newTestDevice(t, WithClock(clock), WithOS("13.4.1", "22F82"), WithCatalog(rsr), WithCapacity(245.11, 100))
	schedule(t, d, rsr.ProductKey, ActionInstallASAP)
	tm := DefaultTimings()
	clock.Advance(tm.Download + tm.Install + tm.Restart)
	qr := infoOf(t, d, "OSVersion", "BuildVersion", "SupplementalBuildVersion", "SupplementalOSVersionExtra")
	want := map[string]any{"OSVersion": "13.4.1", "BuildVersion": "22F82", "SupplementalBuildVersion": "22F770820d", "SupplementalOSVersionExtra": "(a)"}
	if !reflect.DeepEqual(qr, want) {
		t.Errorf("after RSR: %v, want %v", qr, want)
	}
}

func TestCommandAnswers(t *testing.T) {
	tests := []struct {
		name        string
		opts        []Option
		requestType string
		fields      map[string]any
		wantStatus  string
		wantCode    uint64
		check       func(t *testing.T, r map[string]any)
	}{
		{name: "unknown command", requestType: "EraseDevice", wantStatus: StatusError, wantCode: 12021,
			check: func(t *testing.T, r map[string]any) {
				e := r["ErrorChain"].([]any)[0].(map[string]any)
				if e["ErrorDomain"] != "MCMDMErrorDomain" || e["USEnglishDescription"] != "Unknown command" || e["LocalizedDescription"] != "Unknown command" {
					t.Errorf("ErrorChain = %v", e)
				}
			}},
		{name: "no RequestType", requestType: "", wantStatus: StatusCommandFormatError},
		{name: "DeviceInformation without Queries", requestType: "DeviceInformation", wantStatus: StatusCommandFormatError},
		{name: "no OS version", opts: []Option{WithoutOSVersion()}, requestType: "DeviceInformation",
			fields: map[string]any{"Queries": []string{"OSVersion", "BuildVersion", "UDID", "Bogus"}}, wantStatus: StatusAcknowledged,
			check: func(t *testing.T, r map[string]any) {
				qr := r["QueryResponses"].(map[string]any)
				if len(qr) != 1 || qr["UDID"] == nil {
					t.Errorf("QueryResponses = %v, want only UDID", qr)
				}
			}},
		{name: "supervised-only command on unsupervised Mac", opts: []Option{WithSupervised(false)}, requestType: "ScheduleOSUpdateScan", wantStatus: StatusError},
		{name: "AvailableOSUpdates on unsupervised Mac", opts: []Option{WithSupervised(false)}, requestType: "AvailableOSUpdates", wantStatus: StatusAcknowledged},
		{name: "bad InstallAction", requestType: "ScheduleOSUpdate",
			fields:     map[string]any{"Updates": []any{map[string]any{"ProductVersion": "15.4", "InstallAction": "Now"}}},
			wantStatus: StatusCommandFormatError},
		{name: "InstallProfile", requestType: "InstallProfile", wantStatus: StatusAcknowledged,
			fields: map[string]any{"Payload": readFixture(t, "enrollment/nanomdm-enroll.mobileconfig")}},
		{name: "InstallProfile garbage", requestType: "InstallProfile", wantStatus: StatusError, wantCode: 1000,
			fields: map[string]any{"Payload": []byte("garbage")}},
		{name: "RemoveProfile", requestType: "RemoveProfile", wantStatus: StatusAcknowledged,
			fields: map[string]any{"Identifier": "com.example.x"}},
		{name: "SecurityInfo", requestType: "SecurityInfo", wantStatus: StatusAcknowledged,
			opts: []Option{WithHardware(KnownHardware[0])},
			check: func(t *testing.T, r map[string]any) {
				si := r["SecurityInfo"].(map[string]any)
				if si["BootstrapTokenAllowedForAuthentication"] != "allowed" {
					t.Errorf("SecurityInfo = %v", si)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDevice(t, tt.opts...)
			var raw []byte
			if tt.requestType == "" {
				raw, _ = plist.Marshal(map[string]any{"CommandUUID": "x", "Command": map[string]any{"Foo": "bar"}})
			} else {
				raw = commandPlist(t, "x", tt.requestType, tt.fields)
			}
			res, r := handle(t, d, raw)
			if res.Status != tt.wantStatus || r["Status"] != tt.wantStatus {
				t.Fatalf("status %s, want %s; report %s", res.Status, tt.wantStatus, res.Report)
			}
			if tt.wantCode != 0 {
				if code := r["ErrorChain"].([]any)[0].(map[string]any)["ErrorCode"]; code != tt.wantCode && code != int64(tt.wantCode) {
					t.Errorf("ErrorCode = %v, want %d", code, tt.wantCode)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestProfilesInstallRemove(t *testing.T) {
	d := newTestDevice(t)
	handle(t, d, commandPlist(t, "i", "InstallProfile", map[string]any{"Payload": readFixture(t, "enrollment/nanomdm-enroll.mobileconfig")}))
	if got := d.Profiles(); !slices.Equal(got, []string{"com.github.micromdm.nanomdm"}) {
		t.Fatalf("Profiles = %v", got)
	}
	_, r := handle(t, d, commandPlist(t, "l", "ProfileList", nil))
	if l := r["ProfileList"].([]any); len(l) != 1 {
		t.Errorf("ProfileList = %v", l)
	}
	handle(t, d, commandPlist(t, "r", "RemoveProfile", map[string]any{"Identifier": "com.github.micromdm.nanomdm"}))
	if got := d.Profiles(); len(got) != 0 {
		t.Errorf("Profiles after remove = %v", got)
	}
}

func TestOverrides(t *testing.T) {
	d := newTestDevice(t)
	d.AnswerNotNow("DeviceInformation", 2)
	d.AnswerError("", 1)
	info := commandPlist(t, "a", "DeviceInformation", map[string]any{"Queries": []string{"UDID"}})
	other := commandPlist(t, "b", "SecurityInfo", nil)
	var got []string
	for _, raw := range [][]byte{info, other, info, other, info} {
		res, _ := handle(t, d, raw)
		got = append(got, res.RequestType+":"+res.Status)
	}
	want := []string{"DeviceInformation:NotNow", "SecurityInfo:Error", "DeviceInformation:NotNow", "SecurityInfo:Acknowledged", "DeviceInformation:Acknowledged"}
	if !slices.Equal(got, want) {
		t.Errorf("answers = %v, want %v", got, want)
	}
	d.AnswerNotNow("", -1)
	for range 3 {
		if res, _ := handle(t, d, other); res.Status != StatusNotNow {
			t.Fatalf("unlimited NotNow answered %s", res.Status)
		}
	}
	d.ClearOverrides()
	if res, _ := handle(t, d, other); res.Status != StatusAcknowledged {
		t.Errorf("after ClearOverrides: %s", res.Status)
	}
}

func TestParseProfileFixture(t *testing.T) {
	p, err := ParseProfile(readFixture(t, "enrollment/nanomdm-enroll.mobileconfig"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := MDMPayload{
		UUID: "96B11019-B54C-49DC-9480-43525834DE7B", ServerURL: "https://mdm.example.org/mdm", CheckInURL: "https://mdm.example.org/mdm",
		Topic: "com.apple.mgmt.External.YOUR-PUSH-TOPIC-HERE", SignMessage: true, IdentityCertificateUUID: "CB90E976-AD44-4B69-8108-8095E6260978",
		AccessRights: 8191, CheckOutWhenRemoved: true, ServerCapabilities: []string{"com.apple.mdm.per-user-connections"},
	}
	if !reflect.DeepEqual(p.MDM, want) {
		t.Errorf("MDM = %+v\nwant %+v", p.MDM, want)
	}
	if p.SCEP == nil || p.SCEP.URL != "https://mdm.example.org/scep" || p.SCEP.Challenge != "SCEP-CHALLENGE-HERE" || p.SCEP.Keysize != 2048 || p.SCEP.KeyType != "RSA" || p.SCEP.KeyUsage != 5 {
		t.Errorf("SCEP = %+v", p.SCEP)
	}
	if p.Signed || !p.MDM.HasCapability("com.apple.mdm.per-user-connections") {
		t.Errorf("Signed %v, capabilities %v", p.Signed, p.MDM.ServerCapabilities)
	}
}

func TestParseSubject(t *testing.T) {
	tests := []struct {
		have    [][][]string
		want    string
		wantErr bool
	}{
		{have: [][][]string{{{"O", "Example"}}, {{"CN", "device"}}}, want: "CN=device,O=Example"},
		{have: [][][]string{{{"0.9.2342.19200300.100.1.1", "abc"}}}, want: "0.9.2342.19200300.100.1.1=#1303616263"},
		{have: [][][]string{{{"uid", "abc"}}}, want: "0.9.2342.19200300.100.1.1=#1303616263"},
		{have: [][][]string{{{"CN"}}}, wantErr: true},
		{have: [][][]string{{{"Bogus", "x"}}}, wantErr: true},
	}
	for _, tt := range tests {
		n, err := parseSubject(tt.have)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseSubject(%v) error %v", tt.have, err)
			continue
		}
		if err == nil {
			if got := n.String(); got != tt.want {
				t.Errorf("parseSubject(%v) = %s, want %s", tt.have, got, tt.want)
			}
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"15.10", "15.9", 1}, {"15.3", "15.3.0", 0}, {"14.7.1", "15.0", -1}, {"26.0", "15.7", 1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestKeyPoolRoundRobin(t *testing.T) {
	p := testKeys()
	seen := map[any]int{}
	for range 2 * p.Len() {
		seen[p.Key()]++
	}
	if len(seen) != p.Len() {
		t.Fatalf("pool of %d handed out %d distinct keys", p.Len(), len(seen))
	}
	for _, n := range seen {
		if n != 2 {
			t.Errorf("uneven round robin: %v", seen)
			break
		}
	}
	if _, err := NewKeyPool(0); err == nil {
		t.Error("NewKeyPool(0) succeeded")
	}
	small, err := NewKeyPool(2)
	if err != nil || small.Len() != 2 || small.Key() == small.Key() {
		t.Errorf("NewKeyPool(2) = %v, %v", small, err)
	}
}

func TestNewDefaults(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		d, err := New(WithKeyPool(testKeys()))
		if err != nil {
			t.Fatal(err)
		}
		if seen[d.UDID] || seen[d.SerialNumber] || seen[d.PushMagic] {
			t.Fatalf("duplicate identity %s / %s", d.UDID, d.SerialNumber)
		}
		seen[d.UDID], seen[d.SerialNumber], seen[d.PushMagic] = true, true, true
		if len(d.UDID) != 36 || d.UDID != upper(d.UDID) || len(d.Token) != 32 || len(d.SerialNumber) != 10 ||
			d.ProductName == "" || d.SoftwareUpdateDeviceID == "" || d.OSVersion() != DefaultOSVersion ||
			d.AvailableDeviceCapacity() <= 0 || d.AvailableDeviceCapacity() > d.DeviceCapacity {
			t.Fatalf("bad defaults: %+v", d)
		}
	}
	for _, bad := range []Option{WithOS("fifteen", "X"), WithCapacity(10, 20), WithClock(nil), WithMaxCommands(0), WithCatalog(Update{Version: "1"})} {
		if _, err := New(bad); err == nil {
			t.Error("bad option accepted")
		}
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// TestMessagesMatchFixtures compares the device's check-in and Idle bodies
// with real and documented macOS messages.
func TestMessagesMatchFixtures(t *testing.T) {
	d := newTestDevice(t)
	d.enrollment = &Enrollment{Topic: "com.apple.mgmt.External.x"}
	auth, _ := plist.Marshal(AuthenticateMessage{MessageType: "Authenticate", Topic: d.topic(), UDID: d.UDID,
		OSVersion: d.OSVersion(), BuildVersion: d.BuildVersion(), ProductName: d.ProductName, SerialNumber: d.SerialNumber,
		DeviceName: d.DeviceName, Model: d.Model, ModelName: d.ModelName})
	tok, _ := plist.Marshal(TokenUpdateMessage{MessageType: "TokenUpdate", Topic: d.topic(), UDID: d.UDID, Token: d.Token, PushMagic: d.PushMagic})
	checkout, _ := plist.Marshal(map[string]any{"MessageType": "CheckOut", "Topic": d.topic(), "UDID": d.UDID})
	idle, err := d.idleBody()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		fixture string
		have    []byte
		ignore  []string
	}{
		// Challenge is left out: it would repeat the SCEP secret.
		{"checkin/Authenticate.macos-10.12.6.plist", auth, []string{"Challenge"}},
		{"checkin/TokenUpdate.macos-10.12.6.plist", tok, nil},
		{"checkin/CheckOut.SYNTHETIC.plist", checkout, nil},
		{"connect/Idle.device.SYNTHETIC.plist", idle, nil},
	}
	for _, tt := range tests {
		ign := map[string]bool{}
		for _, k := range tt.ignore {
			ign[k] = true
		}
		got, want := shape(decodeMap(t, tt.have), ign), shape(decodeMap(t, readFixture(t, tt.fixture)), ign)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.fixture, got, want)
		}
	}
}
