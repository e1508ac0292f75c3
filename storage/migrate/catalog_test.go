package migrate

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

func TestCopyCatalog(t *testing.T) {
	p := newPgsql(t)
	b := newBolt(t)
	ctx := t.Context()
	feeds := map[string][]byte{"gdmf": []byte(`{"PublicAssetSets":{}}`), "sofa": []byte(`{"OSVersions":[]}`)}
	for kind, body := range feeds {
		must(t, b.PutCatalogFeed(ctx, kind, body, t0))
	}
	var rels [][]byte
	for _, v := range []string{"26.6.3", "15.7.9"} {
		raw, err := json.Marshal(catalog.Release{Version: catalog.MustParseVersion(v), Build: "X1", PostingDate: t0})
		must(t, err)
		must(t, b.PutManualRelease(ctx, v, raw))
		rels = append(rels, raw)
	}
	rep, err := CopyCatalog(ctx, b, p, t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("CopyCatalog: %v (%+v)", err, rep)
	}
	want := []KindReport{{"catalog feeds", 2, 2, 2}, {"manual releases", 2, 2, 2}}
	if !reflect.DeepEqual(rep, want) {
		t.Errorf("report = %+v, want %+v", rep, want)
	}
	gotFeeds, err := p.CatalogFeeds(ctx)
	must(t, err)
	if !reflect.DeepEqual(gotFeeds, feeds) {
		t.Errorf("target feeds = %q", gotFeeds)
	}
	gotRels, err := p.ManualReleases(ctx)
	must(t, err)
	sortBytes := func(s [][]byte) { slices.SortFunc(s, func(a, b []byte) int { return slices.Compare(a, b) }) }
	sortBytes(gotRels)
	sortBytes(rels)
	if !reflect.DeepEqual(gotRels, rels) {
		t.Errorf("target releases = %q, want %q", gotRels, rels)
	}
	// Copying again overwrites; it does not duplicate.
	if rep, err := CopyCatalog(ctx, b, p, t0.Add(2*time.Hour)); err != nil || !reflect.DeepEqual(rep, want) {
		t.Errorf("second CopyCatalog = %+v, %v", rep, err)
	}
}
