package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/sundial-mdm/sundial/mdm/mdmtest"
)

// simulatedFile keeps the simulated Macs of `server --simulate` in the data
// directory, so that a restart brings the same Macs back (they re-enroll
// under the same UDIDs) instead of enrolling new ones.
const simulatedFile = "simulated-macs.json"

// simulatedMac is what is kept of a simulated Mac: who it is and what it
// runs. Its SCEP key and identity are made anew at each start.
type simulatedMac struct {
	UDID        string `json:"udid"`
	Serial      string `json:"serial_number"`
	Name        string `json:"device_name"`
	ProductName string `json:"product_name"`
	ModelName   string `json:"model_name"`
	BoardID     string `json:"board_id"`
	Silicon     bool   `json:"apple_silicon"`
	OSVersion   string `json:"os_version"`
	Build       string `json:"build"`
	Token       []byte `json:"push_token"`
	PushMagic   string `json:"push_magic"`
}

func describeSimulated(d *mdmtest.Device) simulatedMac {
	return simulatedMac{UDID: d.UDID, Serial: d.SerialNumber, Name: d.DeviceName, ProductName: d.ProductName,
		ModelName: d.ModelName, BoardID: d.SoftwareUpdateDeviceID, Silicon: d.IsAppleSilicon,
		OSVersion: d.OSVersion(), Build: d.BuildVersion(), Token: d.Token, PushMagic: d.PushMagic}
}

// loadSimulated reads the kept Macs; none when the file does not exist.
func loadSimulated(path string) ([]simulatedMac, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var macs []simulatedMac
	if err := json.Unmarshal(b, &macs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return macs, nil
}

func saveSimulated(path string, f *mdmtest.Fleet) error {
	macs := make([]simulatedMac, len(f.Devices))
	for i, d := range f.Devices {
		macs[i] = describeSimulated(d)
	}
	b, err := json.MarshalIndent(macs, "", "  ")
	if err != nil {
		return err
	}
	return writePrivateFile(path, b)
}

// simulatedFleet is n Macs: those kept in the data directory first, new
// ones for the rest.
func (a *app) simulatedFleet(n int, opts ...mdmtest.Option) (*mdmtest.Fleet, int, error) {
	kept, err := loadSimulated(a.cfg.path(simulatedFile))
	if err != nil {
		return nil, 0, err
	}
	f, err := mdmtest.NewFleet(0, opts...)
	if err != nil {
		return nil, 0, err
	}
	reused := 0
	for i := range n {
		o := opts
		if i < len(kept) {
			k := kept[i]
			o = append(append([]mdmtest.Option(nil), opts...), mdmtest.WithUDID(k.UDID), mdmtest.WithSerialNumber(k.Serial),
				mdmtest.WithDeviceName(k.Name), mdmtest.WithHardware(mdmtest.Hardware{ProductName: k.ProductName, ModelName: k.ModelName,
					SoftwareUpdateDeviceID: k.BoardID, IsAppleSilicon: k.Silicon}),
				mdmtest.WithOS(k.OSVersion, k.Build), mdmtest.WithPushToken(k.Token, k.PushMagic))
			reused++
		}
		d, err := mdmtest.New(o...)
		if err != nil {
			return nil, 0, fmt.Errorf("simulated Mac %d: %w", i+1, err)
		}
		f.Devices = append(f.Devices, d)
	}
	return f, reused, nil
}

// simulate enrolls n simulated Macs against this server over loopback and
// keeps them checking in, so that a fresh install has something to show.
// The Macs are kept in the data directory: a restart re-enrolls the same
// ones.
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
	defer hc.CloseIdleConnections() // lets the server's graceful shutdown finish
	keys, err := mdmtest.NewKeyPool(min(n, 8))
	if err != nil {
		a.log.Error("simulator: key pool", "err", err)
		return
	}
	fleet, reused, err := a.simulatedFleet(n, mdmtest.WithKeyPool(keys), mdmtest.WithHTTPClient(hc))
	if err != nil {
		a.log.Error("simulator: fleet", "err", err)
		return
	}
	path := a.cfg.path(simulatedFile)
	if err := saveSimulated(path, fleet); err != nil {
		a.log.Error("simulator: keeping the simulated Macs", "file", path, "err", err)
	}
	// Keep what they run now on the way out, so a restart resumes there.
	defer func() {
		if err := saveSimulated(path, fleet); err != nil {
			a.log.Error("simulator: keeping the simulated Macs", "file", path, "err", err)
		}
	}()
	// The profile points at --public-url; the simulated Macs are on this
	// machine, so they follow the profile only when it is reachable.
	if err := fleet.Enroll(ctx, hc, base+"/mdm/enroll"); err != nil {
		a.log.Error("simulator: enrollment failed", "err", err)
		return
	}
	a.log.Info("simulator: Macs enrolled", "count", n, "reused", reused, "new", n-reused, "file", path)
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
