package bolt

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/s2"
)

// Command bodies (cmdraw) and device results (cmdres) are XML property
// lists, most of the database by size: a settings profile or a
// DeviceInformation answer is several KB of markup that compresses to a
// third of it. They are stored compressed when that saves space, behind a
// marker byte that no XML plist starts with. Values written by earlier
// versions read as before: plain plists, and deflate (schema 2 before
// 2026-11-27 night).
//
// New values use S2 (github.com/klauspost/compress/s2): an order of
// magnitude faster than deflate at its fastest level, for output about a
// fifth larger (docs/benchmarks.md, "Scheduler").
const (
	// blobRaw prefixes a body kept as it is whose first byte is a marker,
	// so that it never reads as compressed (plists never start with one).
	blobRaw     = 0x00
	blobDeflate = 0x01
	blobS2      = 0x02
	// blobRef marks a command's reference to a body it shares with the
	// other Macs it was queued for (cmdshare.go); only cmdbodies holds one.
	blobRef = 0x03
	// blobMinSize: smaller bodies (an Idle-sized command) are kept as they
	// are, compression would save little.
	blobMinSize = 512
	// blobMaxSize bounds what decompressing a stored value may produce.
	blobMaxSize = 64 << 20
)

var inflaters = sync.Pool{New: func() any { return flate.NewReader(nil) }}

// packBlob returns the stored form of a plist body.
func packBlob(b []byte) []byte { return packBlobWith(b, nil, nil) }

// packBlobWith is packBlob compressing into *scratch (grown as needed, kept
// for the next body) and copying the result into a (nil: its own slice).
func packBlobWith(b []byte, scratch *[]byte, a *arena) []byte {
	if len(b) < blobMinSize {
		return keepBlob(b)
	}
	// Compressed into a reused worst-case buffer (the caller's, else one
	// from packScratch), then copied out at its size.
	if scratch == nil {
		sp := packScratch.Get().(*[]byte)
		defer putPackScratch(sp)
		scratch = sp
	}
	need := 1 + s2.MaxEncodedLen(len(b))
	if cap(*scratch) < need {
		*scratch = make([]byte, need)
	}
	out := (*scratch)[:need]
	out[0] = blobS2
	enc := s2.Encode(out[1:], b)
	if 1+len(enc) >= len(b) {
		return keepBlob(b)
	}
	return a.copy(out[:1+len(enc)])
}

// packScratch holds packBlob's buffers; those over maxPackScratch (bodies
// larger than a device's) are dropped rather than kept.
var packScratch = sync.Pool{New: func() any { return new([]byte) }}

const maxPackScratch = 2 << 20

func putPackScratch(sp *[]byte) {
	if cap(*sp) <= maxPackScratch {
		packScratch.Put(sp)
	}
}

// arena hands out byte slices carved from shared blocks: the encodings of
// a chunk of commits, which are written and dropped together, cost a few
// allocations instead of one each.
type arena struct{ block []byte }

// arenaBlock is the size of an arena's blocks.
const arenaBlock = 64 << 10

// copy returns a copy of b with its capacity at its length, so that
// appending to it cannot reach a neighbour. A nil arena allocates it alone.
func (a *arena) copy(b []byte) []byte {
	if a == nil || len(b) > arenaBlock/4 {
		return append(make([]byte, 0, len(b)), b...)
	}
	if cap(a.block)-len(a.block) < len(b) {
		a.block = make([]byte, 0, arenaBlock)
	}
	n := len(a.block)
	a.block = append(a.block, b...)
	return a.block[n:len(a.block):len(a.block)]
}

// keepBlob returns the stored form of b kept as it is.
func keepBlob(b []byte) []byte {
	if len(b) > 0 && b[0] <= blobRef {
		return append([]byte{blobRaw}, b...)
	}
	return b
}

// unpackBlob returns a copy of the body stored as v.
func unpackBlob(v []byte) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if len(v) == 0 {
		return clone(v), nil
	}
	switch v[0] {
	case blobS2:
		n, err := s2.DecodedLen(v[1:])
		if err != nil {
			return nil, fmt.Errorf("decompress stored body: %w", err)
		}
		if n > blobMaxSize {
			return nil, errors.New("decompress stored body: larger than 64 MB")
		}
		out, err := s2.Decode(make([]byte, n), v[1:])
		if err != nil {
			return nil, fmt.Errorf("decompress stored body: %w", err)
		}
		return out, nil
	case blobDeflate:
		return inflate(v[1:])
	case blobRaw:
		return clone(v[1:]), nil
	default:
		return clone(v), nil
	}
}

func inflate(v []byte) ([]byte, error) {
	r := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(v), nil); err != nil {
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
