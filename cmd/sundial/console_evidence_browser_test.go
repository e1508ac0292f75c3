package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestConsoleEvidenceInBrowser: the Evidence page renders in a real
// headless Chromium with the strict CSP: the form, the summary the API
// gives, the server-drawn chart (no script) and the tables; its CSV link
// downloads the same report with the session; a bad range shows the error.
func TestConsoleEvidenceInBrowser(t *testing.T) {
	f := newConsoleFleet(t) // the server first: its cleanup runs after the browser's
	ctx := browser(t)
	ts := f.ts
	base := ts.url
	if _, err := ts.admin.RecordEvidence(t.Context()); err != nil {
		t.Fatal(err)
	}
	want, err := ts.admin.Evidence(t.Context(), scheduler.EvidenceQuery{})
	if err != nil {
		t.Fatal(err)
	}

	browse(t, ctx, "sign in", signInActions(base, f.readKey)...)
	var summary, days, chart string
	var csv chromedp.AttributeResult
	var scripts int
	browse(t, ctx, "evidence page",
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/evidence"]`)),
		chromedp.WaitVisible(chromedp.CSS("#evidence-chart svg polyline")),
		into(&summary, chromedp.Text(chromedp.CSS("#evidence-summary"))),
		into(&days, chromedp.Text(chromedp.CSS("#evidence-days"))),
		into(&chart, chromedp.OuterHTML(chromedp.CSS("#evidence-chart"))),
		into(&csv, chromedp.AttributeValue(chromedp.CSS("#evidence-csv"), "href")),
		into(&scripts, chromedp.Evaluate[int](`document.scripts.length`)),
		shot(t, "evidence"))
	if strings.TrimSuffix(summary, ".") != want.Summary.Text {
		t.Errorf("summary %q, the API's %q", summary, want.Summary.Text)
	}
	if !strings.Contains(days, "the fleet") || !strings.Contains(days, "pilot") || !strings.Contains(days, want.To) {
		t.Errorf("daily rows:\n%s", days)
	}
	if !strings.Contains(chart, "compliant:") || !strings.Contains(chart, "<circle") || scripts != 0 {
		t.Errorf("chart %s, %d scripts", chart, scripts)
	}

	// The group form narrows the rows to the pilot group's.
	browse(t, ctx, "pilot",
		chromedp.SetValue(chromedp.CSS(`#evidence-form input[name=group]`), "pilot"),
		chromedp.Click(chromedp.CSS(`#evidence-form button[type=submit]`)),
		// Only the filtered page renders the group as an attribute (the old
		// page's summary would otherwise satisfy the wait mid-navigation).
		chromedp.WaitVisible(chromedp.CSS(`#evidence-form input[name=group][value="pilot"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#evidence-summary`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#evidence-summary").textContent.includes("group pilot") ||
			document.querySelector("#evidence-summary").textContent.includes("No release")`),
		into(&days, chromedp.Text(chromedp.CSS("#evidence-days"))),
		shot(t, "evidence-pilot"))
	if strings.Contains(days, "the fleet") || !strings.Contains(days, "pilot") {
		t.Errorf("pilot rows:\n%s", days)
	}

	// The CSV link, with the browser's session.
	var cookies []*network.Cookie
	browse(t, ctx, "cookies", cookiesInto(&cookies))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+csv.Value, nil)
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := ts.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "summary,") || !strings.Contains(string(body), want.To+",(fleet),") {
		t.Errorf("csv = %s\n%s", resp.Status, body)
	}

	// A reversed range is refused with the reason.
	var errText string
	browse(t, ctx, "bad range",
		chromedp.Navigate(base+"/ui/evidence?from="+want.To+"&to="+want.From),
		chromedp.WaitVisible(chromedp.CSS("main")),
		into(&errText, chromedp.Text(chromedp.CSS("main"))))
	if !strings.Contains(errText, "is after to") {
		t.Errorf("bad range page: %q", errText)
	}
}
