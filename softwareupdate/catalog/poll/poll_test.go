package poll

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// feedServer is a TLS feed server that honours ETag and Last-Modified
// validators the way gdmf and SOFA's CDN do, and can be told to fail.
type feedServer struct {
	mu       sync.Mutex
	bodies   map[string]string // path -> body
	etags    map[string]string // path -> current ETag
	modified map[string]string // path -> Last-Modified
	fail     int               // answer 503 to this many requests
	requests []string          // "path status"
}

func (f *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, ok := f.bodies[r.URL.Path]
	status := http.StatusOK
	switch {
	case f.fail > 0:
		f.fail--
		status = http.StatusServiceUnavailable
	case !ok:
		status = http.StatusNotFound
	case f.etags[r.URL.Path] != "" && r.Header.Get("If-None-Match") == f.etags[r.URL.Path]:
		status = http.StatusNotModified
	case f.modified[r.URL.Path] != "" && r.Header.Get("If-None-Match") == "" && r.Header.Get("If-Modified-Since") == f.modified[r.URL.Path]:
		status = http.StatusNotModified
	}
	f.requests = append(f.requests, r.URL.Path+" "+http.StatusText(status))
	if status != http.StatusOK {
		w.WriteHeader(status)
		return
	}
	if e := f.etags[r.URL.Path]; e != "" {
		w.Header().Set("ETag", e)
	}
	if m := f.modified[r.URL.Path]; m != "" {
		w.Header().Set("Last-Modified", m)
	}
	w.Write([]byte(body))
}

func (f *feedServer) set(path, body, etag, modified string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies[path], f.etags[path], f.modified[path] = body, etag, modified
}

func (f *feedServer) took() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.requests
	f.requests = nil
	return out
}

// sink records applied bodies and saved states; it refuses bodies that
// contain "garbage".
type sink struct {
	mu      sync.Mutex
	applied []string // "kind body"
	saved   map[string]State
}

