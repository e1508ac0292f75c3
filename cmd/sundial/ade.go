package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/enrollment"
	"github.com/sundial-mdm/sundial/enrollment/ade"
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
		ade.WithLogger(a.log), ade.WithRegisterer(a.registry))
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
