package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/migrate/record"
)

// Export: one iterator per kind of record, for moving an installation to
// another backend (storage/migrate). Each runs in one read transaction,
// calls fn for every record in key order (so commands and history come in
// FIFO order) and stops at the first error fn or the context returns.
// Records handed to fn are not retained by the store.

// ctxCheckEvery is how many records pass between context checks.
const ctxCheckEvery = 256

// forEachKey walks bucket b in key order within one read transaction.
func (s *Store) forEachKey(ctx context.Context, b []byte, fn func(tx *bbolt.Tx, k, v []byte) error) error {
	return s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(b).Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := fn(tx, k, v); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
}

// splitSeqKey splits an <id> 0x00 <8-byte seq> key.
func splitSeqKey(k []byte) (string, uint64, bool) {
	if len(k) < 9 || k[len(k)-9] != 0 {
		return "", 0, false
	}
	return string(k[:len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:]), true
}

// Counts returns the number of records of every kind in record.Kinds.
func (s *Store) Counts(ctx context.Context) (record.Counts, error) {
	c := record.Counts{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		keys := func(b []byte) int { return tx.Bucket(b).Stats().KeyN }
		c[record.Devices] = keys(bDevices)
		c[record.CertBindings] = keys(bCerts)
		c[record.LastSeen] = keys(bSeen)
		c[record.Commands] = keys(bCmds)
		c[record.QueuedCommands] = keys(bQueue)
		c[record.APIKeys] = keys(bAPIKeys)
		c[record.Challenges] = keys(bChall)
		c[record.Agents] = keys(bAgent)
		c[record.DDMRecords] = keys(bDDM)
		c[record.DDMEvents] = keys(bDDMHist)
		c[record.Groups] = keys(bMSGroups)
		c[record.Memberships] = keys(bMSMember)
		c[record.Policies] = keys(bMSPolicy)
		c[record.Exceptions] = keys(bMSExc)
		c[record.UpdateStates] = keys(bMSState)
		c[record.UpdateHistory] = keys(bMSHist)
		c[record.AuditLog] = keys(bMSAudit)
		c[record.CatalogFeeds] = keys(bCatFeed)
		c[record.CatalogPolls] = keys(bCatPoll)
		c[record.ManualReleases] = keys(bCatMan)
		c[record.EnrollmentGuards] = keys(bGuards)
		c[record.ADEDevices] = keys(bADEDevices)
		c[record.ADECursors] = keys(bADECursors)
		c[record.DEPServers] = keys(bDEPServers)
		countRollout(c, keys)
		// Counted below record by record: present even when none.
		c[record.PushStates], c[record.NotNowCommands], c[record.AgentEvents] = 0, 0, 0
		err := tx.Bucket(bPush).ForEach(func(k, v []byte) error {
			var st mdm.PushState
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("decode push state %s: %w", k, err)
			}
			if !st.At.IsZero() {
				c[record.PushStates]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bQueue).ForEach(func(k, v []byte) error {
			if len(v) > 0 && v[0] == flagNotNow {
				c[record.NotNowCommands]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bAgent).ForEach(func(k, v []byte) error {
			var rec agentRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode agent of %s: %w", k, err)
			}
			c[record.AgentEvents] += len(rec.Events)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("count records: %w", err)
	}
	return c, nil
}

// ExportDevices calls fn for every enrollment in ID order, with its
// last-seen time and push state.
func (s *Store) ExportDevices(ctx context.Context, fn func(*mdm.Device) error) error {
	err := s.forEachKey(ctx, bDevices, func(tx *bbolt.Tx, k, v []byte) error {
		d := new(mdm.Device)
		if err := json.Unmarshal(v, d); err != nil {
			return fmt.Errorf("decode device %s: %w", k, err)
		}
		d.LastSeen = fromNanos(tx.Bucket(bSeen).Get(k))
		var err error
		if d.LastPush, _, err = getPushState(tx, string(k)); err != nil {
			return err
		}
		return fn(d)
	})
	if err != nil {
		return fmt.Errorf("export devices: %w", err)
	}
	return nil
}

// ExportCommands calls fn for every command record (with its body, result
// and history) in queue order (the global command sequence), with its place
// in the queue.
func (s *Store) ExportCommands(ctx context.Context, fn func(record.Command) error) error {
	err := s.forEachKey(ctx, bCmds, func(tx *bbolt.Tx, k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("malformed command key %q", k)
		}
		rec, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("command %x: %w", k, err)
		}
		rec.Seq = binary.BigEndian.Uint64(k)
		if err := readBodies(tx, k, rec); err != nil {
			return err
		}
		c := record.Command{Record: rec}
		if q := tx.Bucket(bQueue).Get(key(rec.EnrollmentID, k)); q != nil {
			flag, _, _ := parseQueueValue(q)
			c.Queued, c.NotNow = true, flag == flagNotNow
		}
		return fn(c)
	})
	if err != nil {
		return fmt.Errorf("export commands: %w", err)
	}
	return nil
}

// ExportAPIKeys calls fn for every API key (with its hash) in ID order.
func (s *Store) ExportAPIKeys(ctx context.Context, fn func(storage.APIKey) error) error {
	err := s.forEachKey(ctx, bAPIKeys, func(tx *bbolt.Tx, k, _ []byte) error {
		key, err := getAPIKey(tx, k)
		if err != nil {
			return err
		}
		return fn(*key)
	})
	if err != nil {
		return fmt.Errorf("export api keys: %w", err)
	}
	return nil
}

// ExportChallenges calls fn for every stored SCEP challenge, expired ones
// included.
func (s *Store) ExportChallenges(ctx context.Context, fn func(record.Challenge) error) error {
	err := s.forEachKey(ctx, bChall, func(_ *bbolt.Tx, k, v []byte) error {
		return fn(record.Challenge{Hash: string(k), Expires: fromNanos(v)})
	})
	if err != nil {
		return fmt.Errorf("export challenges: %w", err)
	}
	return nil
}

// ExportAgents calls fn for every device's agent in ID order.
func (s *Store) ExportAgents(ctx context.Context, fn func(record.Agent) error) error {
	err := s.forEachKey(ctx, bAgent, func(_ *bbolt.Tx, k, v []byte) error {
		var rec agentRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode agent of %s: %w", k, err)
		}
		return fn(record.Agent{ID: string(k), SecretHash: rec.SecretHash, State: rec.AgentState})
	})
	if err != nil {
		return fmt.Errorf("export agents: %w", err)
	}
	return nil
}

// ExportDDM calls fn for every declarative record in ID order, with its
// status history oldest first.
func (s *Store) ExportDDM(ctx context.Context, fn func(record.DDM) error) error {
	err := s.forEachKey(ctx, bDDM, func(tx *bbolt.Tx, k, v []byte) error {
		// The record as one JSON document again, its items folded back in.
		rec, err := getDDM(tx, string(k))
		if err != nil {
			return err
		}
		whole, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode declarative record %s: %w", k, err)
		}
		r := record.DDM{ID: string(k), Record: whole}
		p := prefix(r.ID)
		c := tx.Bucket(bDDMHist).Cursor()
		for hk, hv := c.Seek(p); hk != nil && bytes.HasPrefix(hk, p); hk, hv = c.Next() {
			r.History = append(r.History, clone(hv))
		}
		return fn(r)
	})
	if err != nil {
		return fmt.Errorf("export declarative records: %w", err)
	}
	return nil
}

