package agentapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/agent"
)

// Client is the agent's side of the API: it is the agent's PlanSource and
// Reporter.
type Client struct {
	settings Settings
	http     *http.Client
	// TimeZone returns the Mac's IANA zone name, reported with every report.
	TimeZone func() string
}

// NewClient returns a client that trusts only the settings' CA (or the
// system roots when the settings carry none).
func NewClient(s Settings) (*Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CACertificate != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(s.CACertificate)) {
			return nil, errors.New("agent settings: CACertificate holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	return &Client{settings: s, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true},
	}}, nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.settings.ServerURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", AuthScheme+" "+c.settings.EnrollmentID+":"+c.settings.Secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, agent.MaxPlanSize+1))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return &StatusError{Status: resp.StatusCode, Body: strings.TrimSpace(string(data))}
	}
	if out != nil {
		if p, ok := out.(*agent.Plan); ok {
			plan, err := agent.ParsePlan(data)
			if err != nil {
				return err
			}
			*p = plan
			return nil
		}
		return json.Unmarshal(data, out)
	}
	return nil
}

// StatusError is a refused agent request.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string { return fmt.Sprintf("sundial answered %d: %s", e.Status, e.Body) }

// Plan implements agent.PlanSource.
func (c *Client) Plan(ctx context.Context) (agent.Plan, error) {
	var p agent.Plan
	path := "/agent/v1/plan"
	if c.TimeZone != nil {
		if tz := c.TimeZone(); tz != "" {
			path += "?time_zone=" + url.QueryEscape(tz)
		}
	}
	err := c.do(ctx, http.MethodGet, path, nil, &p)
	return p, err
}

// Report implements agent.Reporter.
func (c *Client) Report(ctx context.Context, events []agent.Event) error {
	rep := Report{Events: events}
	if c.TimeZone != nil {
		rep.TimeZone = c.TimeZone()
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, "/agent/v1/report", body, nil)
}
