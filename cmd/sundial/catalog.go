package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

// maxFeed caps a downloaded release feed.
const maxFeed = 32 << 20

// catalogSource parses, merges and persists release feeds for the admin
// API, and tells the scheduler when the catalog changed.
type catalogSource struct{ a *app }

// loadCatalog merges what admins synced and added into the built-in
// snapshot.
func (a *app) loadCatalog(ctx context.Context) error {
	feeds, err := a.store.CatalogFeeds(ctx)
	if err != nil {
		return err
	}
	for kind, body := range feeds {
		c, err := parseFeed(body)
		if err != nil {
			a.log.Error("stored release feed unreadable; ignored", "kind", kind, "err", err)
			continue
		}
		a.catalog.Merge(c)
	}
	rels, err := a.store.ManualReleases(ctx)
	if err != nil {
		return err
	}
	for _, b := range rels {
		var r catalog.Release
		if err := json.Unmarshal(b, &r); err != nil {
			a.log.Error("stored manual release unreadable; ignored", "err", err)
			continue
		}
		if err := a.catalog.Add(r); err != nil && !errors.Is(err, catalog.ErrExists) {
			a.log.Error("stored manual release refused", "version", r.Version.String(), "err", err)
		}
	}
	return nil
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

// Sync implements api.CatalogSyncer.
func (s catalogSource) Sync(ctx context.Context, rawURL string) (*api.SyncResult, error) {
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
	c, err := parseFeed(body)
	if err != nil {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "feed: " + err.Error()}
	}
	kind := feedKind(body)
	before := s.a.catalog.Len()
	if err := s.a.store.PutCatalogFeed(ctx, kind, body, s.a.clock.Now()); err != nil {
		return nil, err
	}
	s.a.catalog.Merge(c)
	s.a.sched.CatalogChanged()
	res := &api.SyncResult{Kind: kind, Releases: c.Len(), New: s.a.catalog.Len() - before}
	s.a.log.Info("release catalog synced", "kind", kind, "url", rawURL, "releases", res.Releases, "new", res.New)
	return res, nil
}

// AddRelease implements api.CatalogSyncer.
func (s catalogSource) AddRelease(ctx context.Context, r catalog.Release) error {
	if err := s.a.catalog.Add(r); err != nil {
		if errors.Is(err, catalog.ErrExists) {
			return &api.Error{Code: api.CodeConflict, Message: err.Error()}
		}
		return &api.Error{Code: api.CodeInvalid, Message: err.Error()}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.a.store.PutManualRelease(ctx, r.Version.String(), b); err != nil {
		return err
	}
	s.a.sched.CatalogChanged()
	s.a.log.Info("release added by hand", "version", r.Version.String(), "build", r.Build)
	return nil
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
