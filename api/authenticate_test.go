package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// An authenticated request reaches its handler once, with the actor and the
// key's ID. The merge of the console and security branches left a second
// call in authenticate, so every admin request ran twice and wrote two
// bodies (every client then failed to decode the answer).
func TestAuthenticatedRequestServedOnce(t *testing.T) {
	e := newReportEnv(t)
	s := New(e.store, noEnqueue{}, nil)
	calls := 0
	var actor, keyID string
	h := s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		actor, _ = r.Context().Value(actorKey).(string)
		keyID, _ = r.Context().Value(keyIDKey).(string)
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest(http.MethodGet, "/api/v1/devices", nil)
	req.Header.Set("Authorization", "Bearer good-key")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if calls != 1 || rec.Code != http.StatusNoContent || actor == "" || keyID == "" {
		t.Fatalf("handler ran %d times (status %d, actor %q, key %q), want once with both", calls, rec.Code, actor, keyID)
	}
}
