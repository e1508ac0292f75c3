package console

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

// pageNames are the page templates; each is parsed with layout.html.
var pageNames = []string{"signin", "error", "overview", "devices", "device", "confirm",
	"policies", "policy", "exceptions", "catalog", "audit", "evidence", "readiness"}

// partials are parsed with every page: sections pages share.
var partials = []string{"templates/rollout.html"}

var funcs = template.FuncMap{
	// when formats an instant in a zone; zero instants show as a dash.
	"when": func(t time.Time, loc *time.Location) string {
		if t.IsZero() {
			return "—"
		}
		if loc == nil {
			loc = time.UTC
		}
		return t.In(loc).Format("2006-01-02 15:04 MST")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format(time.DateOnly)
	},
	"pct": func(v float64) string { return fmt.Sprintf("%.1f%%", v) },
	"ago": func(t, now time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := now.Sub(t)
		switch {
		case d < 0:
			return "in the future"
		case d < time.Minute:
			return "just now"
		case d < time.Hour:
			return fmt.Sprintf("%d min ago", int(d/time.Minute))
		case d < 48*time.Hour:
			return fmt.Sprintf("%d h ago", int(d/time.Hour))
		}
		return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
	},
	"phaseClass": func(p any) string { return "phase phase-" + fmt.Sprint(p) },
	"q":          func(v url.Values, k string) string { return v.Get(k) },
	"qurl": func(base string, v url.Values, k, val string) string {
		n := url.Values{}
		for kk, vv := range v {
			if kk != "after" && kk != "limit" {
				n[kk] = vv
			}
		}
		if val == "" {
			n.Del(k)
		} else {
			n.Set(k, val)
		}
		return base + "?" + n.Encode()
	},
	"path": func(s string) string { return url.PathEscape(s) },
	"orDash": func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	},
	"short": func(s string, n int) string {
		if len(s) > n {
			return s[:n] + "…"
		}
		return s
	},
	"lower":  strings.ToLower,
	"minus4": func(n int) int { return n - 4 },
	// days shows seconds as days with one decimal.
	"days":   func(sec int64) string { return fmt.Sprintf("%.1f", float64(sec)/86400) },
	"minus8": func(n int) int { return n - 8 },
	// count reads a per-phase count by the phase's name.
	"count": func(m map[softwareupdate.Phase]int, p any) int { return m[softwareupdate.Phase(fmt.Sprint(p))] },
	// Business calendar (calendar.go).
	"holidayLines": holidayLines,
	"movedReasons": movedReasons,
}

func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t := template.New("layout").Funcs(funcs)
		files := append([]string{"templates/layout.html", "templates/" + name + ".html"}, partials...)
		out[name] = template.Must(t.ParseFS(templateFS, files...))
	}
	return out
}
