package agent

import (
	"strings"
	"testing"
	"time"
)

func TestParsePlan(t *testing.T) {
	tests := []struct {
		name    string
		have    string
		want    Plan
		wantErr string
	}{
		{
			name: "legacy plan",
			have: `{"target_version":"15.4","target_build":"24E248","deadline":"2026-06-12T15:00:00Z","phase":"notify","details_url":"https://support.apple.com/en-us/122868","path":"legacy","compliant":false,"managed":true}`,
			want: legacyPlan(),
		},
		{
			name: "compliant plan needs no target",
			have: `{"managed":true,"compliant":true}`,
			want: Plan{Managed: true, Compliant: true},
		},
		{
			name: "unknown fields are tolerated",
			have: `{"managed":false,"future_field":1}`,
			want: Plan{},
		},
		{name: "unknown path", have: `{"managed":true,"target_version":"15.4","deadline":"2026-06-12T15:00:00Z","path":"telepathy"}`, wantErr: "unknown enforcement path"},
		{name: "missing deadline", have: `{"managed":true,"target_version":"15.4"}`, wantErr: "without deadline"},
		{name: "missing target", have: `{"managed":true,"deadline":"2026-06-12T15:00:00Z"}`, wantErr: "without target version"},
		{name: "script url", have: `{"managed":false,"details_url":"file:///etc/passwd"}`, wantErr: "not http or https"},
		{name: "control characters", have: `{"managed":false,"target_version":"15.4\n"}`, wantErr: "control characters"},
		{name: "trailing data", have: `{"managed":false}{}`, wantErr: "trailing data"},
		{name: "not json", have: `<plist/>`, wantErr: "parse plan"},
		{name: "too large", have: `{"phase":"` + strings.Repeat("a", MaxPlanSize) + `"}`, wantErr: "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePlan([]byte(tt.have))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("plan = %+v\nwant   %+v", got, tt.want)
			}
		})
	}
}

func TestPlanKey(t *testing.T) {
	p := legacyPlan()
	inZone := p
	inZone.Deadline = p.Deadline.In(time.FixedZone("CEST", 2*3600))
	if p.Key() != inZone.Key() {
		t.Errorf("the same instant in another zone changed the key: %q vs %q", p.Key(), inZone.Key())
	}
	otherPath := p
	otherPath.Path = PathDeclarative
	otherPath.Phase = "countdown"
	if p.Key() != otherPath.Key() {
		t.Errorf("path or phase changed the key")
	}
	moved := p
	moved.Deadline = p.Deadline.Add(time.Minute)
	if p.Key() == moved.Key() {
		t.Errorf("a moved deadline kept the key")
	}
	compliant := p
	compliant.Compliant = true
	if compliant.Key() != "" {
		t.Errorf("inactive plan key = %q, want empty", compliant.Key())
	}
}

func FuzzParsePlan(f *testing.F) {
	f.Add([]byte(`{"target_version":"15.4","target_build":"24E248","deadline":"2026-06-12T15:00:00Z","path":"legacy","managed":true}`))
	f.Add([]byte(`{"managed":true,"compliant":true}`))
	f.Add([]byte(`{"details_url":"https://example.com/x","path":"declarative"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePlan(data)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed plan does not validate: %v", err)
		}
		// Whatever the server sends, the machine must not panic on it.
		m := DefaultMachine()
		for _, at := range []time.Duration{-6 * day, -5 * day, 0, 10 * time.Minute, time.Hour} {
			d := m.Evaluate(p, State{}, p.Deadline.Add(at))
			if !p.Active() && (len(d.Prompts) != 0 || d.Window != nil || d.Status.Visible) {
				t.Fatalf("inactive plan showed something: %+v", d)
			}
		}
	})
}
