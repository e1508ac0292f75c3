package abm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	depclient "github.com/micromdm/nanodep/client"
	"github.com/micromdm/nanodep/godep"

	"github.com/sundial-mdm/sundial/storage"
)

// Sync page size: Apple's maximum, so a 100,000-Mac fleet is 100 requests.
const pageLimit = 1000

// Backoff after a failed sync: 1 minute doubling to 1 hour, or the
// server's Retry-After when it sent one.
const (
	minBackoff = time.Minute
	maxBackoff = time.Hour
)

// maxPages bounds one sync run, so a server that keeps answering
// more_to_follow cannot hold the scheduler leader forever; the next run
// continues from the stored cursor.
const maxPages = 10_000

// Stored cursors carry their phase: Apple's fetch runs until it returns
// more_to_follow false, and the same cursor then continues as a sync.
const (
	phaseFetch = "fetch:"
	phaseSync  = "sync:"
)

// SyncResult tells what one sync run did.
type SyncResult struct {
	Pages, Added, Modified, Deleted int
	Assigned                        int  // serials sent to a profile
	Restarted                       bool // the cursor had expired: a full fetch ran
}

// Sync runs the device sync of server name once: a full fetch the first
// time (or after the cursor expired), then cursor syncs, page by page until
// ABM has nothing more. Each page and its cursor are stored in one
// transaction before the next page is asked for, so a sync interrupted
// between pages resumes where it stopped, without losing or duplicating a
// device. New devices are assigned their group's profile. A failure is
// recorded on the server with the next retry time (exponential backoff);
// a run before that time does nothing and returns ErrBackoff.
func (c *Connector) Sync(ctx context.Context, name string) (SyncResult, error) {
	var res SyncResult
	srv, err := c.store.DEPServer(ctx, name)
	if err != nil {
		return res, err
	}
	if len(srv.SealedTokens) == 0 {
		return res, fmt.Errorf("%s: %w", name, ErrNoToken)
	}
	if now := c.clock.Now(); now.Before(srv.RetryAt) {
		return res, fmt.Errorf("%w until %s", ErrBackoff, srv.RetryAt.Format(time.RFC3339))
	}
	err = c.sync(ctx, name, &res)
	if serr := c.recordOutcome(ctx, name, err); serr != nil && err == nil {
		err = serr
	}
	return res, err
}

// ErrBackoff: a sync failed recently and the next attempt is not due yet.
var ErrBackoff = errors.New("abm sync backing off")

