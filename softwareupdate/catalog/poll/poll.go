// Package poll keeps the release catalog current without an admin: it
// fetches Apple's software lookup feed (gdmf) and SOFA on an interval with
// conditional requests (If-None-Match / If-Modified-Since, so an unchanged
// feed costs a 304), backs off on errors, and hands new bodies to a Sink
// that parses, stores and merges them. While every fetch fails the catalog
// keeps what it has (the built-in snapshot at worst) and its age grows,
// which /healthz and /metrics report.
//
// Time comes from the injected Clock; RunOnce is the testable step and Run
// the loop around it.
package poll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Default feed URLs and interval.
const (
	GDMFURL         = "https://gdmf.apple.com/v2/pmv"
	SOFAURL         = "https://sofafeed.macadmins.io/v2/macos_data_feed.json"
	DefaultInterval = 6 * time.Hour
	// StaleAfter is the catalog age from which health reports a warning.
	StaleAfter = 72 * time.Hour
	// MaxBody caps one downloaded feed (the SOFA v2 feed is about 500 KB).
	MaxBody = 32 << 20
	// firstRetry is the backoff after one failure; it doubles up to the interval.
	firstRetry = 5 * time.Minute
	// maxErrorLen bounds the error text kept in a feed's state.
	maxErrorLen = 300
	// maxValidatorLen bounds a stored ETag or Last-Modified value.
	maxValidatorLen = 200
)

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Feed is one feed the poller fetches.
type Feed struct {
	Kind string // "gdmf" or "sofa"
	URL  string
}

