package console

import (
	"html"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

// fullPolicy sets every field the policy editor can carry.
func fullPolicy() softwareupdate.Policy {
	return softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.4", Date: "2026-12-15", TimeOfDay: "17:00",
		TimeZone: softwareupdate.DeviceLocal, FallbackTimeZone: "Europe/Berlin",
		AllowMajorUpgrades: true, MinimumNoticeDays: 7, RingOffsetDays: 3, OfflineGraceHours: 8,
		DetailsURL: "https://it.example.com/macos", Path: softwareupdate.PathLegacy,
		AllowUnknownVersion: true, SetupMinimum: softwareupdate.SetupMinimumOff,
		Calendar: &softwareupdate.Calendar{WorkingDays: "mon-thu", WorkingHours: "08:00-16:00",
			Holidays: []softwareupdate.Holiday{{Date: "2026-12-24", Name: "Christmas Eve"}, {Date: "01-01", Name: "New Year"}}},
	}
}

var (
	inputRE    = regexp.MustCompile(`<input ([^>]*)>`)
	attrRE     = regexp.MustCompile(`(\w+)="([^"]*)"`)
	selectRE   = regexp.MustCompile(`(?s)<select id="[^"]*" name="([^"]*)">(.*?)</select>`)
	selectedRE = regexp.MustCompile(`<option value="([^"]*)" selected>`)
	textareaRE = regexp.MustCompile(`(?s)<textarea id="[^"]*" name="([^"]*)"[^>]*>(.*?)</textarea>`)
)

// formValues reads the values a browser would submit from rendered form
// fields: inputs (checkboxes only when checked), selects and textareas.
func formValues(page string) url.Values {
	v := url.Values{}
	for _, m := range inputRE.FindAllStringSubmatch(page, -1) {
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(m[1], -1) {
			attrs[a[1]] = html.UnescapeString(a[2])
		}
		if attrs["name"] == "" || (attrs["type"] == "checkbox" || attrs["type"] == "radio") && !strings.Contains(m[1], "checked") {
			continue
		}
		v.Add(attrs["name"], attrs["value"])
	}
	for _, m := range selectRE.FindAllStringSubmatch(page, -1) {
		if s := selectedRE.FindStringSubmatch(m[2]); s != nil {
			v.Add(m[1], html.UnescapeString(s[1]))
		}
	}
	for _, m := range textareaRE.FindAllStringSubmatch(page, -1) {
		v.Add(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// TestPolicyFormKeepsEveryField: a policy shown in the editor, and one
// carried through the what-if's hidden save form, come back unchanged, so
// saving from the console never drops a setting made with the CLI or API.
func TestPolicyFormKeepsEveryField(t *testing.T) {
	want := fullPolicy()
	page := parsePages()["policy"]
	for _, tmpl := range []struct {
		name string
		data any
	}{
		{"policyfields", &PolicyData{Form: want,
			Modes: []softwareupdate.Mode{softwareupdate.ModeUnmanaged, softwareupdate.ModeAutomatic, softwareupdate.ModeManual},
			Paths: []softwareupdate.EnforcementPath{"", softwareupdate.PathLegacy, softwareupdate.PathDeclarative}}},
		{"policyhidden", want},
	} {
		var b strings.Builder
		if err := page.ExecuteTemplate(&b, tmpl.name, tmpl.data); err != nil {
			t.Fatal(err)
		}
		got, err := policyFromForm(formValues(b.String()))
		if err != nil {
			t.Fatalf("%s: %v", tmpl.name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", tmpl.name, got, want)
		}
	}
}
