package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/sundial-mdm/sundial/mdm/mdmtest"
)

// simulate enrolls n simulated Macs against this server over loopback and
// keeps them checking in, so that a fresh install has something to show.
func (a *app) simulate(ctx context.Context, addr net.Addr, n int) {
	port := addr.(*net.TCPAddr).Port
	scheme := "https"
	if a.cfg.NoTLS {
		scheme = "http"
	}
	base := scheme + "://127.0.0.1:" + strconv.Itoa(port)
	pool := x509.NewCertPool()
	pool.AddCert(a.authority.CA())
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
	}}
	keys, err := mdmtest.NewKeyPool(min(n, 8))
	if err != nil {
		a.log.Error("simulator: key pool", "err", err)
		return
	}
	fleet, err := mdmtest.NewFleet(n, mdmtest.WithKeyPool(keys), mdmtest.WithHTTPClient(hc))
	if err != nil {
		a.log.Error("simulator: fleet", "err", err)
		return
	}
	// The profile points at --public-url; the simulated Macs are on this
	// machine, so they follow the profile only when it is reachable.
	if err := fleet.Enroll(ctx, hc, base+"/mdm/enroll"); err != nil {
		a.log.Error("simulator: enrollment failed", "err", err)
		return
	}
	a.log.Info("simulator: Macs enrolled", "count", n)
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		if cmds, err := fleet.Connect(ctx); err != nil {
			a.log.Warn("simulator: connect failed", "err", err)
		} else {
			a.log.Info("simulator: Macs checked in", "count", n, "commands_answered", cmds)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
