package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog/poll"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// maxFeed caps a downloaded release feed.
const maxFeed = poll.MaxBody

// pollerActor is who the audit log names for automatic catalog syncs.
const pollerActor = "catalog poller"

// catalogState serializes the release catalog's writers (admin sync, add
// and remove, the poller) and holds back releases posted in the future.
type catalogState struct {
	mu     sync.Mutex
	future *catalog.Catalog // held back until their posting day; nil if none
	// seen is the catalogFingerprint of the stored catalog this replica
	// last built from; a change made here clears it, so that the next
	// refresh rebuilds once (another replica's change made meanwhile must
	// not pass for ours, and A-B-A changes must not look like none).
	seen string
}

// catalogFollowEvery is how often a replica checks whether another one
// changed the stored catalog (two small reads).
const catalogFollowEvery = time.Minute

// catalogSource parses, merges and persists release feeds for the admin
// API and the poller, and tells the scheduler when the catalog changed.
type catalogSource struct{ a *app }

// loadCatalog merges what was synced and added into the built-in snapshot.
func (a *app) loadCatalog(ctx context.Context) error {
	a.catState = &catalogState{}
	fp, err := a.catalogFingerprint(ctx)
	if err != nil {
		return err
	}
	fresh, err := a.buildCatalog(ctx)
	if err != nil {
		return err
	}
	a.catalog.Replace(fresh)
	a.catState.seen = fp
	return nil
}

