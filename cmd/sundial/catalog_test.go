package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// feedWithExtraRelease returns the embedded gdmf snapshot plus macOS 26.9.
func feedWithExtraRelease(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../softwareupdate/catalog/snapshot/gdmf-v2-pmv.json")
	if err != nil {
		t.Fatal(err)
	}
	var feed map[string]map[string][]map[string]any
	if err := json.Unmarshal(raw, &feed); err != nil {
		t.Fatal(err)
	}
	feed["PublicAssetSets"]["macOS"] = append(feed["PublicAssetSets"]["macOS"], map[string]any{
		"ProductVersion": "26.9", "Build": "25Z999", "PostingDate": "2026-11-20", "ExpirationDate": "2027-02-20",
		"SupportedDevices": []string{"J413AP"},
	}, map[string]any{ // dated in the future: held back
		"ProductVersion": "27.0", "Build": "26A100", "PostingDate": time.Now().UTC().AddDate(1, 0, 0).Format(time.DateOnly),
		"SupportedDevices": []string{"J413AP"},
	})
	out, err := json.Marshal(feed)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCatalogSyncAndAdd(t *testing.T) {
	feed := feedWithExtraRelease(t)
	feeds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/pmv":
			w.Write(feed)
		case "/garbage":
			w.Write([]byte(`{"hello": "world"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer feeds.Close()
	dir := t.TempDir()
	ts := startTestServer(t, dir)
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := cli("catalog", "list"); code != 0 || strings.Contains(out, "26.9 ") {
		t.Fatalf("catalog list before sync = %d %q", code, out)
	}
	// A feed that is not one, or a URL Sundial cannot use, is invalid input
	// (2); a feed server that fails or cannot be reached is a failure (1).
	for _, tc := range []struct {
		url  string
		want int
	}{
		{feeds.URL + "/garbage", exitUsage}, {"ftp://x/y", exitUsage},
		{feeds.URL + "/missing", exitError}, {"http://127.0.0.1:1/v2/pmv", exitError},
	} {
		if code, out := cli("catalog", "sync", tc.url); code != tc.want || out == "" {
			t.Errorf("sync %s = %d %q, want exit %d with a message", tc.url, code, out, tc.want)
		}
	}
	// --url is the Sundial server everywhere; a feed given to it is refused
	// before the API key is sent anywhere.
	if code, out := cli("catalog", "sync", "--url", feeds.URL+"/v2/pmv"); code != exitUsage || !strings.Contains(out, "names the Sundial server") {
		t.Errorf("sync --url FEED = %d %q", code, out)
	}
	if code, out := cli("catalog", "sync", "--feed", feeds.URL+"/v2/pmv"); code != 0 || !strings.Contains(out, "gdmf feed") || !strings.Contains(out, "1 new") ||
		!strings.Contains(out, "held back until their posting day: macOS 27.0") {
		t.Fatalf("sync = %d %q", code, out)
	}
	if code, out := cli("catalog", "add", "--version", "26.9.2", "--posted", "25/11/2026"); code != exitUsage || !strings.Contains(out, "--posted must be YYYY-MM-DD") {
		t.Errorf("add with a bad date = %d %q, want the flag named", code, out)
	}
	if code, out := cli("catalog", "add", "--version", "26.9.1", "--build", "25Z1000", "--posted", "2026-11-25", "--devices", "J413AP"); code != 0 {
		t.Fatalf("add = %d %q", code, out)
	}
	if code, out := cli("catalog", "add", "--version", "26.9.1", "--posted", "2026-11-25"); code != exitError {
		t.Errorf("duplicate add = %d %q", code, out)
	}
	if code, out := cli("catalog", "add", "--version", "banana", "--posted", "2026-11-25"); code != exitUsage {
		t.Errorf("bad version add = %d %q", code, out)
	}
	check := func(ts *testServer) {
		t.Helper()
		rels, err := ts.admin.Catalog(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, r := range rels {
			found[r.Version] = true
		}
		if found["27.0"] {
			t.Error("a release dated in the future is listed")
		}
		if !found["26.9"] || !found["26.9.1"] {
			t.Errorf("catalog lacks the synced or added release: 26.9=%v 26.9.1=%v", found["26.9"], found["26.9.1"])
		}
	}
	check(ts)
	// Both survive a restart.
	ts.stop()
	check(startTestServer(t, dir))
}
