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

// Devices lists one page of devices after `after`.
func (c *Client) Devices(ctx context.Context, after string, limit int) (*DeviceList, error) {
	q := url.Values{}
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
