package httpmdm_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/httpmdm"
	"github.com/sundial-mdm/sundial/mdm/service"
)

type refuseAll struct{}

func (refuseAll) VerifySigner(*certs.Signer, time.Time) error { return errors.New("untrusted") }

type noService struct{}

func (noService) Checkin(context.Context, service.Identity, *mdm.CheckinMessage) ([]byte, error) {
	return nil, nil
}

func (noService) CommandReport(context.Context, service.Identity, *mdm.Report, []byte) (*mdm.Command, error) {
	return nil, nil
}

type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }

// TestInflightBytesBounded: strangers who send the headers of full-size
// bodies and stall hold at most the in-flight budget; beyond it requests
// get 503 with Retry-After, and once they give up the server takes
// requests again.
func TestInflightBytesBounded(t *testing.T) {
	h := httpmdm.New(noService{}, refuseAll{}, fixedClock{}, httpmdm.WithInflightBytes(3*mdm.MaxBodySize))
	srv := httptest.NewServer(h.Connect())
	defer srv.Close()

	// Three stalled uploads of 1 MiB bodies, half sent.
	var stalled []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "PUT / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-apple-aspen-mdm\r\nContent-Length: %d\r\nMdm-Signature: AAAA\r\n\r\n", mdm.MaxBodySize)
		if _, err := c.Write(make([]byte, mdm.MaxBodySize/2)); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	put := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("<plist/>"))
		req.Header.Set("Mdm-Signature", "AAAA")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// The stalled uploads hold the whole budget once the server has read
	// their headers.
	deadline := time.Now().Add(5 * time.Second)
	var resp *http.Response
	for resp = put(); resp.StatusCode != http.StatusServiceUnavailable; resp = put() {
		if time.Now().After(deadline) {
			t.Fatalf("status = %d with the budget held by stalled uploads, want 503", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	for _, c := range stalled {
		c.Close()
	}
	// Their bytes are released; a request is served again (401: the fake
	// verifier trusts nobody).
	deadline = time.Now().Add(5 * time.Second)
	for resp = put(); resp.StatusCode != http.StatusUnauthorized; resp = put() {
		if time.Now().After(deadline) {
			t.Fatalf("status = %d after the stalled uploads gave up, want 401", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
