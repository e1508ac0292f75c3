package ade_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/enrollment/ade"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
)

// FuzzVerify feeds the enrollment request decoder arbitrary bodies: it
// must never panic, and anything it accepts must be a checked MachineInfo.
func FuzzVerify(f *testing.F) {
	apple, err := mdmtest.NewAppleDeviceCA(time.Now())
	if err != nil {
		f.Fatal(err)
	}
	cert, key, err := apple.IssueDevice("0000FE00-SEED", time.Now())
	if err != nil {
		f.Fatal(err)
	}
	good, err := mdmtest.SignedMachineInfo(machine("C02SEED", "15.3", "24D60"), cert, key, apple.Intermediate)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`<plist version="1.0"><dict><key>UDID</key><string>A</string></dict></plist>`))
	f.Add([]byte{0x30, 0x80, 0x06, 0x09})
	v, err := ade.NewVerifier([]*x509.Certificate{apple.Root})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > ade.MaxMachineInfoSize {
			return
		}
		mi, err := v.Verify(body, time.Now())
		if err == nil && (mi.UDID == "" || mi.Serial == "") {
			t.Fatalf("accepted a MachineInfo without UDID or serial: %+v", mi)
		}
	})
}

func FuzzParseMachineInfo(f *testing.F) {
	f.Add([]byte(`<plist version="1.0"><dict><key>UDID</key><string>ABC-1</string><key>SERIAL</key><string>S</string></dict></plist>`))
	f.Add([]byte("bplist00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mi, err := ade.ParseMachineInfo(b)
		if err == nil && (mi.UDID == "" || mi.Serial == "" || len(mi.Serial) > 64) {
			t.Fatalf("accepted %+v", mi)
		}
	})
}
