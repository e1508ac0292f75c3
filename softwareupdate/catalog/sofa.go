package catalog

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// SOFA (https://sofa.macadmins.io, Apache-2.0) publishes macOS release
// feeds. Sundial reads release dates, builds, supported devices and CVE data
// from them. v1 and v2 differ in the shape of CVEs (v1: CVE -> exploited
// bool; v2: CVE -> details object), in v2's optional per-release
// SupportedDevices (absent means "same as Latest"), and in v2's extra
// Devices map and BackgroundSecurityImprovements list.

// sofaHead tells v1 from v2 before the shapes that differ are decoded.
type sofaHead struct {
	Version       string `json:"Version"`
	SchemaVersion string `json:"SchemaVersion"`
}

type sofaDoc[C any] struct {
	OSVersions []sofaOSVersion[C]   `json:"OSVersions"`
	Devices    map[string]sofaDev   `json:"Devices"`
	BSI        map[string][]sofaBSI `json:"BackgroundSecurityImprovements"`
}

type sofaOSVersion[C any] struct {
	OSVersion        string           `json:"OSVersion"`
	Latest           *sofaRelease[C]  `json:"Latest"`
	SecurityReleases []sofaRelease[C] `json:"SecurityReleases"`
}

type sofaRelease[C any] struct {
	ProductName           string       `json:"ProductName"`
	ProductVersion        string       `json:"ProductVersion"`
	Build                 string       `json:"Build"`
	AllBuilds             []string     `json:"AllBuilds"`
	ReleaseDate           string       `json:"ReleaseDate"`
	ExpirationDate        string       `json:"ExpirationDate"`
	ReleaseType           string       `json:"ReleaseType"`
	SecurityInfo          string       `json:"SecurityInfo"`
	SupportedDevices      []string     `json:"SupportedDevices"`
	CVEs                  map[string]C `json:"CVEs"`
	ActivelyExploitedCVEs []string     `json:"ActivelyExploitedCVEs"`
	UniqueCVEsCount       int          `json:"UniqueCVEsCount"`
}

// sofaCVEv2 is a v2 CVE detail; only the exploitation flag matters here.
type sofaCVEv2 struct {
	ActivelyExploited *bool `json:"ActivelyExploited"`
}

type sofaDev struct {
	DeviceID string `json:"DeviceID"`
}

type sofaBSI struct {
	Version           string   `json:"Version"`
	VersionExtra      string   `json:"VersionExtra"`
	Build             string   `json:"Build"`
	PostingDate       string   `json:"PostingDate"`
	PrerequisiteBuild string   `json:"PrerequisiteBuild"`
	SupportedDevices  []string `json:"SupportedDevices"`
	SecurityInfo      string   `json:"SecurityInfo"`
	CVEs              []string `json:"CVEs"`
}

// ParseSOFAV1 parses SOFA's v1 macOS feed (v1/macos_data_feed.json). The
// input is capped at MaxSOFASize; malformed releases reject the whole
// document with a *FeedError naming the entry.
func ParseSOFAV1(r io.Reader) (*Catalog, error) {
	const feed = "sofa v1"
	b, err := readCapped(r, MaxSOFASize, feed)
	if err != nil {
		return nil, err
	}
	var head sofaHead
	if err := decodeStrict(b, &head, feed); err != nil {
		return nil, err
	}
	if head.SchemaVersion != "" || strings.HasPrefix(head.Version, "2") {
		return nil, &FeedError{Feed: feed, Err: errors.New("this is a SOFA v2 feed; use ParseSOFAV2")}
	}
	var doc sofaDoc[bool]
	if err := decodeStrict(b, &doc, feed); err != nil {
		return nil, err
	}
	return buildSOFA(feed, &doc, func(exploited bool) bool { return exploited })
}

// ParseSOFAV2 parses SOFA's v2 macOS feed (v2/macos_data_feed.json),
// including its Devices map (model to board IDs, see BoardIDsForModel) and
// its BackgroundSecurityImprovements (as supplemental releases). The input is
// capped at MaxSOFASize; malformed releases reject the whole document with a
// *FeedError naming the entry.
func ParseSOFAV2(r io.Reader) (*Catalog, error) {
	const feed = "sofa v2"
	b, err := readCapped(r, MaxSOFASize, feed)
	if err != nil {
		return nil, err
	}
	var head sofaHead
	if err := decodeStrict(b, &head, feed); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(head.Version, "2") {
		return nil, &FeedError{Feed: feed, Err: fmt.Errorf("Version %q is not 2.x (is this a SOFA v1 feed?)", truncate(head.Version))}
	}
	var doc sofaDoc[sofaCVEv2]
	if err := decodeStrict(b, &doc, feed); err != nil {
		return nil, err
	}
	return buildSOFA(feed, &doc, func(c sofaCVEv2) bool { return c.ActivelyExploited != nil && *c.ActivelyExploited })
}

