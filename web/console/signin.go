package console

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"
)

type signinData struct {
	Next string
	Zone string
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

// signinPage shows the sign-in form. Before a session exists, CSRF is
// checked by a double-submit cookie (SameSite=Strict as well).
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{Name: preCSRFCookie, Value: tok, Path: Prefix, HttpOnly: true,
		Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	c.render(w, r, http.StatusOK, "signin", nil, &view{Title: "Sign in", CSRF: tok,
		Data: signinData{Next: safeNext(r.URL.Query().Get("next")), Zone: "UTC"}})
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	ck, err := r.Cookie(preCSRFCookie)
	form := r.PostForm.Get("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(form)) != 1 {
		http.Error(w, "forbidden: reload the sign-in page", http.StatusForbidden)
		return
	}
	data := signinData{Next: safeNext(r.PostForm.Get("next")), Zone: strings.TrimSpace(r.PostForm.Get("zone"))}
	again := func(status int, msg string) {
		c.render(w, r, status, "signin", nil, &view{Title: "Sign in", CSRF: form, Error: msg, Data: data})
	}
	zone := time.UTC
	if data.Zone != "" && data.Zone != "UTC" {
		if len(data.Zone) > 64 {
			again(http.StatusBadRequest, "Unknown time zone.")
			return
		}
		if zone, err = time.LoadLocation(data.Zone); err != nil {
			again(http.StatusBadRequest, "Unknown time zone "+data.Zone+": use an IANA name such as Europe/Berlin.")
			return
		}
	}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	if key == "" || len(key) > 200 {
		again(http.StatusUnauthorized, "Enter an API key.")
		return
	}
	p, err := c.cfg.Auth.ByHash(r.Context(), HashKey(key))
	if err != nil {
		if !errors.Is(err, ErrBadKey) {
			c.log.Error("console: sign-in key check failed", "err", err)
			again(http.StatusInternalServerError, "The key could not be checked; try again.")
			return
		}
		c.log.Info("console: sign-in refused", "remote", r.RemoteAddr)
		again(http.StatusUnauthorized, "That API key is unknown or revoked.")
		return
	}
	now := c.cfg.Clock.Now()
	tok, _ := c.sessions.create(p, zone, now)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: Prefix, HttpOnly: true,
		Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode, Expires: now.Add(c.cfg.SessionTTL),
		MaxAge: int(c.cfg.SessionTTL / time.Second)})
	http.SetCookie(w, &http.Cookie{Name: preCSRFCookie, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode})
	c.log.Info("console: signed in", "actor", p.Name, "role", string(p.Role))
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.remove(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
	return "", nil, nil
}
