package service_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// plainSealer hides seal.Sealer's AppendSealFor (the service's general
// path) and counts the values it opens.
type plainSealer struct {
	s     *seal.Sealer
	opens *int
}

func (p plainSealer) SealFor(pt, ad []byte) ([]byte, error) { return p.s.SealFor(pt, ad) }
func (p plainSealer) OpenFor(v, ad []byte) ([]byte, error) {
	*p.opens++
	return p.s.OpenFor(v, ad)
}

// appendingSealer is plainSealer with AppendSealFor.
type appendingSealer struct{ plainSealer }

func (a appendingSealer) AppendSealFor(dst, pt, ad []byte) ([]byte, error) {
	return a.s.AppendSealFor(dst, pt, ad)
}

// TestSealCommand: a sealed command is stored sealed and delivered as the
// plaintext body, whether or not the sealer appends in place.
func TestSealCommand(t *testing.T) {
	base, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	var opens int
	plain := plainSealer{base, &opens}
	for name, sealer := range map[string]service.Sealer{"append": appendingSealer{plain}, "plain": plain} {
		t.Run(name, func(t *testing.T) {
			opens = 0
			store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
			svc := service.New(store, clk, sealer)
			ctx := t.Context()
			who := service.Identity{CertHash: "cert", NotAfter: clk.Now().AddDate(1, 0, 0)}
			if _, err := svc.Checkin(ctx, who, authenticate("MAC")); err != nil {
				t.Fatal(err)
			}
			cmd, err := mdm.NewCommand("InstallProfile", map[string]any{"Payload": []byte("secret profile")})
			if err != nil {
				t.Fatal(err)
			}
			stored, err := svc.SealCommand(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.Enqueue(ctx, []string{"MAC"}, stored); err != nil {
				t.Fatal(err)
			}
			next, err := svc.CommandReport(ctx, who, &mdm.Report{Enrollment: mdm.Enrollment{UDID: "MAC"}, Status: mdm.Idle}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if next == nil || !bytes.Equal(next.Raw, cmd.Raw) {
				t.Fatalf("delivered %+v, want the plaintext body", next)
			}
			if opens != 1 {
				t.Errorf("%d values opened, want the stored body sealed and opened once", opens)
			}
		})
	}
}
