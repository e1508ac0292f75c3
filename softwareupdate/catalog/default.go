package catalog

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"
)

// The built-in snapshot: Apple's gdmf v2/pmv response and SOFA's v2 macOS
// feed as of 2026-08-22 (see snapshot/PROVENANCE.md; SOFA data is
// Apache-2.0, see snapshot/SOFA-LICENSE.txt).
var (
	//go:embed snapshot/gdmf-v2-pmv.json
	snapshotGDMF []byte
	//go:embed snapshot/sofa-v2-macos_data_feed.json
	snapshotSOFA []byte
)

var defaultCatalog = sync.OnceValues(func() (*Catalog, error) {
	g, err := ParseGDMF(bytes.NewReader(snapshotGDMF))
	if err != nil {
		return nil, fmt.Errorf("built-in gdmf snapshot: %w", err)
	}
	s, err := ParseSOFAV2(bytes.NewReader(snapshotSOFA))
	if err != nil {
		return nil, fmt.Errorf("built-in sofa snapshot: %w", err)
	}
	g.Merge(s)
	g.SetAsOf(SnapshotTaken)
	return g, nil
})

// Default returns a new catalog built from the snapshot compiled into the
// binary (gdmf merged with SOFA v2). It is what Sundial uses until the first
// successful sync. Each call returns an independent catalog.
func Default() *Catalog {
	c, err := defaultCatalog()
	if err != nil {
		panic(err) // the embedded files are fixed at build time; tests cover them
	}
	return c.Clone()
}
