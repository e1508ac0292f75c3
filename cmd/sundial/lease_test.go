package main

import (
	"strings"
	"testing"
	"time"
)

// TestLeaseSettings: the scheduler competes for its lease under
// --replica-id with --lease-ttl, and nonsense values are usage errors.
func TestLeaseSettings(t *testing.T) {
	ts := startTestServerWith(t, t.TempDir(), func(c *Config) { c.ReplicaID, c.LeaseTTL = "replica-a", 2*time.Second })
	ctx := t.Context()
	waitFor(t, func() bool {
		ok, err := ts.app.store.AcquireLease(ctx, "scheduler", "someone-else", time.Second, time.Now())
		return err == nil && !ok
	})
	// The holder is replica-a: renewing under its name succeeds.
	if ok, err := ts.app.store.AcquireLease(ctx, "scheduler", "replica-a", 2*time.Second, time.Now()); err != nil || !ok {
		t.Errorf("lease held by replica-a: %v, %v", ok, err)
	}
	for _, args := range [][]string{{"--lease-ttl", "500ms"}, {"--lease-ttl", "1h"}, {"--replica-id", strings.Repeat("x", 201)}} {
		r := runArgs(t, append([]string{"server", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, args...))
		if r.code != exitUsage || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("server %v = %+v", args, r)
		}
	}
	c := Config{Listen: ":8443", DataDir: "d", APNsURL: "https://x", ChallengeMode: "shared", LogFormat: "text", FlushInterval: time.Second, ShutdownTimeout: time.Second}
	if err := c.Validate(); err != nil || c.LeaseTTL != DefaultLeaseTTL || c.ReplicaID == "" {
		t.Errorf("defaults: %v, ttl %s, id %q", err, c.LeaseTTL, c.ReplicaID)
	}
}
