package launchd

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/micromdm/plist"
)

var update = flag.Bool("update", false, "rewrite the shipped property list")

// launchAgent holds the keys launchd reads from the file.
type launchAgent struct {
	Label                  string   `plist:"Label"`
	ProgramArguments       []string `plist:"ProgramArguments"`
	RunAtLoad              bool     `plist:"RunAtLoad"`
	KeepAlive              bool     `plist:"KeepAlive"`
	ThrottleInterval       int      `plist:"ThrottleInterval"`
	LimitLoadToSessionType string   `plist:"LimitLoadToSessionType"`
	ProcessType            string   `plist:"ProcessType"`
	StandardOutPath        string   `plist:"StandardOutPath"`
	StandardErrorPath      string   `plist:"StandardErrorPath"`
}

func TestRender(t *testing.T) {
	withArgs := Default()
	withArgs.Args = []string{"-state", "/Users/Shared/a&b <c>.json", `quote"s`}
	withArgs.LogPath = "/Library/Logs/Sundial/agent.log"
	tests := []struct {
		name string
		have Config
		want launchAgent
	}{
		{
			name: "default",
			have: Default(),
			want: launchAgent{
				Label:                  "com.sundial-mdm.agent",
				ProgramArguments:       []string{"/usr/local/bin/sundial-agent"},
				RunAtLoad:              true,
				KeepAlive:              true,
				ThrottleInterval:       30,
				LimitLoadToSessionType: "Aqua",
				ProcessType:            "Interactive",
			},
		},
		{
			name: "arguments and logs, escaped",
			have: withArgs,
			want: launchAgent{
				Label:                  "com.sundial-mdm.agent",
				ProgramArguments:       []string{"/usr/local/bin/sundial-agent", "-state", "/Users/Shared/a&b <c>.json", `quote"s`},
				RunAtLoad:              true,
				KeepAlive:              true,
				ThrottleInterval:       30,
				LimitLoadToSessionType: "Aqua",
				ProcessType:            "Interactive",
				StandardOutPath:        "/Library/Logs/Sundial/agent.log",
				StandardErrorPath:      "/Library/Logs/Sundial/agent.log",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := Render(tt.have)
			if err != nil {
				t.Fatal(err)
			}
			var got launchAgent
			if err := plist.Unmarshal(data, &got); err != nil {
				t.Fatalf("not a valid property list: %v\n%s", err, data)
			}
			if !slices.Equal(got.ProgramArguments, tt.want.ProgramArguments) {
				t.Errorf("ProgramArguments = %q, want %q", got.ProgramArguments, tt.want.ProgramArguments)
			}
			got.ProgramArguments, tt.want.ProgramArguments = nil, nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plist = %+v\nwant    %+v", got, tt.want)
			}
			var keys map[string]any
			if err := plist.Unmarshal(data, &keys); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "LimitLoadToSessionType"} {
				if _, ok := keys[k]; !ok {
					t.Errorf("key %s missing", k)
				}
			}
		})
	}
}

// TestShippedFile keeps the ready-to-install file in this directory equal
// to what Render produces; run with -update after changing the template.
func TestShippedFile(t *testing.T) {
	c := Default()
	want, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(c.FileName(), want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(c.FileName())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale; run go test ./agent/launchd -update", c.FileName())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"empty label", func(c *Config) { c.Label = "" }},
		{"label with a slash", func(c *Config) { c.Label = "com.example/../x" }},
		{"single-word label", func(c *Config) { c.Label = "agent" }},
		{"relative program", func(c *Config) { c.Program = "sundial-agent" }},
		{"unclean program", func(c *Config) { c.Program = "/usr/local/../bin/sundial-agent" }},
		{"relative log", func(c *Config) { c.LogPath = "agent.log" }},
		{"zero throttle", func(c *Config) { c.ThrottleInterval = 0 }},
		{"control character", func(c *Config) { c.Args = []string{"a\x00b"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c)
			if _, err := Render(c); err == nil {
				t.Errorf("Render accepted %+v", c)
			}
		})
	}
}
