package main

import (
	"context"
	"time"

	"github.com/sundial-mdm/sundial/internal/webhook"
)

// readinessInterval is how often the leader forecasts the Macs whose
// deadline is near and announces those whose forecast changed; a Mac that
// turns at risk is announced at most this late.
const readinessInterval = 5 * time.Minute

// runReadinessWatch runs webhook.CheckReadiness at once and then every
// interval until ctx ends (leader only). The stored marks keep each
// change to one event across checks, restarts and leader changes.
func (a *app) runReadinessWatch(ctx context.Context, interval time.Duration) {
	if a.forecaster == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := webhook.CheckReadiness(ctx, a.store, a.forecaster, a.clock.Now())
		if err != nil && ctx.Err() == nil {
			a.log.Warn("readiness check failed", "err", err)
		}
		if n > 0 {
			a.log.Info("readiness forecast changes announced", "devices", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
