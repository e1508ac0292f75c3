package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/enrollment"
	"github.com/sundial-mdm/sundial/enrollment/ade"
	"github.com/sundial-mdm/sundial/enrollment/ade/abm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// loadPEMCerts reads every certificate of a PEM file.
func loadPEMCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}

// registerADE serves the ADE enrollment request on POST /mdm/enroll (GET
// keeps serving the downloaded profile). Without --ade-apple-root the POST
// answers 503: Sundial ships no Apple root, the admin provides it.
func (a *app) registerADE(r *mux.Router, profiles *enrollment.ProfileHandler, bound *enrollment.BoundChallenges) error {
	if a.cfg.ADEAppleRoot == "" {
		r.Handle("/mdm/enroll", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "automated device enrollment is not configured (--ade-apple-root)", http.StatusServiceUnavailable)
		})).Methods(http.MethodPost)
		return nil
	}
	roots, err := loadPEMCerts(a.cfg.ADEAppleRoot)
	if err != nil {
		return fmt.Errorf("--ade-apple-root: %w", err)
	}
	v, err := ade.NewVerifier(roots)
	if err != nil {
		return err
	}
	h := ade.NewHandler(v, a.store, setupMinimum{a.manager, a.catalog, a.clock}, bound, profiles, a.clock,
		ade.WithLogger(a.log), ade.WithRegisterer(a.registry), ade.WithHeldRecorder(heldAudit{a}))
	r.Handle("/mdm/enroll", h).Methods(http.MethodPost)
	return nil
}

// setupMinimum resolves the macOS an ADE Mac's group requires at Setup
// Assistant, from the group's policy and the catalog, as the scheduler
// resolves a target for an enrolled Mac.
type setupMinimum struct {
	manager *scheduler.Manager
	catalog *catalog.Catalog
	clock   Clock
}

func (s setupMinimum) SetupMinimum(ctx context.Context, dev *storage.ADEDevice, mi *ade.MachineInfo) (ade.Requirement, error) {
	group := dev.Group
	if group == "" {
		group = scheduler.DefaultGroupID
	}
	rec, err := s.manager.Policy(ctx, group)
	if errors.Is(err, storage.ErrNotFound) {
		return ade.Requirement{}, nil
	}
	if err != nil {
		return ade.Requirement{}, err
	}
	if !rec.Policy.SetupMinimumRequired() {
		return ade.Requirement{}, nil
	}
	cur, err := catalog.ParseVersion(mi.OSVersion)
	if err != nil {
		return ade.Requirement{}, nil
	}
	t := softwareupdate.ResolveTarget(rec.Policy, softwareupdate.DeviceFacts{
		OSVersion: cur, Build: mi.Version, BoardID: mi.SoftwareUpdateDeviceID, Model: mi.Product,
	}, s.catalog, s.clock.Now())
	if t.Status != softwareupdate.StatusRequired {
		return ade.Requirement{}, nil
	}
	return ade.Requirement{OSVersion: t.Version.String(), BuildVersion: t.Build}, nil
}

// depAdmin is the admin API's view of the ABM connection: every change is
// written to the audit log with its actor.
type depAdmin struct {
	conn  *abm.Connector
	store backend
	clock Clock
	log   *slog.Logger
}

var _ api.DEP = depAdmin{}

func (d depAdmin) audit(ctx context.Context, actor, action, subject string, after any) {
	e, err := scheduler.NewAuditEntry(d.clock.Now(), actor, action, subject, nil, after)
	if err == nil {
		err = d.store.AppendAudit(ctx, e)
	}
	if err != nil {
		d.log.Error("audit entry not written", "action", action, "err", err)
	}
}

func (d depAdmin) Keypair(ctx context.Context, actor, name, baseURL string) ([]byte, error) {
	if !storage.ValidDEPName(name) {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "server name: 1 to 64 letters, digits, dots, dashes or underscores"}
	}
	_, err := d.store.DEPServer(ctx, name)
	isNew := errors.Is(err, storage.ErrNotFound)
	pem, err := d.conn.Keypair(ctx, name, baseURL)
	if err == nil && isNew {
		d.audit(ctx, actor, "dep.keypair", name, map[string]string{"base_url": baseURL})
	}
	return pem, err
}

