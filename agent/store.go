package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// snapshotVersion is the version of the state file format.
const snapshotVersion = 1

// maxStateSize bounds the state file; anything larger is treated as corrupt.
const maxStateSize = 1 << 20

// Snapshot is everything the runner persists between restarts.
type Snapshot struct {
	// Plan is the last valid plan received, used while the server is
	// unreachable; nil before the first one.
	Plan *Plan `json:"plan,omitempty"`
	// State is the user's state for that plan.
	State State `json:"state"`
	// Outbox holds events not yet accepted by the server.
	Outbox []Event `json:"outbox,omitempty"`
}

type snapshotFile struct {
	Version int `json:"version"`
	Snapshot
}

// FileStore keeps a Snapshot in a small JSON file, written atomically.
type FileStore struct {
	path string
	log  *slog.Logger
}

// NewFileStore returns a store for the file at path. The directory is
// created on the first save.
func NewFileStore(path string, log *slog.Logger) *FileStore {
	if log == nil {
		panic("agent: NewFileStore with nil logger")
	}
	return &FileStore{path: path, log: log}
}

// Load reads the snapshot. A missing file gives an empty snapshot; a corrupt
// one gives an empty snapshot and a logged warning, so the agent starts
// fresh rather than not at all. Only a file that cannot be read is an error.
func (s *FileStore) Load(ctx context.Context) (Snapshot, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return Snapshot{}, nil
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("load agent state: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxStateSize+1)); err != nil {
		return Snapshot{}, fmt.Errorf("load agent state: %w", err)
	}
	snap, err := DecodeSnapshot(buf.Bytes())
	if err != nil {
		s.log.WarnContext(ctx, "agent state file is corrupt, starting fresh", "path", s.path, "err", err)
		return Snapshot{}, nil
	}
	return snap, nil
}

// Save writes the snapshot atomically: to a temporary file in the same
// directory, synced, then renamed over the old one.
func (s *FileStore) Save(ctx context.Context, snap Snapshot) error {
	data, err := EncodeSnapshot(snap)
	if err != nil {
		return fmt.Errorf("save agent state: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save agent state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("save agent state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save agent state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save agent state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save agent state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("save agent state: %w", err)
	}
	return nil
}

// EncodeSnapshot renders the state file.
func EncodeSnapshot(snap Snapshot) ([]byte, error) {
	data, err := json.MarshalIndent(snapshotFile{Version: snapshotVersion, Snapshot: snap}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// DecodeSnapshot parses a state file. It refuses unknown versions, oversize
// files and a stored plan that does not validate.
func DecodeSnapshot(data []byte) (Snapshot, error) {
	if len(data) > maxStateSize {
		return Snapshot{}, fmt.Errorf("state file larger than %d bytes", maxStateSize)
	}
	var f snapshotFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return Snapshot{}, fmt.Errorf("decode state: %w", err)
	}
	if dec.More() {
		return Snapshot{}, errors.New("decode state: trailing data")
	}
	if f.Version != snapshotVersion {
		return Snapshot{}, fmt.Errorf("decode state: unsupported version %d", f.Version)
	}
	if f.Plan != nil {
		if err := f.Plan.Validate(); err != nil {
			return Snapshot{}, fmt.Errorf("decode state: stored plan: %w", err)
		}
	}
	if len(f.Outbox) > maxOutbox {
		f.Outbox = f.Outbox[len(f.Outbox)-maxOutbox:]
	}
	return f.Snapshot, nil
}
