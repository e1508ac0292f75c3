package mdm

import (
	"bytes"
	"regexp"
	"testing"
)

func TestNewUUIDFormat(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := NewUUID()
		if !re.MatchString(id) || seen[id] {
			t.Fatalf("NewUUID() = %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
}

func TestCommandTemplate(t *testing.T) {
	payload := map[string]any{"Updates": []any{map[string]any{
		"ProductKey": "MSU_UPDATE_24F74_patch_15.5", "InstallAction": "InstallForceRestart", "Priority": "High",
	}}}
	tpl, err := NewCommandTemplate("ScheduleOSUpdate", payload)
	if err != nil {
		t.Fatal(err)
	}
	a, b := tpl.New(), tpl.New()
	if a.UUID == b.UUID {
		t.Fatal("two commands share a UUID")
	}
	for _, c := range []*Command{a, b} {
		got, err := DecodeCommand(c.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if got.UUID != c.UUID || got.RequestType != "ScheduleOSUpdate" || c.RequestType != "ScheduleOSUpdate" {
			t.Fatalf("decoded %+v from %+v", got, c)
		}
		// Byte for byte what NewCommand encodes for the same UUID.
		want, err := encodeCommand("ScheduleOSUpdate", c.UUID, payload)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.Raw, want) {
			t.Fatalf("template body differs:\n%s\n%s", c.Raw, want)
		}
	}
	// The template does not alias its buffers into the commands.
	a.Raw[len(a.Raw)-2] = 'X'
	if c := tpl.New(); bytes.Contains(c.Raw, []byte("X\n")) {
		t.Fatal("a command's body shares the template's memory")
	}
}

func BenchmarkNewCommand(b *testing.B) {
	payload := map[string]any{"Updates": []any{map[string]any{
		"ProductKey": "MSU_UPDATE_24F74_patch_15.5", "InstallAction": "InstallForceRestart", "Priority": "High",
	}}}
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewCommand("ScheduleOSUpdate", payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	tpl, err := NewCommandTemplate("ScheduleOSUpdate", payload)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("template", func(b *testing.B) {
		for b.Loop() {
			tpl.New()
		}
	})
}
