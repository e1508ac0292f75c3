package ddm

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/sundial-mdm/sundial/mdm"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not an object: %s", raw)
	}
	return slices.Sorted(maps.Keys(m))
}

func TestAppleDeclarationFixtures(t *testing.T) {
	loc, _ := time.LoadLocation("America/New_York")
	ours, err := Enforcement{TargetOSVersion: "26.0", TargetBuildVersion: "23A309", Deadline: time.Date(2025, 9, 21, 0, 30, 0, 0, loc),
		Location: loc}.Payload()
	if err != nil {
		t.Fatal(err)
	}
	set, err := BuildSet(&ours)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, wantType, wantKind, ourID string
	}{
		{"declarations/softwareupdate.enforcement.specific.json", TypeEnforcementSpecific, KindConfiguration, IDEnforcement},
		{"declarations/management.status-subscriptions.json", TypeStatusSubscriptions, KindConfiguration, IDStatusSubscriptions},
		{"declarations/activation.simple.json", TypeActivationSimple, KindActivation, IDEnforcementActivate},
		{"declarations/softwareupdate.settings.json", TypeSoftwareUpdateSettings, KindConfiguration, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			apple, err := DecodeDeclaration(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if apple.Type != tc.wantType || apple.Kind() != tc.wantKind {
				t.Errorf("type %q kind %q, want %q %q", apple.Type, apple.Kind(), tc.wantType, tc.wantKind)
			}
			if tc.ourID == "" {
				return
			}
			// Ours has Apple's shape: the same top-level keys and payload keys.
			d, ok := set.Lookup(tc.wantKind, tc.ourID)
			if !ok {
				t.Fatalf("our set has no %s", tc.ourID)
			}
			b, _ := json.Marshal(d)
			if got, want := keysOf(t, b), keysOf(t, readTestdata(t, tc.file)); !slices.Equal(got, want) {
				t.Errorf("declaration keys %v, Apple's %v", got, want)
			}
			if got, want := keysOf(t, d.Payload), keysOf(t, apple.Payload); !slices.Equal(got, want) {
				t.Errorf("payload keys %v, Apple's %v", got, want)
			}
		})
	}
	// Apple's example is 2025-09-21T01:00:00 local; ours for D = 00:30 New York is the same.
	var apple EnforcementPayload
	d, _ := DecodeDeclaration(readTestdata(t, "declarations/softwareupdate.enforcement.specific.json"))
	if err := json.Unmarshal(d.Payload, &apple); err != nil {
		t.Fatal(err)
	}
	if apple != ours {
		t.Errorf("our payload %+v, Apple's %+v", ours, apple)
	}
}

func TestAppleCommandData(t *testing.T) {
	// Apple's DeclarativeManagement example carries SyncTokens in Data.
	var v struct {
		Command struct{ Command struct{ Data []byte } }
	}
	if err := plist.Unmarshal(readTestdata(t, "DeclarativeManagement.command.AS-PUBLISHED.plist"), &v); err != nil {
		t.Fatal(err)
	}
	apple, err := DecodeSyncTokens(v.Command.Command.Data)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := syncCommand(SyncTokens{DeclarationsToken: "abc", Timestamp: "2026-01-02T03:04:05Z"})
	if err != nil {
		t.Fatal(err)
	}
	var ours struct{ Command struct{ Data []byte } }
	if err := plist.Unmarshal(cmd.Raw, &ours); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSyncTokens(ours.Command.Data)
	if err != nil || got.DeclarationsToken != "abc" || got.Timestamp != "2026-01-02T03:04:05Z" {
		t.Errorf("our Data = %s → %+v, %v", ours.Command.Data, got, err)
	}
	if got, want := keysOf(t, ours.Command.Data), keysOf(t, v.Command.Command.Data); !slices.Equal(got, want) || apple.Timestamp == "" {
		t.Errorf("Data keys %v, Apple's %v", got, want)
	}
}

func wrapItems(t *testing.T, file string) []byte {
	return []byte(`{"StatusItems":` + string(readTestdata(t, file)) + `,"Errors":[]}`)
}