// ExportGroups calls fn for every stored group in ID order (the default
// group only if it was stored).
func (s *Store) ExportGroups(ctx context.Context, fn func(scheduler.Group) error) error {
	err := s.forEachKey(ctx, bMSGroups, func(_ *bbolt.Tx, k, v []byte) error {
		var g scheduler.Group
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("decode group %s: %w", k, err)
		}
		return fn(g)
	})
	if err != nil {
		return fmt.Errorf("export groups: %w", err)
	}
	return nil
}

// ExportMemberships calls fn for every device outside the default group.
func (s *Store) ExportMemberships(ctx context.Context, fn func(record.Membership) error) error {
	err := s.forEachKey(ctx, bMSMember, func(_ *bbolt.Tx, k, v []byte) error {
		return fn(record.Membership{DeviceID: string(k), GroupID: string(v)})
	})
	if err != nil {
		return fmt.Errorf("export group memberships: %w", err)
	}
	return nil
}

// ExportPolicies calls fn for every group's policy.
func (s *Store) ExportPolicies(ctx context.Context, fn func(scheduler.PolicyRecord) error) error {
	err := s.forEachKey(ctx, bMSPolicy, func(_ *bbolt.Tx, k, v []byte) error {
		var p scheduler.PolicyRecord
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("decode policy %s: %w", k, err)
		}
		return fn(p)
	})
	if err != nil {
		return fmt.Errorf("export policies: %w", err)
	}
	return nil
}

// ExportExceptions calls fn for every exception.
func (s *Store) ExportExceptions(ctx context.Context, fn func(scheduler.ExceptionRecord) error) error {
	err := s.forEachKey(ctx, bMSExc, func(_ *bbolt.Tx, k, v []byte) error {
		var e scheduler.ExceptionRecord
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decode exception %q: %w", k, err)
		}
		return fn(e)
	})
	if err != nil {
		return fmt.Errorf("export exceptions: %w", err)
	}
	return nil
}

// ExportStates calls fn for every update state in device ID order.
func (s *Store) ExportStates(ctx context.Context, fn func(*scheduler.State) error) error {
	err := s.forEachKey(ctx, bMSState, func(_ *bbolt.Tx, k, v []byte) error {
		st, err := decodeState(string(k), v)
		if err != nil {
			return err
		}
		return fn(st)
	})
	if err != nil {
		return fmt.Errorf("export update states: %w", err)
	}
	return nil
}

// ExportHistory calls fn for every update history entry, by device and
// then in the order written.
func (s *Store) ExportHistory(ctx context.Context, fn func(record.HistoryEntry) error) error {
	err := s.forEachKey(ctx, bMSHist, func(_ *bbolt.Tx, k, v []byte) error {
		id, seq, ok := splitSeqKey(k)
		if !ok {
			return fmt.Errorf("malformed history key %q", k)
		}
		e := record.HistoryEntry{DeviceID: id, Seq: seq}
		if err := decodeTransition(v, &e.Transition); err != nil {
			return fmt.Errorf("history %s/%d: %w", id, seq, err)
		}
		return fn(e)
	})
	if err != nil {
		return fmt.Errorf("export update history: %w", err)
	}
	return nil
}

// ExportAudit calls fn for every audit entry, oldest first.
func (s *Store) ExportAudit(ctx context.Context, fn func(scheduler.AuditEntry) error) error {
	err := s.forEachKey(ctx, bMSAudit, func(_ *bbolt.Tx, k, v []byte) error {
		var a scheduler.AuditEntry
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode audit entry: %w", err)
		}
		if len(k) == 8 {
			a.Seq = binary.BigEndian.Uint64(k)
		}
		return fn(a)
	})
	if err != nil {
		return fmt.Errorf("export audit log: %w", err)
	}
	return nil
}