// catalogFingerprint summarizes the stored catalog: each feed's last
// change and the releases added by hand. Replicas compare it to notice a
// change another replica made (a poll on the leader, an admin's add or
// remove on any replica).
func (a *app) catalogFingerprint(ctx context.Context) (string, error) {
	polls, err := a.loadPollStates(ctx)
	if err != nil {
		return "", err
	}
	manual, err := a.store.ManualReleases(ctx)
	if err != nil {
		return "", err
	}
	kinds := make([]string, 0, len(polls))
	for k := range polls {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	h := sha256.New()
	for _, k := range kinds {
		// A feed never fetched has no stored body: its failed checks
		// save a state but change nothing to rebuild.
		if at := polls[k].ChangedAt; !at.IsZero() {
			fmt.Fprintf(h, "%s %d\n", k, at.UnixNano())
		}
	}
	for _, m := range manual {
		h.Write(m)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// refreshCatalog rebuilds the catalog from storage if the stored catalog
// changed since this replica last built it, and says whether it did.
func (a *app) refreshCatalog(ctx context.Context) (bool, error) {
	fp, err := a.catalogFingerprint(ctx)
	if err != nil {
		return false, err
	}
	a.catState.mu.Lock()
	defer a.catState.mu.Unlock()
	if fp == a.catState.seen {
		return false, nil
	}
	fresh, err := a.buildCatalog(ctx)
	if err != nil {
		return false, err
	}
	added, changed := catalogDiff(a.catalog, fresh)
	a.catalog.Replace(fresh)
	a.catState.seen = fp
	if added+changed > 0 {
		a.sched.CatalogChanged()
		a.log.Info("release catalog reloaded: another replica changed it", "new", added, "changed", changed)
	}
	return true, nil
}

// catalogDiff counts the releases of fresh that cur lacks or holds
// differently (removed releases count as changed).
func catalogDiff(cur, fresh *catalog.Catalog) (added, changed int) {
	probe := cur.Clone()
	added, changed = probe.MergeCount(fresh)
	if probe.Len() != fresh.Len() {
		changed++ // something was removed
	}
	return added, changed
}

// followCatalog runs refreshCatalog every catalogFollowEvery until ctx
// ends; the returned channel closes when it has stopped. When this process
// alone uses the store no other replica can change the catalog: it only
// refreshes after a change of its own (which clears catState.seen).
func (a *app) followCatalog(ctx context.Context) <-chan struct{} {
	_, sole := a.store.(storage.LeaseHolder)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(catalogFollowEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if sole && !a.ownCatalogChange() {
				continue
			}
			if _, err := a.refreshCatalog(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("release catalog reload failed", "err", err)
			}
		}
	}()
	return done
}

// ownCatalogChange reports whether this replica changed the stored catalog
// since it last built it.
func (a *app) ownCatalogChange() bool {
	a.catState.mu.Lock()
	defer a.catState.mu.Unlock()
	return a.catState.seen == ""
}

// buildCatalog builds the catalog from the built-in snapshot, the stored
// feeds (releases posted in the future held back) and the releases added
// by hand. Callers hold catState.mu or run before serving.
func (a *app) buildCatalog(ctx context.Context) (*catalog.Catalog, error) {
	c := catalog.Default()
	feeds, err := a.store.CatalogFeeds(ctx)
	if err != nil {
		return nil, err
	}
	a.catState.future = nil
	now := a.clock.Now()
	for kind, body := range feeds {
		fc, err := parseFeed(body)
		if err != nil {
			a.log.Error("stored release feed unreadable; ignored", "kind", kind, "err", err)
			continue
		}
		kept, future := fc.WithoutFuture(now)
		c.Merge(kept)
		a.holdBack(future)
	}
	// Expiration dates count as of the last time Apple's feed confirmed them.
	if polls, err := a.loadPollStates(ctx); err != nil {
		return nil, err
	} else if g := polls["gdmf"]; !g.CheckedAt.IsZero() {
		c.SetAsOf(g.CheckedAt)
	}
	rels, err := a.store.ManualReleases(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range rels {
		var r catalog.Release
		if err := json.Unmarshal(b, &r); err != nil {
			a.log.Error("stored manual release unreadable; ignored", "err", err)
			continue
		}
		if err := c.Add(r); err != nil && !errors.Is(err, catalog.ErrExists) {
			a.log.Error("stored manual release refused", "version", r.Version.String(), "err", err)
		}
	}
	return c, nil
}

// holdBack remembers releases posted in the future.
func (a *app) holdBack(future *catalog.Catalog) {
	if future == nil {
		return
	}
	if a.catState.future == nil {
		a.catState.future = &catalog.Catalog{}
	}
	a.catState.future.Merge(future)
}

// admitDue merges the held-back releases whose posting day has come, and
// says whether any did.
func (a *app) admitDue(ctx context.Context) bool {
	if a.catState.future == nil {
		return false
	}
	due, later := a.catState.future.WithoutFuture(a.clock.Now())
	if later == a.catState.future {
		return false
	}
	a.catState.future = later
	learned := newReleases(a.catalog, due)
	added, changed := a.catalog.MergeCount(due)
	a.announceReleases(ctx, learned, "feed")
	return added+changed > 0
}

// newReleases lists the releases of c (main and supplemental) that cur
// does not hold, compared as the catalog keys them.
func newReleases(cur, c *catalog.Catalog) []catalog.Release {
	if c == nil {
		return nil
	}
	type key struct {
		v            catalog.Version
		extra        string
		supplemental bool
	}
	have := map[key]bool{}
	for _, list := range [][]catalog.Release{cur.Releases(), cur.Supplementals()} {
		for _, r := range list {
			have[key{r.Version, r.VersionExtra, r.Supplemental}] = true
		}
	}
	var out []catalog.Release
	for _, list := range [][]catalog.Release{c.Releases(), c.Supplementals()} {
		for _, r := range list {
			if !have[key{r.Version, r.VersionExtra, r.Supplemental}] {
				out = append(out, r)
			}
		}
	}
	return out
}

// announceAdmitted queues catalog.new_release for the releases of the
// stored feeds that were held back when their feed last changed and whose
// posting day has come since: admitDue announces those while the leader
// polls, this catches the ones admitted by a rebuild (a restart, a new
// leader). The ledger drops those already announced. Leader only.
func (a *app) announceAdmitted(ctx context.Context) {
	feeds, err := a.store.CatalogFeeds(ctx)
	if err != nil {
		a.log.Error("held-back releases not checked", "err", err)
		return
	}
	polls, err := a.loadPollStates(ctx)
	if err != nil {
		a.log.Error("held-back releases not checked", "err", err)
		return
	}
	now := a.clock.Now()
	for kind, body := range feeds {
		changed := polls[kind].ChangedAt
		if changed.IsZero() {
			continue
		}
		fc, err := parseFeed(body)
		if err != nil {
			continue // buildCatalog logged it
		}
		_, then := fc.WithoutFuture(changed)
		if then == nil {
			continue
		}
		_, later := fc.WithoutFuture(now)
		if later == nil {
			later = &catalog.Catalog{}
		}
		a.announceReleases(ctx, newReleases(later, then), "feed")
	}
}

// releaseEvents is the catalog.new_release events of releases the catalog
// is about to learn from source, fanned out for a CatalogAnnounceStore call.
func (a *app) releaseEvents(ctx context.Context, rels []catalog.Release, source string) ([]storage.WebhookOnceEvent, error) {
	now := a.clock.Now()
	evs, err := webhook.ReleaseEvents(rels, source, now)
	if err != nil {
		return nil, err
	}
	return webhook.OnceEvents(ctx, a.store, evs, now.Add(webhook.ReleaseKeep))
}

// announceReleases queues catalog.new_release, once per release, for
// held-back releases the catalog just admitted on their posting day (no
// stored change goes with it). A failure is logged, not returned.
func (a *app) announceReleases(ctx context.Context, rels []catalog.Release, source string) {
	if len(rels) == 0 {
		return
	}
	now := a.clock.Now()
	evs, err := webhook.ReleaseEvents(rels, source, now)
	if err == nil {
		_, err = webhook.EmitOnce(ctx, a.store, evs, now.Add(webhook.ReleaseKeep))
	}
	if err != nil {
		a.log.Error("catalog.new_release webhooks not queued", "releases", len(rels), "err", err)
	}
}

// parseFeed recognises a gdmf or SOFA (v2, then v1) body.
func parseFeed(body []byte) (*catalog.Catalog, error) {
	switch {
	case bytes.Contains(body, []byte(`"PublicAssetSets"`)) || bytes.Contains(body, []byte(`"AssetSets"`)):
		return catalog.ParseGDMF(bytes.NewReader(body))
	case bytes.Contains(body, []byte(`"OSVersions"`)):
		if c, err := catalog.ParseSOFAV2(bytes.NewReader(body)); err == nil {
			return c, nil
		}
		return catalog.ParseSOFAV1(bytes.NewReader(body))
	}
	return nil, errors.New("not a gdmf (v2/pmv) or SOFA macOS feed")
}

func feedKind(body []byte) string {
	if bytes.Contains(body, []byte(`"OSVersions"`)) {
		return "sofa"
	}
	return "gdmf"
}

// auditCatalog records a catalog change; like the API's audit, a failure
// is logged: the change is made.
func (a *app) auditCatalog(ctx context.Context, actor, action, subject string, before, after any) {
	e, err := scheduler.NewAuditEntry(a.clock.Now().UTC(), actor, action, subject, before, after)
	if err == nil {
		err = a.store.AppendAudit(ctx, e)
	}
	if err != nil {
		a.log.Error("audit entry not written", "action", action, "subject", subject, "err", err)
	}
}

// applyFeed parses a feed body, holds back releases posted in the future,
// stores the body, merges it, re-evaluates the fleet if anything changed,
// and audits the sync. A body that does not parse changes nothing.
func (a *app) applyFeed(ctx context.Context, actor, rawURL string, body []byte) (*api.SyncResult, error) {
	c, err := parseFeed(body)
	if err != nil {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "feed: " + err.Error()}
	}
	kind := feedKind(body)
	kept, future := c.WithoutFuture(a.clock.Now())
	res := &api.SyncResult{Kind: kind, Releases: c.Len()}
	if future != nil {
		for _, r := range append(future.Releases(), future.Supplementals()...) {
			res.HeldBack = append(res.HeldBack, r.Name()+" (posted "+r.PostingDate.Format(time.DateOnly)+")")
		}
		a.log.Warn("release feed lists releases posted in the future; held back until their day", "kind", kind, "releases", res.HeldBack)
	}
	a.catState.mu.Lock()
	defer a.catState.mu.Unlock()
	// The releases new to the catalog are announced in the transaction
	// that stores the feed.
	events, err := a.releaseEvents(ctx, newReleases(a.catalog, kept), kind)
	if err != nil {
		return nil, err
	}
	if err := a.store.PutCatalogFeedAnnounced(ctx, kind, body, a.clock.Now(), events); err != nil {
		return nil, err
	}
	res.New, res.Changed = a.catalog.MergeCount(kept)
	a.catState.seen = "" // own change: rebuild once at the next refresh
	if kind == "gdmf" {
		a.catalog.SetAsOf(a.clock.Now())
	}
	a.holdBack(future)
	if res.New+res.Changed > 0 {
		a.sched.CatalogChanged()
	}
	a.log.Info("release catalog synced", "kind", kind, "url", rawURL, "releases", res.Releases, "new", res.New, "changed", res.Changed)
	a.auditCatalog(ctx, actor, "catalog.sync", kind, nil, map[string]any{"url": rawURL, "result": res})
	return res, nil
}

// Sync implements api.CatalogSyncer.
func (s catalogSource) Sync(ctx context.Context, actor, rawURL string) (*api.SyncResult, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "url must be an absolute http(s) URL"}
	}
	hc, err := s.a.feedClient()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &api.Error{Code: api.CodeInvalid, Message: err.Error()}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &api.Error{Code: api.CodeUnavailable, Message: "fetch feed: " + err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf("fetch feed: %s answered %d", u.Host, resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFeed+1))
	if err != nil {
		return nil, &api.Error{Code: api.CodeUnavailable, Message: "fetch feed: " + err.Error()}
	}
	if len(body) > maxFeed {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "feed larger than 32 MiB"}
	}
	res, err := s.a.applyFeed(ctx, actor, rawURL, body)
	if err != nil {
		return nil, err
	}
	// The feed is current now: record it for the catalog's age.
	now := s.a.clock.Now()
	st := poll.State{URL: rawURL, CheckedAt: now, ChangedAt: now}
	if err := s.a.savePollState(ctx, res.Kind, st); err != nil {
		s.a.log.Error("catalog poll state not saved", "feed", res.Kind, "err", err)
	}
	return res, nil
}