func buildSOFA[C any](feed string, doc *sofaDoc[C], exploited func(C) bool) (*Catalog, error) {
	if len(doc.OSVersions) == 0 {
		return nil, &FeedError{Feed: feed, Err: errors.New("no OSVersions")}
	}
	bld := newBuilder(feed)
	for i, osv := range doc.OSVersions {
		var inherit []string
		if osv.Latest != nil {
			inherit = osv.Latest.SupportedDevices
			path := fmt.Sprintf("OSVersions[%d].Latest", i)
			if err := addSOFARelease(bld, path, osv.Latest, inherit, exploited); err != nil {
				return nil, err
			}
		}
		for j := range osv.SecurityReleases {
			path := fmt.Sprintf("OSVersions[%d].SecurityReleases[%d]", i, j)
			if err := addSOFARelease(bld, path, &osv.SecurityReleases[j], inherit, exploited); err != nil {
				return nil, err
			}
		}
	}
	for major, list := range doc.BSI {
		for i, e := range list {
			path := fmt.Sprintf("BackgroundSecurityImprovements[%q][%d]", truncate(major), i)
			rel, err := e.release()
			if err != nil {
				return nil, &FeedError{Feed: feed, Path: path, Err: err}
			}
			if err := bld.add(path, rel); err != nil {
				return nil, err
			}
		}
	}
	for board, dev := range doc.Devices {
		if dev.DeviceID == "" {
			continue
		}
		if !validBoardID(board) || !validBoardID(dev.DeviceID) {
			return nil, &FeedError{Feed: feed, Path: "Devices", Err: fmt.Errorf("malformed device entry %q: %q", truncate(board), truncate(dev.DeviceID))}
		}
		bld.models[dev.DeviceID] = append(bld.models[dev.DeviceID], board)
	}
	if len(bld.m) == 0 {
		return nil, &FeedError{Feed: feed, Err: errors.New("no macOS releases")}
	}
	return bld.catalog(), nil
}

func addSOFARelease[C any](bld *builder, path string, s *sofaRelease[C], inherit []string, exploited func(C) bool) error {
	if s.ProductName != "" && s.ProductName != "macOS" {
		return nil // SOFA's macOS feed only lists macOS, but be safe
	}
	rel, err := s.release(inherit, exploited)
	if err != nil {
		return &FeedError{Feed: bld.feed, Path: path, Err: err}
	}
	return bld.add(path, rel)
}

func (s *sofaRelease[C]) release(inherit []string, exploited func(C) bool) (Release, error) {
	v, extra, err := splitVersionExtra(s.ProductVersion)
	if err != nil {
		return Release{}, fmt.Errorf("ProductVersion: %w", err)
	}
	released, err := parseDay(s.ReleaseDate)
	if err != nil {
		return Release{}, fmt.Errorf("ReleaseDate: %w", err)
	}
	if released.IsZero() {
		return Release{}, errors.New("ReleaseDate is required")
	}
	expires, err := parseDay(s.ExpirationDate)
	if err != nil {
		return Release{}, fmt.Errorf("ExpirationDate: %w", err)
	}
	if s.UniqueCVEsCount < 0 {
		return Release{}, fmt.Errorf("negative UniqueCVEsCount %d", s.UniqueCVEsCount)
	}
	devices := s.SupportedDevices
	if devices == nil {
		devices = inherit
	}
	active := append([]string(nil), s.ActivelyExploitedCVEs...)
	for id, c := range s.CVEs {
		if !validCVE(id) {
			return Release{}, fmt.Errorf("malformed CVE ID %q", truncate(id))
		}
		if exploited(c) {
			active = append(active, id)
		}
	}
	for _, id := range active {
		if !validCVE(id) {
			return Release{}, fmt.Errorf("malformed CVE ID %q", truncate(id))
		}
	}
	count := s.UniqueCVEsCount
	if count == 0 {
		count = len(s.CVEs)
	}
	t := strings.ToUpper(s.ReleaseType)
	return Release{
		Version:               v,
		VersionExtra:          extra,
		Build:                 s.Build,
		AllBuilds:             s.AllBuilds,
		PostingDate:           released,
		ReleaseDate:           released,
		ExpirationDate:        expires,
		SupportedDevices:      devices,
		Supplemental:          extra != "" || strings.Contains(t, "RSR") || strings.Contains(t, "BSI"),
		CVECount:              count,
		ActivelyExploitedCVEs: active,
		SecurityInfo:          s.SecurityInfo,
		Sources:               SourceSOFA,
	}, nil
}

func (e *sofaBSI) release() (Release, error) {
	v, extra, err := splitVersionExtra(e.Version)
	if err != nil {
		return Release{}, fmt.Errorf("Version: %w", err)
	}
	if e.VersionExtra != "" {
		extra = e.VersionExtra
	}
	posted, err := parseDay(e.PostingDate)
	if err != nil {
		return Release{}, fmt.Errorf("PostingDate: %w", err)
	}
	for _, id := range e.CVEs {
		if !validCVE(id) {
			return Release{}, fmt.Errorf("malformed CVE ID %q", truncate(id))
		}
	}
	return Release{
		Version:           v,
		VersionExtra:      extra,
		Build:             e.Build,
		PrerequisiteBuild: e.PrerequisiteBuild,
		PostingDate:       posted,
		ReleaseDate:       posted,
		SupportedDevices:  e.SupportedDevices,
		Supplemental:      true,
		CVECount:          len(e.CVEs),
		SecurityInfo:      e.SecurityInfo,
		Sources:           SourceSOFA,
	}, nil
}

// validCVE accepts identifiers such as "CVE-2026-43794".
func validCVE(s string) bool {
	if len(s) < 9 || len(s) > 32 || !strings.HasPrefix(s, "CVE-") {
		return false
	}
	for i := 4; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