func TestAppleStatusItemFixtures(t *testing.T) {
	tests := []struct {
		file string
		want Current
	}{
		{"status/softwareupdate.install-state.json", Current{InstallState: "none"}},
		{"status/softwareupdate.pending-version.json", Current{PendingVersion: PendingVersion{OSVersion: "27.1", BuildVersion: "24B32"}}},
		{"status/softwareupdate.failure-reason.json", Current{FailureReason: FailureReason{Count: 0}}},
		{"status/softwareupdate.install-reason.json", Current{InstallReason: InstallReason{Reason: []string{"declaration"}, DeclarationID: "com.example.softwareupdate-config"}}},
		{"status/softwareupdate.device-id.json", Current{DeviceID: "iPhone14,3"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			rep, err := DecodeStatusReport(wrapItems(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := currentFrom(rep.Items)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("current = %+v, %v; want %+v", got, err, tc.want)
			}
			if len(rep.Items) != 1 {
				t.Errorf("items = %v, want one", slices.Sorted(maps.Keys(rep.Items)))
			}
		})
	}
}

func TestRealStatusReport(t *testing.T) {
	rep, err := DecodeStatusReport(readTestdata(t, "status-report.ios-16.0-beta.real.json"))
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := currentFrom(rep.Items)
	if cur.OSVersion != "16.0" || cur.BuildVersion != "20A5303i" {
		t.Errorf("current = %+v", cur)
	}
	if rep.FullReport {
		t.Error("FullReport set for a report without the key")
	}
	for _, name := range []string{"device.model.family", "management.push-token", ItemClientCapabilities, ItemDeclarations, "device.operating-system.marketing-name"} {
		if _, ok := rep.Items[name]; !ok {
			t.Errorf("item %s missing from %v", name, slices.Sorted(maps.Keys(rep.Items)))
		}
	}
	decls, err := decodeDeclarationStatuses(rep.Items[ItemDeclarations])
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		kind, id string
		applied  bool
		failed   bool
		reason   string
	}
	var got []row
	for _, d := range decls {
		r := row{d.Kind, d.Identifier, d.Applied(), d.Failed(), ""}
		if len(d.Reasons) > 0 {
			r.reason = d.Reasons[0].Code + ": " + string(d.Reasons[0].Details)
		}
		got = append(got, r)
	}
	want := []row{
		{KindActivation, "49F6F16A-70EB-4A89-B092-465FAEC5E550", true, false, ""},
		{KindConfiguration, "0FCD2F56-D5BC-48EA-B98D-E0CCC0C6F9E0", false, true, `Error.ConfigurationCannotBeApplied: {
                  "Error" : "An internal error has occurred."
                }`},
		{KindConfiguration, "4D6F8451-C089-4E65-A615-7C6EFF154F72", false, true, `Error.ConfigurationCannotBeApplied: {
                  "Error" : "Profile Installation Failed"
                }`},
		{KindConfiguration, "85B5130A-4D0D-462B-AA0D-0C3B6630E5AA", true, false, ""},
		{KindManagement, "AF0E633E-7ADB-4B2A-A48C-1B20AA271D08", false, true, ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("declarations\n got %+v\nwant %+v", got, want)
	}
	// Nest is the inverse of flattening.
	b, _ := json.Marshal(map[string]any{"StatusItems": Nest(rep.Items)})
	again, err := DecodeStatusReport(b)
	if err != nil || !reflect.DeepEqual(slices.Sorted(maps.Keys(again.Items)), slices.Sorted(maps.Keys(rep.Items))) {
		t.Errorf("re-nested report: %v", err)
	}
}

func TestDecodeStatusReport(t *testing.T) {
	tests := []struct {
		name    string
		have    string
		wantErr string // "" for success
		want    Current
		full    bool
	}{
		{"waiting is accepted", `{"StatusItems":{"softwareupdate":{"install-state":"waiting"}},"FullReport":true}`, "", Current{InstallState: "waiting"}, true},
		{"an unknown state is kept", `{"StatusItems":{"softwareupdate":{"install-state":"scheduled"}}}`, "", Current{InstallState: "scheduled"}, false},
		{"supplemental build nests", `{"StatusItems":{"device":{"operating-system":{"supplemental":{"build-version":"24E248a"}}}}}`, "", Current{SupplementalBuildVersion: "24E248a"}, false},
		{"pending with a local date time", `{"StatusItems":{"softwareupdate":{"pending-version":{"os-version":"15.4","build-version":"24E248","target-local-date-time":"2023-06-01T09:30:00"}}}}`, "",
			Current{PendingVersion: PendingVersion{"15.4", "24E248", "2023-06-01T09:30:00"}}, false},
		{"empty items", `{"StatusItems":{}}`, "", Current{}, false},
		{"empty body", ``, "empty body", Current{}, false},
		{"not JSON", `<plist/>`, "json", Current{}, false},
		{"no StatusItems", `{"Errors":[]}`, "StatusItems must be a JSON object", Current{}, false},
		{"StatusItems an array", `{"StatusItems":[]}`, "StatusItems must be a JSON object", Current{}, false},
		{"trailing data", `{"StatusItems":{}} {}`, "trailing data", Current{}, false},
		{"install-state a number", `{"StatusItems":{"softwareupdate":{"install-state":3}}}`, "want a string", Current{}, false},
		{"pending-version a string", `{"StatusItems":{"softwareupdate":{"pending-version":"15.4"}}}`, "want an object", Current{}, false},
		{"negative failure count", `{"StatusItems":{"softwareupdate":{"failure-reason":{"count":-1}}}}`, "negative count", Current{}, false},
		{"declarations without identifier", `{"StatusItems":{"management":{"declarations":{"configurations":[{"active":true,"valid":"valid"}]}}}}`, "identifier", Current{}, false},
		{"declarations without active", `{"StatusItems":{"management":{"declarations":{"configurations":[{"identifier":"x","valid":"valid"}]}}}}`, "without active", Current{}, false},
		{"reason without code", `{"StatusItems":{"management":{"declarations":{"configurations":[{"identifier":"x","active":false,"valid":"invalid","reasons":[{"description":"d"}]}]}}}}`, "reason without code", Current{}, false},
		{"dotted key", `{"StatusItems":{"softwareupdate.install-state":"none"}}`, "contains a dot", Current{}, false},
		{"Errors entry without item", `{"StatusItems":{},"Errors":[{"Reasons":[]}]}`, "malformed Errors", Current{}, false},
		{"FullReport a string", `{"StatusItems":{},"FullReport":"yes"}`, "json", Current{}, false},
		{"too deep", `{"StatusItems":` + strings.Repeat(`{"a":`, 20) + `1` + strings.Repeat(`}`, 20) + `}`, "nested too deeply", Current{}, false},
		{"over the cap", `{"StatusItems":{"x":"` + strings.Repeat("a", MaxStatusReportSize) + `"}}`, "over the", Current{}, false},
		{"not UTF-8", "{\"StatusItems\":{\"x\":\"\xff\"}}", "UTF-8", Current{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := DecodeStatusReport([]byte(tc.have))
			if tc.wantErr != "" {
				var pe *mdm.ParseError
				if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want a ParseError containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := currentFrom(rep.Items)
			if !reflect.DeepEqual(got, tc.want) || rep.FullReport != tc.full {
				t.Errorf("current = %+v full %v; want %+v full %v", got, rep.FullReport, tc.want, tc.full)
			}
		})
	}
	if !KnownInstallState("waiting") || KnownInstallState("scheduled") {
		t.Error("KnownInstallState")
	}
}

func TestParseDeclarationPath(t *testing.T) {
	tests := []struct {
		have, kind, id string
		ok             bool
	}{
		{"declaration/configuration/sundial.softwareupdate.enforcement", KindConfiguration, IDEnforcement, true},
		{"declaration/activation/A-B", KindActivation, "A-B", true},
		{"declaration/management/x", KindManagement, "x", true},
		{"declaration/asset/x", KindAsset, "x", true},
		{"declaration/configurations/x", "", "", false},
		{"declaration/configuration/", "", "", false},
		{"declaration/configuration", "", "", false},
		{"declaration/configuration/a/b", "", "", false},
		{"declaration/configuration/" + strings.Repeat("x", 65), "", "", false},
		{"tokens", "", "", false},
	}
	for _, tc := range tests {
		kind, id, err := ParseDeclarationPath(tc.have)
		if (err == nil) != tc.ok || kind != tc.kind || id != tc.id {
			t.Errorf("ParseDeclarationPath(%q) = %q, %q, %v", tc.have, kind, id, err)
		}
	}
}

func TestDeclarationItemsHasAllArrays(t *testing.T) {
	for _, set := range []Set{EmptySet(), mustSet(t, nil)} {
		b, err := json.Marshal(set.Items())
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Declarations      map[string]json.RawMessage
			DeclarationsToken string
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"Activations", "Configurations", "Assets", "Management"} {
			if raw := v.Declarations[k]; len(raw) == 0 || raw[0] != '[' {
				t.Errorf("%s = %s in %s", k, raw, b)
			}
		}
		if v.DeclarationsToken != set.Token || set.Token == "" {
			t.Errorf("token %q, set %q", v.DeclarationsToken, set.Token)
		}
	}
	if EmptySet().Token == mustSet(t, nil).Token {
		t.Error("the empty set and the base set share a token")
	}
}

func mustSet(t testing.TB, p *EnforcementPayload) Set {
	t.Helper()
	s, err := BuildSet(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServerTokensChangeExactlyWithContent(t *testing.T) {
	base := EnforcementPayload{TargetOSVersion: "15.4", TargetLocalDateTime: "2026-03-20T14:30:00", DetailsURL: "https://it.example.com/u"}
	tests := []struct {
		name   string
		change func(p *EnforcementPayload)
		same   bool
	}{
		{"identical", func(p *EnforcementPayload) {}, true},
		{"target version", func(p *EnforcementPayload) { p.TargetOSVersion = "15.4.1" }, false},
		{"target build added", func(p *EnforcementPayload) { p.TargetBuildVersion = "24E248" }, false},
		{"local date time, one second", func(p *EnforcementPayload) { p.TargetLocalDateTime = "2026-03-20T14:30:01" }, false},
		{"details URL", func(p *EnforcementPayload) { p.DetailsURL = "https://it.example.com/v" }, false},
		{"details URL removed", func(p *EnforcementPayload) { p.DetailsURL = "" }, false},
	}
	ref := mustSet(t, &base)
	refEnf, _ := ref.Lookup(KindConfiguration, IDEnforcement)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			tc.change(&p)
			s := mustSet(t, &p)
			enf, _ := s.Lookup(KindConfiguration, IDEnforcement)
			if (enf.ServerToken == refEnf.ServerToken) != tc.same {
				t.Errorf("enforcement token same = %v, want %v", enf.ServerToken == refEnf.ServerToken, tc.same)
			}
			if (s.Token == ref.Token) != tc.same {
				t.Errorf("declarations token same = %v, want %v", s.Token == ref.Token, tc.same)
			}
			// Nothing else changes.
			for _, d := range s.Declarations {
				if d.Identifier == IDEnforcement {
					continue
				}
				o, _ := ref.Lookup(d.Kind(), d.Identifier)
				if o.ServerToken != d.ServerToken {
					t.Errorf("%s token changed", d.Identifier)
				}
			}
		})
	}
	// The tokens are within Apple's 64-octet limit and every declaration is valid.
	for _, d := range ref.Declarations {
		if err := d.Validate(); err != nil {
			t.Errorf("%s: %v", d.Identifier, err)
		}
	}
	// Removing the enforcement changes the set token back to the base set's.
	if mustSet(t, nil).Token == ref.Token {
		t.Error("removing the enforcement left the token unchanged")
	}
	if mustSet(t, nil).Token != mustSet(t, nil).Token {
		t.Error("base set token is not stable")
	}
}

