package mdmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/micromdm/plist"
	"github.com/smallstep/pkcs7"
)

// errNotSupervised is a synthetic error chain for supervised-only commands
// sent to an unsupervised Mac (Apple's exact code was not found).
var errNotSupervised = []ErrorChainItem{{
	ErrorCode: 12070, ErrorDomain: "MCMDMErrorDomain",
	LocalizedDescription: "This command requires a supervised device",
	USEnglishDescription: "This command requires a supervised device",
}}

const defaultCatalogURL = "https://swscan.apple.com/content/catalogs/others/index-15-14-13-12-10.16-10.15-10.14-10.13-10.12-10.11-10.10-10.9-mountainlion-lion-snowleopard-leopard.merged-1.sucatalog.gz"

// Builtin returns the simulator's own answer to cmd. Handlers installed
// with WithHandler can call it to wrap the default behaviour.
func (d *Device) Builtin(ctx context.Context, cmd *Command) Result {
	if res, ok := d.misbehave(ctx, cmd); ok {
		return res
	}
	switch cmd.RequestType {
	case "DeviceInformation":
		return d.deviceInformation(cmd)
	case "SecurityInfo":
		return d.securityInfo()
	case "AvailableOSUpdates":
		return d.availableOSUpdates()
	case "ScheduleOSUpdateScan":
		return d.scheduleOSUpdateScan(cmd)
	case "ScheduleOSUpdate":
		return d.scheduleOSUpdate(cmd)
	case "OSUpdateStatus":
		return d.osUpdateStatus()
	case "DeclarativeManagement":
		return d.declarativeManagement(ctx, cmd) // acknowledges and syncs (ddm.go)
	case "InstallProfile":
		return d.installProfile(cmd)
	case "RemoveProfile":
		return d.removeProfile(cmd)
	case "ProfileList":
		return d.profileList()
	case "DeviceConfigured":
		return d.deviceConfigured() // ade.go
	default:
		return Result{Status: StatusError, ErrorChain: append([]ErrorChainItem(nil), ErrUnknownCommand...)}
	}
}

func (d *Device) deviceInformation(cmd *Command) Result {
	var v struct {
		Command struct{ Queries []string }
	}
	if err := cmd.Decode(&v); err != nil || v.Command.Queries == nil {
		return formatError("DeviceInformation needs a Queries array")
	}
	d.mu.Lock()
	now := d.clock.Now()
	d.advanceLocked(now)
	os, noOS, avail, scan := d.os, d.noOS, d.available, d.scan
	d.mu.Unlock()

	host := d.DeviceName
	answers := map[string]func() any{
		"UDID":                             func() any { return d.UDID },
		"DeviceName":                       func() any { return d.DeviceName },
		"ProductName":                      func() any { return d.ProductName },
		"Model":                            func() any { return d.Model },
		"ModelName":                        func() any { return d.ModelName },
		"SerialNumber":                     func() any { return d.SerialNumber },
		"IsSupervised":                     func() any { return d.IsSupervised },
		"IsAppleSilicon":                   func() any { return d.IsAppleSilicon },
		"DeviceCapacity":                   func() any { return d.DeviceCapacity },
		"AvailableDeviceCapacity":          func() any { return avail },
		"SoftwareUpdateDeviceID":           func() any { return d.SoftwareUpdateDeviceID },
		"AwaitingConfiguration":            func() any { return d.AwaitingConfiguration() },
		"HostName":                         func() any { return host + ".local" },
		"LocalHostName":                    func() any { return host },
		"WiFiMAC":                          func() any { return d.WiFiMAC },
		"BluetoothMAC":                     func() any { return d.BluetoothMAC },
		"SystemIntegrityProtectionEnabled": func() any { return true },
		"IsActivationLockSupported":        func() any { return true },
		"OSUpdateSettings": func() any {
			s := map[string]any{
				"CatalogURL":                      defaultCatalogURL,
				"IsDefaultCatalog":                true,
				"PerformPeriodicCheck":            true,
				"AutomaticCheckEnabled":           true,
				"BackgroundDownloadEnabled":       true,
				"AutomaticAppInstallationEnabled": false,
				"AutomaticOSInstallationEnabled":  false,
				"AutomaticSecurityUpdatesEnabled": true,
			}
			if scan.done {
				s["PreviousScanDate"] = scan.at.UTC()
				s["PreviousScanResult"] = "0"
			}
			return s
		},
	}
	if !noOS {
		answers["OSVersion"] = func() any { return os.version }
		answers["BuildVersion"] = func() any { return os.build }
		answers["SupplementalBuildVersion"] = func() any { return os.suppBuild }
		if os.suppExtra != "" {
			answers["SupplementalOSVersionExtra"] = func() any { return os.suppExtra }
		}
	}
	resp := make(map[string]any, len(v.Command.Queries))
	for _, q := range v.Command.Queries {
		if f, ok := answers[q]; ok {
			resp[q] = f()
		}
	}
	return Result{Status: StatusAcknowledged, Fields: map[string]any{"QueryResponses": resp}}
}

