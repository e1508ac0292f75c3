package httpmdm

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/sundial-mdm/sundial/mdm"
)

// DefaultInflightBytes bounds the request bodies the device endpoints hold
// at once before the devices are authenticated: 64 full-size (1 MiB)
// bodies, or thousands of real ones (a few KB each). Without it 200
// half-sent 1 MiB bodies took the server from 33 MB to 416 MB of RSS.
const DefaultInflightBytes = 64 << 20

// retryAfterSeconds is what a device is told to wait when the server is
// over its in-flight budget.
const retryAfterSeconds = 5

// WithInflightBytes sets DefaultInflightBytes (at least one full body).
func WithInflightBytes(n int64) Option {
	return func(h *Handler) { h.inflight.max = max(n, mdm.MaxBodySize) }
}

// inflight counts the body bytes requests have reserved.
type inflight struct {
	mu   sync.Mutex
	used int64
	max  int64
}

// reserve books the bytes a request may read: its Content-Length, or the
// body cap when it has none (chunked). It reports false, booking nothing,
// when that would exceed the budget.
func (f *inflight) reserve(r *http.Request) (int64, bool) {
	n := int64(mdm.MaxBodySize)
	if r.ContentLength >= 0 && r.ContentLength < n {
		n = r.ContentLength
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.used+n > f.max {
		return 0, false
	}
	f.used += n
	return n, true
}

func (f *inflight) release(n int64) {
	f.mu.Lock()
	f.used -= n
	f.mu.Unlock()
}

// overBudget answers 503 with Retry-After: a Mac retries later, as it does
// for any server error.
func overBudget(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	http.Error(w, "server busy", http.StatusServiceUnavailable)
}
