package main

import (
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/web/console"
)

// consoleDevices lists devices through the admin API's own listing (so the
// console shows what GET /api/v1/devices answers) and reads them from the
// store.
type consoleDevices struct {
	*api.Server
	backend
}

// setupConsole mounts the web console under /ui/.
func (a *app) setupConsole(r *mux.Router, adm *api.Server, reporter *scheduler.Reporter) {
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
		Devices: consoleDevices{adm, a.store},
		Manager: a.manager,
		Catalog: a.catalog,
		Clock:   a.clock,
		Log:     a.log,
		Pusher:  a.pusher,
		Retrier: a.sched,
		Agents:  a.store,
		Secure:  !a.cfg.NoTLS || strings.HasPrefix(a.cfg.PublicURL, "https://"),
	})
	c.Register(r)
}
