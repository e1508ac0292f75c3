package enrollment

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

// TestSCEPNestedBERRefused: a PKI message of deeply nested indefinite-length
// BER (under the size cap) is answered 400 before pkcs7.Parse sees it.
func TestSCEPNestedBERRefused(t *testing.T) {
	f := newSCEPFixture(t, newECDSAPKI(t), mustShared(t, "c"))
	msg := []byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80}
	msg = append(msg, bytes.Repeat([]byte{0x30, 0x80}, 2000)...)
	msg = append(msg, make([]byte, 2*2000+4)...)
	if len(msg) > MaxSCEPMessageSize {
		t.Fatalf("message of %d bytes is over the cap; the test needs one under it", len(msg))
	}
	if err := checkMessageKeys(msg); err == nil {
		t.Fatal("nested BER passed the shape check")
	}
	start := time.Now()
	resp, _ := f.post(t, "operation=PKIOperation", msg)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", resp.StatusCode)
	}
	t.Logf("answered in %v", time.Since(start))
}
