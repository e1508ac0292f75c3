package main

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ringsCollector exports the scheduler's last ring gate evaluation: one
// series per ring of every plan, 1 while an earlier ring's gate holds it.
// A group is in one plan at most, so the series are bounded by the groups.
type ringsCollector struct {
	a    *app
	held *prometheus.Desc
}

func newRingsCollector(a *app) *ringsCollector {
	return &ringsCollector{a: a, held: prometheus.NewDesc("sundial_rings_held",
		"1 while a ring's notice is held by the health gate of the ring before it (sundial rings show says why).",
		[]string{"plan", "group"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *ringsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.held }

// Collect implements prometheus.Collector. It reads the scheduler's last
// evaluation in memory: no storage access per scrape.
func (c *ringsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.a.sched == nil {
		return
	}
	for plan, rings := range c.a.sched.RingStatuses() {
		for _, r := range rings {
			v := 0.0
			if !r.MayNotify {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, v, plan, r.Name)
		}
	}
}
