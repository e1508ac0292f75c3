package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/mdm/push/apns"
)

// Files of the MDM push certificate set through the admin API.
const (
	pushCertFile = "push.pem"
	pushKeyFile  = "push.key"
)

// errNoPushCert is the push outcome while no certificate is configured.
var errNoPushCert = errors.New("no MDM push certificate configured: set one with `sundial pushcert set`")

// pushManager owns the MDM push certificate and the APNs sender built on
// it, and swaps both when an admin sets a new certificate. It implements
// push.Sender.
type pushManager struct {
	log     *slog.Logger
	clock   Clock
	url     string
	roots   []*x509.Certificate
	dir     string // where an API-set certificate is kept; "" = not kept
	workers int

	mu     sync.RWMutex
	cert   *certs.PushCert
	sender *apns.Sender

	// changed is called after a new certificate is in place (the push
	// service forgets the old one's errors).
	changed func()
}

func newPushManager(log *slog.Logger, clk Clock, url string, roots []*x509.Certificate, dir string) *pushManager {
	return &pushManager{log: log, clock: clk, url: url, roots: roots, dir: dir, workers: 64}
}

// Send implements push.Sender.
func (m *pushManager) Send(ctx context.Context, targets []push.Target) []push.Result {
	m.mu.RLock()
	s := m.sender
	m.mu.RUnlock()
	if s == nil {
		out := make([]push.Result, len(targets))
		for i, t := range targets {
			out[i] = push.Result{EnrollmentID: t.EnrollmentID, Outcome: push.OutcomeCertError, Reason: "NoCertificate", Err: errNoPushCert}
		}
		return out
	}
	return s.Send(ctx, targets)
}

// Ready implements push.ReadySender: without a usable certificate nothing
// can be pushed, so the push service does not poll for re-pushes.
func (m *pushManager) Ready() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.sender != nil
}

// Set validates pc, builds a sender for it and makes it current. When keep
// is true the certificate and key are written to the data directory.
func (m *pushManager) Set(pc *certs.PushCert, keep bool) error {
	if err := pc.Validate(m.clock.Now()); err != nil {
		return err
	}
	opts := []apns.Option{apns.WithURL(m.url), apns.WithWorkers(m.workers)}
	if len(m.roots) > 0 {
		opts = append(opts, apns.WithExtraRoots(m.roots...))
	}
	s, err := apns.New(pc.Certificate, pc.Topic, opts...)
	if err != nil {
		return fmt.Errorf("apns client: %w", err)
	}
	if keep && m.dir != "" {
		if err := m.save(pc); err != nil {
			s.Close()
			return err
		}
	}
	m.mu.Lock()
	old := m.sender
	m.cert, m.sender = pc, s
	changed := m.changed
	m.mu.Unlock()
	if old != nil {
		old.Close()
	}
	if changed != nil {
		changed()
	}
	m.log.Info("push certificate set", "topic", pc.Topic, "not_after", pc.NotAfter)
	return nil
}

func (m *pushManager) save(pc *certs.PushCert) error {
	var certPEM []byte
	for _, der := range pc.Certificate.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(pc.Certificate.PrivateKey)
	if err != nil {
		return fmt.Errorf("encode push key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := writePrivateFile(m.dir+"/"+pushKeyFile, keyPEM); err != nil {
		return err
	}
	return writePrivateFile(m.dir+"/"+pushCertFile, certPEM)
}

// loadSaved loads a certificate kept in the data directory, if any.
func (m *pushManager) loadSaved() error {
	certPEM, err := os.ReadFile(m.dir + "/" + pushCertFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(m.dir + "/" + pushKeyFile)
	if err != nil {
		return err
	}
	pc, err := certs.LoadPushCertPEM(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("push certificate in %s: %w", m.dir, err)
	}
	if err := m.Set(pc, false); err != nil {
		// An expired certificate still lets the server start; health says why.
		m.log.Error("push certificate unusable", "err", err)
		m.mu.Lock()
		m.cert = pc
		m.mu.Unlock()
	}
	return nil
}

// Topic is the current certificate's topic ("" when none).
func (m *pushManager) Topic() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.cert == nil {
		return ""
	}
	return m.cert.Topic
}

// Info describes the current certificate for the API and health.
func (m *pushManager) Info() api.PushCertInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.cert == nil {
		return api.PushCertInfo{}
	}
	now := m.clock.Now()
	info := api.PushCertInfo{Configured: true, Topic: m.cert.Topic, NotAfter: m.cert.NotAfter,
		ExpiresInDays: int(m.cert.NotAfter.Sub(now) / (24 * time.Hour)), Active: m.sender != nil}
	if err := m.cert.Validate(now); err != nil {
		info.Problem = err.Error()
	}
	return info
}

// Close closes the sender.
func (m *pushManager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sender != nil {
		m.sender.Close()
	}
}
