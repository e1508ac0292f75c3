package fleetmetrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// maxRequestTypes and maxMessageTypes bound their labels; Apple defines
// fewer of each than these.
const (
	maxRequestTypes = 100
	maxMessageTypes = 30
)

// MDM counts commands, check-ins, enrolments and declarative status errors.
type MDM struct {
	queued      *prometheus.CounterVec
	reported    *prometheus.CounterVec
	checkins    *prometheus.CounterVec
	enrolments  prometheus.Counter
	ddmStatus   *prometheus.CounterVec
	reqTypes    *bounded
	msgTypes    *bounded
	ddmFailures *bounded
}

// NewMDM returns the counters, registered with reg.
func NewMDM(reg prometheus.Registerer) *MDM {
	m := &MDM{
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sundial", Subsystem: "commands", Name: "queued_total",
			Help: "Commands queued, per device, by request type."}, []string{"request_type"}),
		reported: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sundial", Subsystem: "commands", Name: "reported_total",
			Help: "Command results reported by devices, by request type and status (Acknowledged, Error, CommandFormatError, NotNow)."}, []string{"request_type", "status"}),
		checkins: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sundial", Subsystem: "mdm", Name: "checkins_total",
			Help: "Check-in messages handled, by message type."}, []string{"message_type"}),
		enrolments: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sundial", Subsystem: "mdm", Name: "enrolments_total",
			Help: "Enrolments completed (the first TokenUpdate after Authenticate)."}),
		ddmStatus: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sundial", Subsystem: "ddm", Name: "status_errors_total",
			Help: "Declarative status reports that show a failed enforcement or install, by Apple's reason code."}, []string{"reason"}),
		reqTypes:    newBounded(maxRequestTypes),
		msgTypes:    newBounded(maxMessageTypes),
		ddmFailures: newBounded(50),
	}
	reg.MustRegister(m.queued, m.reported, m.checkins, m.enrolments, m.ddmStatus)
	return m
}

// Store wraps the MDM service's store, counting what passes through it.
func (m *MDM) Store(next service.Store) service.Store { return &store{Store: next, m: m} }

type store struct {
	service.Store
	m *MDM
}

func (s *store) Enqueue(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time) error {
	err := s.Store.Enqueue(ctx, ids, cmd, now)
	if err == nil {
		s.m.queued.WithLabelValues(s.m.reqTypes.label(cmd.RequestType)).Add(float64(len(ids)))
	}
	return err
}

func (s *store) TokenUpdate(ctx context.Context, id string, msg *mdm.CheckinMessage, onFirst *mdm.Command, now time.Time) (bool, error) {
	first, err := s.Store.TokenUpdate(ctx, id, msg, onFirst, now)
	if err == nil && first {
		s.m.enrolments.Inc()
		if onFirst != nil {
			s.m.queued.WithLabelValues(s.m.reqTypes.label(onFirst.RequestType)).Inc()
		}
	}
	return first, err
}

func (s *store) StoreBoundReportAndNext(ctx context.Context, id, certHash string, r *mdm.Report, raw []byte, inv *mdm.Inventory, now time.Time) (string, bool, *mdm.Command, error) {
	rt, stored, next, err := s.Store.StoreBoundReportAndNext(ctx, id, certHash, r, raw, inv, now)
	if err == nil && rt != "" {
		s.m.reported.WithLabelValues(s.m.reqTypes.label(rt), statusLabel(r.Status)).Inc()
	}
	return rt, stored, next, err
}

func statusLabel(s mdm.Status) string {
	switch s {
	case mdm.Acknowledged, mdm.Error, mdm.CommandFormatError, mdm.NotNow, mdm.Idle:
		return string(s)
	}
	return Other
}

// Checkin counts a check-in message (service.CheckinHook).
func (m *MDM) Checkin(_ context.Context, _ string, msg *mdm.CheckinMessage) {
	m.checkins.WithLabelValues(m.msgTypes.label(string(msg.MessageType))).Inc()
}

// StatusChanged counts failed enforcements in declarative status reports
// (ddm.Observer), once per reason.
func (m *MDM) StatusChanged(_ context.Context, _ string, u ddm.StatusUpdate) {
	if u.State != ddm.StateFailed && !u.InstallFailed {
		return
	}
	if len(u.Reasons) == 0 {
		m.ddmStatus.WithLabelValues("unspecified").Inc()
		return
	}
	for _, r := range u.Reasons {
		m.ddmStatus.WithLabelValues(m.ddmFailures.label(r.Code)).Inc()
	}
}

var (
	_ service.CheckinHook = (*MDM)(nil)
	_ ddm.Observer        = (*MDM)(nil)
)

// SchedulerStore wraps the scheduler's store, counting the commands its
// passes queue by request type (they are committed with the update states,
// not through the MDM service). A store that prepares commits keeps doing so.
func (m *MDM) SchedulerStore(next scheduler.Store) scheduler.Store {
	s := &schedStore{Store: next, m: m}
	if p, ok := next.(scheduler.CommitPreparer); ok {
		return &preparingSchedStore{schedStore: s, p: p}
	}
	return s
}

type schedStore struct {
	scheduler.Store
	m *MDM
}

func (s *schedStore) Commit(ctx context.Context, commits []scheduler.Commit, now time.Time) error {
	if err := s.Store.Commit(ctx, commits, now); err != nil {
		return err
	}
	for i := range commits {
		for _, c := range commits[i].Commands {
			s.m.queued.WithLabelValues(s.m.reqTypes.label(c.RequestType)).Inc()
		}
	}
	return nil
}

type preparingSchedStore struct {
	*schedStore
	p scheduler.CommitPreparer
}

func (s *preparingSchedStore) PrepareCommits(commits []scheduler.Commit) { s.p.PrepareCommits(commits) }
