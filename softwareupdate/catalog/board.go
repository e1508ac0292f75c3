package catalog

import (
	"slices"
)

// boardTable interns the board IDs of a catalog so that each release can
// keep a bitset of the boards it supports. Tables are immutable. A catalog
// change that brings new boards makes a new table that extends the old one
// (same indices for known boards); a change without new boards keeps the
// table, so BoardRefs stay on the fast path across routine syncs.
type boardTable struct {
	index map[string]int32
}

// extend returns t if it knows every board, else a new table with the
// missing boards appended in sorted order.
func (t *boardTable) extend(boards map[string]struct{}) *boardTable {
	var missing []string
	for b := range boards {
		if t == nil {
			missing = append(missing, b)
		} else if _, ok := t.index[b]; !ok {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 && t != nil {
		return t
	}
	slices.Sort(missing)
	n := &boardTable{index: make(map[string]int32, len(boards))}
	if t != nil {
		for b, i := range t.index {
			n.index[b] = i
		}
	}
	for _, b := range missing {
		n.index[b] = int32(len(n.index))
	}
	return n
}

// lookup returns the index of a board; a nil table knows none.
func (t *boardTable) lookup(boardID string) (int32, bool) {
	if t == nil {
		return -1, false
	}
	i, ok := t.index[boardID]
	return i, ok
}

// bits returns the bitset of the given boards.
func (t *boardTable) bits(boards []string) []uint64 {
	out := make([]uint64, (len(t.index)+63)/64)
	for _, b := range boards {
		i := t.index[b]
		out[i/64] |= 1 << (i % 64)
	}
	return out
}

// BoardRef is a board ID resolved against a catalog once, for fast
// Release.SupportsRef checks in loops. It stays correct if the catalog
// changes afterwards (it then falls back to comparing strings).
type BoardRef struct {
	id  string
	tab *boardTable
	idx int32 // -1 if the table does not know the board
}

// BoardRef resolves a board ID (see Release.SupportsRef).
func (c *Catalog) BoardRef(boardID string) BoardRef {
	tab := c.load().boards
	idx, ok := int32(-1), false
	if tab != nil {
		idx, ok = tab.index[boardID]
	}
	if !ok {
		idx = -1
	}
	return BoardRef{id: boardID, tab: tab, idx: idx}
}

// ID returns the board ID.
func (b BoardRef) ID() string { return b.id }

// SupportsRef is Supports for a BoardRef: a bit test when the ref and the
// release come from the same catalog state, a string search otherwise.
func (r *Release) SupportsRef(b BoardRef) bool {
	if b.tab != nil && r.boards == b.tab {
		if b.idx < 0 {
			return false
		}
		w := int(b.idx / 64)
		return w < len(r.boardBits) && r.boardBits[w]&(1<<(b.idx%64)) != 0
	}
	return r.Supports(b.id)
}
