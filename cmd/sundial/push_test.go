package main

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/mdm/push/apnsmock"
)

const testTopic = "com.apple.mgmt.External.5f0c8a1e-3d52-4c1b-9a55-0e7c2b1d9f10"

// pushEnv is a server wired to an APNs mock with a valid push certificate.
type pushEnv struct {
	*testServer
	mock *apnsmock.Server
}

func startPushEnv(t *testing.T) *pushEnv {
	t.Helper()
	mock := apnsmock.New()
	ms := apnsmock.NewTestServer(mock, nil)
	t.Cleanup(ms.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "..", "apns-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ms.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startTestServerWith(t, dir, func(c *Config) {
		c.APNsURL = ms.URL
		c.APNsCA = caFile
	})
	now := time.Now()
	certPEM, keyPEM := certstest.NewPushCert(testTopic, now.Add(-time.Hour), now.Add(300*24*time.Hour))
	info, err := ts.admin.SetPushCert(t.Context(), api.PushCertRequest{CertPEM: string(certPEM), KeyPEM: string(keyPEM)})
	if err != nil || info.Topic != testTopic || !info.Active {
		t.Fatalf("SetPushCert = %+v, %v", info, err)
	}
	return &pushEnv{testServer: ts, mock: mock}
}

// wake makes mac connect whenever APNs delivers a push to it, as a Mac does.
func (e *pushEnv) wake(t *testing.T, mac *mdmtest.Device) *atomic.Int32 {
	var connects atomic.Int32
	cancel := e.mock.Subscribe(mac.Token, func() {
		go func() {
			if _, err := mac.Connect(t.Context()); err == nil {
				connects.Add(1)
			}
		}()
	})
	t.Cleanup(cancel)
	return &connects
}

func TestPushEndToEnd(t *testing.T) {
	e := startPushEnv(t)
	mac := e.enroll(t)
	if got := mac.Enrollment().Topic; got != testTopic {
		t.Fatalf("profile topic = %s, want the push certificate's", got)
	}
	connects := e.wake(t, mac)
	// Enrollment queued DeviceInformation and pushed: the Mac connects by itself.
	waitFor(t, func() bool { return connects.Load() >= 1 && !e.device(t, mac.UDID).InventoryAt.IsZero() })
	// Enqueue through the API → push → connect → result stored.
	cmd, _ := mdm.NewCommand("ProfileList", nil)
	if _, err := e.admin.Enqueue(t.Context(), mac.UDID, cmd.Raw); err != nil {
		t.Fatal(err)
	}
	// A session counts once it ends: the one that delivered the command
	// (woken by the enqueue's push, or one still running from an earlier
	// push) may not have ended when the result is stored.
	waitFor(t, func() bool {
		rec, err := e.app.store.Command(t.Context(), mac.UDID, cmd.UUID)
		return err == nil && rec.Status == "Acknowledged" && connects.Load() >= 2
	})
	// Right headers and payload at APNs.
	pushes := e.mock.Pushes()
	if len(pushes) == 0 {
		t.Fatal("no push reached the mock")
	}
	p := pushes[len(pushes)-1]
	if p.PushType != "mdm" || p.Topic != testTopic || p.PushMagic != mac.PushMagic {
		t.Errorf("push = %+v", p)
	}
	d := e.device(t, mac.UDID)
	if d.LastPush.Outcome != "ok" || d.LastPush.At.IsZero() {
		t.Errorf("last push = %+v", d.LastPush)
	}
	// Coalescing: five enqueues in a burst make one push.
	before := e.mock.Delivered(mac.Token)
	for range 5 {
		c, _ := mdm.NewCommand("ProfileList", nil)
		if _, err := e.admin.Enqueue(t.Context(), mac.UDID, c.Raw); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return e.mock.Delivered(mac.Token) > before })
	time.Sleep(1500 * time.Millisecond)
	if n := e.mock.Delivered(mac.Token) - before; n != 1 {
		t.Errorf("burst of 5 enqueues made %d pushes, want 1", n)
	}
	// The health endpoint reports no push issue (the built-in release
	// catalog's age is reported too: that warning is not push's).
	// The detailed /healthz needs a key on the device listener.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/healthz", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin.APIKey)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h.Time.IsZero() {
		t.Errorf("healthz = %+v: the liveness answer, not the detailed one", h)
	}
	for _, issue := range h.Issues {
		if !strings.HasPrefix(issue, "release catalog is") {
			t.Errorf("healthz issue: %s", issue)
		}
	}
}

