package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog/poll"
)

// CatalogSyncer changes the release catalog and reports its freshness.
// Changes are audited under actor.
type CatalogSyncer interface {
	Sync(ctx context.Context, actor, url string) (*SyncResult, error)
	AddRelease(ctx context.Context, actor string, r catalog.Release) error
	// RemoveRelease removes a release added by hand and returns it.
	RemoveRelease(ctx context.Context, actor string, v catalog.Version) (*catalog.Release, error)
	Status(ctx context.Context) (*CatalogStatus, error)
}

// SyncResult answers a catalog sync.
type SyncResult struct {
	Kind     string `json:"kind"`
	Releases int    `json:"releases"`
	New      int    `json:"new"`
	Changed  int    `json:"changed"`
	// HeldBack lists releases the feed dates in the future: refused until
	// their posting day.
	HeldBack []string `json:"held_back,omitempty"`
}

// CatalogStatus says how current the release catalog is.
type CatalogStatus struct {
	// AgeSeconds is the time since the least recently confirmed feed was
	// checked (since the built-in snapshot was taken if never).
	AgeSeconds int64 `json:"age_seconds"`
	// Stale is set when the age exceeds 3 days.
	Stale      bool   `json:"stale"`
	OldestFeed string `json:"oldest_feed,omitempty"`
	// Polling is set when the server fetches the feeds by itself.
	Polling  bool                  `json:"polling"`
	Feeds    map[string]poll.State `json:"feeds"`
	Releases int                   `json:"releases"`
	// HeldBack lists releases a feed dates in the future.
	HeldBack []string `json:"held_back,omitempty"`
}

// ReleaseRequest adds a release by hand.
type ReleaseRequest struct {
	Version          string   `json:"version"`
	Build            string   `json:"build,omitempty"`
	PostingDate      string   `json:"posting_date"` // YYYY-MM-DD
	SupportedDevices []string `json:"supported_devices,omitempty"`
}

// WithCatalogSync enables POST /catalog/sync and /catalog/releases.
func (s *Server) WithCatalogSync(c CatalogSyncer) *Server {
	s.catSync = c
	return s
}

func (s *Server) registerCatalogSync(v1 *mux.Router) {
	if s.catSync == nil {
		return
	}
	v1.Handle("/catalog/sync", s.handle(s.syncCatalog)).Methods(http.MethodPost)
	v1.Handle("/catalog/releases", s.handle(s.addRelease)).Methods(http.MethodPost)
	v1.Handle("/catalog/releases/{version}", s.handle(s.removeRelease)).Methods(http.MethodDelete)
	v1.Handle("/catalog/status", s.handle(s.catalogStatus)).Methods(http.MethodGet)
}

func (s *Server) syncCatalog(r *http.Request) (any, int, error) {
	var req struct {
		URL string `json:"url"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return nil, 0, err
	}
	res, err := s.catSync.Sync(r.Context(), actor(r), req.URL)
	if err != nil {
		return nil, 0, err
	}
	return res, http.StatusOK, nil
}

func (s *Server) addRelease(r *http.Request) (any, int, error) {
	var req ReleaseRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, 0, err
	}
	v, err := catalog.ParseVersion(req.Version)
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: "version: " + err.Error()}
	}
	posted, err := time.Parse("2006-01-02", req.PostingDate)
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: "posting_date must be YYYY-MM-DD"}
	}
	rel := catalog.Release{Version: v, Build: req.Build, PostingDate: posted, SupportedDevices: req.SupportedDevices}
	if err := s.catSync.AddRelease(r.Context(), actor(r), rel); err != nil {
		return nil, 0, err
	}
	return map[string]string{"added": v.String()}, http.StatusCreated, nil
}

func (s *Server) removeRelease(r *http.Request) (any, int, error) {
	v, err := catalog.ParseVersion(mux.Vars(r)["version"])
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: "version: " + err.Error()}
	}
	rel, err := s.catSync.RemoveRelease(r.Context(), actor(r), v)
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"removed": rel}, http.StatusOK, nil
}

func (s *Server) catalogStatus(r *http.Request) (any, int, error) {
	st, err := s.catSync.Status(r.Context())
	if err != nil {
		return nil, 0, err
	}
	return st, http.StatusOK, nil
}

// Catalog lists the release catalog.
func (c *Client) Catalog(ctx context.Context) ([]ReleaseView, error) {
	var out struct{ Releases []ReleaseView }
	return out.Releases, c.doJSON(ctx, http.MethodGet, "/api/v1/catalog", nil, &out)
}

// SyncCatalog makes the server fetch and merge a gdmf or SOFA feed.
func (c *Client) SyncCatalog(ctx context.Context, url string) (*SyncResult, error) {
	var out SyncResult
	return &out, c.doJSON(ctx, http.MethodPost, "/api/v1/catalog/sync", map[string]string{"url": url}, &out)
}

// AddRelease adds a release by hand.
func (c *Client) AddRelease(ctx context.Context, r ReleaseRequest) error {
	return c.doJSON(ctx, http.MethodPost, "/api/v1/catalog/releases", r, nil)
}

// RemoveRelease removes a release added by hand.
func (c *Client) RemoveRelease(ctx context.Context, version string) (*catalog.Release, error) {
	var out struct{ Removed *catalog.Release }
	return out.Removed, c.doJSON(ctx, http.MethodDelete, "/api/v1/catalog/releases/"+url.PathEscape(version), nil, &out)
}

// CatalogStatus says how current the release catalog is.
func (c *Client) CatalogStatus(ctx context.Context) (*CatalogStatus, error) {
	var out CatalogStatus
	return &out, c.doJSON(ctx, http.MethodGet, "/api/v1/catalog/status", nil, &out)
}
