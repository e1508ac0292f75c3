package ddm

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
)

// Bounds on a device's merged status record. Incremental reports merge into
// the stored items, so without a bound on the merged set one Mac could grow
// its record report after report (75 reports took 1.55 s to rewrite inside
// a write transaction, stalling every other Mac's check-in). A real full
// macOS report is a few kilobytes and about a hundred items.
const (
	maxMergedItems = 512
	maxMergedBytes = 128 << 10 // names and JSON values
)

// knownItems are the status items Sundial reads; they are kept when the
// merged record is over its bounds.
var knownItems = map[string]bool{
	ItemOSVersion: true, ItemBuildVersion: true, ItemSupplementalBuild: true, ItemSupplementalExtra: true,
	ItemInstallState: true, ItemPendingVersion: true, ItemFailureReason: true, ItemInstallReason: true,
	ItemDeviceID: true, ItemDeclarations: true, ItemClientCapabilities: true, ItemBetaEnrollment: true,
	ItemModelIdentifier: true, ItemOSFamily: true, ItemOSMarketingName: true, ItemManagementPushToken: true,
}

// capItems cuts a merged item set to maxMergedItems and maxMergedBytes,
// dropping items Sundial does not read first (largest first, then by name,
// so the result does not depend on map order), then any others the same
// way. It returns how many items it dropped.
func capItems(items map[string]json.RawMessage) int {
	size := 0
	for k, v := range items {
		size += len(k) + len(v)
	}
	if len(items) <= maxMergedItems && size <= maxMergedBytes {
		return 0
	}
	names := slices.Collect(maps.Keys(items))
	slices.SortFunc(names, func(a, b string) int {
		if ka, kb := knownItems[a], knownItems[b]; ka != kb {
			if ka {
				return 1 // unknown items go first
			}
			return -1
		}
		if c := cmp.Compare(len(items[b])+len(b), len(items[a])+len(a)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	dropped := 0
	for _, name := range names {
		if len(items) <= maxMergedItems && size <= maxMergedBytes {
			break
		}
		size -= len(name) + len(items[name])
		delete(items, name)
		dropped++
	}
	return dropped
}

// maxEventItems bounds the item names a history event lists: the history
// keeps HistoryLimit events per device, and a report may hold thousands of
// items.
const maxEventItems = 64

// eventItems lists a report's item names for its history event, sorted,
// the ones Sundial reads first, at most maxEventItems.
func eventItems(items map[string]json.RawMessage) []string {
	names := slices.Sorted(maps.Keys(items))
	if len(names) <= maxEventItems {
		return names
	}
	slices.SortStableFunc(names, func(a, b string) int {
		switch ka, kb := knownItems[a], knownItems[b]; {
		case ka && !kb:
			return -1
		case kb && !ka:
			return 1
		}
		return 0
	})
	return names[:maxEventItems]
}
