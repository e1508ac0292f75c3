package httpmdm

import (
	"io"
	"net/http"
)

// readBody reads a device body capped at limit bytes. When the request
// declares its length (always, for a Mac's check-ins and results), the
// buffer is allocated once at that size: io.ReadAll starts at 512 bytes and
// doubles, allocating about twice the body on every request.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength <= 0 || r.ContentLength > limit {
		return io.ReadAll(body)
	}
	// One spare byte, so that the end of the body is seen without growing.
	buf := make([]byte, 0, r.ContentLength+1)
	for {
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // more than declared: grow as ReadAll would
		}
	}
}