func TestTargetLocalDateTime(t *testing.T) {
	zone := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Skipf("time zone %s: %v", name, err)
		}
		return loc
	}
	ny, berlin, tokyo, sydney := zone("America/New_York"), zone("Europe/Berlin"), zone("Asia/Tokyo"), zone("Australia/Sydney")
	tests := []struct {
		name     string
		deadline time.Time
		device   *time.Location
		want     string
	}{
		{"same zone", time.Date(2026, 1, 15, 9, 0, 0, 0, ny), ny, "2026-01-15T09:30:00"},
		{"policy New York, device Berlin, both standard time", time.Date(2026, 1, 15, 9, 0, 0, 0, ny), berlin, "2026-01-15T15:30:00"},
		// US clocks moved on 8 March 2026, Europe's on 29 March: six hours become five.
		{"policy New York (EDT), device Berlin (CET) between the two DST switches", time.Date(2026, 3, 20, 9, 0, 0, 0, ny), berlin, "2026-03-20T14:30:00"},
		{"both in summer time", time.Date(2026, 4, 20, 9, 0, 0, 0, ny), berlin, "2026-04-20T15:30:00"},
		// D at 01:45 CET; the 30 minutes cross 02:00 CET → 03:00 CEST.
		{"countdown across the spring-forward gap", time.Date(2026, 3, 29, 1, 45, 0, 0, berlin), berlin, "2026-03-29T03:15:00"},
		// D at 02:45 CEST on 25 October; 02:00-03:00 repeats; +30 min is 02:15 CET (the second 02:15).
		{"countdown across the fall-back overlap", time.Date(2026, 10, 25, 0, 45, 0, 0, time.UTC), berlin, "2026-10-25T02:15:00"},
		{"date line", time.Date(2026, 6, 30, 20, 0, 0, 0, ny), tokyo, "2026-07-01T09:30:00"},
		{"southern hemisphere, DST ends in April", time.Date(2026, 4, 5, 2, 0, 0, 0, time.UTC), sydney, "2026-04-05T12:30:00"},
		{"UTC device", time.Date(2026, 3, 20, 9, 0, 0, 0, ny), time.UTC, "2026-03-20T13:30:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Enforcement{TargetOSVersion: "15.4", Deadline: tc.deadline, Location: tc.device}.Payload()
			if err != nil {
				t.Fatal(err)
			}
			if p.TargetLocalDateTime != tc.want {
				t.Errorf("TargetLocalDateTime = %s, want %s", p.TargetLocalDateTime, tc.want)
			}
			// Read back in the device's zone, it is D + 30 min.
			back, err := time.ParseInLocation(LocalDateTimeLayout, p.TargetLocalDateTime, tc.device)
			if err != nil || !back.Equal(tc.deadline.Add(Countdown)) {
				if tc.name != "countdown across the fall-back overlap" {
					t.Errorf("read back %v, want %v", back, tc.deadline.Add(Countdown))
				}
			}
		})
	}
}

