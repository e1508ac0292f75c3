package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/storage"
)

// DEP is Sundial's connection to Apple Business Manager, as the API uses it.
// Every method that changes something takes the actor for the audit log.
type DEP interface {
	Keypair(ctx context.Context, actor, name, baseURL string) (certPEM []byte, err error)
	UploadToken(ctx context.Context, actor, name string, p7m []byte) (*DEPServerInfo, error)
	Servers(ctx context.Context) ([]DEPServerInfo, error)
	SyncNow(ctx context.Context, actor, name string) (*DEPSyncResult, error)
	Devices(ctx context.Context, after string, limit int) ([]storage.ADEDevice, error)
	MoveSerial(ctx context.Context, actor, serial, group string) (*storage.ADEDevice, error)
}

// DEPServerInfo is an ABM MDM server as the admin sees it (no secrets).
type DEPServerInfo struct {
	Name               string            `json:"name"`
	BaseURL            string            `json:"base_url,omitempty"`
	ServerName         string            `json:"server_name,omitempty"`
	OrgName            string            `json:"org_name,omitempty"`
	AdminID            string            `json:"admin_id,omitempty"`
	HasKeypair         bool              `json:"has_keypair"`
	HasToken           bool              `json:"has_token"`
	TokenExpiry        time.Time         `json:"token_expiry,omitzero"`
	TokenExpiresInDays int               `json:"token_expires_in_days,omitempty"`
	LastSyncAt         time.Time         `json:"last_sync_at,omitzero"`
	LastError          string            `json:"last_error,omitempty"`
	RetryAt            time.Time         `json:"retry_at,omitzero"`
	Profiles           map[string]string `json:"profiles,omitempty"` // group -> ABM profile UUID
}

// DEPSyncResult is what a sync did.
type DEPSyncResult struct {
	Pages     int  `json:"pages"`
	Added     int  `json:"added"`
	Modified  int  `json:"modified"`
	Deleted   int  `json:"deleted"`
	Assigned  int  `json:"assigned"`
	Restarted bool `json:"restarted,omitempty"`
}

// DEPDeviceList is a page of ABM devices.
type DEPDeviceList struct {
	Devices []storage.ADEDevice `json:"devices"`
	Next    string              `json:"next,omitempty"`
}

// WithDEP enables the ABM endpoints.
func (s *Server) WithDEP(d DEP) *Server { s.dep = d; return s }

func (s *Server) registerDEP(v1 *mux.Router) {
	if s.dep == nil {
		return
	}
	v1.Handle("/dep/servers", s.handle(s.listDEPServers)).Methods(http.MethodGet)
	v1.Handle("/dep/servers/{name}/keypair", s.handle(s.depKeypair)).Methods(http.MethodPost)
	v1.Handle("/dep/servers/{name}/token", s.handle(s.depToken)).Methods(http.MethodPut)
	v1.Handle("/dep/servers/{name}/sync", s.handle(s.depSync)).Methods(http.MethodPost)
	v1.Handle("/dep/devices", s.handle(s.listDEPDevices)).Methods(http.MethodGet)
	v1.Handle("/dep/devices/{serial}/group", s.handle(s.moveDEPDevice)).Methods(http.MethodPut)
}

func (s *Server) listDEPServers(r *http.Request) (any, int, error) {
	l, err := s.dep.Servers(r.Context())
	if l == nil {
		l = []DEPServerInfo{}
	}
	return map[string]any{"servers": l}, http.StatusOK, err
}

func (s *Server) depKeypair(r *http.Request) (any, int, error) {
	var in struct {
		BaseURL string `json:"base_url"`
	}
	if err := decodeOptional(r, &in); err != nil {
		return nil, 0, err
	}
	if in.BaseURL != "" {
		if u, err := url.Parse(in.BaseURL); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, 0, &Error{Code: CodeInvalid, Message: "base_url must be an https URL"}
		}
	}
	pem, err := s.dep.Keypair(r.Context(), actor(r), mux.Vars(r)["name"], in.BaseURL)
	if err != nil {
		return nil, 0, err
	}
	return map[string]string{"certificate": string(pem)}, http.StatusOK, nil
}

