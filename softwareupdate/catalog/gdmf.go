package catalog

import (
	"errors"
	"fmt"
	"io"
)

// gdmfDoc is the part of Apple's https://gdmf.apple.com/v2/pmv response
// Sundial reads. Each set maps a platform ("macOS", "iOS", ...) to entries.
type gdmfDoc struct {
	PublicAssetSets                      map[string][]gdmfEntry `json:"PublicAssetSets"`
	AssetSets                            map[string][]gdmfEntry `json:"AssetSets"`
	PublicBackgroundSecurityImprovements map[string][]gdmfEntry `json:"PublicBackgroundSecurityImprovements"`
	PublicRapidSecurityResponses         map[string][]gdmfEntry `json:"PublicRapidSecurityResponses"`
}

type gdmfEntry struct {
	ProductVersion      string   `json:"ProductVersion"`
	ProductVersionExtra string   `json:"ProductVersionExtra"`
	Build               string   `json:"Build"`
	PrerequisiteBuild   string   `json:"PrerequisiteBuild"`
	PostingDate         string   `json:"PostingDate"`
	ExpirationDate      string   `json:"ExpirationDate"`
	SupportedDevices    []string `json:"SupportedDevices"`
}

// ParseGDMF parses Apple's software lookup service response (gdmf v2/pmv)
// and returns its macOS releases; other platforms are ignored. Entries of
// PublicAssetSets and AssetSets become regular releases; entries of the
// background-security and rapid-security-response lists, and any entry with
// a ProductVersionExtra or PrerequisiteBuild, become supplemental releases.
// The input is capped at MaxGDMFSize; malformed entries reject the whole
// document with a *FeedError naming the entry.
func ParseGDMF(r io.Reader) (*Catalog, error) {
	const feed = "gdmf"
	b, err := readCapped(r, MaxGDMFSize, feed)
	if err != nil {
		return nil, err
	}
	var doc gdmfDoc
	if err := decodeStrict(b, &doc, feed); err != nil {
		return nil, err
	}
	if doc.PublicAssetSets == nil && doc.AssetSets == nil {
		return nil, &FeedError{Feed: feed, Err: errors.New("no PublicAssetSets or AssetSets (is this a v2/pmv response?)")}
	}
	bld := newBuilder(feed)
	sets := []struct {
		name         string
		set          map[string][]gdmfEntry
		supplemental bool
	}{
		{"PublicAssetSets", doc.PublicAssetSets, false},
		{"AssetSets", doc.AssetSets, false},
		{"PublicBackgroundSecurityImprovements", doc.PublicBackgroundSecurityImprovements, true},
		{"PublicRapidSecurityResponses", doc.PublicRapidSecurityResponses, true},
	}
	for _, s := range sets {
		for i, e := range s.set["macOS"] {
			path := fmt.Sprintf("%s.macOS[%d]", s.name, i)
			rel, err := e.release(s.supplemental)
			if err != nil {
				return nil, &FeedError{Feed: feed, Path: path, Err: err}
			}
			if err := bld.add(path, rel); err != nil {
				return nil, err
			}
		}
	}
	if len(bld.m) == 0 {
		return nil, &FeedError{Feed: feed, Err: errors.New("no macOS releases")}
	}
	return bld.catalog(), nil
}

func (e *gdmfEntry) release(supplemental bool) (Release, error) {
	v, extra, err := splitVersionExtra(e.ProductVersion)
	if err != nil {
		return Release{}, fmt.Errorf("ProductVersion: %w", err)
	}
	if e.ProductVersionExtra != "" {
		extra = e.ProductVersionExtra
	}
	posted, err := parseDay(e.PostingDate)
	if err != nil {
		return Release{}, fmt.Errorf("PostingDate: %w", err)
	}
	expires, err := parseDay(e.ExpirationDate)
	if err != nil {
		return Release{}, fmt.Errorf("ExpirationDate: %w", err)
	}
	return Release{
		Version:           v,
		VersionExtra:      extra,
		Build:             e.Build,
		PrerequisiteBuild: e.PrerequisiteBuild,
		PostingDate:       posted,
		ExpirationDate:    expires,
		SupportedDevices:  e.SupportedDevices,
		Supplemental:      supplemental || extra != "" || e.PrerequisiteBuild != "",
		Sources:           SourceGDMF,
	}, nil
}
