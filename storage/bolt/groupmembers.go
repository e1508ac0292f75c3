package bolt

import (
	"bytes"
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// GroupMembers lists the devices of group in ID order after `after`, up to
// limit (storage.ErrNotFound for an unknown group). The default group's
// members are the device records without a membership; another group's are
// found by walking the membership bucket (keyed by device, one short value
// each) and keeping the enrolled ones. User channels ("<dev>:<user>") are
// never listed: a group holds Macs.
func (s *Store) GroupMembers(ctx context.Context, group, after string, limit int) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		if !groupExists(tx, group) {
			return fmt.Errorf("group %s: %w", group, storage.ErrNotFound)
		}
		devs, members := tx.Bucket(bDevices), tx.Bucket(bMSMember)
		walk := devs
		if group != scheduler.DefaultGroupID {
			walk = members
		}
		c := walk.Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && (limit <= 0 || len(ids) < limit); k, v = c.Next() {
			if bytes.IndexByte(k, ':') >= 0 {
				continue
			}
			if group == scheduler.DefaultGroupID {
				if members.Get(k) != nil {
					continue
				}
			} else if string(v) != group || devs.Get(k) == nil {
				continue
			}
			ids = append(ids, string(k))
		}
		return nil
	})
	return ids, err
}
