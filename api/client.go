package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Client talks to the admin API.
type Client struct {
	BaseURL string
	APIKey  string
	HTTP    *http.Client
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return errorFrom(resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// DeviceFilter narrows a device listing.
type DeviceFilter struct {
	Group, Phase, OSVersion string
	// Status filters on the state an admin sees (deferring,
	// needs-bootstrap-token, or a phase).
	Status                string
	PastDeadline, Failing bool
	// Search matches part of a serial number, name, UDID or ID.
	Search string
}

// Devices lists one page of devices after `after`.
func (c *Client) Devices(ctx context.Context, after string, limit int) (*DeviceList, error) {
	return c.DevicesFiltered(ctx, after, limit, DeviceFilter{})
}

// DevicesFiltered lists one page of the devices that match f.
func (c *Client) DevicesFiltered(ctx context.Context, after string, limit int, f DeviceFilter) (*DeviceList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"group": f.Group, "phase": f.Phase, "status": f.Status, "os_version": f.OSVersion, "search": f.Search} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.PastDeadline {
		q.Set("past_deadline", "true")
	}
	if f.Failing {
		q.Set("failing", "true")
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	var out DeviceList
	return &out, c.do(ctx, http.MethodGet, "/api/v1/devices?"+q.Encode(), nil, "", &out)
}

// Commands lists a device's command history.
func (c *Client) Commands(ctx context.Context, id string) ([]CommandView, error) {
	var out struct{ Commands []CommandView }
	return out.Commands, c.do(ctx, http.MethodGet, "/api/v1/devices/"+url.PathEscape(id)+"/commands", nil, "", &out)
}

// Enqueue queues a raw command plist for a device.
func (c *Client) Enqueue(ctx context.Context, id string, raw []byte) (*EnqueueResult, error) {
	var out EnqueueResult
	return &out, c.do(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(id)+"/commands", bytes.NewReader(raw), "application/xml", &out)
}

// EnqueueBulk queues a raw command plist for up to MaxBulkEnqueue devices
// in one request: all of them, or none on error.
func (c *Client) EnqueueBulk(ctx context.Context, ids []string, raw []byte, opts ...EnqueueOptions) (*BulkEnqueueResult, error) {
	var out BulkEnqueueResult
	return &out, c.doJSON(ctx, http.MethodPost, "/api/v1/commands", BulkEnqueueRequest{Command: string(raw), DeviceIDs: ids, Raw: rawOption(opts)}, &out)
}

// EnqueueGroup queues a raw command plist for the page of group's devices
// after `after` (up to MaxBulkEnqueue); the result's Next continues.
func (c *Client) EnqueueGroup(ctx context.Context, group, after string, raw []byte, opts ...EnqueueOptions) (*BulkEnqueueResult, error) {
	var out BulkEnqueueResult
	return &out, c.doJSON(ctx, http.MethodPost, "/api/v1/commands", BulkEnqueueRequest{Command: string(raw), Group: group, After: after, Raw: rawOption(opts)}, &out)
}

func rawOption(opts []EnqueueOptions) bool { return len(opts) > 0 && opts[0].Raw }

// PushCert shows the push certificate.
func (c *Client) PushCert(ctx context.Context) (*PushCertInfo, error) {
	var out PushCertInfo
	return &out, c.do(ctx, http.MethodGet, "/api/v1/pushcert", nil, "", &out)
}

// SetPushCert replaces the push certificate.
func (c *Client) SetPushCert(ctx context.Context, req PushCertRequest) (*PushCertInfo, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out PushCertInfo
	return &out, c.do(ctx, http.MethodPut, "/api/v1/pushcert", bytes.NewReader(body), "application/json", &out)
}

// Push pushes a device now.
func (c *Client) Push(ctx context.Context, id string) ([]PushResult, error) {
	var out struct{ Results []PushResult }
	return out.Results, c.do(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(id)+"/push", nil, "", &out)
}

func errorFrom(status int, data []byte) error {
	var e struct{ Error *Error }
	if json.Unmarshal(data, &e) == nil && e.Error != nil {
		return e.Error
	}
	return &Error{Code: CodeInternal, Message: fmt.Sprintf("HTTP %d: %s", status, bytes.TrimSpace(data))}
}

func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return errorFrom(resp.StatusCode, data)
}

func (c *Client) doJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	return c.do(ctx, method, path, body, ct, out)
}