func (c *Connector) sync(ctx context.Context, name string, res *SyncResult) error {
	stored, err := c.store.ADECursor(ctx, name)
	if err != nil {
		return err
	}
	fetch, cursor := true, ""
	switch {
	case strings.HasPrefix(stored, phaseSync):
		fetch, cursor = false, strings.TrimPrefix(stored, phaseSync)
	case strings.HasPrefix(stored, phaseFetch):
		cursor = strings.TrimPrefix(stored, phaseFetch)
	}
	for range maxPages {
		opts := []godep.DeviceRequestOption{godep.WithLimit(pageLimit)}
		if cursor != "" {
			opts = append(opts, godep.WithCursor(cursor))
		}
		var resp *godep.FetchDeviceResponseJson
		if fetch {
			resp, err = c.dep.FetchDevices(ctx, name, opts...)
		} else {
			resp, err = c.dep.SyncDevices(ctx, name, opts...)
		}
		switch {
		case err != nil && fetch && godep.IsCursorExhausted(err):
			// The fetch had already returned everything: go on syncing.
			fetch = false
			continue
		case err != nil && (godep.IsCursorExpired(err) || godep.IsCursorInvalid(err)):
			// Older than 7 days (or unknown): start over with a full fetch,
			// which upserts, so nothing is duplicated.
			if res.Restarted {
				return err
			}
			fetch, cursor, res.Restarted = true, "", true
			continue
		case err != nil:
			return err
		}
		res.Pages++
		page := storage.ADEPage{Server: name}
		var added []string
		for _, d := range resp.Devices {
			if d.SerialNumber == "" || len(d.SerialNumber) > storage.MaxADEField {
				continue // not a serial Sundial can key a record by
			}
			op := strings.ToLower(string(deref(d.OpType)))
			if op == "deleted" {
				page.Deleted = append(page.Deleted, d.SerialNumber)
				res.Deleted++
				continue
			}
			page.Upsert = append(page.Upsert, toRecord(d))
			if op == "modified" {
				res.Modified++
				continue
			}
			res.Added++
			// A device fetched without a profile, or added by a sync, is new
			// to Sundial's assignment.
			if deref(d.ProfileUuid) == "" || op == "added" {
				added = append(added, d.SerialNumber)
			}
		}
		next := phaseSync + resp.Cursor
		if fetch && resp.MoreToFollow {
			next = phaseFetch + resp.Cursor
		}
		page.Cursor = next
		// Assign before the page and its cursor are stored: if ABM refuses
		// the assignment, the next run fetches the same page again and
		// retries, so no new device is left without a profile.
		results, err := c.assign(ctx, name, added)
		if err != nil {
			return err
		}
		if err := c.store.ApplyADEPage(ctx, page, c.clock.Now()); err != nil {
			return fmt.Errorf("store abm page: %w", err)
		}
		if len(results) > 0 {
			res.Assigned += len(results)
			if err := c.store.SetADEAssignResults(ctx, results, c.clock.Now()); err != nil {
				return err
			}
		}
		cursor = resp.Cursor
		if resp.MoreToFollow {
			continue
		}
		if fetch {
			// The fetch is complete; a sync with its cursor brings what
			// changed while it ran.
			fetch = false
			continue
		}
		return nil
	}
	return nil
}

// recordOutcome stores the sync's success or its failure and backoff.
func (c *Connector) recordOutcome(ctx context.Context, name string, err error) error {
	srv, gerr := c.store.DEPServer(ctx, name)
	if gerr != nil {
		return gerr
	}
	now := c.clock.Now()
	if err == nil {
		srv.LastSyncAt, srv.LastError, srv.Failures, srv.RetryAt = now, "", 0, time.Time{}
	} else {
		srv.Failures++
		wait := minBackoff << min(srv.Failures-1, 6)
		wait = min(wait, maxBackoff)
		srv.LastError, srv.RetryAt = truncate(err.Error(), 512), now.Add(wait)
	}
	srv.UpdatedAt = now
	return c.store.PutDEPServer(ctx, srv)
}

// IsTokenExpired reports whether err says the server token expired or was
// rejected: the admin must download a new one from ABM.
func IsTokenExpired(err error) bool {
	var ae *depclient.AuthError
	return errors.As(err, &ae) && (ae.StatusCode == http.StatusForbidden || ae.StatusCode == http.StatusUnauthorized)
}

func toRecord(d godep.DeviceJson) storage.ADEDevice {
	r := storage.ADEDevice{
		Serial: d.SerialNumber, Model: d.Model,
		Description: deref(d.Description), Color: deref(d.Color),
		OS: string(deref(d.Os)), DeviceFamily: string(deref(d.DeviceFamily)),
		ProfileStatus: string(deref(d.ProfileStatus)), ProfileUUID: deref(d.ProfileUuid),
		DeviceAssignedBy: deref(d.DeviceAssignedBy), OpType: string(deref(d.OpType)),
	}
	if d.DeviceAssignedDate != nil {
		r.DeviceAssignedDate = d.DeviceAssignedDate.UTC()
	}
	if d.OpDate != nil {
		r.OpDate = d.OpDate.UTC()
	}
	// Apple's fields are bounded by Apple, but a record is bounded by us.
	for _, f := range []*string{&r.Model, &r.Description, &r.Color, &r.OS, &r.DeviceFamily,
		&r.ProfileStatus, &r.ProfileUUID, &r.DeviceAssignedBy, &r.OpType} {
		*f = truncate(*f, storage.MaxADEField)
	}
	return r
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
