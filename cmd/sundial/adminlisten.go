package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/api"
)

// adminListener is the optional second listener (--admin-listen) for the
// admin API, /metrics and the detailed /healthz, so that the address Macs
// reach (often the internet) serves only the device endpoints.
type adminListener struct {
	handler http.Handler
	mu      sync.Mutex
	addr    net.Addr // once listening
}

// routeAdmin mounts /healthz and /metrics and returns the router the admin
// API goes on. With --admin-listen that is a router of its own, with
// /metrics and the detailed /healthz; the device router keeps a /healthz
// that says only whether the server is up. Without it everything shares
// the device router, and /metrics and the detailed /healthz need an API key.
func (a *app) routeAdmin(devices *mux.Router, adm *api.Server, metrics http.Handler) *mux.Router {
	if a.cfg.AdminListen == "" {
		devices.Handle("/metrics", adm.RequireKey(metrics))
		keyed := adm.RequireKey(http.HandlerFunc(a.healthz))
		devices.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "" {
				keyed.ServeHTTP(w, r)
				return
			}
			liveness(w, r)
		})
		return devices
	}
	devices.HandleFunc("/healthz", liveness)
	admin := mux.NewRouter()
	admin.HandleFunc("/healthz", a.healthz)
	admin.Handle("/metrics", metrics)
	a.admin.handler = admin
	return admin
}

// liveness is the /healthz anyone may read: the server answers.
func liveness(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}

// serveAdmin starts the admin listener, if configured, with the device
// server's settings and TLS. Its end is reported on errc.
func (a *app) serveAdmin(device *http.Server, errc chan<- error) (*http.Server, error) {
	if a.admin.handler == nil {
		return nil, nil
	}
	ln, err := net.Listen("tcp", a.cfg.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("--admin-listen: %w", err)
	}
	srv := &http.Server{
		Handler:           a.admin.handler,
		ReadHeaderTimeout: device.ReadHeaderTimeout,
		ReadTimeout:       device.ReadTimeout,
		WriteTimeout:      device.WriteTimeout,
		IdleTimeout:       device.IdleTimeout,
		MaxHeaderBytes:    device.MaxHeaderBytes,
		ErrorLog:          device.ErrorLog,
		TLSConfig:         device.TLSConfig.Clone(), // each server sets up HTTP/2 on its own
	}
	a.admin.mu.Lock()
	a.admin.addr = ln.Addr()
	a.admin.mu.Unlock()
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	a.log.Info("admin API serving", "addr", ln.Addr().String(), "tls", srv.TLSConfig != nil)
	return srv, nil
}

// adminAddr is the admin listener's address (nil without --admin-listen or
// before serve).
func (a *app) adminAddr() net.Addr {
	a.admin.mu.Lock()
	defer a.admin.mu.Unlock()
	return a.admin.addr
}