func (s *Server) depToken(r *http.Request) (any, int, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return nil, 0, err
	}
	if len(b) > maxAdminBody {
		return nil, 0, &Error{Code: CodeInvalid, Message: "token file too large"}
	}
	info, err := s.dep.UploadToken(r.Context(), actor(r), mux.Vars(r)["name"], b)
	return info, http.StatusOK, err
}

func (s *Server) depSync(r *http.Request) (any, int, error) {
	res, err := s.dep.SyncNow(r.Context(), actor(r), mux.Vars(r)["name"])
	return res, http.StatusOK, err
}

func (s *Server) listDEPDevices(r *http.Request) (any, int, error) {
	limit := 1000
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return nil, 0, &Error{Code: CodeInvalid, Message: "limit must be 1 to 10000"}
		}
		limit = n
	}
	l, err := s.dep.Devices(r.Context(), r.URL.Query().Get("after"), limit+1)
	if err != nil {
		return nil, 0, err
	}
	out := DEPDeviceList{Devices: l}
	if len(l) > limit {
		out.Devices, out.Next = l[:limit], l[limit-1].Serial
	}
	if out.Devices == nil {
		out.Devices = []storage.ADEDevice{}
	}
	return out, http.StatusOK, nil
}

func (s *Server) moveDEPDevice(r *http.Request) (any, int, error) {
	var in struct {
		Group string `json:"group"`
	}
	if err := decodeOptional(r, &in); err != nil {
		return nil, 0, err
	}
	d, err := s.dep.MoveSerial(r.Context(), actor(r), mux.Vars(r)["serial"], in.Group)
	return d, http.StatusOK, err
}

// decodeOptional decodes a JSON body if there is one.
func decodeOptional(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Error{Code: CodeInvalid, Message: "bad JSON body: " + err.Error()}
	}
	return nil
}

// DEPKeypair makes (or returns) the keypair of ABM server name and returns
// the certificate to upload to ABM.
func (c *Client) DEPKeypair(ctx context.Context, name, baseURL string) (string, error) {
	var out struct{ Certificate string }
	in := map[string]string{}
	if baseURL != "" {
		in["base_url"] = baseURL
	}
	return out.Certificate, c.doJSON(ctx, http.MethodPost, "/api/v1/dep/servers/"+url.PathEscape(name)+"/keypair", in, &out)
}

// DEPUploadToken uploads a server token file (.p7m).
func (c *Client) DEPUploadToken(ctx context.Context, name string, p7m []byte) (*DEPServerInfo, error) {
	out := new(DEPServerInfo)
	return out, c.do(ctx, http.MethodPut, "/api/v1/dep/servers/"+url.PathEscape(name)+"/token", bytes.NewReader(p7m), "application/pkcs7-mime", out)
}

// DEPServers lists the ABM servers.
func (c *Client) DEPServers(ctx context.Context) ([]DEPServerInfo, error) {
	var out struct{ Servers []DEPServerInfo }
	return out.Servers, c.doJSON(ctx, http.MethodGet, "/api/v1/dep/servers", nil, &out)
}

// DEPSync syncs server name's devices now.
func (c *Client) DEPSync(ctx context.Context, name string) (*DEPSyncResult, error) {
	out := new(DEPSyncResult)
	return out, c.doJSON(ctx, http.MethodPost, "/api/v1/dep/servers/"+url.PathEscape(name)+"/sync", nil, out)
}

// DEPDevices lists ABM devices after a serial.
func (c *Client) DEPDevices(ctx context.Context, after string, limit int) (*DEPDeviceList, error) {
	out := new(DEPDeviceList)
	q := url.Values{"after": {after}, "limit": {strconv.Itoa(limit)}}
	return out, c.doJSON(ctx, http.MethodGet, "/api/v1/dep/devices?"+q.Encode(), nil, out)
}

// DEPMoveSerial moves an ABM serial to a group (re-assigning its profile).
func (c *Client) DEPMoveSerial(ctx context.Context, serial, group string) (*storage.ADEDevice, error) {
	out := new(storage.ADEDevice)
	return out, c.doJSON(ctx, http.MethodPut, "/api/v1/dep/devices/"+url.PathEscape(serial)+"/group", map[string]string{"group": group}, out)
}
