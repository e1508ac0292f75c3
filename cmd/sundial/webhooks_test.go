package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/internal/webhook"
)

// hookReceiver is a webhook receiver on loopback that checks signatures
// with the secret Sundial printed once, and can be switched off.
type hookReceiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	secret []byte
	up     bool
	got    map[string]int // event ID -> deliveries
	bad    []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{got: map[string]int{}, up: true}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.up {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify(h.secret, r.Header.Get(webhook.HeaderSignature), body, time.Now(), webhook.DefaultTolerance); err != nil {
			h.bad = append(h.bad, err.Error())
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var e webhook.Event
		if err := json.Unmarshal(body, &e); err != nil || e.ID == "" {
			h.bad = append(h.bad, "bad envelope")
			http.Error(w, "bad envelope", http.StatusBadRequest)
			return
		}
		h.got[e.ID]++
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) set(secret string, up bool) {
	h.mu.Lock()
	h.secret, h.up = []byte(secret), up
	h.mu.Unlock()
}

func (h *hookReceiver) count(ids []string) (have int, bad []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if h.got[id] > 0 {
			have++
		}
	}
	return have, append([]string(nil), h.bad...)
}

// TestWebhooksCLIAndDelivery drives `sundial webhooks add|list|test|remove`
// against a real server and checks the test event arrives signed with the
// secret shown once, that the secret is never listed, that each change is
// audited and that a read-only key cannot see the endpoints.
func TestWebhooksCLIAndDelivery(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	recv := newHookReceiver(t)
	cli := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		args = append(args, "--url", ts.url, "--data-dir", ts.dir)
		code := run(t.Context(), args, func(string) string { return "" }, &out, &errb)
		return out.String() + errb.String(), code
	}
	out, code := cli("webhooks", "add", "ops", recv.srv.URL, "-o", "json")
	if code != 0 {
		t.Fatalf("add: %d %s", code, out)
	}
	var added api.NewWebhook
	if err := json.Unmarshal([]byte(out), &added); err != nil || !strings.HasPrefix(added.Secret, "whsec_") {
		t.Fatalf("add output %q: %v", out, err)
	}
	recv.set(added.Secret, true)
	if out, code := cli("webhooks", "add", "ops", recv.srv.URL); code != 2 && code != 1 {
		t.Fatalf("duplicate add: %d %s", code, out)
	}
	if out, code := cli("webhooks", "add", "x", "ftp://nope"); code != 2 {
		t.Fatalf("bad URL: exit %d, want 2: %s", code, out)
	}
	if out, code := cli("webhooks", "add", "y", recv.srv.URL, "--event", "no.such"); code != 2 {
		t.Fatalf("bad event: exit %d, want 2: %s", code, out)
	}
	out, code = cli("webhooks", "list")
	if code != 0 || !strings.Contains(out, "ops") || strings.Contains(out, added.Secret) {
		t.Fatalf("list: %d %q", code, out)
	}
	out, code = cli("webhooks", "test", "ops", "-o", "json")
	var tested struct {
		EventID string `json:"event_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &tested) != nil || tested.EventID == "" {
		t.Fatalf("test: %d %q", code, out)
	}
	waitFor(t, func() bool { n, _ := recv.count([]string{tested.EventID}); return n == 1 })
	if _, bad := recv.count(nil); len(bad) != 0 {
		t.Fatalf("receiver refused deliveries: %v", bad)
	}
	if out, code := cli("webhooks", "test", "nope"); code != 3 {
		t.Fatalf("test unknown: exit %d, want 3: %s", code, out)
	}

	// A read-only key cannot list endpoints (their URLs may carry tokens).
	rk, err := ts.admin.CreateAPIKeyWithRole(t.Context(), "reader", api.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	reader := &api.Client{BaseURL: ts.url, APIKey: rk.Secret, HTTP: ts.hc}
	if _, err := reader.Webhooks(t.Context()); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("read key listed webhooks: %v", err)
	}

	if out, code := cli("webhooks", "remove", "ops"); code != 0 {
		t.Fatalf("remove: %d %s", code, out)
	}
	if out, code := cli("webhooks", "remove", "ops"); code != 3 {
		t.Fatalf("second remove: exit %d, want 3: %s", code, out)
	}
	entries, err := ts.admin.Audit(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if strings.HasPrefix(e.Action, "webhook.") {
			actions = append(actions, e.Action)
			if strings.Contains(string(e.After)+string(e.Before), added.Secret) {
				t.Fatal("the audit log holds the secret")
			}
		}
	}
	if strings.Join(actions, " ") != "webhook.add webhook.test webhook.remove" {
		t.Fatalf("audited %v", actions)
	}
}

// TestSIGKILLLosesNoWebhook queues events while the receiver is down, kills
// the server with SIGKILL (once with deliveries failing, once in the middle
// of a burst of deliveries) and checks every queued event still arrives.
func TestSIGKILLLosesNoWebhook(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir, addr := t.TempDir(), freeAddr(t)
	// A short lease: the restarted process takes over the killed one's
	// leadership (and with it the outbox) within seconds.
	start := func() *proc { return startProcWith(t, dir, addr, nil, "--lease-ttl", "3s") }
	p := start()
	_, admin := p.clients(t)
	ctx := t.Context()
	recv := newHookReceiver(t)
	added, err := admin.AddWebhook(ctx, "ops", recv.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv.set(added.Secret, false)
	var ids []string
	queue := func(n int) {
		for range n {
			id, err := admin.TestWebhook(ctx, "ops")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	// 1. Receiver down: the events wait in the outbox, failing; kill.
	queue(20)
	time.Sleep(3 * webhookInterval) // let the worker fail some attempts
	p.kill()
	p = start()
	_, admin = p.clients(t)

	// 2. Receiver up: kill as soon as the first deliveries land.
	queue(60)
	recv.set(added.Secret, true)
	upBy := time.Now().Add(60 * time.Second)
	for n, _ := recv.count(ids); n == 0; n, _ = recv.count(ids) {
		if time.Now().After(upBy) {
			t.Fatal("no event delivered within 60s of the receiver coming up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.kill()
	n, _ := recv.count(ids)
	t.Logf("killed with %d of %d events delivered", n, len(ids))
	p = start()

	deadline := time.Now().Add(90 * time.Second)
	for {
		n, bad := recv.count(ids)
		if len(bad) != 0 {
			t.Fatalf("receiver refused deliveries: %v", bad)
		}
		if n == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events lost across SIGKILL: %d of %d never arrived", len(ids)-n, len(ids))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
