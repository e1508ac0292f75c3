package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pauseWarnings lists the rollout pauses in force for /healthz: a paused
// rollout is a deliberate state, but nobody should forget it.
func (a *app) pauseWarnings(ctx context.Context) []string {
	if a.manager == nil {
		return nil
	}
	ps, err := a.manager.Pauses(ctx)
	if err != nil {
		a.log.Error("pauses for healthz", "err", err)
		return []string{"rollout pauses could not be read"}
	}
	var out []string
	for _, p := range ps {
		out = append(out, "forced updates paused for "+pauseScope(p.GroupID)+" since "+p.At.UTC().Format(time.RFC3339)+
			" by "+p.Actor+": "+p.Reason+" (sundial resume)")
	}
	return out
}

// pauseCollector exports the pauses in force: 1 per paused scope.
type pauseCollector struct {
	a      *app
	paused *prometheus.Desc
}

func newPauseCollector(a *app) *pauseCollector {
	return &pauseCollector{a: a, paused: prometheus.NewDesc("sundial_rollout_paused",
		"1 while forced updates are paused (group \"\" is the whole fleet).", []string{"group"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *pauseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.paused }

// Collect implements prometheus.Collector.
func (c *pauseCollector) Collect(ch chan<- prometheus.Metric) {
	if c.a.manager == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ps, err := c.a.manager.Pauses(ctx)
	if err != nil {
		c.a.log.Error("pauses for metrics", "err", err)
		return
	}
	for _, p := range ps {
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, 1, p.GroupID)
	}
}
