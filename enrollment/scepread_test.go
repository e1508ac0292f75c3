package enrollment

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/iotest"
)

// readers wraps a body the ways a network reader may deliver it.
var readers = map[string]func(io.Reader) io.Reader{
	"whole":    func(r io.Reader) io.Reader { return r },
	"one byte": iotest.OneByteReader,
	"half":     iotest.HalfReader,
	"data+EOF": iotest.DataErrReader,
}

// checkReadAllSized compares readAllSized with io.ReadAll for one body and
// one declared length.
func checkReadAllSized(t *testing.T, body []byte, declared int64) {
	t.Helper()
	for name, wrap := range readers {
		want, wantErr := io.ReadAll(wrap(bytes.NewReader(body)))
		have, haveErr := readAllSized(wrap(bytes.NewReader(body)), declared)
		if !bytes.Equal(have, want) || (haveErr == nil) != (wantErr == nil) {
			t.Fatalf("%s, %d bytes declared %d: read %d bytes, %v; io.ReadAll %d bytes, %v",
				name, len(body), declared, len(have), haveErr, len(want), wantErr)
		}
	}
}

func TestReadAllSizedMatchesReadAll(t *testing.T) {
	for _, size := range []int{0, 1, 511, 512, 513, 2500, MaxSCEPMessageSize, MaxSCEPMessageSize + 1, 3 * MaxSCEPMessageSize} {
		body := bytes.Repeat([]byte{0x5a}, size)
		for _, declared := range []int64{-1, 0, 1, int64(size) - 1, int64(size), int64(size) + 1, MaxSCEPMessageSize, 1 << 40} {
			checkReadAllSized(t, body, declared)
		}
	}
}

func TestReadAllSizedOneAllocation(t *testing.T) {
	body := bytes.Repeat([]byte{1}, 2500)
	r := bytes.NewReader(body)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(body)
		if b, err := readAllSized(r, int64(len(body))); err != nil || len(b) != len(body) {
			t.Fatal(len(b), err)
		}
	})
	if allocs != 1 {
		t.Errorf("%v allocations for a body of the declared size, want 1", allocs)
	}
}

// The body cap still applies, whatever length the client declares.
func TestReadAllSizedKeepsTheCap(t *testing.T) {
	errRead := errors.New("read failed")
	if _, err := readAllSized(iotest.ErrReader(errRead), 100); !errors.Is(err, errRead) {
		t.Errorf("read error = %v, want %v", err, errRead)
	}
	for _, declared := range []int64{-1, 10, MaxSCEPMessageSize, 1 << 40} {
		body := bytes.Repeat([]byte{1}, MaxSCEPMessageSize+1)
		req := httptest.NewRequest(http.MethodPost, PathSCEP+"?operation=PKIOperation", bytes.NewReader(body))
		req.ContentLength = declared
		_, err := readPKIMessage(httptest.NewRecorder(), req)
		if err == nil || err.Error() != "message larger than 16384 bytes" {
			t.Errorf("declared %d: err = %v, want the size refusal", declared, err)
		}
	}
}

func FuzzReadAllSized(f *testing.F) {
	f.Add([]byte("abc"), int64(3))
	f.Add(make([]byte, 600), int64(-1))
	f.Add(make([]byte, 600), int64(599))
	f.Fuzz(func(t *testing.T, body []byte, declared int64) {
		checkReadAllSized(t, body, declared)
	})
}
