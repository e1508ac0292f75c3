package service_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/sundial-mdm/sundial/mdm/service"
)

// TestCheckinLogAttributes: records written for a check-in carry its
// enrollment and message type, at the logger's level and no lower.
func TestCheckinLogAttributes(t *testing.T) {
	var logs bytes.Buffer
	svc, _, clk := newTestService(t,
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