// State is what the poller remembers about a feed, persisted by the Sink
// so that validators and the catalog's age survive a restart.
type State struct {
	URL string `json:"url"`
	// ETag and LastModified are the validators of the last 200 answer.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// CheckedAt is the last successful check (200 or 304): the feed was
	// current then.
	CheckedAt time.Time `json:"checked_at,omitzero"`
	// ChangedAt is the last time the feed's body was new.
	ChangedAt time.Time `json:"changed_at,omitzero"`
	// Failures counts consecutive failed checks; LastError is the latest.
	Failures  int    `json:"failures,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// NextAt is when the feed is checked next.
	NextAt time.Time `json:"next_at,omitzero"`
}

// Sink applies what the poller fetched.
type Sink interface {
	// Apply parses, stores and merges a new feed body; an error means the
	// body was refused and nothing changed.
	Apply(ctx context.Context, kind, url string, body []byte) error
	// SaveState persists a feed's poll state.
	SaveState(ctx context.Context, kind string, st State) error
}

// Poller fetches the feeds. It is safe for concurrent use.
type Poller struct {
	feeds    []Feed
	hc       *http.Client
	clock    Clock
	sink     Sink
	interval time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	states map[string]State
}

// New returns a poller of feeds every interval (DefaultInterval if zero).
// states are the saved poll states by kind (nil for none); a state whose
// URL differs from the feed's is dropped.
func New(feeds []Feed, hc *http.Client, clock Clock, sink Sink, interval time.Duration, states map[string]State, log *slog.Logger) *Poller {
	if hc == nil || clock == nil || sink == nil {
		panic("poll.New: nil dependency")
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Poller{feeds: feeds, hc: hc, clock: clock, sink: sink, interval: interval, log: log, states: map[string]State{}}
	for _, f := range feeds {
		if st, ok := states[f.Kind]; ok && st.URL == f.URL {
			p.states[f.Kind] = st
		}
	}
	return p
}

// States returns a copy of every feed's state.
func (p *Poller) States() map[string]State {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]State, len(p.states))
	for k, v := range p.states {
		out[k] = v
	}
	return out
}

// RunOnce checks every feed that is due at the clock's now and returns
// when the next check is due.
func (p *Poller) RunOnce(ctx context.Context) time.Time {
	var next time.Time
	for _, f := range p.feeds {
		p.mu.Lock()
		st := p.states[f.Kind]
		p.mu.Unlock()
		if now := p.clock.Now(); st.NextAt.IsZero() || !now.Before(st.NextAt) {
			st = p.check(ctx, f, st)
			p.mu.Lock()
			p.states[f.Kind] = st
			p.mu.Unlock()
			if err := p.sink.SaveState(ctx, f.Kind, st); err != nil && ctx.Err() == nil {
				p.log.Error("catalog poll state not saved", "feed", f.Kind, "err", err)
			}
		}
		if next.IsZero() || st.NextAt.Before(next) {
			next = st.NextAt
		}
	}
	return next
}

// Run checks the feeds until ctx ends, sleeping until the next one is due
// (at most the interval, so a changed clock is noticed).
func (p *Poller) Run(ctx context.Context) {
	for {
		next := p.RunOnce(ctx)
		wait := min(next.Sub(p.clock.Now()), p.interval)
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// check fetches one feed and returns its new state.
func (p *Poller) check(ctx context.Context, f Feed, st State) State {
	st.URL = f.URL
	body, etag, lastMod, err := p.fetch(ctx, f.URL, st)
	if err == nil && body != nil {
		err = p.sink.Apply(ctx, f.Kind, f.URL, body)
	}
	now := p.clock.Now()
	if err != nil {
		st.Failures++
		st.LastError = truncate(err.Error())
		backoff := firstRetry << min(st.Failures-1, 20)
		st.NextAt = now.Add(min(backoff, p.interval))
		p.log.Warn("release feed check failed", "feed", f.Kind, "failures", st.Failures, "next", st.NextAt, "err", err)
		return st
	}
	if body != nil {
		st.ETag, st.LastModified = etag, lastMod
		st.ChangedAt = now
		p.log.Info("release feed changed", "feed", f.Kind, "bytes", len(body))
	} else {
		p.log.Debug("release feed unchanged", "feed", f.Kind)
	}
	st.CheckedAt, st.Failures, st.LastError = now, 0, ""
	st.NextAt = now.Add(p.interval)
	return st
}

// errStatus is a feed answer other than 200 or 304.
var errStatus = errors.New("unexpected HTTP status")

// fetch GETs url with st's validators. A 304 gives a nil body and no error.
func (p *Poller) fetch(ctx context.Context, url string, st State) (body []byte, etag, lastMod string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", "", err
	}
	if st.ETag != "" {
		req.Header.Set("If-None-Match", st.ETag)
	}
	if st.LastModified != "" {
		req.Header.Set("If-Modified-Since", st.LastModified)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, "", "", err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, "", "", nil
	case http.StatusOK:
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, "", "", fmt.Errorf("%w %d", errStatus, resp.StatusCode)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, "", "", fmt.Errorf("read feed: %w", err)
	}
	if len(body) > MaxBody {
		return nil, "", "", fmt.Errorf("feed larger than %d bytes", MaxBody)
	}
	return body, validator(resp.Header.Get("ETag")), validator(resp.Header.Get("Last-Modified")), nil
}

// validator keeps a header value only if it is short enough to store.
func validator(s string) string {
	if len(s) > maxValidatorLen {
		return ""
	}
	return s
}

func truncate(s string) string {
	if len(s) > maxErrorLen {
		return s[:maxErrorLen] + "..."
	}
	return s
}

// Age is how old the catalog is at now: the time since the least recently
// confirmed feed was checked (a feed never checked counts from since,
// normally when the built-in snapshot was taken), and that feed's kind.
func Age(states map[string]State, feeds []Feed, since, now time.Time) (time.Duration, string) {
	var oldest time.Time
	kind := ""
	for _, f := range feeds {
		at := states[f.Kind].CheckedAt
		if at.IsZero() {
			at = since
		}
		if kind == "" || at.Before(oldest) {
			oldest, kind = at, f.Kind
		}
	}
	if kind == "" {
		return now.Sub(since), ""
	}
	return max(now.Sub(oldest), 0), kind
}
