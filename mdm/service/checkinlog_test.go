package service_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// TestCheckinLogAttributes: records written for a check-in carry its
// enrollment and message type, at the logger's level and no lower.
func TestCheckinLogAttributes(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sealer, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	var logs bytes.Buffer
	svc := service.New(store, clk, sealer,
		service.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	who := service.Identity{CertHash: "cert", NotAfter: clk.Now().AddDate(1, 0, 0)}
	if _, err := svc.Checkin(t.Context(), who, authenticate("MAC")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Checkin(t.Context(), who, tokenUpdate("MAC")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Checkin(t.Context(), service.Identity{CertHash: "other"}, tokenUpdate("MAC")); err == nil {
		t.Fatal("token update with an unbound certificate: no error")
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{
		`msg="device authenticated" enrollment_id=MAC request_type=Authenticate`,
		`msg="device enrolled" enrollment_id=MAC request_type=TokenUpdate`,
		`msg="check-in refused: certificate not bound to enrollment" enrollment_id=MAC request_type=TokenUpdate`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("record %d = %s, want it to contain %s", i, lines[i], w)
		}
	}
}
