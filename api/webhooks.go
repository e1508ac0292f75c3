package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/storage"
)

// WebhookStore keeps webhook endpoints and queues test events.
type WebhookStore interface {
	storage.WebhookEndpointStore
	EnqueueWebhooks(ctx context.Context, ds []storage.WebhookDelivery) error
}

// Sealer seals endpoint secrets before they are stored (internal/seal).
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
}

type webhooksAPI struct {
	store  WebhookStore
	sealer Sealer
	now    func() time.Time
}

// WithWebhooks enables webhook endpoint management (add, list, test, remove).
func (s *Server) WithWebhooks(ws WebhookStore, sealer Sealer, now func() time.Time) *Server {
	s.hooks = &webhooksAPI{store: ws, sealer: sealer, now: now}
	return s
}

// Webhook is an endpoint as the API shows it: never its secret.
type Webhook struct {
	ID      string    `json:"id"`
	URL     string    `json:"url"`
	Events  []string  `json:"events,omitempty"`
	Created time.Time `json:"created"`
}

// NewWebhook is a created endpoint: the signing secret is in this answer
// only; Sundial keeps it sealed and never shows it again.
type NewWebhook struct {
	Webhook
	Secret string `json:"secret"`
}

func (s *Server) registerWebhooks(v1 *mux.Router) {
	if s.hooks == nil {
		return
	}
	v1.Handle("/webhooks", s.handle(s.listWebhooks)).Methods(http.MethodGet)
	v1.Handle("/webhooks", s.handle(s.addWebhook)).Methods(http.MethodPost)
	v1.Handle("/webhooks/{id}", s.handle(s.removeWebhook)).Methods(http.MethodDelete)
	v1.Handle("/webhooks/{id}/test", s.handle(s.testWebhook)).Methods(http.MethodPost)
}

var webhookIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (s *Server) listWebhooks(r *http.Request) (any, int, error) {
	eps, err := s.hooks.store.WebhookEndpoints(r.Context())
	if err != nil {
		return nil, 0, err
	}
	out := make([]Webhook, 0, len(eps))
	for _, e := range eps {
		out = append(out, Webhook{ID: e.ID, URL: e.URL, Events: e.Events, Created: e.Created})
	}
	return map[string]any{"webhooks": out}, http.StatusOK, nil
}

func (s *Server) addWebhook(r *http.Request) (any, int, error) {
	var req struct {
		ID     string   `json:"id"`
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return nil, 0, err
	}
	if !webhookIDRE.MatchString(req.ID) {
		return nil, 0, &Error{Code: CodeInvalid, Message: "id: 1 to 64 letters, digits, '.', '_' or '-'"}
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(req.URL) > 2048 {
		return nil, 0, &Error{Code: CodeInvalid, Message: "url: an absolute http or https URL of at most 2048 characters"}
	}
	if len(req.Events) > 16 {
		return nil, 0, &Error{Code: CodeInvalid, Message: "events: at most 16"}
	}
	for _, e := range req.Events {
		if !webhook.Valid(e) {
			return nil, 0, &Error{Code: CodeInvalid, Message: "events: unknown type " + e}
		}
	}
	eps, err := s.hooks.store.WebhookEndpoints(r.Context())
	if err != nil {
		return nil, 0, err
	}
	for _, e := range eps {
		if e.ID == req.ID {
			return nil, 0, &Error{Code: CodeConflict, Message: "webhook " + req.ID + " exists; remove it first"}
		}
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, 0, err
	}
	secret := "whsec_" + hex.EncodeToString(b)
	sealed, err := s.hooks.sealer.Seal([]byte(secret))
	if err != nil {
		return nil, 0, err
	}
	e := storage.WebhookEndpoint{ID: req.ID, URL: req.URL, Events: req.Events, Secret: sealed, Created: s.hooks.now().UTC()}
	if err := s.hooks.store.PutWebhookEndpoint(r.Context(), e); err != nil {
		if errors.Is(err, storage.ErrWebhookLimit) {
			return nil, 0, &Error{Code: CodeConflict, Message: err.Error()}
		}
		return nil, 0, err
	}
	w := Webhook{ID: e.ID, URL: e.URL, Events: e.Events, Created: e.Created}
	// The URL may carry a receiver's token: the log names the ID only; the
	// audit log (admin-only) records the URL so changes can be traced.
	s.log.Info("webhook added", "webhook", e.ID, "actor", actor(r))
	s.audit(r, "webhook.add", e.ID, nil, w)
	return NewWebhook{Webhook: w, Secret: secret}, http.StatusCreated, nil
}

func (s *Server) removeWebhook(r *http.Request) (any, int, error) {
	id := mux.Vars(r)["id"]
	if err := s.hooks.store.DeleteWebhookEndpoint(r.Context(), id); err != nil {
		return nil, 0, err
	}
	s.log.Info("webhook removed", "webhook", id, "actor", actor(r))
	s.audit(r, "webhook.remove", id, map[string]string{"id": id}, nil)
	return map[string]string{"removed": id}, http.StatusOK, nil
}

// testWebhook queues a webhook.test event for one endpoint through the
// outbox, so the test exercises the same signing, delivery and retry as
// real events.
func (s *Server) testWebhook(r *http.Request) (any, int, error) {
	id := mux.Vars(r)["id"]
	eps, err := s.hooks.store.WebhookEndpoints(r.Context())
	if err != nil {
		return nil, 0, err
	}
	var ep *storage.WebhookEndpoint
	for i := range eps {
		if eps[i].ID == id {
			ep = &eps[i]
		}
	}
	if ep == nil {
		return nil, 0, &Error{Code: CodeNotFound, Message: "webhook " + id + " not found"}
	}
	ev, err := webhook.New(webhook.TypeTest, s.hooks.now(), map[string]string{"webhook": id, "actor": actor(r)})
	if err != nil {
		return nil, 0, err
	}
	// Fan out to this endpoint only, whatever it subscribes to.
	one := *ep
	one.Events = nil
	ds, err := webhook.Deliveries([]webhook.Event{ev}, []storage.WebhookEndpoint{one})
	if err != nil {
		return nil, 0, err
	}
	if err := s.hooks.store.EnqueueWebhooks(r.Context(), ds); err != nil {
		return nil, 0, err
	}
	s.audit(r, "webhook.test", id, nil, map[string]string{"event_id": ev.ID})
	return map[string]string{"webhook": id, "event_id": ev.ID}, http.StatusAccepted, nil
}

// Webhooks lists the endpoints (never their secrets).
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	var out struct {
		Webhooks []Webhook `json:"webhooks"`
	}
	return out.Webhooks, c.doJSON(ctx, http.MethodGet, "/api/v1/webhooks", nil, &out)
}

// AddWebhook adds an endpoint; the secret is in the answer only.
func (c *Client) AddWebhook(ctx context.Context, id, rawURL string, events []string) (*NewWebhook, error) {
	var out NewWebhook
	body := map[string]any{"id": id, "url": rawURL, "events": events}
	return &out, c.doJSON(ctx, http.MethodPost, "/api/v1/webhooks", body, &out)
}

// RemoveWebhook removes an endpoint and its undelivered events.
func (c *Client) RemoveWebhook(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, "/api/v1/webhooks/"+url.PathEscape(id), nil, nil)
}

// TestWebhook queues a test event for an endpoint and returns its ID.
func (c *Client) TestWebhook(ctx context.Context, id string) (string, error) {
	var out struct {
		EventID string `json:"event_id"`
	}
	return out.EventID, c.doJSON(ctx, http.MethodPost, "/api/v1/webhooks/"+url.PathEscape(id)+"/test", nil, &out)
}