func (d *Device) securityInfo() Result {
	allowed := "not supported"
	if d.IsAppleSilicon {
		allowed = "allowed"
	}
	return Result{Status: StatusAcknowledged, Fields: map[string]any{"SecurityInfo": map[string]any{
		"BootstrapTokenAllowedForAuthentication":           allowed,
		"BootstrapTokenRequiredForSoftwareUpdate":          d.IsAppleSilicon,
		"BootstrapTokenRequiredForKernelExtensionApproval": d.IsAppleSilicon,
		"IsRecoveryLockEnabled":                            false,
		"SystemIntegrityProtectionEnabled":                 true,
		"AuthenticatedRootVolumeEnabled":                   true,
	}}}
}

func updateDict(u Update, appleSilicon bool) map[string]any {
	m := map[string]any{
		"ProductKey":             u.ProductKey,
		"HumanReadableName":      u.HumanReadableName,
		"Version":                u.Version,
		"Build":                  u.Build,
		"DownloadSize":           u.DownloadSize,
		"IsCritical":             u.IsCritical,
		"IsConfigDataUpdate":     false,
		"IsFirmwareUpdate":       false,
		"IsMajorOSUpdate":        u.IsMajorOSUpdate,
		"IsSecurityResponse":     u.IsSecurityResponse || u.isRSR(),
		"RestartRequired":        u.RestartRequired,
		"AllowsInstallLater":     u.AllowsInstallLater,
		"RequiresBootstrapToken": appleSilicon,
	}
	if u.isRSR() {
		m["SupplementalBuildVersion"] = u.SupplementalBuildVersion
		m["SupplementalOSVersionExtra"] = u.SupplementalOSVersionExtra
	}
	return m
}

func (d *Device) availableOSUpdates() Result {
	d.mu.Lock()
	d.advanceLocked(d.clock.Now())
	var list []any
	if d.scan.done {
		for _, u := range d.scan.results {
			if d.applicableLocked(u) {
				list = append(list, updateDict(u, d.IsAppleSilicon))
			}
		}
	}
	d.mu.Unlock()
	if list == nil {
		list = []any{}
	}
	return Result{Status: StatusAcknowledged, Fields: map[string]any{"AvailableOSUpdates": list}}
}

func (d *Device) scheduleOSUpdateScan(cmd *Command) Result {
	if !d.IsSupervised {
		return Result{Status: StatusError, ErrorChain: errNotSupervised}
	}
	// Apple's schema says Force; Apple's own example sends ForceUpdateScan.
	var v struct {
		Command struct {
			Force           bool
			ForceUpdateScan bool
		}
	}
	if err := cmd.Decode(&v); err != nil {
		return formatError("ScheduleOSUpdateScan: " + err.Error())
	}
	d.mu.Lock()
	now := d.clock.Now()
	d.advanceLocked(now)
	if forced := v.Command.Force || v.Command.ForceUpdateScan; !d.startScanLocked(now, forced) {
		d.scanLocked(now, forced)
	}
	d.mu.Unlock()
	// Real Macs send both the correct and the misspelled key.
	return Result{Status: StatusAcknowledged, Fields: map[string]any{"ScanInitiated": true, "ScanInititated": true}}
}