func TestPushUnregisteredTokenStopsPushes(t *testing.T) {
	e := startPushEnv(t)
	mac := e.enroll(t)
	waitFor(t, func() bool { return e.mock.Delivered(mac.Token) == 1 }) // the inventory push
	e.mock.FailToken(mac.Token, http.StatusGone, "Unregistered")
	c1, _ := mdm.NewCommand("ProfileList", nil)
	e.admin.Enqueue(t.Context(), mac.UDID, c1.Raw)
	waitFor(t, func() bool { return e.device(t, mac.UDID).TokenInvalid })
	if d := e.device(t, mac.UDID); d.LastPush.Reason != "Unregistered" {
		t.Errorf("last push = %+v", d.LastPush)
	}
	attempts := e.mock.Stats().Requests
	c2, _ := mdm.NewCommand("ProfileList", nil)
	e.admin.Enqueue(t.Context(), mac.UDID, c2.Raw)
	if _, err := e.admin.Push(t.Context(), mac.UDID); err == nil {
		t.Error("push now to an invalid token did not report a problem")
	}
	time.Sleep(1500 * time.Millisecond)
	if got := e.mock.Stats().Requests; got != attempts {
		t.Errorf("%d more pushes were sent to an unregistered token", got-attempts)
	}
	// A TokenUpdate makes the token valid again.
	e.mock.ClearToken(mac.Token)
	if err := mac.TokenUpdate(t.Context()); err != nil {
		t.Fatal(err)
	}
	res, err := e.admin.Push(t.Context(), mac.UDID)
	if err != nil || len(res) != 1 || res[0].Outcome != "ok" {
		t.Errorf("push after TokenUpdate = %+v, %v", res, err)
	}
}

func TestPushCertValidation(t *testing.T) {
	e := startPushEnv(t)
	now := time.Now()
	expiredCert, expiredKey := certstest.NewPushCert(testTopic, now.Add(-48*time.Hour), now.Add(-time.Hour))
	goodCert, _ := certstest.NewPushCert(testTopic, now.Add(-time.Hour), now.Add(time.Hour*24*300))
	_, otherKey := certstest.NewPushCert(testTopic, now.Add(-time.Hour), now.Add(time.Hour*24*300))
	noTopicCert, noTopicKey := certstest.NewPushCert("not.a.mgmt.topic", now.Add(-time.Hour), now.Add(time.Hour*24*300))
	tests := []struct {
		name string
		req  api.PushCertRequest
		want string
	}{
		{"expired", api.PushCertRequest{CertPEM: string(expiredCert), KeyPEM: string(expiredKey)}, "expired"},
		{"key does not match", api.PushCertRequest{CertPEM: string(goodCert), KeyPEM: string(otherKey)}, "match"},
		{"wrong topic", api.PushCertRequest{CertPEM: string(noTopicCert), KeyPEM: string(noTopicKey)}, "com.apple.mgmt"},
		{"garbage", api.PushCertRequest{CertPEM: "nope", KeyPEM: "nope"}, ""},
		{"nothing", api.PushCertRequest{}, "cert_pem"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.admin.SetPushCert(t.Context(), tc.req)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeInvalid || !strings.Contains(ae.Message, tc.want) {
				t.Errorf("err = %v, want invalid mentioning %q", err, tc.want)
			}
		})
	}
	if info, _ := e.admin.PushCert(t.Context()); info.Topic != testTopic || info.Problem != "" {
		t.Errorf("a refused certificate replaced the good one: %+v", info)
	}
}

func TestServerWorksWithAPNsUnreachable(t *testing.T) {
	ts := startTestServer(t, t.TempDir()) // --apns-url points at a closed port
	now := time.Now()
	certPEM, keyPEM := certstest.NewPushCert(testTopic, now.Add(-time.Hour), now.Add(300*24*time.Hour))
	if _, err := ts.admin.SetPushCert(t.Context(), api.PushCertRequest{CertPEM: string(certPEM), KeyPEM: string(keyPEM)}); err != nil {
		t.Fatal(err)
	}
	mac := ts.enroll(t)
	cmd, _ := mdm.NewCommand("ProfileList", nil)
	start := time.Now()
	if _, err := ts.admin.Enqueue(t.Context(), mac.UDID, cmd.Raw); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("enqueue took %v with APNs down", d)
	}
	sess, err := mac.Connect(t.Context())
	if err != nil || len(sess.Commands) != 3 { // inventory, agent settings, ProfileList
		t.Fatalf("connect = %s, %v", statuses(sess), err)
	}
	waitFor(t, func() bool { return ts.device(t, mac.UDID).LastPush.Outcome == "retry" })
}