// Groups lists groups.
func (c *Client) Groups(ctx context.Context) ([]scheduler.Group, error) {
	var out struct{ Groups []scheduler.Group }
	return out.Groups, c.doJSON(ctx, http.MethodGet, "/api/v1/groups", nil, &out)
}

// CreateGroup creates (or renames) a group.
func (c *Client) CreateGroup(ctx context.Context, id, name string) (*scheduler.Group, error) {
	var out scheduler.Group
	return &out, c.doJSON(ctx, http.MethodPost, "/api/v1/groups", map[string]string{"id": id, "name": name}, &out)
}

// AssignDevices moves devices into a group.
func (c *Client) AssignDevices(ctx context.Context, group string, ids []string) error {
	return c.doJSON(ctx, http.MethodPost, "/api/v1/groups/"+url.PathEscape(group)+"/devices", map[string]any{"device_ids": ids}, nil)
}

// Policy shows a group's policy.
func (c *Client) Policy(ctx context.Context, group string) (*scheduler.PolicyRecord, error) {
	var out scheduler.PolicyRecord
	return &out, c.doJSON(ctx, http.MethodGet, "/api/v1/groups/"+url.PathEscape(group)+"/policy", nil, &out)
}

// SetPolicy sets a group's policy.
func (c *Client) SetPolicy(ctx context.Context, group string, p softwareupdate.Policy) (*scheduler.PolicyRecord, error) {
	var out scheduler.PolicyRecord
	return &out, c.doJSON(ctx, http.MethodPut, "/api/v1/groups/"+url.PathEscape(group)+"/policy", p, &out)
}

// DeviceUpdate shows a device's phase, deadline and history.
func (c *Client) DeviceUpdate(ctx context.Context, id string, history int) (*scheduler.DeviceReport, error) {
	var out scheduler.DeviceReport
	return &out, c.doJSON(ctx, http.MethodGet, fmt.Sprintf("/api/v1/devices/%s/update?history=%d", url.PathEscape(id), history), nil, &out)
}

// SetException grants an exception to a device or group.
func (c *Client) SetException(ctx context.Context, scope scheduler.ExceptionScope, id string, ex softwareupdate.Exception) (*scheduler.ExceptionRecord, error) {
	var out scheduler.ExceptionRecord
	return &out, c.doJSON(ctx, http.MethodPut, "/api/v1/exceptions/"+string(scope)+"/"+url.PathEscape(id), ex, &out)
}

// Audit lists audit entries after a sequence number.
func (c *Client) Audit(ctx context.Context, after uint64, limit int) ([]scheduler.AuditEntry, error) {
	var out struct{ Entries []scheduler.AuditEntry }
	return out.Entries, c.doJSON(ctx, http.MethodGet, fmt.Sprintf("/api/v1/audit?after=%d&limit=%d", after, limit), nil, &out)
}

// SetExceptionRaw sends an exception body as given (for tests and scripts).
func (c *Client) SetExceptionRaw(ctx context.Context, scope, id, body string) error {
	return c.do(ctx, http.MethodPut, "/api/v1/exceptions/"+url.PathEscape(scope)+"/"+url.PathEscape(id), strings.NewReader(body), "application/json", nil)
}

// PutRaw sends a raw PUT body to an API path (for tests and scripts).
func (c *Client) PutRaw(ctx context.Context, path, body string) error {
	return c.do(ctx, http.MethodPut, path, strings.NewReader(body), "application/json", nil)
}
