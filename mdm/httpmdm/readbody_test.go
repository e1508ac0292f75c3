package httpmdm

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 3000)
	tests := []struct {
		name    string
		declare int64 // Content-Length; -1 for unknown
		limit   int64
		want    string
		tooBig  bool
	}{
		{"declared", 3000, 4096, body, false},
		{"unknown length", -1, 4096, body, false},
		{"declared, over the limit", 3000, 100, "", true},
		{"unknown length, over the limit", -1, 100, "", true},
		{"empty", 0, 4096, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := body
			if tt.declare == 0 {
				in = ""
			}
			r := httptest.NewRequest(http.MethodPut, "/mdm/connect", bytes.NewReader([]byte(in)))
			r.ContentLength = tt.declare
			have, err := readBody(httptest.NewRecorder(), r, tt.limit)
			var mbe *http.MaxBytesError
			if tt.tooBig {
				if !errors.As(err, &mbe) {
					t.Fatalf("err %v, want a MaxBytesError", err)
				}
				return
			}
			if err != nil || string(have) != tt.want {
				t.Fatalf("have %d bytes, %v; want %d bytes", len(have), err, len(tt.want))
			}
			if tt.declare > 0 && cap(have) != int(tt.declare)+1 {
				t.Errorf("capacity %d, want one allocation of %d", cap(have), tt.declare+1)
			}
		})
	}
}
