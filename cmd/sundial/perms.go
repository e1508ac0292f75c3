package main

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// tightenDataDir makes the data directory and the secrets in it private to
// the server's user: the directory holds the CA, SCEP RA and profile-signer
// keys, the seal key, the admin API key and the database. A directory
// readable by group or others (a restored backup, a hand-made directory) is
// set to 0700 and each file but the public certificates (*.pem) to 0600,
// each with a warning. Windows has no such mode bits.
func tightenDataDir(dir string, log *slog.Logger) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("data directory was open to group or others; tightened to 0700", "path", dir, "mode", fi.Mode().Perm().String())
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("tighten data dir: %w", err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		if info.Mode().Perm()&0o077 == 0 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		log.Warn("data file was readable by group or others; tightened to 0600", "path", path, "mode", info.Mode().Perm().String())
		if err := os.Chmod(path, info.Mode().Perm()&^fs.FileMode(0o077)); err != nil {
			return fmt.Errorf("tighten %s: %w", path, err)
		}
	}
	return nil
}
