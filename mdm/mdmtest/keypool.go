package mdmtest

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// DefaultKeyPoolSize is the size of the process-wide pool behind DefaultKeyPool.
const DefaultKeyPoolSize = 8

// KeyPool hands out pre-generated RSA-2048 keys round-robin. Generating a key
// costs tens of milliseconds, so thousands of simulated devices share a few
// keys; their certificates still differ. Safe for concurrent use.
type KeyPool struct {
	keys []*rsa.PrivateKey
	next atomic.Uint64
}

// NewKeyPool generates n RSA-2048 keys concurrently.
func NewKeyPool(n int) (*KeyPool, error) {
	if n < 1 {
		return nil, fmt.Errorf("mdmtest: key pool size %d < 1", n)
	}
	keys := make([]*rsa.PrivateKey, n)
	errs := make([]error, n)
	workers := min(n, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	idx := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range idx {
				keys[i], errs[i] = rsa.GenerateKey(rand.Reader, 2048)
			}
		})
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mdmtest: generate keys: %w", err)
	}
	return &KeyPool{keys: keys}, nil
}

// NewKeyPoolFrom wraps existing keys (e.g. keys loaded from test fixtures).
func NewKeyPoolFrom(keys ...*rsa.PrivateKey) (*KeyPool, error) {
	if len(keys) == 0 {
		return nil, errors.New("mdmtest: empty key pool")
	}
	for _, k := range keys {
		if k == nil {
			return nil, errors.New("mdmtest: nil key in pool")
		}
	}
	return &KeyPool{keys: append([]*rsa.PrivateKey(nil), keys...)}, nil
}

// Key returns the next key.
func (p *KeyPool) Key() *rsa.PrivateKey {
	i := p.next.Add(1) - 1
	return p.keys[i%uint64(len(p.keys))]
}

// Len returns the number of distinct keys.
func (p *KeyPool) Len() int { return len(p.keys) }

var defaultPool = sync.OnceValue(func() *KeyPool {
	p, err := NewKeyPool(DefaultKeyPoolSize)
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(err)
	}
	return p
})

// DefaultKeyPool returns the process-wide pool of DefaultKeyPoolSize keys,
// generating it on first use.
func DefaultKeyPool() *KeyPool { return defaultPool() }