// AddRelease implements api.CatalogSyncer. A release posted after
// tomorrow is refused: it would start automatic deadlines early.
func (s catalogSource) AddRelease(ctx context.Context, actor string, r catalog.Release) error {
	if r.PostedInFuture(s.a.clock.Now()) {
		return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("posting date %s is in the future", r.PostingDate.Format(time.DateOnly))}
	}
	s.a.catState.mu.Lock()
	defer s.a.catState.mu.Unlock()
	if err := s.a.catalog.Add(r); err != nil {
		if errors.Is(err, catalog.ErrExists) {
			return &api.Error{Code: api.CodeConflict, Message: err.Error()}
		}
		return &api.Error{Code: api.CodeInvalid, Message: err.Error()}
	}
	added, _ := s.a.catalog.Lookup(r.Version)
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	events, err := s.a.releaseEvents(ctx, []catalog.Release{added}, "manual")
	if err != nil {
		return err
	}
	if err := s.a.store.PutManualReleaseAnnounced(ctx, r.Version.String(), b, events); err != nil {
		return err
	}
	s.a.catState.seen = ""
	s.a.sched.CatalogChanged()
	s.a.log.Info("release added by hand", "version", r.Version.String(), "build", r.Build)
	s.a.auditCatalog(ctx, actor, "catalog.add", r.Version.String(), nil, added)
	return nil
}

