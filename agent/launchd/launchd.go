// Package launchd renders the LaunchAgent property list that starts
// sundial-agent in every user's GUI session.
//
// Install the rendered file as /Library/LaunchAgents/<Label>.plist (owned by
// root, mode 0644); see agent/README.md.
package launchd

import (
	"bytes"
	_ "embed"
	"encoding/xml"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"text/template"
)

// Defaults of Config.
const (
	DefaultLabel            = "com.sundial-mdm.agent"
	DefaultProgram          = "/usr/local/bin/sundial-agent"
	DefaultThrottleInterval = 30
)

//go:embed agent.plist.tmpl
var templateText string

var tmpl = template.Must(template.New("agent.plist").Funcs(template.FuncMap{"xml": escape}).Parse(templateText))

var labelRE = regexp.MustCompile(`^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)

// Config is what varies between installations.
type Config struct {
	// Label is the launchd label, reverse-DNS; also the file's base name.
	Label string
	// Program is the absolute path of the agent binary.
	Program string
	// Args are extra arguments to the agent.
	Args []string
	// ThrottleInterval is the least number of seconds between restarts.
	ThrottleInterval int
	// LogPath, when set, receives the agent's standard output and error.
	LogPath string
}

// Default returns the configuration of a standard installation.
func Default() Config {
	return Config{Label: DefaultLabel, Program: DefaultProgram, ThrottleInterval: DefaultThrottleInterval}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if !labelRE.MatchString(c.Label) {
		return fmt.Errorf("label %q is not a reverse-DNS name", c.Label)
	}
	if !path.IsAbs(c.Program) || path.Clean(c.Program) != c.Program {
		return fmt.Errorf("program %q is not a clean absolute path", c.Program)
	}
	if c.LogPath != "" && !path.IsAbs(c.LogPath) {
		return fmt.Errorf("log path %q is not absolute", c.LogPath)
	}
	if c.ThrottleInterval < 1 {
		return errors.New("throttle interval must be at least 1 second")
	}
	for _, s := range append([]string{c.Label, c.Program, c.LogPath}, c.Args...) {
		if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' }) {
			return fmt.Errorf("%q contains control characters", s)
		}
	}
	return nil
}

// FileName is the name to install the property list under.
func (c Config) FileName() string { return c.Label + ".plist" }

// Render returns the LaunchAgent property list for c.
func Render(c Config) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("render launch agent: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, c); err != nil {
		return nil, fmt.Errorf("render launch agent: %w", err)
	}
	return b.Bytes(), nil
}

func escape(s string) (string, error) {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}
