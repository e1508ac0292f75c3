// Command sundial-agent is Sundial's companion agent: it runs in the user's
// session on each Mac (a LaunchAgent), fetches the update plan from Sundial
// and shows the user banners, the Start Now window and the countdown.
//
// It reads its settings (server URL, enrollment ID, secret, CA) from the
// managed preferences Sundial installs through MDM, or from --settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/sundial-mdm/sundial/agent"
	"github.com/sundial-mdm/sundial/agent/macos"
	"github.com/sundial-mdm/sundial/agent/terminal"
	"github.com/sundial-mdm/sundial/api/agentapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// defaultSettingsPath is where macOS puts the managed preferences.
const defaultSettingsPath = "/Library/Managed Preferences/" + agentapi.PreferenceDomain + ".plist"

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sundial-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settingsPath := fs.String("settings", defaultSettingsPath, "agent settings plist (managed preferences)")
	statePath := fs.String("state", defaultStatePath(getenv), "where the agent keeps snoozes and unsent reports")
	presenterName := fs.String("presenter", "auto", "auto, macos or terminal")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(stderr, "sundial-agent: bad --log-level")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	data, err := os.ReadFile(*settingsPath)
	if err != nil {
		fmt.Fprintf(stderr, "sundial-agent: read settings: %v (Sundial installs them through MDM; --settings names another file)\n", err)
		return 1
	}
	settings, err := agentapi.ParseSettings(data)
	if err != nil {
		fmt.Fprintln(stderr, "sundial-agent:", err)
		return 1
	}
	client, err := agentapi.NewClient(*settings)
	if err != nil {
		fmt.Fprintln(stderr, "sundial-agent:", err)
		return 1
	}
	client.TimeZone = func() string { return localZoneName(getenv) }
	var presenter agent.Presenter
	switch name := *presenterName; {
	case name == "macos" || (name == "auto" && runtime.GOOS == "darwin"):
		presenter = macos.New(macos.ExecRunner{}, log)
	case name == "terminal" || name == "auto":
		presenter = terminal.New(stdout, stdin)
	default:
		fmt.Fprintf(stderr, "sundial-agent: unknown --presenter %q\n", name)
		return 2
	}
	if err := os.MkdirAll(filepath.Dir(*statePath), 0o700); err != nil {
		fmt.Fprintln(stderr, "sundial-agent:", err)
		return 1
	}
	runner := agent.NewRunner(agent.SystemClock{}, client, client, presenter, agent.NewFileStore(*statePath, log), agent.WithLogger(log))
	log.Info("sundial agent running", "server", settings.ServerURL, "enrollment_id", settings.EnrollmentID)
	if err := runner.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "sundial-agent:", err)
		return 1
	}
	return 0
}

func defaultStatePath(getenv func(string) string) string {
	home := getenv("HOME")
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Application Support", "Sundial", "agent-state.json")
	}
	if x := getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "sundial", "agent-state.json")
	}
	return filepath.Join(home, ".local", "state", "sundial", "agent-state.json")
}

// localZoneName is the Mac's IANA time zone: $TZ, or the target of the
// /etc/localtime link (.../zoneinfo/Europe/Berlin).
func localZoneName(getenv func(string) string) string {
	if tz := strings.TrimPrefix(getenv("TZ"), ":"); tz != "" && !strings.HasPrefix(tz, "/") {
		return tz
	}
	target, err := os.Readlink("/etc/localtime")
	if err != nil {
		return ""
	}
	if _, zone, ok := strings.Cut(target, "zoneinfo/"); ok {
		return zone
	}
	return ""
}