// RemoveRelease implements api.CatalogSyncer. Only releases added by hand
// can be removed; the catalog is rebuilt without it (a feed that lists the
// same version keeps it).
func (s catalogSource) RemoveRelease(ctx context.Context, actor string, v catalog.Version) (*catalog.Release, error) {
	s.a.catState.mu.Lock()
	defer s.a.catState.mu.Unlock()
	before, known := s.a.catalog.Lookup(v)
	if err := s.a.store.DeleteManualRelease(ctx, v.String()); err != nil {
		if errors.Is(err, storage.ErrNotFound) && known {
			return nil, &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("macOS %s comes from the %s feed: only releases added by hand can be removed", v, before.Sources)}
		}
		if errors.Is(err, storage.ErrNotFound) {
			return nil, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("no release %s was added by hand", v)}
		}
		return nil, err
	}
	s.a.catState.seen = ""
	fresh, err := s.a.buildCatalog(ctx)
	if err != nil {
		return nil, err
	}
	s.a.catalog.Replace(fresh)
	s.a.sched.CatalogChanged()
	s.a.log.Info("release removed", "version", v.String())
	s.a.auditCatalog(ctx, actor, "catalog.remove", v.String(), before, nil)
	return &before, nil
}

// Status implements api.CatalogSyncer.
func (s catalogSource) Status(ctx context.Context) (*api.CatalogStatus, error) {
	return s.a.catalogStatus(ctx)
}

