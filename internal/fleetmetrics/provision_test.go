package fleetmetrics

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// TestProvisionAgentCounted: the wrapped store's ProvisionAgent counts the
// command it queued, and nothing when it refuses.
func TestProvisionAgentCounted(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, now := t.Context(), time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	msg := &mdm.CheckinMessage{MessageType: mdm.Authenticate, Enrollment: mdm.Enrollment{UDID: "MAC"}, Topic: "com.apple.mgmt.test"}
	if err := s.Authenticate(ctx, "MAC", msg, "cert", now); err != nil {
		t.Fatal(err)
	}
	m := NewMDM(prometheus.NewRegistry())
	w := m.AgentStore(s)
	cmd, err := mdm.NewCommand("InstallProfile", map[string]any{"Payload": []byte("settings")})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ProvisionAgent(ctx, "ghost", "hash", cmd, now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown device err = %v", err)
	}
	if err := w.ProvisionAgent(ctx, "MAC", "hash", cmd, now); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.queued.WithLabelValues("InstallProfile")); got != 1 {
		t.Errorf("InstallProfile queued = %v, want 1", got)
	}
}
