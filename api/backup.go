package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// BackupWriter writes a consistent copy of the database.
type BackupWriter interface {
	WriteBackup(w io.Writer) (int64, error)
}

// WithBackup enables GET /api/v1/backup.
func (s *Server) WithBackup(b BackupWriter) *Server {
	s.backup = b
	return s
}

func (s *Server) serveBackup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"sundial-%s.db\"", time.Now().UTC().Format("20060102T150405Z")))
	n, err := s.backup.WriteBackup(w)
	if err != nil {
		// The status is sent. Returning would end the body cleanly, and a
		// client would keep a truncated copy as a backup; aborting the
		// response makes its read fail instead.
		s.log.Error("backup failed", "err", err, "bytes", n)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup written", "bytes", n)
}

// Backup downloads a consistent copy of the database to path (written to a
// temporary file first, then renamed).
func (c *Client) Backup(ctx context.Context, path string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/api/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, decodeError(resp)
	}
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return n, err
	}
	return n, os.Rename(tmp, path)
}