func (d depAdmin) UploadToken(ctx context.Context, actor, name string, p7m []byte) (*api.DEPServerInfo, error) {
	srv, err := d.conn.UploadToken(ctx, name, p7m)
	switch {
	case errors.Is(err, abm.ErrBadToken), errors.Is(err, abm.ErrNoKeypair):
		return nil, &api.Error{Code: api.CodeInvalid, Message: err.Error()}
	case err != nil:
		return nil, err
	}
	d.audit(ctx, actor, "dep.token.upload", name, map[string]any{"token_expiry": srv.TokenExpiry})
	// Account details are a nicety: a token that ABM refuses shows up in
	// the next sync's error too.
	if acc, err := d.conn.RefreshAccount(ctx, name); err == nil {
		srv = acc
	} else {
		d.log.Warn("abm account details not read", "server", name, "err", err)
	}
	info := depInfo(*srv, d.clock.Now())
	return &info, nil
}

func (d depAdmin) Servers(ctx context.Context) ([]api.DEPServerInfo, error) {
	l, err := d.store.DEPServers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.DEPServerInfo, len(l))
	for i, s := range l {
		out[i] = depInfo(s, d.clock.Now())
	}
	return out, nil
}

func (d depAdmin) SyncNow(ctx context.Context, actor, name string) (*api.DEPSyncResult, error) {
	res, err := d.conn.Sync(ctx, name)
	if errors.Is(err, abm.ErrNoToken) || errors.Is(err, abm.ErrBackoff) {
		return nil, &api.Error{Code: api.CodeConflict, Message: err.Error()}
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, &api.Error{Code: api.CodeConflict, Message: "abm sync failed: " + err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return &api.DEPSyncResult{Pages: res.Pages, Added: res.Added, Modified: res.Modified, Deleted: res.Deleted,
		Assigned: res.Assigned, Restarted: res.Restarted}, nil
}

func (d depAdmin) Devices(ctx context.Context, after string, limit int) ([]storage.ADEDevice, error) {
	return d.store.ADEDevices(ctx, after, limit)
}

func (d depAdmin) MoveSerial(ctx context.Context, actor, serial, group string) (*storage.ADEDevice, error) {
	if group != "" && group != scheduler.DefaultGroupID {
		gs, err := d.store.Groups(ctx)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(gs, func(g scheduler.Group) bool { return g.ID == group }) {
			return nil, &api.Error{Code: api.CodeNotFound, Message: "no group " + group}
		}
	}
	if group == scheduler.DefaultGroupID {
		group = ""
	}
	before, err := d.store.ADEDevice(ctx, serial)
	if err != nil {
		return nil, err
	}
	dev, err := d.conn.MoveSerial(ctx, serial, group)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		return nil, &api.Error{Code: api.CodeConflict, Message: "group stored, but the abm profile was not assigned: " + err.Error()}
	}
	e, aerr := scheduler.NewAuditEntry(d.clock.Now(), actor, "dep.device.group", serial,
		map[string]string{"group": before.Group}, map[string]string{"group": group})
	if aerr == nil {
		aerr = d.store.AppendAudit(ctx, e)
	}
	if aerr != nil {
		d.log.Error("audit entry not written", "err", aerr)
	}
	return dev, nil
}

// depInfo is a server record without its secrets.
func depInfo(s storage.DEPServer, now time.Time) api.DEPServerInfo {
	info := api.DEPServerInfo{Name: s.Name, BaseURL: s.BaseURL, ServerName: s.ServerName, OrgName: s.OrgName, AdminID: s.AdminID,
		HasKeypair: len(s.SealedKey) > 0, HasToken: len(s.SealedTokens) > 0, TokenExpiry: s.TokenExpiry,
		LastSyncAt: s.LastSyncAt, LastError: s.LastError, RetryAt: s.RetryAt}
	if !s.TokenExpiry.IsZero() {
		info.TokenExpiresInDays = int(s.TokenExpiry.Sub(now).Hours() / 24)
	}
	if len(s.Profiles) > 0 {
		info.Profiles = map[string]string{}
		for g, p := range s.Profiles {
			if g == "" {
				g = scheduler.DefaultGroupID
			}
			info.Profiles[g] = p.UUID
		}
	}
	return info
}

// depWarnings are /healthz issues: tokens that expire within 30 days (or
// have), and servers whose sync keeps failing.
func (a *app) depWarnings(ctx context.Context) []string {
	l, err := a.store.DEPServers(ctx)
	if err != nil {
		return []string{"abm servers not readable: " + err.Error()}
	}
	var out []string
	now := a.clock.Now()
	for _, s := range l {
		switch {
		case len(s.SealedTokens) == 0:
		case !now.Before(s.TokenExpiry):
			out = append(out, fmt.Sprintf("abm server %s: server token expired: download a new one in Apple Business Manager and run `sundial dep token upload %s FILE`", s.Name, s.Name))
		case s.TokenExpiry.Sub(now) < 30*24*time.Hour:
			out = append(out, fmt.Sprintf("abm server %s: server token expires in %d days: renew it in Apple Business Manager", s.Name, int(s.TokenExpiry.Sub(now).Hours()/24)))
		}
		if s.LastError != "" && s.Failures >= 3 {
			out = append(out, fmt.Sprintf("abm server %s: device sync failing (%d times): %s", s.Name, s.Failures, s.LastError))
		}
	}
	return out
}

// newDEPConnector builds the ABM connection: DEP API requests trust the
// system roots plus --dep-ca (the mock's), and profiles point Macs at this
// server's enrollment URL with Sundial's CA as anchor.
func (a *app) newDEPConnector(sealer abm.Sealer) (*abm.Connector, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.cfg.DEPCA != "" {
		extra, err := loadPEMCerts(a.cfg.DEPCA)
		if err != nil {
			return nil, fmt.Errorf("--dep-ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, c := range extra {
			pool.AddCert(c)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	conn := abm.New(a.store, sealer, a.clock, &http.Client{Transport: tr, Timeout: 60 * time.Second})
	set := abm.ProfileSettings{EnrollURL: strings.TrimRight(a.cfg.PublicURL, "/") + "/mdm/enroll", SkipSetupItems: a.cfg.ADESkipSetup}
	if a.cfg.TLSCert == "" && !a.cfg.NoTLS {
		set.Anchor = a.authority.CA()
	}
	conn.SetProfileSettings(set)
	return conn, nil
}

// runDEPSync syncs every ABM server with a token every interval, on the
// scheduler leader only, until ctx ends.
func (a *app) runDEPSync(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		l, err := a.store.DEPServers(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Error("abm servers not read", "err", err)
		}
		for _, s := range l {
			if len(s.SealedTokens) == 0 {
				continue
			}
			res, err := a.dep.Sync(ctx, s.Name)
			switch {
			case errors.Is(err, abm.ErrBackoff) || ctx.Err() != nil:
			case err != nil:
				a.log.Warn("abm device sync failed", "server", s.Name, "err", err)
			case res.Added+res.Modified+res.Deleted > 0:
				a.log.Info("abm device sync", "server", s.Name, "added", res.Added, "modified", res.Modified,
					"deleted", res.Deleted, "assigned", res.Assigned, "refetched", res.Restarted)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heldAudit writes a Mac held at Setup Assistant to the audit log.
type heldAudit struct{ a *app }

func (h heldAudit) RecordHeld(ctx context.Context, serial, udid, have, want string) {
	e, err := scheduler.NewAuditEntry(h.a.clock.Now(), "ade", "ade.setup.update_required", serial, nil,
		map[string]string{"udid": udid, "os_version": have, "required": want})
	if err == nil {
		err = h.a.store.AppendAudit(ctx, e)
	}
	if err != nil {
		h.a.log.Error("audit entry not written", "action", "ade.setup.update_required", "err", err)
	}
}
