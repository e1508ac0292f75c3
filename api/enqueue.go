package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/sundial-mdm/sundial/mdm"
)

// EnqueueOptions changes how a raw command is checked before it is queued.
type EnqueueOptions struct {
	// Raw queues a RequestType Sundial does not know and a CommandUUID that
	// is not a UUID, as given.
	Raw bool
}

// EnqueueWith queues a raw command plist for a device.
func (c *Client) EnqueueWith(ctx context.Context, id string, raw []byte, o EnqueueOptions) (*EnqueueResult, error) {
	path := "/api/v1/devices/" + url.PathEscape(id) + "/commands"
	if o.Raw {
		path += "?raw=true"
	}
	var out EnqueueResult
	return &out, c.do(ctx, http.MethodPost, path, bytes.NewReader(raw), "application/xml", &out)
}

// CheckCommand checks a decoded command before it is queued: a RequestType
// Apple documents and a UUID as CommandUUID, unless raw is set.
func CheckCommand(cmd *mdm.Command, raw bool) error {
	if raw {
		return nil
	}
	if !mdm.KnownRequestType(cmd.RequestType) {
		return fmt.Errorf("unknown RequestType %q (check its spelling; to queue it anyway, use --raw, or raw=true in the API)", cmd.RequestType)
	}
	if !mdm.IsUUID(cmd.UUID) {
		return fmt.Errorf("CommandUUID %q is not a UUID (to queue it anyway, use --raw, or raw=true in the API)", cmd.UUID)
	}
	return nil
}

// maxCommandError is the message for a command body over maxAdminBody.
var maxCommandError = fmt.Sprintf("command plist larger than %d MiB", maxAdminBody>>20)

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// DeviceZoner tells a Mac's own time zone ("" when unknown).
type DeviceZoner interface {
	DeviceZone(ctx context.Context, id string) string
}

// WithDeviceZones adds each Mac's time zone to GET /devices/{id}/update, so
// deadlines can be shown in it.
func (s *Server) WithDeviceZones(z DeviceZoner) *Server {
	s.zones = z
	return s
}
