package mdmtest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Update is one software update the simulated catalog offers.
type Update struct {
	ProductKey                 string // e.g. "MSU_UPDATE_24D2082_patch_15.3.2_minor"
	HumanReadableName          string // e.g. "macOS Sequoia 15.3.2"
	Version                    string // e.g. "15.3.2"
	Build                      string // e.g. "24D2082"
	SupplementalBuildVersion   string // RSR only
	SupplementalOSVersionExtra string // RSR only, e.g. "(a)"
	IsMajorOSUpdate            bool
	IsSecurityResponse         bool
	IsCritical                 bool
	RestartRequired            bool
	AllowsInstallLater         bool
	DownloadSize               int64 // bytes
	InstallSize                int64 // bytes
	// IsFullInstaller: an InstallAssistant full installer, which macOS 13
	// and earlier list beside the OTA update of a major upgrade. It takes
	// InstallASAP only; other actions are answered with an Error item.
	IsFullInstaller bool
}

// MinorUpdate returns a minor (patch) macOS update with the ProductKey format
// macOS uses for OTA updates.
func MinorUpdate(version, build string) Update {
	return Update{
		ProductKey:         "MSU_UPDATE_" + build + "_patch_" + version + "_minor",
		HumanReadableName:  "macOS " + version,
		Version:            version,
		Build:              build,
		RestartRequired:    true,
		AllowsInstallLater: true,
		DownloadSize:       1_900_000_000,
		InstallSize:        4_500_000_000,
	}
}

// MajorUpdate returns a major macOS upgrade.
func MajorUpdate(version, build string) Update {
	u := MinorUpdate(version, build)
	u.ProductKey = "MSU_UPDATE_" + build + "_patch_" + version + "_major"
	u.IsMajorOSUpdate = true
	u.AllowsInstallLater = false
	u.DownloadSize = 7_200_000_000
	u.InstallSize = 14_000_000_000
	return u
}

// FullInstaller returns the InstallAssistant full installer of a major
// upgrade, under the kind of key macOS 13 lists it with (_MACOS_<version>).
func FullInstaller(version, build string) Update {
	u := MajorUpdate(version, build)
	u.ProductKey = "_MACOS_" + version
	u.IsFullInstaller = true
	u.DownloadSize = 13_000_000_000
	return u
}

func (u Update) validate() error {
	if u.ProductKey == "" || u.Build == "" {
		return fmt.Errorf("update %q: ProductKey and Build are required", u.Version)
	}
	if _, err := parseVersion(u.Version); err != nil {
		return fmt.Errorf("update %q: %w", u.ProductKey, err)
	}
	return nil
}

func (u Update) isRSR() bool { return u.SupplementalOSVersionExtra != "" }

// Timings set how long the simulated software update steps take on the
// injected clock.
type Timings struct {
	Download time.Duration // full download (progress is linear)
	Install  time.Duration // preparing and installing, reported as Installing
	Restart  time.Duration // offline while restarting into the new OS
}

// DefaultTimings returns 10 minutes download, 5 minutes install, 2 minutes restart.
func DefaultTimings() Timings {
	return Timings{Download: 10 * time.Minute, Install: 5 * time.Minute, Restart: 2 * time.Minute}
}

// Install actions of ScheduleOSUpdate.
const (
	ActionDefault             = "Default"
	ActionDownloadOnly        = "DownloadOnly"
	ActionInstallASAP         = "InstallASAP"
	ActionNotifyOnly          = "NotifyOnly"
	ActionInstallLater        = "InstallLater"
	ActionInstallForceRestart = "InstallForceRestart"
)

// Software update statuses.
const (
	UpdateIdle        = "Idle"
	UpdateDownloading = "Downloading"
	UpdateInstalling  = "Installing"
)

type scanState struct {
	done    bool
	at      time.Time
	forced  bool
	results []Update
}

type updateJob struct {
	update        Update
	action        string
	downloadStart time.Time
	downloadDone  time.Time // when the download completes
	install       bool      // install once downloaded
	installStart  time.Time // zero until installing
}