func (d *Device) scheduleOSUpdate(cmd *Command) Result {
	if !d.IsSupervised {
		return Result{Status: StatusError, ErrorChain: errNotSupervised}
	}
	var v struct {
		Command struct {
			Updates []struct {
				ProductKey     string
				ProductVersion string
				InstallAction  string
			}
		}
	}
	if err := cmd.Decode(&v); err != nil || v.Command.Updates == nil {
		return formatError("ScheduleOSUpdate needs an Updates array")
	}
	for _, it := range v.Command.Updates {
		switch it.InstallAction {
		case ActionDefault, ActionDownloadOnly, ActionInstallASAP, ActionNotifyOnly, ActionInstallLater, ActionInstallForceRestart:
		default:
			return formatError(fmt.Sprintf("ScheduleOSUpdate: bad InstallAction %q", it.InstallAction))
		}
		if it.ProductKey == "" && it.ProductVersion == "" {
			return formatError("ScheduleOSUpdate: item needs ProductKey or ProductVersion")
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	d.advanceLocked(now)
	results := make([]any, 0, len(v.Command.Updates))
	for _, it := range v.Command.Updates {
		u, ok := d.findUpdateLocked(it.ProductKey, it.ProductVersion)
		if !ok {
			key := it.ProductKey
			if key == "" {
				key = it.ProductVersion
			}
			results = append(results, map[string]any{
				"ProductKey": key, "InstallAction": "Error", "Status": UpdateIdle,
				"ErrorChain": []ErrorChainItem{{ErrorCode: 7, ErrorDomain: "SUMacControllerError",
					LocalizedDescription: "The requested update is not available", USEnglishDescription: "The requested update is not available"}},
			})
			continue
		}
		results = append(results, d.scheduleLocked(now, u, it.InstallAction))
	}
	return Result{Status: StatusAcknowledged, Fields: map[string]any{"UpdateResults": results}}
}

func (d *Device) osUpdateStatus() Result {
	if !d.IsSupervised {
		return Result{Status: StatusError, ErrorChain: errNotSupervised}
	}
	d.mu.Lock()
	now := d.clock.Now()
	d.advanceLocked(now)
	list := make([]any, 0, len(d.jobs))
	for _, j := range d.jobs {
		st, pct, dl := j.status(now)
		list = append(list, map[string]any{
			"ProductKey":              j.update.ProductKey,
			"IsDownloaded":            dl,
			"DownloadPercentComplete": pct,
			"Status":                  st,
		})
	}
	d.mu.Unlock()
	return Result{Status: StatusAcknowledged, Fields: map[string]any{"OSUpdateStatus": list}}
}

// profileIdentifier returns the PayloadIdentifier of a (possibly signed) profile.
func profileIdentifier(data []byte) (string, error) {
	body := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(body, []byte("<")) && !bytes.HasPrefix(body, []byte("bplist")) {
		p7, err := pkcs7.Parse(data)
		if err != nil {
			return "", err
		}
		if err := p7.Verify(); err != nil {
			return "", err
		}
		body = p7.Content
	}
	var v struct{ PayloadIdentifier, PayloadType string }
	if err := plist.Unmarshal(body, &v); err != nil {
		return "", err
	}
	if v.PayloadIdentifier == "" || v.PayloadType != "Configuration" {
		return "", errors.New("not a configuration profile")
	}
	return v.PayloadIdentifier, nil
}

func (d *Device) installProfile(cmd *Command) Result {
	var v struct {
		Command struct{ Payload []byte }
	}
	if err := cmd.Decode(&v); err != nil || len(v.Command.Payload) == 0 {
		return formatError("InstallProfile needs a Payload")
	}
	id, err := profileIdentifier(v.Command.Payload)
	if err != nil {
		msg := "The profile is malformed: " + err.Error()
		return Result{Status: StatusError, ErrorChain: []ErrorChainItem{{ErrorCode: 1000,
			ErrorDomain: "MCProfileErrorDomain", LocalizedDescription: msg, USEnglishDescription: msg}}}
	}
	d.mu.Lock()
	d.profiles[id] = v.Command.Payload
	d.mu.Unlock()
	return Result{Status: StatusAcknowledged}
}

func (d *Device) removeProfile(cmd *Command) Result {
	var v struct {
		Command struct{ Identifier string }
	}
	if err := cmd.Decode(&v); err != nil || v.Command.Identifier == "" {
		return formatError("RemoveProfile needs an Identifier")
	}
	d.mu.Lock()
	delete(d.profiles, v.Command.Identifier)
	d.mu.Unlock()
	return Result{Status: StatusAcknowledged}
}

func (d *Device) profileList() Result {
	ids := d.Profiles()
	list := make([]any, len(ids))
	for i, id := range ids {
		list[i] = map[string]any{"PayloadIdentifier": id}
	}
	return Result{Status: StatusAcknowledged, Fields: map[string]any{"ProfileList": list}}
}

// Profiles returns the identifiers of profiles installed with InstallProfile.
func (d *Device) Profiles() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]string, 0, len(d.profiles))
	for id := range d.profiles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