// catalogStatus reports the catalog's age from the stored poll states (so
// every replica, leader or not, reports the same).
func (a *app) catalogStatus(ctx context.Context) (*api.CatalogStatus, error) {
	states, err := a.loadPollStates(ctx)
	if err != nil {
		return nil, err
	}
	feeds := a.catalogFeeds()
	if len(feeds) == 0 { // not polling: whatever admins synced
		for kind, st := range states {
			feeds = append(feeds, poll.Feed{Kind: kind, URL: st.URL})
		}
	}
	now := a.clock.Now()
	age, oldest := poll.Age(states, feeds, catalog.SnapshotTaken, now)
	st := &api.CatalogStatus{AgeSeconds: int64(age / time.Second), Stale: age > poll.StaleAfter, OldestFeed: oldest,
		Polling: len(a.catalogFeeds()) > 0, Feeds: states, Releases: a.catalog.Len()}
	a.catState.mu.Lock()
	if f := a.catState.future; f != nil {
		for _, r := range append(f.Releases(), f.Supplementals()...) {
			st.HeldBack = append(st.HeldBack, r.Name())
		}
	}
	a.catState.mu.Unlock()
	return st, nil
}

// catalogFeeds are the feeds the poller fetches; none when polling is off.
func (a *app) catalogFeeds() []poll.Feed {
	if a.cfg.CatalogInterval <= 0 {
		return nil
	}
	var out []poll.Feed
	if a.cfg.CatalogGDMFURL != "" {
		out = append(out, poll.Feed{Kind: "gdmf", URL: a.cfg.CatalogGDMFURL})
	}
	if a.cfg.CatalogSOFAURL != "" {
		out = append(out, poll.Feed{Kind: "sofa", URL: a.cfg.CatalogSOFAURL})
	}
	return out
}

// loadPollStates reads the stored poll states; unreadable ones are skipped.
func (a *app) loadPollStates(ctx context.Context) (map[string]poll.State, error) {
	raw, err := a.store.CatalogPolls(ctx)
	if err != nil {
		return nil, err
	}
	states := map[string]poll.State{}
	for kind, b := range raw {
		var st poll.State
		if err := json.Unmarshal(b, &st); err != nil {
			a.log.Error("catalog poll state unreadable; ignored", "feed", kind, "err", err)
			continue
		}
		states[kind] = st
	}
	return states, nil
}

func (a *app) savePollState(ctx context.Context, kind string, st poll.State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return a.store.PutCatalogPoll(ctx, kind, b)
}

// pollSink is the poller's view of the app.
type pollSink struct{ a *app }

// Apply implements poll.Sink.
func (p pollSink) Apply(ctx context.Context, kind, rawURL string, body []byte) error {
	if got := feedKind(body); got != kind {
		return fmt.Errorf("expected a %s feed, got a %s one", kind, got)
	}
	_, err := p.a.applyFeed(ctx, pollerActor, rawURL, body)
	return err
}

