package bolt

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Command bodies (cmdraw) and device results (cmdres) are XML property
// lists, most of the database by size: a settings profile or a
// DeviceInformation answer is several KB of markup that deflates to a
// quarter of it. They are stored deflated when that saves space, behind a
// marker byte that no XML plist starts with; values written by earlier
// versions (plain plists) read as before.
const (
	blobDeflate = 0x01
	// blobMinSize: smaller bodies (an Idle-sized command) are kept as they
	// are, deflate would save little.
	blobMinSize = 512
	// blobMaxSize bounds what inflating a stored value may produce.
	blobMaxSize = 64 << 20
)

var (
	deflaters = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.BestSpeed)
		return w
	}}
	inflaters = sync.Pool{New: func() any { return flate.NewReader(nil) }}
)

// packBlob returns the stored form of a plist body.
func packBlob(b []byte) []byte {
	if len(b) < blobMinSize {
		return b
	}
	var out bytes.Buffer
	out.Grow(len(b) / 3)
	out.WriteByte(blobDeflate)
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	w.Reset(&out)
	if _, err := w.Write(b); err != nil {
		return b
	}
	if err := w.Close(); err != nil || out.Len() >= len(b) {
		return b
	}
	return out.Bytes()
}

// unpackBlob returns a copy of the body stored as v.
func unpackBlob(v []byte) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if len(v) == 0 || v[0] != blobDeflate {
		return clone(v), nil
	}
	r := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(v[1:]), nil); err != nil {
		return nil, fmt.Errorf("inflate stored body: %w", err)
	}
	out := bytes.NewBuffer(make([]byte, 0, 4*len(v)))
	n, err := io.Copy(out, io.LimitReader(r, blobMaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("inflate stored body: %w", err)
	}
	if n > blobMaxSize {
		return nil, errors.New("inflate stored body: larger than 64 MB")
	}
	return out.Bytes(), nil
}
