package main

import (
	"context"
	"errors"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// auditedEnqueue gives the admin API an enqueue that writes its audit
// entry in the same transaction (api.AuditedEnqueuer), through the MDM
// service's store with its metrics, then wakes the Macs as
// service.Service.Enqueue does. It lives here because mdm/service cannot
// name scheduler.AuditEntry (the scheduler imports the service).
type auditedEnqueue struct {
	store    service.Store
	notifier service.Notifier
	now      func() time.Time
}

func (e auditedEnqueue) EnqueueAudited(ctx context.Context, ids []string, cmd *mdm.Command, a *scheduler.AuditEntry) error {
	s, ok := e.store.(interface {
		EnqueueAudited(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time, a *scheduler.AuditEntry) error
	})
	if !ok {
		return errors.ErrUnsupported
	}
	if err := s.EnqueueAudited(ctx, ids, cmd, e.now(), a); err != nil {
		return err
	}
	e.notifier.Notify(ids...)
	return nil
}
