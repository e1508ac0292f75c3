package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// Agent buckets:
//
//	agent    <id>   JSON agentRecord (secret hash, time zone, recent events)
var bAgent = []byte("agent")

func init() { allBuckets = append(allBuckets, bAgent) }

var _ storage.AgentStore = (*Store)(nil)

type agentRecord struct {
	storage.AgentState
	SecretHash string `json:"secret_hash"`
}

func getAgent(tx *bbolt.Tx, id string) (*agentRecord, error) {
	v := tx.Bucket(bAgent).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("agent of %s: %w", id, storage.ErrNotFound)
	}
	rec := new(agentRecord)
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("decode agent of %s: %w", id, err)
	}
	return rec, nil
}

func putAgent(tx *bbolt.Tx, id string, rec *agentRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.Bucket(bAgent).Put([]byte(id), v)
}

// PutAgentSecret implements storage.AgentStore.
func (s *Store) PutAgentSecret(ctx context.Context, id, hash string, now time.Time) error {
	return s.db.Batch(func(tx *bbolt.Tx) error {
		if tx.Bucket(bDevices).Get([]byte(id)) == nil {
			return fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
		}
		return putAgentSecret(tx, id, hash, now)
	})
}

// putAgentSecret sets the secret hash of a device known to exist, keeping
// its zone and history.
func putAgentSecret(tx *bbolt.Tx, id, hash string, now time.Time) error {
	rec, err := getAgent(tx, id)
	if err != nil {
		rec = &agentRecord{}
	}
	rec.SecretHash, rec.SecretSetAt = hash, now
	return putAgent(tx, id, rec)
}

// AgentSecretHash implements storage.AgentStore.
func (s *Store) AgentSecretHash(ctx context.Context, id string) (string, error) {
	var h string
	err := s.db.View(func(tx *bbolt.Tx) error {
		rec, err := getAgent(tx, id)
		if err == nil {
			h = rec.SecretHash
		}
		return err
	})
	if err == nil && h == "" { // cleared by a re-enrollment
		return "", fmt.Errorf("agent secret of %s: %w", id, storage.ErrNotFound)
	}
	return h, err
}

// clearAgentSecret forgets the device's agent secret (keeping its zone and
// history) when it re-enrolls.
func clearAgentSecret(tx *bbolt.Tx, id string) error {
	rec, err := getAgent(tx, id)
	if err != nil || rec.SecretHash == "" {
		return nil
	}
	rec.SecretHash, rec.SecretSetAt = "", time.Time{}
	return putAgent(tx, id, rec)
}

// AppendAgentReport implements storage.AgentStore.
func (s *Store) AppendAgentReport(ctx context.Context, id string, rep storage.AgentReport, now time.Time) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		rec, err := getAgent(tx, id)
		if err != nil {
			return err
		}
		if rep.TimeZone != "" {
			rec.TimeZone = rep.TimeZone
		}
		rec.LastReportAt = now
		rec.Events = append(rec.Events, rep.Events...)
		if over := len(rec.Events) - storage.MaxAgentEvents; over > 0 {
			rec.Events = append([]storage.AgentEvent(nil), rec.Events[over:]...)
		}
		return putAgent(tx, id, rec)
	})
}

// AgentState implements storage.AgentStore.
func (s *Store) AgentState(ctx context.Context, id string) (*storage.AgentState, error) {
	var st *storage.AgentState
	err := s.db.View(func(tx *bbolt.Tx) error {
		rec, err := getAgent(tx, id)
		if err == nil {
			st = &rec.AgentState
		}
		return err
	})
	return st, err
}
