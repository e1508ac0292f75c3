package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
)

// TestBulkBodyStoredOnce queues a large command for 100 Macs in one call:
// its body is stored once, each Mac's entry is a reference, every Mac is
// sent the whole body, and pruning the last copy removes the body too.
func TestBulkBodyStoredOnce(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("MAC-%03d", i)
		msg := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: ids[i]}, MessageType: mdm.Authenticate, Topic: "t"}
		if err := s.Authenticate(ctx, ids[i], msg, "cert-"+ids[i], now); err != nil {
			t.Fatal(err)
		}
	}
	// A settings profile's worth of payload that does not compress away.
	var payload strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&payload, "%08x", uint32(i)*2654435761)
	}
	bulk, err := mdm.NewCommand("InstallProfile", map[string]any{"Payload": []byte(payload.String())})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, ids, bulk, now); err != nil {
		t.Fatal(err)
	}
	single, err := mdm.NewCommand("ProfileList", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, ids[:1], single, now); err != nil {
		t.Fatal(err)
	}

	var refs, plain, stored int
	view(t, s, func(tx *bbolt.Tx) {
		tx.Bucket(bCmdRaw).ForEach(func(_, v []byte) error {
			if isBodyRef(v) {
				refs++
			} else {
				plain++
			}
			stored += len(v)
			return nil
		})
		shared := tx.Bucket(bCmdShared)
		if n := shared.Stats().KeyN; n != 1 {
			t.Errorf("%d shared bodies, want 1", n)
		}
		shared.ForEach(func(k, v []byte) error {
			stored += len(v)
			if c := tx.Bucket(bCmdShareN).Get(k); binary.BigEndian.Uint64(c) != 100 {
				t.Errorf("shared body's count = %x, want 100", c)
			}
			return nil
		})
	})
	if refs != 100 || plain != 1 {
		t.Errorf("cmdbodies holds %d references and %d bodies, want 100 and the single-Mac command's", refs, plain)
	}
	if stored > 2*len(bulk.Raw) {
		t.Errorf("%d bytes stored for a %d-byte command queued for 100 Macs", stored, len(bulk.Raw))
	}

	// Every Mac is sent the whole body and answers it.
	for i, id := range ids {
		r := &mdm.Report{Enrollment: mdm.Enrollment{UDID: id}, Status: mdm.Idle}
		_, c, err := s.StoreReportAndNext(ctx, id, r, nil, now)
		if err != nil || c == nil || !bytes.Equal(c.Raw, bulk.Raw) {
			t.Fatalf("%s is sent %v (err %v), want the bulk command", id, c, err)
		}
		r = &mdm.Report{Enrollment: mdm.Enrollment{UDID: id}, CommandUUID: bulk.UUID, Status: mdm.Acknowledged}
		if _, _, err := s.StoreReportAndNext(ctx, id, r, []byte("<plist/>"), now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// Pruning in steps leaves the body for those not yet pruned.
	for _, cut := range []time.Duration{30 * time.Minute, 99 * time.Minute, 2 * time.Hour} {
		for after := ""; ; {
			_, next, err := s.PruneCommands(ctx, now.Add(cut), after, 7)
			if err != nil {
				t.Fatal(err)
			}
			if next == "" {
				break
			}
			after = next
		}
		left := ids[min(int(cut/time.Minute), len(ids)):]
		for _, id := range left {
			rec, err := s.Command(ctx, id, bulk.UUID)
			if err != nil || !bytes.Equal(rec.Raw, bulk.Raw) {
				t.Fatalf("after pruning before %v, %s's command: %v", cut, id, err)
			}
		}
	}
	view(t, s, func(tx *bbolt.Tx) {
		for _, b := range [][]byte{bCmdShared, bCmdShareN} {
			if n := tx.Bucket(b).Stats().KeyN; n != 0 {
				t.Errorf("%s holds %d entries after every copy was pruned", b, n)
			}
		}
	})
}

// TestKeepBlobMarkerBytes checks that a body starting with any marker byte
// is kept behind blobRaw, so that it never reads as compressed or shared.
func TestKeepBlobMarkerBytes(t *testing.T) {
	for _, first := range []byte{blobRaw, blobDeflate, blobS2, blobRef} {
		b := append([]byte{first}, "12345678"...)
		v := keepBlob(b)
		if isBodyRef(v) {
			t.Errorf("%x is stored as a reference", b)
		}
		if got, err := unpackBlob(v); err != nil || !bytes.Equal(got, b) {
			t.Errorf("unpack(keep(%x)) = %x, %v", b, got, err)
		}
	}
}

func view(t *testing.T, s *Store, fn func(tx *bbolt.Tx)) {
	t.Helper()
	if err := s.db.View(func(tx *bbolt.Tx) error { fn(tx); return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestSharedBodyWithoutCount: a shared body whose reference count is
// missing is kept when a reference to it is deleted, so that the other
// commands still read it.
func TestSharedBodyWithoutCount(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := packBlob([]byte(strings.Repeat("<plist/>", 20)))
	a, b := u64(1), u64(2)
	err = s.db.Update(func(tx *bbolt.Tx) error {
		ref, err := putSharedBody(tx, a, body, 2)
		if err != nil {
			return err
		}
		for _, k := range [][]byte{a, b} {
			if err := tx.Bucket(bCmdRaw).Put(k, ref); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bCmdShareN).Delete(a); err != nil {
			return err
		}
		return deleteBody(tx, a)
	})
	if err != nil {
		t.Fatal(err)
	}
	view(t, s, func(tx *bbolt.Tx) {
		if got, err := storedBody(tx, b); err != nil || !bytes.Equal(got, body) {
			t.Errorf("the other command's body = %q, %v", got, err)
		}
		if got, _ := storedBody(tx, a); got != nil {
			t.Errorf("the deleted command still has a body")
		}
	})
}