func TestDeviceZone(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	if got := DeviceZone("Europe/Berlin", ny); got.String() != "Europe/Berlin" {
		t.Errorf("agent zone: %v", got)
	}
	for _, agent := range []string{"", "Mars/Olympus_Mons"} {
		if got := DeviceZone(agent, ny); got != ny {
			t.Errorf("DeviceZone(%q) = %v, want the policy zone", agent, got)
		}
	}
}

func TestEnforcementValidation(t *testing.T) {
	good := Enforcement{TargetOSVersion: "15.4", Deadline: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Location: time.UTC}
	tests := []struct {
		name   string
		change func(e *Enforcement)
		ok     bool
	}{
		{"good", func(e *Enforcement) {}, true},
		{"x.y.z", func(e *Enforcement) { e.TargetOSVersion = "15.4.1" }, true},
		{"with build", func(e *Enforcement) { e.TargetBuildVersion = "24E248a" }, true},
		{"with https details", func(e *Enforcement) { e.DetailsURL = "https://it.example.com/os" }, true},
		{"no version", func(e *Enforcement) { e.TargetOSVersion = "" }, false},
		{"word version", func(e *Enforcement) { e.TargetOSVersion = "latest" }, false},
		{"bad build", func(e *Enforcement) { e.TargetBuildVersion = "24e248" }, false},
		{"no deadline", func(e *Enforcement) { e.Deadline = time.Time{} }, false},
		{"no zone", func(e *Enforcement) { e.Location = nil }, false},
		{"http details", func(e *Enforcement) { e.DetailsURL = "http://it.example.com" }, false},
		{"relative details", func(e *Enforcement) { e.DetailsURL = "/os" }, false},
	}
	for _, tc := range tests {
		e := good
		tc.change(&e)
		if _, err := e.Payload(); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"15.4", "15.4.0", 0}, {"15.10", "15.9", 1}, {"14.7.1", "15.0", -1}, {"26.0", "15.7", 1}, {"", "15.4", -1}, {"x", "15.4", -1},
	}
	for _, tc := range tests {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func FuzzDecodeStatusReport(f *testing.F) {
	for _, name := range []string{"status-report.ios-16.0-beta.real.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(b)
	}
	f.Add([]byte(`{"StatusItems":{"softwareupdate":{"install-state":"waiting","pending-version":{"os-version":"15.4","build-version":"24E248"}}},"Errors":[],"FullReport":true}`))
	f.Add([]byte(`{"StatusItems":{"management":{"declarations":{"configurations":[{"identifier":"x","active":true,"valid":"valid","server-token":"t"}]}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := DecodeStatusReport(data)
		if err != nil {
			var pe *mdm.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError", err)
			}
			return
		}
		// Whatever decodes re-encodes and decodes to the same items.
		b, err := json.Marshal(map[string]any{"StatusItems": Nest(rep.Items), "Errors": rep.Errors, "FullReport": rep.FullReport})
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxStatusReportSize {
			return
		}
		again, err := DecodeStatusReport(b)
		if err != nil {
			t.Fatalf("re-encoded report refused: %v\n%s", err, b)
		}
		if len(again.Items) != len(rep.Items) {
			t.Fatalf("items %d then %d", len(rep.Items), len(again.Items))
		}
	})
}

func FuzzDecodeDeclaration(f *testing.F) {
	for _, name := range []string{"declarations/softwareupdate.enforcement.specific.json", "declarations/activation.simple.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDeclaration(data)
		if err != nil {
			return
		}
		if d.Validate() != nil || len(d.Identifier) > MaxIdentifierLen || len(d.ServerToken) > MaxIdentifierLen {
			t.Fatalf("accepted an invalid declaration %+v", d)
		}
	})
}

func FuzzDecodeSyncTokens(f *testing.F) {
	f.Add([]byte(`{"SyncTokens": {"Timestamp": "2021-06-02T01:28:00Z", "DeclarationsToken": "b654"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := DecodeSyncTokens(data)
		if err == nil && tok.DeclarationsToken == "" {
			t.Fatal("accepted tokens without DeclarationsToken")
		}
	})
}

func FuzzParseDeclarationPath(f *testing.F) {
	f.Add("declaration/configuration/sundial.softwareupdate.enforcement")
	f.Fuzz(func(t *testing.T, endpoint string) {
		kind, id, err := ParseDeclarationPath(endpoint)
		if err != nil {
			return
		}
		if endpoint != "declaration/"+kind+"/"+id || id == "" || len(id) > MaxIdentifierLen {
			t.Fatalf("%q parsed as %q %q", endpoint, kind, id)
		}
	})
}

func BenchmarkDecodeStatusReport(b *testing.B) {
	data := readTestdata(b, "status-report.ios-16.0-beta.real.json")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeStatusReport(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildSet(b *testing.B) {
	p := &EnforcementPayload{TargetOSVersion: "15.4", TargetLocalDateTime: "2026-03-20T14:30:00"}
	for b.Loop() {
		if _, err := BuildSet(p); err != nil {
			b.Fatal(err)
		}
	}
}
