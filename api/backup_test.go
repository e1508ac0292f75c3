package api

import (
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/storage/bolt"
)

// failingBackup sends the first bytes of a real backup, then fails, as a
// disk error in the middle of a copy would.
type failingBackup struct{ store *bolt.Store }

func (f failingBackup) WriteBackup(w io.Writer) (int64, error) {
	pr, pw := io.Pipe()
	go func() { _, err := f.store.WriteBackup(pw); pw.CloseWithError(err) }()
	defer pr.Close()
	n, err := io.CopyN(w, pr, 64<<10)
	if err != nil {
		return n, err
	}
	return n, errors.New("read error in the middle of the copy")
}

// TestBackupDownload: a backup arrives whole and opens as a database; one
// that fails half way leaves an error and no file, not a truncated copy.
func TestBackupDownload(t *testing.T) {
	e := newReportEnv(t)
	for _, tc := range []struct {
		name   string
		writer BackupWriter
		ok     bool
	}{
		{"whole", e.store, true},
		{"failing half way", failingBackup{e.store}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(e.store, noEnqueue{}, nil).WithBackup(tc.writer)
			r := mux.NewRouter()
			s.Register(r)
			srv := httptest.NewServer(r)
			defer srv.Close()
			c := &Client{BaseURL: srv.URL, APIKey: "good-key"}
			path := filepath.Join(t.TempDir(), "backup.db")
			n, err := c.Backup(t.Context(), path)
			if !tc.ok {
				if err == nil {
					t.Fatalf("backup that failed half way succeeded (%d bytes)", n)
				}
				for _, p := range []string{path, path + ".partial"} {
					if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s left behind (%v)", p, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := bolt.Open(path, &bolt.Options{NoSync: true})
			if err != nil {
				t.Fatalf("the backup does not open: %v", err)
			}
			defer b.Close()
			if _, err := b.APIKeyByHash(t.Context(), HashKey("good-key")); err != nil {
				t.Errorf("backup lacks the API key: %v", err)
			}
		})
	}
}
