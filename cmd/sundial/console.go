package main

import (
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/web/console"
)

// setupConsole mounts the web console under /ui/.
func (a *app) setupConsole(r *mux.Router, reporter *scheduler.Reporter) {
	readOnly := a.cfg.ConsoleReadKeys
	// A key's own role decides; keys named in --console-read-keys are
	// read-only in the console whatever their role.
	roleOf := func(k *storage.APIKey) console.Role {
		if api.EffectiveRole(k.Role) != api.RoleAdmin || slices.Contains(readOnly, k.ID) || slices.Contains(readOnly, k.Name) {
			return console.RoleRead
		}
		return console.RoleAdmin
	}
	c := console.New(console.Config{
		Auth:    console.KeyAuth{Keys: a.store, RoleOf: roleOf},
		Reports: reporter,
		Devices: a.store,
		Manager: a.manager,
		Catalog: a.catalog,
		Clock:   a.clock,
		Log:     a.log,
		Pusher:  a.pusher,
		Retrier: a.sched,
		Agents:  a.store,
		Days:    a.store,
		// The leader records the evidence (evidence.go); any replica reads it.
		Evidence: scheduler.NewEvidenceRecorder(a.store, a.catalog, a.clock, a.store),

		Forecasts: a.store,
		Rollouts:  a.manager,
		Gates:     a.sched,

		Declarations: a.store,
		Secure:       !a.cfg.NoTLS || strings.HasPrefix(a.cfg.PublicURL, "https://"),
	})
	c.Register(r)
	a.console = c
}

// consoleRefresh is how often the server rebuilds the console's fleet
// snapshot on its own (each rebuild records the day's compliance).
const consoleRefresh = time.Hour
