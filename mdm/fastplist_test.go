package mdm

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/micromdm/plist"
)

// libraryReport decodes body with the plist library alone.
func libraryReport(body []byte) (*Report, error) {
	r := new(Report)
	if err := plist.Unmarshal(body, r); err != nil {
		return nil, err
	}
	return r, nil
}

const (
	appleHead = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
`
	appleTail = "</dict>\n</plist>\n"
)

func TestFastReportAgreesWithLibrary(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Report
	}{
		{"fixture Idle", string(readTestdata(t, "Idle.device.SYNTHETIC.plist")),
			Report{Enrollment: Enrollment{UDID: "66ADE930-5FDF-5EC4-8429-15640684C489"}, Status: Idle}},
		{"acknowledged", appleHead + "\t<key>CommandUUID</key>\n\t<string>0001</string>\n\t<key>Status</key>\n\t<string>Acknowledged</string>\n\t<key>UDID</key>\n\t<string>U1</string>\n" + appleTail,
			Report{Enrollment: Enrollment{UDID: "U1"}, Status: Acknowledged, CommandUUID: "0001"}},
		{"user channel, every string field", appleHead +
			"<key>EnrollmentID</key><string>E</string><key>UserID</key><string>A</string><key>UserShortName</key><string>jo</string>" +
			"<key>UserLongName</key><string>Jo Appleseed</string><key>EnrollmentUserID</key><string>EU</string>" +
			"<key>Status</key><string>NotNow</string><key>CommandUUID</key><string>c</string><key>RequestType</key><string>DeviceLock</string>" + appleTail,
			Report{Enrollment: Enrollment{EnrollmentID: "E", UserID: "A", UserShortName: "jo", UserLongName: "Jo Appleseed", EnrollmentUserID: "EU"},
				Status: NotNow, CommandUUID: "c", RequestType: "DeviceLock"}},
		{"no declaration or doctype, unknown keys, empty string", `<plist><dict><key>Status</key><string>Idle</string><key>Extra</key><string></string><key>UDID</key><string>U</string></dict></plist>`,
			Report{Enrollment: Enrollment{UDID: "U"}, Status: Idle}},
		{"duplicate key: the last wins", appleHead + "<key>UDID</key><string>first</string><key>UDID</key><string>second</string><key>Status</key><string>Idle</string>" + appleTail,
			Report{Enrollment: Enrollment{UDID: "second"}, Status: Idle}},
		{"unknown keys of every type", appleHead + "<key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>c</string><key>UDID</key><string>u</string>" +
			"<key>N</key><integer> -7 </integer><key>U</key><integer>18446744073709551615</integer><key>R</key><real>0.25</real><key>D</key><date>2026-11-28T01:02:03Z</date>" +
			"<key>B</key><data>\n\tAAEC\n</data><key>E</key><data></data><key>T</key><true/><key>F</key><false/>" +
			"<key>L</key><array><dict><key>x</key><string>y</string></dict><array></array><string>z</string></array><key>M</key><dict></dict>" + appleTail,
			Report{Enrollment: Enrollment{UDID: "u"}, Status: Acknowledged, CommandUUID: "c"}},
		{"CRLF between elements, newline in text", "<?xml version=\"1.0\"?>\r\n<plist version=\"1.0\">\r\n<dict>\r\n<key>Status</key>\r\n<string>Idle</string><key>UDID</key><string>a\nb</string>\r\n</dict>\r\n</plist>\r\n",
			Report{Enrollment: Enrollment{UDID: "a\nb"}, Status: Idle}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := fastReport([]byte(tc.body))
			if !ok {
				t.Fatal("fast path declined")
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("fast path = %+v, want %+v", *got, tc.want)
			}
			lib, err := libraryReport([]byte(tc.body))
			if err != nil {
				t.Fatalf("library: %v", err)
			}
			if !reflect.DeepEqual(got, lib) {
				t.Errorf("fast path = %+v, library = %+v", *got, *lib)
			}
		})
	}
}

func TestFastReportDeclines(t *testing.T) {
	idle := "<key>Status</key><string>Idle</string><key>UDID</key><string>U</string>"
	tests := map[string]string{
		"ErrorChain":              appleHead + idle + "<key>ErrorChain</key><array><dict><key>ErrorCode</key><integer>12021</integer></dict></array>" + appleTail,
		"ErrorChain as a string":  appleHead + idle + "<key>ErrorChain</key><string>x</string>" + appleTail,
		"entity":                  appleHead + "<key>Status</key><string>Idle</string><key>UDID</key><string>a&amp;b</string>" + appleTail,
		"comment":                 appleHead + "<!-- hi -->" + idle + appleTail,
		"CDATA":                   appleHead + "<key>Status</key><string><![CDATA[Idle]]></string>" + appleTail,
		"non-ASCII text":          appleHead + idle + "<key>UserLongName</key><string>Zoë</string>" + appleTail,
		"carriage return in text": appleHead + "<key>Status</key><string>Idle</string><key>UDID</key><string>a\rb</string>" + appleTail,
		"other encoding":          `<?xml version="1.0" encoding="UTF-16"?><plist><dict>` + idle + `</dict></plist>`,
		"declaration not first":   ` <?xml version="1.0"?><plist><dict>` + idle + `</dict></plist>`,
		"other doctype":           `<!DOCTYPE plist SYSTEM "x"><plist><dict>` + idle + `</dict></plist>`,
		"self-closing string":     `<plist><dict><key>Status</key><string/></dict></plist>`,
		"mismatched close":        `<plist><dict><key>Status</key><string>Idle</key></dict></plist>`,
		"key without value":       `<plist><dict><key>Status</key></dict></plist>`,
		"trailing content":        `<plist><dict>` + idle + `</dict></plist><x/>`,
		"root dict":               `<dict>` + idle + `</dict>`,
		"byte order mark":         "\ufeff<plist><dict>" + idle + "</dict></plist>",
		"binary":                  "bplist00" + idle,
		"truncated":               (appleHead + idle + appleTail)[:len(appleHead)+len(idle)+3],
	}
	for name, body := range tests {
		if r, ok := fastReport([]byte(body)); ok {
			t.Errorf("%s: fast path accepted: %+v", name, *r)
		}
	}
	// The declined bodies still decode through the library where valid.
	r, err := DecodeReport([]byte(tests["ErrorChain"]))
	if err != nil || len(r.ErrorChain) != 1 || r.ErrorChain[0].ErrorCode != 12021 {
		t.Fatalf("ErrorChain report = %+v, %v", r, err)
	}
	r, err = DecodeReport([]byte(tests["entity"]))
	if err != nil || r.UDID != "a&b" {
		t.Fatalf("report with an entity = %+v, %v", r, err)
	}
}

// TestFastReportKnowsEveryField: the fast path sets every string field of
// Report by its plist name and declines every other field, so a field
// added to Report later cannot be silently dropped by it.
func TestFastReportKnowsEveryField(t *testing.T) {
	forEachPlistField(reflect.TypeFor[Report](), func(name string, f reflect.StructField) {
		body := appleHead + "<key>" + name + "</key><string>v</string>" + appleTail
		r, ok := fastReport([]byte(body))
		if f.Type.Kind() != reflect.String {
			if ok {
				t.Errorf("%s (%s): fast path accepted a string for it", name, f.Type)
			}
			return
		}
		if !ok {
			t.Errorf("%s: fast path declined", name)
			return
		}
		if got := reflect.ValueOf(r).Elem().FieldByName(f.Name).String(); got != "v" {
			t.Errorf("%s: fast path set %q, want %q", name, got, "v")
		}
	})
}

// FuzzFastReportAgrees: whenever the fast path accepts a body, the plist
// library decodes it to the same Report.
func FuzzFastReportAgrees(f *testing.F) {
	f.Add(readTestdata(f, "Idle.device.SYNTHETIC.plist"))
	f.Add([]byte(appleHead + "<key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>c</string><key>UDID</key><string>u</string>" + appleTail))
	f.Add([]byte(`<plist><dict><key>Status</key><string>Idle</string><key>EnrollmentID</key><string>e</string></dict></plist>`))
	f.Fuzz(func(t *testing.T, body []byte) { checkAgrees(t, body, fastReport, libraryReport) })
}

// checkAgrees fails t when the fast decoder accepts body and the plist
// library refuses it or decodes it to something else.
func checkAgrees[T any](t *testing.T, body []byte, fast func([]byte) (T, bool), library func([]byte) (T, error)) {
	t.Helper()
	got, ok := fast(body)
	if !ok {
		return
	}
	want, err := library(body)
	if err != nil {
		t.Fatalf("fast path accepted what the library refuses (%v)", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path = %+v, library = %+v", got, want)
	}
}

func libraryCheckin(body []byte) (*CheckinMessage, error) {
	m := new(CheckinMessage)
	if err := plist.Unmarshal(body, m); err != nil {
		return nil, err
	}
	return m, nil
}

func libraryCommand(body []byte) (commandEnvelope, error) {
	var env commandEnvelope
	err := plist.Unmarshal(body, &env)
	return env, err
}

// TestFastPathsOnFixtures: Apple's example bodies take the fast path of
// their kind, and decode as the library decodes them.
func TestFastPathsOnFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.plist"))
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		body := readTestdata(t, name)
		var ok bool
		switch {
		case strings.HasPrefix(name, "Authenticate.") || strings.HasPrefix(name, "TokenUpdate.") || strings.HasPrefix(name, "CheckOut."):
			var fast *CheckinMessage
			fast, ok = fastCheckin(body)
			if lib, err := libraryCheckin(body); ok && (err != nil || !reflect.DeepEqual(fast, lib)) {
				t.Errorf("%s: fast check-in = %+v, library = %+v, %v", name, fast, lib, err)
			}
		case strings.Contains(name, ".command."):
			var fast commandEnvelope
			fast, ok = fastCommand(body)
			if lib, err := libraryCommand(body); ok && (err != nil || fast != lib) {
				t.Errorf("%s: fast command = %+v, library = %+v, %v", name, fast, lib, err)
			}
		default:
			var fast *Report
			fast, ok = fastReport(body)
			if lib, err := libraryReport(body); ok && (err != nil || !reflect.DeepEqual(fast, lib)) {
				t.Errorf("%s: fast report = %+v, library = %+v, %v", name, fast, lib, err)
			}
		}
		if !ok {
			t.Errorf("%s: fast path declined", name)
		}
	}
}

// TestFastPlistDeclinesBadValues: a value the library would refuse, or
// a form outside the canonical one, declines even under a key nobody
// reads.
func TestFastPlistDeclinesBadValues(t *testing.T) {
	idle := "<key>Status</key><string>Idle</string><key>UDID</key><string>U</string>"
	deep := strings.Repeat("<array>", maxFastDepth+1) + strings.Repeat("</array>", maxFastDepth+1)
	values := map[string]string{
		"fractional integer":     "<integer>1.5</integer>",
		"integer over 64 bits":   "<integer>18446744073709551616</integer>",
		"integer under -2^63":    "<integer>-9223372036854775809</integer>",
		"empty integer":          "<integer></integer>",
		"hex integer":            "<integer>0x10</integer>",
		"bad real":               "<real>abc</real>",
		"empty real":             "<real></real>",
		"bad date":               "<date>yesterday</date>",
		"date without zone":      "<date>2026-11-28T01:02:03</date>",
		"bad base64":             "<data>!!!!</data>",
		"base64 without padding": "<data>AAE</data>",
		"self-closing dict":      "<dict/>",
		"self-closing array":     "<array/>",
		"self-closing data":      "<data/>",
		"true with content":      "<true></true>",
		"attribute":              `<dict a="b"></dict>`,
		"too deep":               deep,
		"key in an array":        "<array><key>x</key></array>",
		"dict entry without key": "<dict><string>x</string></dict>",
		"dict key without value": "<dict><key>x</key></dict>",
		"unknown element":        "<foo>x</foo>",
		"unclosed array":         "<array><string>x</string>",
	}
	for name, v := range values {
		body := appleHead + idle + "<key>X</key>" + v + appleTail
		if r, ok := fastReport([]byte(body)); ok {
			t.Errorf("%s: fast path accepted: %+v", name, *r)
		}
	}
}

// TestFastCheckinKnowsEveryField: the fast path sets every field of
// CheckinMessage from a value of its type and declines a value of
// another type, so a field added later cannot be silently dropped.
func TestFastCheckinKnowsEveryField(t *testing.T) {
	forEachPlistField(reflect.TypeFor[CheckinMessage](), func(name string, f reflect.StructField) {
		var value string
		var want any
		switch {
		case f.Type.Kind() == reflect.String:
			value, want = "<string>v</string>", "v"
		case f.Type == reflect.TypeFor[[]byte]():
			value, want = "<data>dg==</data>", []byte("v")
		case f.Type.Kind() == reflect.Bool:
			value, want = "<true/>", true
		default:
			t.Errorf("%s: a field of type %s the test does not know", name, f.Type)
			return
		}
		m, ok := fastCheckin([]byte(appleHead + "<key>" + name + "</key>" + value + appleTail))
		if !ok {
			t.Errorf("%s: fast path declined", name)
			return
		}
		got := reflect.ValueOf(m).Elem().FieldByName(f.Name)
		if got.Kind() == reflect.String {
			if got.String() != want {
				t.Errorf("%s = %q, want %q", name, got.String(), want)
			}
		} else if !reflect.DeepEqual(got.Interface(), want) {
			t.Errorf("%s = %v, want %v", name, got.Interface(), want)
		}
		if _, ok := fastCheckin([]byte(appleHead + "<key>" + name + "</key><integer>1</integer>" + appleTail)); ok {
			t.Errorf("%s: fast path accepted an integer for it", name)
		}
	})
}

func TestFastCommand(t *testing.T) {
	install, err := NewCommand("InstallProfile", map[string]any{"Payload": []byte("<plist>profile bytes</plist>")})
	if err != nil {
		t.Fatal(err)
	}
	updates, err := NewCommand("ScheduleOSUpdate", map[string]any{"Updates": []any{map[string]any{"InstallAction": "InstallASAP", "ProductVersion": "15.2", "MaxUserDeferrals": 3}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Command{install, updates} {
		env, ok := fastCommand(c.Raw)
		if !ok || env.CommandUUID != c.UUID || env.Command.RequestType != c.RequestType {
			t.Errorf("%s: fast path = %+v, %v", c.RequestType, env, ok)
		}
	}
	declines := map[string]string{
		"Command repeated":       "<key>CommandUUID</key><string>c</string><key>Command</key><dict><key>RequestType</key><string>A</string></dict><key>Command</key><dict></dict>",
		"Command not a dict":     "<key>CommandUUID</key><string>c</string><key>Command</key><string>A</string>",
		"RequestType an integer": "<key>CommandUUID</key><string>c</string><key>Command</key><dict><key>RequestType</key><integer>1</integer></dict>",
		"CommandUUID as data":    "<key>CommandUUID</key><data>dg==</data><key>Command</key><dict><key>RequestType</key><string>A</string></dict>",
	}
	for name, entries := range declines {
		if env, ok := fastCommand([]byte(appleHead + entries + appleTail)); ok {
			t.Errorf("%s: fast path accepted: %+v", name, env)
		}
	}
	// Declined bodies still get the library's verdict.
	if _, err := DecodeCommand([]byte(appleHead + declines["Command repeated"] + appleTail)); err == nil {
		t.Error("a command whose last Command dict has no RequestType was accepted")
	}
}

// FuzzFastCheckinAgrees: whenever the fast path accepts a body, the plist
// library decodes it to the same CheckinMessage.
func FuzzFastCheckinAgrees(f *testing.F) {
	for _, name := range []string{"Authenticate.macos-10.12.6.plist", "TokenUpdate.macos-10.12.6.plist", "CheckOut.SYNTHETIC.plist"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(appleHead + "<key>MessageType</key><string>TokenUpdate</string><key>Token</key><data> AAEC\n</data><key>NotOnConsole</key><true/><key>X</key><array><integer>1</integer><real>2.5</real></array>" + appleTail))
	f.Fuzz(func(t *testing.T, body []byte) { checkAgrees(t, body, fastCheckin, libraryCheckin) })
}

// FuzzFastCommandAgrees: whenever the fast path accepts a command, the
// plist library decodes it to the same envelope.
func FuzzFastCommandAgrees(f *testing.F) {
	for _, name := range []string{"ScheduleOSUpdate.command.plist", "DeviceInformation.command.plist", "DeclarativeManagement.command.AS-PUBLISHED.plist"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(appleHead + "<key>CommandUUID</key><string>c</string><key>Command</key><dict><key>RequestType</key><string>A</string><key>D</key><date>2026-01-02T03:04:05Z</date></dict>" + appleTail))
	f.Fuzz(func(t *testing.T, body []byte) { checkAgrees(t, body, fastCommand, libraryCommand) })
}

// forEachPlistField calls fn for every field of the struct type rt,
// embedded structs' fields included, with the key the plist library
// matches it by.
func forEachPlistField(rt reflect.Type, fn func(name string, f reflect.StructField)) {
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Anonymous {
			forEachPlistField(f.Type, fn)
			continue
		}
		name := f.Name
		if tag, _, _ := strings.Cut(f.Tag.Get("plist"), ","); tag != "" {
			name = tag
		}
		fn(name, f)
	}
}

// TestKnownString: every known value decodes to itself without an
// allocation, and anything else is copied.
func TestKnownString(t *testing.T) {
	for _, k := range knownStrings {
		b := []byte(k)
		if have := knownString(b); have != k {
			t.Errorf("knownString(%q) = %q", k, have)
		}
		if n := testing.AllocsPerRun(10, func() { knownString(b) }); n != 0 {
			t.Errorf("knownString(%q): %v allocations", k, n)
		}
	}
	b := []byte("Idl")
	s := knownString(b)
	b[0] = 'X'
	if s != "Idl" {
		t.Errorf("knownString of an unknown value shares its bytes: %q", s)
	}
}
