package bolt

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sundial-mdm/sundial/mdm"
)

// Command records are written when a command is queued and rewritten at
// every report, so each round trip encodes and decodes one several times;
// a pass that queues 40,000 commands writes 40,000. They are stored in a
// compact binary form (about a third of the JSON's size, several times
// faster). Records written by earlier versions as JSON (they start with
// '{', and may carry the body and result inline) are still read.
//
// Version 1 layout, after the version byte, with the primitives of the
// update state codec (statecodec.go): EnrollmentID, UUID, RequestType,
// Seq, Status, QueuedAt, UpdatedAt, NotNowCount (zig-zag), the error chain
// (count, then ErrorCode zig-zag, ErrorDomain, LocalizedDescription,
// USEnglishDescription each) and the history (count, then Status, At
// each). Raw and Result live in cmdbodies and cmdresults.
const recordCodecV1 = 0x01

var errRecordCorrupt = errors.New("corrupt command record")

// maxRecordItems bounds the lengths a damaged record may claim.
const maxRecordItems = 1 << 16

func encodeRecord(rec *mdm.CommandRecord) []byte {
	w := make(stateWriter, 0, 96+len(rec.EnrollmentID)+16*len(rec.History))
	w = append(w, recordCodecV1)
	w.str(rec.EnrollmentID)
	w.str(rec.UUID)
	w.str(rec.RequestType)
	w.uint(rec.Seq)
	w.str(rec.Status)
	w.time(rec.QueuedAt)
	w.time(rec.UpdatedAt)
	w.int(int64(rec.NotNowCount))
	w.uint(uint64(len(rec.ErrorChain)))
	for _, e := range rec.ErrorChain {
		w.int(int64(e.ErrorCode))
		w.str(e.ErrorDomain)
		w.str(e.LocalizedDescription)
		w.str(e.USEnglishDescription)
	}
	w.uint(uint64(len(rec.History)))
	for _, h := range rec.History {
		w.str(h.Status)
		w.time(h.At)
	}
	return w
}

// decodeRecord reads a stored command record.
func decodeRecord(v []byte) (*mdm.CommandRecord, error) {
	rec := new(mdm.CommandRecord)
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, rec); err != nil {
			return nil, fmt.Errorf("decode command record: %w", err)
		}
		return rec, nil
	}
	if len(v) == 0 || v[0] != recordCodecV1 {
		return nil, fmt.Errorf("decode command record: %w: unknown encoding", errRecordCorrupt)
	}
	r := &stateReader{b: v[1:]}
	rec.EnrollmentID = r.str()
	rec.UUID = r.str()
	rec.RequestType = r.str()
	rec.Seq = r.uint()
	rec.Status = r.str()
	rec.QueuedAt = r.time()
	rec.UpdatedAt = r.time()
	rec.NotNowCount = int(r.int())
	if n := r.uint(); n > maxRecordItems {
		r.err = errRecordCorrupt
	} else if n > 0 && r.err == nil {
		rec.ErrorChain = make([]mdm.ErrorChainItem, 0, min(n, uint64(len(r.b))))
		for range n {
			rec.ErrorChain = append(rec.ErrorChain, mdm.ErrorChainItem{
				ErrorCode: int(r.int()), ErrorDomain: r.str(), LocalizedDescription: r.str(), USEnglishDescription: r.str(),
			})
			if r.err != nil {
				break
			}
		}
	}
	if n := r.uint(); n > maxRecordItems {
		r.err = errRecordCorrupt
	} else if r.err == nil {
		rec.History = make([]mdm.StatusEvent, 0, min(n, uint64(len(r.b))))
		for range n {
			rec.History = append(rec.History, mdm.StatusEvent{Status: r.str(), At: r.time()})
			if r.err != nil {
				break
			}
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errRecordCorrupt
	}
	if r.err != nil {
		// The shared reader reports errStateCorrupt; say what was read.
		return nil, fmt.Errorf("decode command record: %w", errRecordCorrupt)
	}
	return rec, nil
}
