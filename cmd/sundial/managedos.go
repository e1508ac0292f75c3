package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/sundial-mdm/sundial/agent"
	"github.com/sundial-mdm/sundial/internal/retention"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// zones implements declarative.Zones over the stores (and the planner's
// policy lookup).
type zones struct {
	agents   storage.AgentStore
	policies scheduler.PolicyStore
	log      *slog.Logger
}

func (z zones) DeviceZone(ctx context.Context, id string) string {
	st, err := z.agents.AgentState(ctx, id)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			z.log.Error("agent state lookup failed", "enrollment_id", id, "err", err)
		}
		return ""
	}
	return st.TimeZone
}

// detailsURL is the update page of a group's policy.
func (z zones) detailsURL(ctx context.Context, group string) string {
	recs, err := z.policies.Policies(ctx)
	if err != nil {
		z.log.Error("policy lookup failed", "group", group, "err", err)
		return ""
	}
	for _, r := range recs {
		if r.GroupID == group {
			return r.Policy.DetailsURL
		}
	}
	return ""
}

// planner answers the agent's plan from the scheduler's state.
type planner struct {
	mgr   *scheduler.Manager
	zones zones
}

func (p planner) Plan(ctx context.Context, id string) (agent.Plan, error) {
	rep, err := p.mgr.Device(ctx, id, 1)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return agent.Plan{}, nil
		}
		return agent.Plan{}, err
	}
	st := rep.State
	if st == nil {
		return agent.Plan{}, nil
	}
	plan := agent.Plan{Phase: string(st.Phase), Path: string(st.Path)}
	switch st.Phase {
	case softwareupdate.PhaseUnmanaged, softwareupdate.PhaseUnknown, softwareupdate.PhaseUnsupported, softwareupdate.PhaseExempt, "":
		return plan, nil
	case softwareupdate.PhaseCompliant:
		plan.Managed, plan.Compliant = true, true
		return plan, nil
	}
	plan.Managed = true
	plan.TargetVersion, plan.TargetBuild, plan.Deadline = st.Target, st.TargetBuild, st.AgentDeadline() // the grace's end in an offline grace
	if plan.Path != agent.PathDeclarative {
		plan.Path = agent.PathLegacy
	}
	if st.Phase == softwareupdate.PhaseIneligible {
		// Sundial cannot install on this Mac: Start Now opens Software
		// Update for the user instead of asking the server.
		plan.Path = agent.PathDeclarative
	}
	plan.DetailsURL = p.zones.detailsURL(ctx, st.GroupID)
	return plan, nil
}

// starter asks the scheduler to install now (agent Start Now).
type starter struct{ sched *scheduler.Scheduler }

func (s starter) StartNow(ctx context.Context, id string) error {
	_, err := s.sched.StartNow(ctx, id)
	return err
}

// replicaID names this process for the scheduler lease.
func replicaID() string {
	h, _ := os.Hostname()
	return h + "-" + strconv.Itoa(os.Getpid())
}

// leaseOverrides changes how runScheduler competes for its lease; the zero
// value is production's (the app's store and clock). The replica test sets
// them to crash a replica's lease calls, keep leases on the real clock
// while the app's clock jumps days, and see who leads when.
type leaseOverrides struct {
	store   storage.LeaseStore
	clock   Clock
	leading func() (done func()) // called when this replica starts leading
}

// runScheduler runs the scheduler while this replica holds the lease.
func (a *app) runScheduler(ctx context.Context) {
	var leases storage.LeaseStore = a.store
	if a.lease.store != nil {
		leases = a.lease.store
	}
	var clk Clock = a.clock
	if a.lease.clock != nil {
		clk = a.lease.clock
	}
	leader := storage.NewLeader(leases, "scheduler", a.cfg.ReplicaID, a.cfg.LeaseTTL, clk, a.log)
	// Only the leader re-pushes silent devices and refreshes inventory.
	a.pusher.SetRepush(false)
	a.svc.SetInventoryRefresh(false)
	followed := a.followCatalog(ctx) // every replica picks up catalog changes made by another
	defer func() { <-followed }()
	leader.Run(ctx, func(ctx context.Context) {
		a.log.Info("scheduler leader: running the deadline scheduler")
		a.schedMet.Leading(true)
		defer a.schedMet.Leading(false)
		a.pusher.SetRepush(true)
		a.svc.SetInventoryRefresh(true)
		defer a.pusher.SetRepush(false)
		defer a.svc.SetInventoryRefresh(false)
		if a.lease.leading != nil {
			defer a.lease.leading()()
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.ensureDeclarations(ctx)
		}()
		polled := a.startCatalogPoller(ctx)
		pruned := make(chan struct{})
		go func() {
			defer close(pruned)
			retention.NewPruner(a.store, a.clock, a.log, a.cfg.RetainCommands, a.cfg.RetainHistory).Run(ctx)
		}()
		depDone := make(chan struct{})
		go func() {
			defer close(depDone)
			a.runDEPSync(ctx, a.cfg.DEPSyncInterval)
		}()
		hooked := make(chan struct{})
		go func() {
			defer close(hooked)
			a.runWebhooks(ctx)
		}()
		evidenced := make(chan struct{})
		go func() {
			defer close(evidenced)
			a.runEvidence(ctx)
		}()
		a.sched.Run(ctx)
		<-evidenced
		<-hooked
		<-done
		<-pruned
		<-polled
		<-depDone
	})
}

// ensureDeclarations re-sends DeclarativeManagement to Macs that have not
// confirmed their enforcement declaration within 6 hours of their deadline
// (at most once an hour each), until ctx ends.
func (a *app) ensureDeclarations(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		if n, err := a.ddm.EnsureDelivery(ctx, 6*time.Hour, time.Hour); err != nil {
			if ctx.Err() == nil {
				a.log.Error("declaration delivery check failed", "err", err)
			}
		} else if n > 0 {
			a.log.Info("re-sent declarations to Macs that have not confirmed them", "devices", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// enqueueFunc adapts a function to the Enqueue interfaces.
type enqueueFunc func(ctx context.Context, ids []string, cmd *mdm.Command) error

func (f enqueueFunc) Enqueue(ctx context.Context, ids []string, cmd *mdm.Command) error {
	return f(ctx, ids, cmd)
}
