package mdm

import (
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
		"integer value":           appleHead + idle + "<key>N</key><integer>1</integer>" + appleTail,
		"nested dict":             string(readTestdata(t, "DeviceInformation.Acknowledged.minimal.macos.plist")),
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
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			name := f.Name
			if tag, _, _ := strings.Cut(f.Tag.Get("plist"), ","); tag != "" {
				name = tag
			}
			body := appleHead + "<key>" + name + "</key><string>v</string>" + appleTail
			r, ok := fastReport([]byte(body))
			if f.Type.Kind() != reflect.String {
				if ok {
					t.Errorf("%s (%s): fast path accepted a string for it", name, f.Type)
				}
				continue
			}
			if !ok {
				t.Errorf("%s: fast path declined", name)
				continue
			}
			if got := reflect.ValueOf(r).Elem().FieldByName(f.Name).String(); got != "v" {
				t.Errorf("%s: fast path set %q, want %q", name, got, "v")
			}
		}
	}
	walk(reflect.TypeFor[Report]())
}

// FuzzFastReportAgrees: whenever the fast path accepts a body, the plist
// library decodes it to the same Report.
func FuzzFastReportAgrees(f *testing.F) {
	f.Add(readTestdata(f, "Idle.device.SYNTHETIC.plist"))
	f.Add([]byte(appleHead + "<key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>c</string><key>UDID</key><string>u</string>" + appleTail))
	f.Add([]byte(`<plist><dict><key>Status</key><string>Idle</string><key>EnrollmentID</key><string>e</string></dict></plist>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := fastReport(body)
		if !ok {
			return
		}
		lib, err := libraryReport(body)
		if err != nil {
			t.Fatalf("fast path accepted what the library refuses (%v)", err)
		}
		if !reflect.DeepEqual(fast, lib) {
			t.Fatalf("fast path = %+v, library = %+v", *fast, *lib)
		}
	})
}
