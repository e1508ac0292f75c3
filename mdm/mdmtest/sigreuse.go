package mdmtest

import (
	"bytes"
	"sync"
)

// WithSignatureReuse makes the device reuse its last Mdm-Signature when it
// sends the very same body again (in practice: its Idle report). A real Mac
// signs every message afresh; a server cannot tell the difference, since the
// signature is valid for the body. Load tests use it so that the simulator's
// RSA signing does not starve the server being measured of CPU.
func WithSignatureReuse() Option {
	return func(d *Device) error {
		d.sigReuse = &sigCache{}
		return nil
	}
}

type sigCache struct {
	mu   sync.Mutex
	body []byte
	sig  string
}

func (c *sigCache) get(body []byte) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sig != "" && bytes.Equal(c.body, body) {
		return c.sig, true
	}
	return "", false
}

func (c *sigCache) put(body []byte, sig string) {
	c.mu.Lock()
	c.body, c.sig = append(c.body[:0], body...), sig
	c.mu.Unlock()
}
