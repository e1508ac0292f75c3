package legacy

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/micromdm/plist"
)

// maxResultSize bounds a report body this package decodes (the MDM service
// already caps device bodies; this keeps the decoders safe on their own).
const maxResultSize = 4 << 20

// AvailableUpdate is one entry of an AvailableOSUpdates response.
type AvailableUpdate struct {
	ProductKey                 string
	HumanReadableName          string `plist:",omitempty"`
	Version                    string
	Build                      string `plist:",omitempty"`
	IsMajorOSUpdate            bool   `plist:",omitempty"`
	IsSecurityResponse         bool   `plist:",omitempty"`
	IsConfigDataUpdate         bool   `plist:",omitempty"`
	IsFirmwareUpdate           bool   `plist:",omitempty"`
	SupplementalOSVersionExtra string `plist:",omitempty"`
	RequiresBootstrapToken     bool   `plist:",omitempty"`
}

// UpdateResult is one entry of a ScheduleOSUpdate response's UpdateResults.
type UpdateResult struct {
	ProductKey    string
	InstallAction string
	Status        string
	ErrorChain    []struct {
		ErrorCode            int
		ErrorDomain          string
		LocalizedDescription string
	} `plist:",omitempty"`
}

// UpdateStatus is one entry of an OSUpdateStatus response.
type UpdateStatus struct {
	ProductKey              string
	IsDownloaded            bool
	DownloadPercentComplete float64
	Status                  string
}

func decode(what string, raw []byte, v any) error {
	if len(raw) > maxResultSize {
		return fmt.Errorf("%s response: %d bytes is over the limit", what, len(raw))
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("<")) {
		return fmt.Errorf("%s response: not an XML plist", what)
	}
	if err := plist.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s response: %w", what, err)
	}
	return nil
}

// DecodeAvailableOSUpdates decodes an acknowledged AvailableOSUpdates report.
func DecodeAvailableOSUpdates(raw []byte) ([]AvailableUpdate, error) {
	var v struct{ AvailableOSUpdates []AvailableUpdate }
	if err := decode("AvailableOSUpdates", raw, &v); err != nil {
		return nil, err
	}
	return v.AvailableOSUpdates, nil
}

// ErrNoUpdateResults: an acknowledged ScheduleOSUpdate without UpdateResults
// (or with an empty list). Apple documents it after a restart for a re-sent
// command; it means "ask the Mac for its version", not a failure.
var ErrNoUpdateResults = errors.New("ScheduleOSUpdate response without UpdateResults")

// DecodeUpdateResults decodes an acknowledged ScheduleOSUpdate report.
func DecodeUpdateResults(raw []byte) ([]UpdateResult, error) {
	var v struct{ UpdateResults []UpdateResult }
	if err := decode("ScheduleOSUpdate", raw, &v); err != nil {
		return nil, err
	}
	if len(v.UpdateResults) == 0 {
		return nil, ErrNoUpdateResults
	}
	return v.UpdateResults, nil
}

// DecodeOSUpdateStatus decodes an acknowledged OSUpdateStatus report.
func DecodeOSUpdateStatus(raw []byte) ([]UpdateStatus, error) {
	var v struct{ OSUpdateStatus []UpdateStatus }
	if err := decode("OSUpdateStatus", raw, &v); err != nil {
		return nil, err
	}
	return v.OSUpdateStatus, nil
}