// SaveState implements poll.Sink. After every check it also admits the
// held-back releases whose posting day has come (an unchanged feed is
// never applied again).
func (p pollSink) SaveState(ctx context.Context, kind string, st poll.State) error {
	p.a.catState.mu.Lock()
	if kind == "gdmf" && st.Failures == 0 && !st.CheckedAt.IsZero() {
		p.a.catalog.SetAsOf(st.CheckedAt) // a 304 confirms the data too
	}
	if p.a.admitDue(ctx) {
		p.a.sched.CatalogChanged()
		p.a.log.Info("held-back releases reached their posting day")
	}
	p.a.catState.mu.Unlock()
	return p.a.savePollState(ctx, kind, st)
}

// startCatalogPoller runs the poller until ctx ends (on the scheduler
// leader only: one replica fetches for all). The returned channel closes
// when it has stopped; it is closed at once when polling is off. First it
// announces the held-back releases admitted while no leader polled.
func (a *app) startCatalogPoller(ctx context.Context) <-chan struct{} {
	a.announceAdmitted(ctx) // also when polling is off: a sync stores feeds too
	done := make(chan struct{})
	feeds := a.catalogFeeds()
	if len(feeds) == 0 {
		close(done)
		return done
	}
	hc, err := a.feedClient()
	if err != nil {
		a.log.Error("catalog poller not started", "err", err)
		close(done)
		return done
	}
	states, err := a.loadPollStates(ctx)
	if err != nil {
		a.log.Error("catalog poll states not loaded; polling from scratch", "err", err)
	}
	p := poll.New(feeds, hc, a.clock, pollSink{a}, a.cfg.CatalogInterval, states, a.log)
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	return done
}

// catalogCollector exports the catalog's age and feed failures.
type catalogCollector struct {
	a                   *app
	age, stale, failing *prometheus.Desc
}

func newCatalogCollector(a *app) *catalogCollector {
	return &catalogCollector{a: a,
		age:     prometheus.NewDesc("sundial_catalog_age_seconds", "Time since the least recently confirmed release feed was checked (since the built-in snapshot if never).", nil, nil),
		stale:   prometheus.NewDesc("sundial_catalog_stale", "1 when the release catalog is older than 3 days.", nil, nil),
		failing: prometheus.NewDesc("sundial_catalog_feed_failures", "Consecutive failed checks of a release feed.", []string{"feed"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *catalogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.age
	ch <- c.stale
	ch <- c.failing
}

// Collect implements prometheus.Collector.
func (c *catalogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.a.catalogStatus(ctx)
	if err != nil {
		c.a.log.Error("catalog status for metrics", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, float64(st.AgeSeconds))
	stale := 0.0
	if st.Stale {
		stale = 1
	}
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, stale)
	for kind, fs := range st.Feeds {
		ch <- prometheus.MustNewConstMetric(c.failing, prometheus.GaugeValue, float64(fs.Failures), kind)
	}
}

// catalogHealth adds the catalog's age to /healthz, and a warning when it
// is stale.
func (a *app) catalogHealth(ctx context.Context, h *health) {
	st, err := a.catalogStatus(ctx)
	if err != nil {
		h.Issues = append(h.Issues, "release catalog status unavailable: "+err.Error())
		return
	}
	h.Catalog = st
	if st.Stale {
		msg := fmt.Sprintf("release catalog is %d days old", st.AgeSeconds/86400)
		if fs, ok := st.Feeds[st.OldestFeed]; ok && fs.LastError != "" {
			msg += fmt.Sprintf(" (%s feed: %s)", st.OldestFeed, fs.LastError)
		} else if !st.Polling {
			msg += ": automatic polling is off (--catalog-interval), run sundial catalog sync"
		}
		h.Issues = append(h.Issues, msg)
	}
}

// feedClient trusts the system roots plus --catalog-ca.
func (a *app) feedClient() (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.cfg.CatalogCA != "" {
		pemBytes, err := os.ReadFile(a.cfg.CatalogCA)
		if err != nil {
			return nil, fmt.Errorf("--catalog-ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--catalog-ca %s holds no PEM certificate", a.cfg.CatalogCA)
		}
		tc.RootCAs = pool
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}, nil
}
