package softwareupdate

import "time"

// WallTimeKind says how a wall time maps to instants in a time zone.
type WallTimeKind int

const (
	WallTimeUnique   WallTimeKind = iota // clocks show it once
	WallTimeSkipped                      // clocks jump over it (spring forward)
	WallTimeRepeated                     // clocks show it twice (fall back)
)

// ResolveWallTime returns the instant Sundial's deadlines use for a wall
// time in loc (see wallTime: a skipped time moves forward by the gap, a
// repeated one is its first occurrence) and whether clocks there show that
// time once, never or twice that day, so an admin can be told which instant
// was chosen.
func ResolveWallTime(y int, m time.Month, d, hour, min int, loc *time.Location) (time.Time, WallTimeKind) {
	t := wallTime(y, m, d, hour, min, loc)
	u := time.Date(y, m, d, hour, min, 0, 0, time.UTC)
	_, offBefore := t.Add(-48 * time.Hour).In(loc).Zone()
	_, offAfter := t.Add(48 * time.Hour).In(loc).Zone()
	c1 := u.Add(-time.Duration(offBefore) * time.Second)
	c2 := u.Add(-time.Duration(offAfter) * time.Second)
	ok1, ok2 := sameWall(c1, u, loc), sameWall(c2, u, loc)
	switch {
	case ok1 && ok2 && !c1.Equal(c2):
		return t, WallTimeRepeated
	case !ok1 && !ok2:
		return t, WallTimeSkipped
	}
	return t, WallTimeUnique
}
