package agent

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFileStoreRoundTrip(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state", "agent.json")
	s := NewFileStore(path, slog.New(slog.DiscardHandler))

	got, err := s.Load(ctx)
	if err != nil {
		t.Fatalf("load missing file: %v", err)
	}
	if !reflect.DeepEqual(got, Snapshot{}) {
		t.Fatalf("missing file gave %+v, want empty", got)
	}

	p := legacyPlan()
	want := Snapshot{
		Plan: &p,
		State: State{
			PlanKey:           p.Key(),
			NextReminder:      deadline.Add(-2 * day),
			CountdownClosedAt: deadline.Add(time.Minute),
			NextRestartBanner: deadline.Add(6 * time.Minute),
		},
		Outbox: []Event{{Kind: EventUserChoice, At: deadline.Add(-3 * day), Prompt: PromptReminder, Choice: ChoiceRemindTomorrow, TargetVersion: "15.4"}},
	}
	if err := s.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, want); err != nil {
		t.Fatalf("second save over the first: %v", err)
	}
	got, err = s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("state file mode = %v, want 0600", perm)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the state file (no temporaries)", len(entries))
	}
}

func TestFileStoreCorrupt(t *testing.T) {
	tests := []struct {
		name string
		have string
	}{
		{"truncated", `{"version":1,"state":{"plan_key":`},
		{"garbage", "\x00\x01not json"},
		{"future version", `{"version":99,"state":{}}`},
		{"invalid stored plan", `{"version":1,"plan":{"managed":true},"state":{}}`},
		{"empty", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.json")
			if err := os.WriteFile(path, []byte(tt.have), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			s := NewFileStore(path, slog.New(slog.NewTextHandler(&logs, nil)))
			got, err := s.Load(t.Context())
			if err != nil {
				t.Fatalf("corrupt file: err = %v, want a fresh start", err)
			}
			if !reflect.DeepEqual(got, Snapshot{}) {
				t.Errorf("corrupt file gave %+v, want empty", got)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "corrupt") {
				t.Errorf("no warning logged: %q", logs.String())
			}
		})
	}
}

func TestFileStoreUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be cannot be read as a file.
	path := filepath.Join(dir, "agent.json")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	s := NewFileStore(path, slog.New(slog.DiscardHandler))
	if _, err := s.Load(t.Context()); err == nil {
		t.Fatal("reading a directory as the state file succeeded")
	}
	if err := s.Save(t.Context(), Snapshot{}); err == nil {
		t.Fatal("replacing a directory with the state file succeeded")
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	p := legacyPlan()
	good, err := EncodeSnapshot(Snapshot{Plan: &p, State: State{PlanKey: p.Key(), NextReminder: deadline}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"state":{}}`))
	f.Add([]byte(`{"version":1,"outbox":[{"kind":"user_choice"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := DecodeSnapshot(data)
		if err != nil {
			return
		}
		again, err := EncodeSnapshot(snap)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		snap2, err := DecodeSnapshot(again)
		if err != nil {
			t.Fatalf("decode of our own encoding: %v", err)
		}
		if snap.State.PlanKey != snap2.State.PlanKey || len(snap.Outbox) != len(snap2.Outbox) {
			t.Fatalf("round trip changed the snapshot")
		}
	})
}