func (s *sink) Apply(ctx context.Context, kind, url string, body []byte) error {
	if strings.Contains(string(body), "garbage") {
		return errors.New("not a feed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, kind+" "+string(body))
	return nil
}

func (s *sink) SaveState(ctx context.Context, kind string, st State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saved == nil {
		s.saved = map[string]State{}
	}
	s.saved[kind] = st
	return nil
}

func (s *sink) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.applied
	s.applied = nil
	return out
}

func eq(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

func TestPollerTimeline(t *testing.T) {
	fs := &feedServer{bodies: map[string]string{}, etags: map[string]string{}, modified: map[string]string{}}
	// gdmf answers with an ETag, SOFA's CDN with Last-Modified only.
	fs.set("/v2/pmv", `{"gdmf":1}`, `"g1"`, "")
	fs.set("/sofa.json", `{"sofa":1}`, "", "Mon, 07 Dec 2026 00:00:00 GMT")
	srv := httptest.NewTLSServer(fs)
	defer srv.Close()
	clk := &fakeClock{now: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	sk := &sink{}
	feeds := []Feed{{Kind: "gdmf", URL: srv.URL + "/v2/pmv"}, {Kind: "sofa", URL: srv.URL + "/sofa.json"}}
	p := New(feeds, srv.Client(), clk, sk, 6*time.Hour, nil, nil)
	ctx := t.Context()
	start := clk.Now()

	// First check: both fetched and applied.
	next := p.RunOnce(ctx)
	if got := sk.take(); !eq(got, []string{`gdmf {"gdmf":1}`, `sofa {"sofa":1}`}) {
		t.Fatalf("applied = %q", got)
	}
	if want := start.Add(6 * time.Hour); !next.Equal(want) {
		t.Errorf("next check at %v, want %v", next, want)
	}
	// Not due yet: nothing is fetched.
	clk.advance(time.Hour)
	p.RunOnce(ctx)
	fs.took()
	clk.advance(5 * time.Hour)
	// Due, unchanged: conditional requests answered 304, nothing applied.
	p.RunOnce(ctx)
	if got := fs.took(); !eq(got, []string{"/v2/pmv Not Modified", "/sofa.json Not Modified"}) {
		t.Errorf("requests = %q, want two 304s", got)
	}
	if got := sk.take(); len(got) != 0 {
		t.Errorf("unchanged feeds applied: %q", got)
	}
	if st := p.States()["gdmf"]; !st.CheckedAt.Equal(clk.Now()) || !st.ChangedAt.Equal(start) {
		t.Errorf("gdmf state after 304 = %+v", st)
	}
	// Apple posts a release: the next check applies it.
	fs.set("/v2/pmv", `{"gdmf":2}`, `"g2"`, "")
	clk.advance(6 * time.Hour)
	p.RunOnce(ctx)
	if got := sk.take(); !eq(got, []string{`gdmf {"gdmf":2}`}) {
		t.Errorf("applied = %q, want the new gdmf body only", got)
	}

	// Offline: errors back off 5, 10, 20 min ... up to the interval; the
	// catalog keeps its data and its age grows.
	fs.mu.Lock()
	fs.fail = 1000
	fs.mu.Unlock()
	lastGood := clk.Now()
	clk.advance(6 * time.Hour)
	var waits []time.Duration
	for range 9 {
		now := clk.Now()
		next := p.RunOnce(ctx)
		waits = append(waits, next.Sub(now))
		clk.advance(next.Sub(now))
	}
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 80 * time.Minute,
		160 * time.Minute, 320 * time.Minute, 6 * time.Hour, 6 * time.Hour}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("backoff %d = %v, want %v (all: %v)", i, waits[i], want[i], waits)
			break
		}
	}
	st := p.States()["gdmf"]
	if st.Failures != 9 || !strings.Contains(st.LastError, "503") || !st.CheckedAt.Equal(lastGood) {
		t.Errorf("state while offline = %+v", st)
	}
	age, kind := Age(p.States(), feeds, start, clk.Now())
	if age != clk.Now().Sub(lastGood) || kind != "gdmf" {
		t.Errorf("age while offline = %v (%s)", age, kind)
	}
	if saved := sk.saved["gdmf"]; saved.Failures != 9 {
		t.Errorf("saved state = %+v, want the failures persisted", saved)
	}

	// Back online with a body the sink refuses: a failure, validators kept.
	fs.mu.Lock()
	fs.fail = 0
	fs.mu.Unlock()
	fs.set("/v2/pmv", `garbage`, `"g3"`, "")
	clk.advance(6 * time.Hour)
	p.RunOnce(ctx)
	if st := p.States()["gdmf"]; st.Failures != 10 || st.ETag != `"g2"` || !strings.Contains(st.LastError, "not a feed") {
		t.Errorf("state after a refused body = %+v", st)
	}
	// And then a good one: failures reset, the age drops to zero.
	fs.set("/v2/pmv", `{"gdmf":3}`, `"g4"`, "")
	clk.advance(6 * time.Hour)
	p.RunOnce(ctx)
	if st := p.States()["gdmf"]; st.Failures != 0 || st.ETag != `"g4"` || st.LastError != "" {
		t.Errorf("state after recovery = %+v", st)
	}
	if age, _ := Age(p.States(), feeds, start, clk.Now()); age != 0 {
		t.Errorf("age after recovery = %v", age)
	}

	// A restart with the saved states sends conditional requests at once.
	p2 := New(feeds, srv.Client(), clk, sk, 6*time.Hour, p.States(), nil)
	fs.took()
	clk.advance(6 * time.Hour)
	p2.RunOnce(ctx)
	if got := fs.took(); !eq(got, []string{"/v2/pmv Not Modified", "/sofa.json Not Modified"}) {
		t.Errorf("requests after restart = %q", got)
	}
	// A state saved for another URL is not reused.
	p3 := New([]Feed{{Kind: "gdmf", URL: srv.URL + "/other"}}, srv.Client(), clk, sk, 0, p.States(), nil)
	if len(p3.States()) != 0 {
		t.Errorf("state of another URL reused: %+v", p3.States())
	}
}

// TestPollerRefusesUntrustedTLS: the feed client verifies certificates; a
// server it does not trust is a failure, not a silent success.
func TestPollerRefusesUntrustedTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	sk := &sink{}
	clk := &fakeClock{now: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	p := New([]Feed{{Kind: "gdmf", URL: srv.URL}}, &http.Client{Timeout: 5 * time.Second}, clk, sk, 0, nil, nil)
	p.RunOnce(t.Context())
	if st := p.States()["gdmf"]; st.Failures != 1 || !strings.Contains(st.LastError, "certificate") {
		t.Errorf("state = %+v, want a certificate failure", st)
	}
	if len(sk.take()) != 0 {
		t.Error("a body from an untrusted server was applied")
	}
}

// TestPollerCapsBody: an oversized feed is refused.
func TestPollerCapsBody(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 32 MiB")
	}
	big := strings.Repeat("x", MaxBody+1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(big)) }))
	defer srv.Close()
	sk := &sink{}
	clk := &fakeClock{now: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	p := New([]Feed{{Kind: "sofa", URL: srv.URL}}, srv.Client(), clk, sk, 0, nil, nil)
	p.RunOnce(t.Context())
	if st := p.States()["sofa"]; st.Failures != 1 || !strings.Contains(st.LastError, "larger than") {
		t.Errorf("state = %+v", st)
	}
}
