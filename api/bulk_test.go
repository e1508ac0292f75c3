package api

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// storeEnqueuer queues through the real store and records each wake-up
// batch, as the MDM service does with its push notifier.
type storeEnqueuer struct {
	store   *bolt.Store
	now     time.Time
	mu      sync.Mutex
	batches [][]string
}

func (e *storeEnqueuer) Enqueue(ctx context.Context, ids []string, cmd *mdm.Command) error {
	if err := e.store.Enqueue(ctx, ids, cmd, e.now); err != nil {
		return err
	}
	e.mu.Lock()
	e.batches = append(e.batches, slices.Clone(ids))
	e.mu.Unlock()
	return nil
}

type bulkEnv struct {
	store *bolt.Store
	enq   *storeEnqueuer
	c     *Client
	macs  []string
}

// newBulkEnv is the admin API on a real bbolt store with five enrolled
// Macs, the first three in group "lab", and bulk requests of at most 2
// devices.
func newBulkEnv(t *testing.T) *bulkEnv {
	t.Helper()
	ctx := t.Context()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var macs []string
	for i := range 5 {
		id := fmt.Sprintf("MAC-%d", i)
		macs = append(macs, id)
		if err := store.Authenticate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t"}, "cert-"+id, now); err != nil {
			t.Fatal(err)
		}
		if _, err := store.TokenUpdate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("tok"), PushMagic: "m"}, nil, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.PutGroup(ctx, scheduler.Group{ID: "lab", Name: "Lab"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := store.AssignDevices(ctx, "lab", macs[:3], nil); err != nil {
		t.Fatal(err)
	}
	if err := store.PutAPIKey(ctx, storage.APIKey{ID: "good", Hash: HashKey("good-key"), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	enq := &storeEnqueuer{store: store, now: now}
	s := New(store, enq, nil).WithGroupMembers(store)
	s.bulkLimit = 2
	r := mux.NewRouter()
	s.Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &bulkEnv{store: store, enq: enq, c: &Client{BaseURL: srv.URL, APIKey: "good-key"}, macs: macs}
}

// queued lists the devices that have uuid queued.
func (e *bulkEnv) queued(t *testing.T, uuid string) []string {
	t.Helper()
	var out []string
	for _, id := range e.macs {
		recs, err := e.store.Commands(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.UUID == uuid && r.Status == mdm.StatusQueued {
				out = append(out, id)
			}
		}
	}
	return out
}

func TestBulkEnqueueDevices(t *testing.T) {
	e := newBulkEnv(t)
	c, _ := mdm.NewCommand("ProfileList", nil)
	res, err := e.c.EnqueueBulk(t.Context(), []string{"MAC-4", "MAC-1"}, c.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if res.CommandUUID != c.UUID || res.RequestType != "ProfileList" || !slices.Equal(res.DeviceIDs, []string{"MAC-4", "MAC-1"}) {
		t.Errorf("result = %+v", res)
	}
	if have := e.queued(t, c.UUID); !slices.Equal(have, []string{"MAC-1", "MAC-4"}) {
		t.Errorf("queued for %q, want MAC-1 and MAC-4", have)
	}
	if len(e.enq.batches) != 1 || len(e.enq.batches[0]) != 2 {
		t.Errorf("wake-up batches = %q, want one of both devices", e.enq.batches)
	}
}

func TestBulkEnqueueGroupPages(t *testing.T) {
	e := newBulkEnv(t)
	c, _ := mdm.NewCommand("ProfileList", nil)
	var pages [][]string
	after := ""
	for range 5 {
		res, err := e.c.EnqueueGroup(t.Context(), "lab", after, c.Raw)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, res.DeviceIDs)
		if after = res.Next; after == "" {
			break
		}
	}
	if want := [][]string{{"MAC-0", "MAC-1"}, {"MAC-2"}}; !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("pages = %q, want %q", pages, want)
	}
	if have := e.queued(t, c.UUID); !slices.Equal(have, e.macs[:3]) {
		t.Errorf("queued for %q, want the lab's three", have)
	}
	// The default group: the two Macs outside lab.
	d, _ := mdm.NewCommand("ProfileList", nil)
	res, err := e.c.EnqueueGroup(t.Context(), scheduler.DefaultGroupID, "", d.Raw)
	if err != nil || res.Next != "" || !slices.Equal(res.DeviceIDs, e.macs[3:]) {
		t.Errorf("default group = %+v, %v", res, err)
	}
	// An empty group queues nothing and says so.
	if err := e.store.PutGroup(t.Context(), scheduler.Group{ID: "empty", Name: "Empty"}, nil); err != nil {
		t.Fatal(err)
	}
	res, err = e.c.EnqueueGroup(t.Context(), "empty", "", d.Raw)
	if err != nil || res.DeviceIDs == nil || len(res.DeviceIDs) != 0 || res.Next != "" {
		t.Errorf("empty group = %+v, %v", res, err)
	}
}

// TestBulkEnqueueBadInput: every bad request gets a clear error and queues
// nothing.
func TestBulkEnqueueBadInput(t *testing.T) {
	e := newBulkEnv(t)
	c, _ := mdm.NewCommand("ProfileList", nil)
	already, _ := mdm.NewCommand("ProfileList", nil)
	if _, err := e.c.EnqueueBulk(t.Context(), []string{"MAC-2"}, already.Raw); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxDeviceIDLen+1)
	tests := []struct {
		name string
		req  BulkEnqueueRequest
		code string
	}{
		{"no devices", BulkEnqueueRequest{Command: string(c.Raw)}, CodeInvalid},
		{"devices and group", BulkEnqueueRequest{Command: string(c.Raw), DeviceIDs: []string{"MAC-0"}, Group: "lab"}, CodeInvalid},
		{"after without group", BulkEnqueueRequest{Command: string(c.Raw), DeviceIDs: []string{"MAC-0"}, After: "MAC-0"}, CodeInvalid},
		{"too many devices", BulkEnqueueRequest{Command: string(c.Raw), DeviceIDs: []string{"MAC-0", "MAC-1", "MAC-3"}}, CodeInvalid},
		{"duplicate device", BulkEnqueueRequest{Command: string(c.Raw), DeviceIDs: []string{"MAC-0", "MAC-0"}}, CodeInvalid},
		{"empty device ID", BulkEnqueueRequest{Command: string(c.Raw), DeviceIDs: []string{"MAC-0", ""}}, CodeInvalid},
		{"device ID too long", BulkEnqueueRequest{Command: string(c.Raw), DeviceIDs: []string{long}}, CodeInvalid},
		{"not a command", BulkEnqueueRequest{Command: "<plist>no</plist>", DeviceIDs: []string{"MAC-0"}}, CodeInvalid},
		{"unknown device among known", BulkEnqueueRequest{Command: string(c.Raw), DeviceIDs: []string{"MAC-0", "MAC-GONE"}}, CodeNotFound},
		{"unknown group", BulkEnqueueRequest{Command: string(c.Raw), Group: "nope"}, CodeNotFound},
		{"already queued for one", BulkEnqueueRequest{Command: string(already.Raw), DeviceIDs: []string{"MAC-0", "MAC-2"}}, CodeConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out BulkEnqueueResult
			err := e.c.doJSON(t.Context(), "POST", "/api/v1/commands", tc.req, &out)
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
		})
	}
	if have := e.queued(t, c.UUID); len(have) != 0 {
		t.Errorf("bad requests queued the command for %q", have)
	}
	if have := e.queued(t, already.UUID); !slices.Equal(have, []string{"MAC-2"}) {
		t.Errorf("the conflicting request changed the earlier command: queued for %q", have)
	}
	// A body over the cap is refused before it is read whole.
	huge := BulkEnqueueRequest{Command: string(c.Raw), DeviceIDs: []string{strings.Repeat("y", maxBulkBody)}}
	var ae *Error
	if err := e.c.doJSON(t.Context(), "POST", "/api/v1/commands", huge, nil); !errors.As(err, &ae) || ae.Code != CodeInvalid {
		t.Errorf("oversized body: err = %v, want invalid", err)
	}
}
