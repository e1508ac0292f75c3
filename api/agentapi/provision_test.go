package agentapi_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api/agentapi"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// pushes records the devices the provisioner woke.
type pushes struct{ ids []string }

func (p *pushes) Notify(ids ...string) { p.ids = append(p.ids, ids...) }

// failingSealer refuses to seal.
type failingSealer struct{}

func (failingSealer) SealCommand(*mdm.Command) (*mdm.Command, error) {
	return nil, errors.New("sealer down")
}

// TestProvision: the secret and its sealed settings profile are stored
// together and the Mac is pushed after; a refused provisioning stores
// neither and pushes nobody.
func TestProvision(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T) (*bolt.Store, *service.Service, *clock.Fake) {
		t.Helper()
		store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		sealer, err := seal.New(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
		msg := &mdm.CheckinMessage{MessageType: mdm.Authenticate, Enrollment: mdm.Enrollment{UDID: "MAC"}, Topic: "com.apple.mgmt.test"}
		if err := store.Authenticate(ctx, "MAC", msg, "cert", clk.Now()); err != nil {
			t.Fatal(err)
		}
		return store, service.New(store, clk, sealer), clk
	}
	// nothingStored fails unless MAC has no secret, no command and no push.
	nothingStored := func(t *testing.T, store *bolt.Store, p *pushes) {
		t.Helper()
		if _, err := store.AgentSecretHash(ctx, "MAC"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("secret after a refused provisioning: %v", err)
		}
		if cmds, _ := store.Commands(ctx, "MAC"); len(cmds) != 0 {
			t.Errorf("%d commands after a refused provisioning", len(cmds))
		}
		if len(p.ids) != 0 {
			t.Errorf("pushed %v after a refused provisioning", p.ids)
		}
	}

	t.Run("stored together", func(t *testing.T) {
		store, svc, clk := open(t)
		p := &pushes{}
		prov := agentapi.NewProvisioner(store, svc, p, clk, nil, "https://mdm.example.com", "")
		if err := prov.Provision(ctx, "MAC"); err != nil {
			t.Fatal(err)
		}
		if h, err := store.AgentSecretHash(ctx, "MAC"); err != nil || h == "" {
			t.Errorf("secret hash = %q, %v", h, err)
		}
		cmds, err := store.Commands(ctx, "MAC")
		if err != nil || len(cmds) != 1 || cmds[0].RequestType != "InstallProfile" {
			t.Fatalf("commands = %+v, %v, want the settings profile", cmds, err)
		}
		if _, ok := mdm.SealedPart(cmds[0].Raw); !ok {
			t.Errorf("settings profile stored unsealed")
		}
		if !slices.Equal(p.ids, []string{"MAC"}) {
			t.Errorf("pushed %v, want MAC once", p.ids)
		}
	})
	t.Run("unknown device", func(t *testing.T) {
		store, svc, clk := open(t)
		p := &pushes{}
		prov := agentapi.NewProvisioner(store, svc, p, clk, nil, "https://mdm.example.com", "")
		if err := prov.Provision(ctx, "ghost"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
		if _, err := store.AgentSecretHash(ctx, "ghost"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ghost got a secret: %v", err)
		}
		nothingStored(t, store, p)
	})
	t.Run("seal fails", func(t *testing.T) {
		store, _, clk := open(t)
		p := &pushes{}
		prov := agentapi.NewProvisioner(store, failingSealer{}, p, clk, nil, "https://mdm.example.com", "")
		if err := prov.Provision(ctx, "MAC"); err == nil {
			t.Error("provisioned without sealing")
		}
		nothingStored(t, store, p)
	})
}
