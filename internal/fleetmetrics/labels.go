// Package fleetmetrics exposes what operators alert on as Prometheus
// metrics: the fleet's phases and compliance per group and policy, the
// scheduler's passes and lease, commands by request type and status,
// check-ins by message type, declarative status errors, the catalog's age
// and enrolments. Every label set is bounded.
package fleetmetrics

import "sync"

// Other is the label value that stands for every value past a bound.
const Other = "other"

// bounded admits the first max distinct values of a label and maps the rest
// to Other, so that input from devices or admins cannot grow the number of
// series without limit.
type bounded struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

func newBounded(max int) *bounded { return &bounded{max: max, seen: map[string]bool{}} }

func (b *bounded) label(v string) string {
	if v == "" {
		return "none"
	}
	if len(v) > 64 {
		return Other
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[v] {
		return v
	}
	if len(b.seen) >= b.max {
		return Other
	}
	b.seen[v] = true
	return v
}
