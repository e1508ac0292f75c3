package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

// CatalogSyncer changes the release catalog.
type CatalogSyncer interface {
	Sync(ctx context.Context, url string) (*SyncResult, error)
	AddRelease(ctx context.Context, r catalog.Release) error
}

// SyncResult answers a catalog sync.
type SyncResult struct {
	Kind     string `json:"kind"`
	Releases int    `json:"releases"`
	New      int    `json:"new"`
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
}

func (s *Server) syncCatalog(r *http.Request) (any, int, error) {
	var req struct {
		URL string `json:"url"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return nil, 0, err
	}
	res, err := s.catSync.Sync(r.Context(), req.URL)
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
	if err := s.catSync.AddRelease(r.Context(), rel); err != nil {
		return nil, 0, err
	}
	return map[string]string{"added": v.String()}, http.StatusCreated, nil
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
