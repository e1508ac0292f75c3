package mdmtest

import (
	"bytes"
	"sync"
)

// WithSignatureReuse makes the device reuse an Mdm-Signature when it sends
// the very same body again (its Idle report, and the declarative GETs and
// status reports a sync repeats). A real Mac signs every message afresh; a
// server cannot tell the difference, since the signature is valid for the
// body. Load tests and long timelines use it so that the simulator's RSA
// signing does not starve the server being measured of CPU.
func WithSignatureReuse() Option {
	return func(d *Device) error {
		d.sigReuse = &sigCache{}
		return nil
	}
}

// sigCacheSize is how many recent bodies a device remembers a signature for:
// a declarative sync sends about four distinct bodies besides Idle.
const sigCacheSize = 8

type sigEntry struct {
	body []byte
	sig  string
}

// sigCache remembers the signatures of the last sigCacheSize distinct bodies,
// replacing the oldest first.
type sigCache struct {
	mu      sync.Mutex
	entries []sigEntry
	next    int
}

func (c *sigCache) get(body []byte) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if bytes.Equal(e.body, body) {
			return e.sig, true
		}
	}
	return "", false
}

func (c *sigCache) put(body []byte, sig string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := sigEntry{body: bytes.Clone(body), sig: sig}
	if len(c.entries) < sigCacheSize {
		c.entries = append(c.entries, e)
		return
	}
	c.entries[c.next] = e
	c.next = (c.next + 1) % sigCacheSize
}