// UpdateState is the state of one scheduled update, for tests.
type UpdateState struct {
	ProductKey      string
	Action          string
	Status          string // Idle, Downloading or Installing
	IsDownloaded    bool
	PercentComplete float64
}

// ScanInfo describes the last software update scan.
type ScanInfo struct {
	Done   bool
	At     time.Time
	Forced bool
}

// LastScan returns the last software update scan.
func (d *Device) LastScan() ScanInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return ScanInfo{Done: d.scan.done, At: d.scan.at, Forced: d.scan.forced}
}

// Updates returns the scheduled updates, advanced to the clock's now.
func (d *Device) Updates() []UpdateState {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	d.advanceLocked(now)
	out := make([]UpdateState, 0, len(d.jobs))
	for _, j := range d.jobs {
		st, pct, dl := j.status(now)
		out = append(out, UpdateState{ProductKey: j.update.ProductKey, Action: j.action, Status: st, IsDownloaded: dl, PercentComplete: pct})
	}
	return out
}

// SetUpdateFailure makes every following ScheduleOSUpdate item fail with
// status (e.g. "DownloadInsufficientSpace", "InstallFailed"); "" restores
// normal behaviour.
func (d *Device) SetUpdateFailure(status string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failure = status
}

// SetCatalog replaces the updates the simulated catalog offers. The device
// sees the change at its next scan.
func (d *Device) SetCatalog(updates ...Update) error {
	for _, u := range updates {
		if err := u.validate(); err != nil {
			return fmt.Errorf("mdmtest: %w", err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.catalog = append([]Update(nil), updates...)
	return nil
}

func (j *updateJob) status(now time.Time) (status string, pct float64, downloaded bool) {
	switch {
	case !j.installStart.IsZero():
		return UpdateInstalling, 1, true
	case !now.Before(j.downloadDone):
		return UpdateIdle, 1, true
	default:
		total := j.downloadDone.Sub(j.downloadStart)
		if total <= 0 {
			return UpdateIdle, 1, true
		}
		return UpdateDownloading, float64(now.Sub(j.downloadStart)) / float64(total), false
	}
}

// advanceLocked moves every job along the clock: finished downloads that
// must install start installing, finished installs restart the Mac into the
// new OS. d.mu must be held.
func (d *Device) advanceLocked(now time.Time) {
	d.finishScanLocked(now)
	for changed := true; changed; {
		changed = false
		for i, j := range d.jobs {
			if j.installStart.IsZero() && j.install && !now.Before(j.downloadDone) {
				j.installStart = j.downloadDone
				changed = true
			}
			if !j.installStart.IsZero() {
				doneAt := j.installStart.Add(d.timings.Install)
				if now.Before(doneAt) {
					continue
				}
				d.jobs = append(d.jobs[:i], d.jobs[i+1:]...)
				d.applyLocked(j.update, doneAt)
				changed = true
				break
			}
		}
	}
}

// applyLocked installs u: the Mac restarts at `at` and comes back with the new OS.
func (d *Device) applyLocked(u Update, at time.Time) {
	if u.isRSR() {
		d.os.suppBuild, d.os.suppExtra = u.SupplementalBuildVersion, u.SupplementalOSVersionExtra
		if d.os.suppBuild == "" {
			d.os.suppBuild = u.Build
		}
	} else {
		d.os = osState{version: u.Version, build: u.Build, suppBuild: u.Build}
	}
	if until := at.Add(d.timings.Restart); until.After(d.downUntil) {
		d.downUntil = until
	}
	d.scan = scanState{}
	// Drop jobs the new OS made pointless.
	kept := d.jobs[:0]
	for _, j := range d.jobs {
		if d.applicableLocked(j.update) {
			kept = append(kept, j)
		}
	}
	d.jobs = kept
}

// applicableLocked reports whether u can install on the running OS.
func (d *Device) applicableLocked(u Update) bool {
	c := compareVersions(u.Version, d.os.version)
	if u.isRSR() {
		return c == 0 && u.SupplementalBuildVersion != d.os.suppBuild
	}
	return c > 0
}

func (d *Device) scanLocked(now time.Time, forced bool) {
	var res []Update
	for _, u := range d.catalog {
		if d.applicableLocked(u) {
			res = append(res, u)
		}
	}
	d.scan = scanState{done: true, at: now, forced: forced, results: res}
}

// findUpdateLocked resolves a ScheduleOSUpdate item to a catalog entry.
func (d *Device) findUpdateLocked(productKey, productVersion string) (Update, bool) {
	if productKey != "" {
		for _, u := range d.catalog {
			if u.ProductKey == productKey && d.applicableLocked(u) {
				return u, true
			}
		}
		return Update{}, false
	}
	var best Update
	var found bool
	for _, u := range d.catalog {
		if u.isRSR() || !d.applicableLocked(u) {
			continue
		}
		// "x.y" means the latest x.y.z; "x.y.z" means exactly that version.
		if u.Version != productVersion && !strings.HasPrefix(u.Version, productVersion+".") {
			continue
		}
		if !found || compareVersions(u.Version, best.Version) > 0 {
			best, found = u, true
		}
	}
	return best, found
}

func (d *Device) jobLocked(productKey string) *updateJob {
	for _, j := range d.jobs {
		if j.update.ProductKey == productKey {
			return j
		}
	}
	return nil
}

// scheduleLocked starts or advances an update and returns the UpdateResults
// entry for it.
func (d *Device) scheduleLocked(now time.Time, u Update, action string) map[string]any {
	res := map[string]any{"ProductKey": u.ProductKey}
	if u.IsFullInstaller && action != ActionInstallASAP {
		res["InstallAction"] = "Error"
		res["Status"] = UpdateIdle
		res["ErrorChain"] = []ErrorChainItem{{ErrorCode: 7, ErrorDomain: "SUMacControllerError",
			LocalizedDescription: "The install action is not supported for this update", USEnglishDescription: "The install action is not supported for this update"}}
		return res
	}
	if d.failure != "" {
		res["InstallAction"] = action
		res["Status"] = d.failure
		return res
	}
	needGB := float64(u.DownloadSize+u.InstallSize) / 1e9
	j := d.jobLocked(u.ProductKey)
	if j == nil && needGB > d.available {
		res["InstallAction"] = action
		res["Status"] = "DownloadInsufficientSpace"
		return res
	}
	if j == nil {
		j = &updateJob{update: u, downloadStart: now, downloadDone: now.Add(d.timings.Download)}
		d.jobs = append(d.jobs, j)
	}
	downloaded := !now.Before(j.downloadDone)
	switch action {
	case ActionDefault:
		// Download, or install what is already downloaded.
		if downloaded {
			action = ActionInstallASAP
		} else {
			action = ActionDownloadOnly
		}
	case ActionInstallLater:
		if u.IsMajorOSUpdate {
			// macOS refuses InstallLater for major upgrades; it downloads only.
			action = ActionDownloadOnly
		}
	}
	j.action = action
	switch action {
	case ActionInstallASAP, ActionInstallForceRestart:
		j.install = true
		if downloaded && j.installStart.IsZero() {
			j.installStart = now
		}
	}
	st, _, _ := j.status(now)
	res["InstallAction"] = action
	res["Status"] = st
	return res
}

type version []int

func parseVersion(s string) (version, error) {
	if s == "" {
		return nil, errors.New("empty version")
	}
	parts := strings.Split(s, ".")
	v := make(version, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad version %q", s)
		}
		v[i] = n
	}
	return v, nil
}

// compareVersions compares dotted versions numerically ("15.10" > "15.9",
// "15.3" == "15.3.0"); unparsable versions compare as strings.
func compareVersions(a, b string) int {
	va, erra := parseVersion(a)
	vb, errb := parseVersion(b)
	if erra != nil || errb != nil {
		return strings.Compare(a, b)
	}
	for i := 0; i < max(len(va), len(vb)); i++ {
		var x, y int
		if i < len(va) {
			x = va[i]
		}
		if i < len(vb) {
			y = vb[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
