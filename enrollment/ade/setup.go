package ade

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// Enqueuer queues a command for enrollments (and pushes them).
type Enqueuer interface {
	Enqueue(ctx context.Context, ids []string, cmd *mdm.Command) error
}

// CommandLister lists an enrollment's commands.
type CommandLister interface {
	Commands(ctx context.Context, id string) ([]*mdm.CommandRecord, error)
}

// DeclarativeEnabler starts declarative management on a Mac.
type DeclarativeEnabler interface {
	Resync(ctx context.Context, ids ...string) error
}

// Joiner joins a Mac's ABM record at enrollment: it records the UDID and
// puts the Mac in its ABM record's group.
type Joiner interface {
	ADEDevice(ctx context.Context, serial string) (*storage.ADEDevice, error)
	MarkADEEnrolled(ctx context.Context, serial, udid string, now time.Time) error
}

// GroupAssigner moves enrollments into a group.
type GroupAssigner interface {
	AssignDevices(ctx context.Context, actor, group string, ids []string) error
}

// Setup finishes Automated Device Enrollment: a Mac that sends TokenUpdate
// with AwaitingConfiguration waits in Setup Assistant until it gets
// DeviceConfigured. Setup queues declarative management enablement and
// then DeviceConfigured behind what enrollment already queued (inventory,
// the agent's settings), so the Mac leaves Setup Assistant configured. At
// Authenticate it joins the Mac to its ABM record and group.
//
// Add it as the last check-in hook, after the hooks that queue enrollment
// commands.
type Setup struct {
	enq    Enqueuer
	cmds   CommandLister
	ddm    DeclarativeEnabler // may be nil
	join   Joiner             // may be nil
	groups GroupAssigner      // may be nil
	clock  Clock
	log    *slog.Logger
}

// NewSetup returns the setup hook. enq, cmds and clk are required; ddm,
// join and groups may be nil.
func NewSetup(enq Enqueuer, cmds CommandLister, ddm DeclarativeEnabler, join Joiner, groups GroupAssigner, clk Clock, log *slog.Logger) *Setup {
	if enq == nil || cmds == nil || clk == nil {
		panic("ade.NewSetup: nil argument")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Setup{enq: enq, cmds: cmds, ddm: ddm, join: join, groups: groups, clock: clk, log: log}
}

// Checkin implements service.CheckinHook.
func (s *Setup) Checkin(ctx context.Context, id string, msg *mdm.CheckinMessage) {
	if msg.UserChannel() {
		return
	}
	switch msg.MessageType {
	case mdm.Authenticate:
		s.joinRecord(ctx, id, msg.SerialNumber)
	case mdm.TokenUpdate:
		if msg.AwaitingConfiguration {
			s.configure(ctx, id)
		}
	}
}

// configure queues declarative enablement and DeviceConfigured, once: a
// repeated TokenUpdate while a DeviceConfigured is still queued adds
// nothing.
func (s *Setup) configure(ctx context.Context, id string) {
	log := s.log.With(slog.String("enrollment_id", id))
	recs, err := s.cmds.Commands(ctx, id)
	if err != nil {
		log.Error("device configured not queued: list commands", "err", err)
		return
	}
	for _, r := range recs {
		if r.RequestType == "DeviceConfigured" && (r.Status == mdm.StatusQueued || r.Status == string(mdm.NotNow)) {
			return
		}
	}
	if s.ddm != nil {
		if err := s.ddm.Resync(ctx, id); err != nil {
			log.Warn("declarative management not enabled at setup", "err", err)
		}
	}
	cmd, err := mdm.NewCommand("DeviceConfigured", nil)
	if err != nil {
		log.Error("device configured not built", "err", err)
		return
	}
	if err := s.enq.Enqueue(ctx, []string{id}, cmd); err != nil {
		log.Error("device configured not queued", "err", err)
		return
	}
	log.Info("ade setup queued: mac leaves setup assistant after its enrollment commands")
}

// joinRecord links the ABM record of serial to the enrollment and moves the
// Mac into the record's group.
func (s *Setup) joinRecord(ctx context.Context, id, serial string) {
	if s.join == nil || serial == "" {
		return
	}
	dev, err := s.join.ADEDevice(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) {
		return
	}
	log := s.log.With(slog.String("enrollment_id", id), slog.String("serial", serial))
	if err != nil {
		log.Error("abm record not joined", "err", err)
		return
	}
	if err := s.join.MarkADEEnrolled(ctx, serial, id, s.clock.Now()); err != nil {
		log.Error("abm record not joined", "err", err)
		return
	}
	if s.groups != nil && dev.Group != "" {
		if err := s.groups.AssignDevices(ctx, "ade", dev.Group, []string{id}); err != nil {
			log.Error("mac not moved to its abm group", "group", dev.Group, "err", err)
		}
	}
}
