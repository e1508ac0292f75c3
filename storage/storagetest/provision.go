package storagetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// testProvisionAgent checks ProvisionAgent: the secret hash and the command
// that carries the secret are written together; bad input, an unknown device
// or a command UUID in use write neither.
func testProvisionAgent(t *testing.T, s AgentBackend) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "h1")
	enroll(t, s, "BBB-2", "h2")
	profile := func(t *testing.T) *mdm.Command {
		t.Helper()
		c, err := mdm.NewCommand("InstallProfile", map[string]any{"Payload": []byte("settings " + t.Name())})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// nothingWritten fails unless id has no secret and only n commands.
	nothingWritten := func(t *testing.T, id string, n int) {
		t.Helper()
		if h, err := s.AgentSecretHash(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: secret hash %q, %v after a refused provisioning, want none", id, h, err)
		}
		if cmds, err := s.Commands(ctx, id); err != nil || len(cmds) != n {
			t.Errorf("%s: %d commands (%v) after a refused provisioning, want %d", id, len(cmds), err, n)
		}
	}

	// A device already holding the command's UUID gets neither the command
	// nor the secret.
	taken := profile(t)
	if err := s.Enqueue(ctx, []string{"BBB-2"}, taken, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.ProvisionAgent(ctx, "BBB-2", "hash-b", taken, t0); !errors.Is(err, storage.ErrExists) {
		t.Errorf("UUID in use: err = %v, want ErrExists", err)
	}
	nothingWritten(t, "BBB-2", 1)

	refused := []struct {
		name string
		id   string
		hash string
		c    *mdm.Command
		want error
	}{
		{"unknown device", "ghost", "hash", profile(t), storage.ErrNotFound},
		{"no device ID", "", "hash", profile(t), nil},
		{"no secret hash", "AAA-1", "", profile(t), nil},
		{"no command", "AAA-1", "hash", nil, nil},
		{"no command UUID", "AAA-1", "hash", &mdm.Command{RequestType: "InstallProfile", Raw: []byte("<plist/>")}, nil},
		{"no command body", "AAA-1", "hash", &mdm.Command{UUID: "U-1", RequestType: "InstallProfile"}, nil},
	}
	for _, tc := range refused {
		err := s.ProvisionAgent(ctx, tc.id, tc.hash, tc.c, t0)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	nothingWritten(t, "AAA-1", 0)
	if _, err := s.AgentSecretHash(ctx, "ghost"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ghost has a secret after a refused provisioning: %v", err)
	}

	// Both are written; the command is the device's next, body unchanged.
	first := profile(t)
	if err := s.ProvisionAgent(ctx, "AAA-1", "hash1", first, t0); err != nil {
		t.Fatal(err)
	}
	if h, err := s.AgentSecretHash(ctx, "AAA-1"); err != nil || h != "hash1" {
		t.Errorf("hash = %q, %v, want hash1", h, err)
	}
	if st, err := s.AgentState(ctx, "AAA-1"); err != nil || !st.SecretSetAt.Equal(t0) {
		t.Errorf("state = %+v, %v, want the secret set at %v", st, err, t0)
	}
	if got := mustNext(t, s, "AAA-1", idle("AAA-1"), t0); got == nil || got.UUID != first.UUID || got.RequestType != "InstallProfile" || !bytes.Equal(got.Raw, first.Raw) {
		t.Fatalf("next = %+v, want the provisioning command", got)
	}

	// Rotation keeps the zone and history; a refused rotation (the finished
	// command's UUID) keeps the old secret.
	if err := s.AppendAgentReport(ctx, "AAA-1", storage.AgentReport{TimeZone: "Europe/Berlin", Events: []storage.AgentEvent{{Kind: "prompt_shown", At: t0}}}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.ProvisionAgent(ctx, "AAA-1", "hash2", first, t0.Add(time.Hour)); !errors.Is(err, storage.ErrExists) {
		t.Errorf("rotation with a used UUID: err = %v, want ErrExists", err)
	}
	if h, _ := s.AgentSecretHash(ctx, "AAA-1"); h != "hash1" {
		t.Errorf("hash after a refused rotation = %q, want hash1", h)
	}
	second := profile(t)
	if err := s.ProvisionAgent(ctx, "AAA-1", "hash2", second, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.AgentSecretHash(ctx, "AAA-1"); h != "hash2" {
		t.Errorf("rotated hash = %q, want hash2", h)
	}
	st, err := s.AgentState(ctx, "AAA-1")
	if err != nil || st.TimeZone != "Europe/Berlin" || len(st.Events) != 1 || !st.SecretSetAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("state after rotation = %+v, %v", st, err)
	}
	if cmds, err := s.Commands(ctx, "AAA-1"); err != nil || len(cmds) != 2 {
		t.Errorf("%d commands (%v) after two provisionings, want 2", len(cmds), err)
	}
}
