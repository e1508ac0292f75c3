package abm

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/micromdm/nanodep/godep"

	"github.com/sundial-mdm/sundial/storage"
)

// ProfileSettings is what Sundial puts in the ADE profiles it defines.
type ProfileSettings struct {
	// EnrollURL is Sundial's enrollment URL (…/mdm/enroll).
	EnrollURL string
	// Anchor is Sundial's CA: the Mac trusts it for the enrollment URL.
	Anchor *x509.Certificate
	// SkipSetupItems are Setup Assistant panes to skip (Apple's keys, e.g.
	// "Siri", "Privacy").
	SkipSetupItems []string
	// Department is shown to the user in Setup Assistant.
	Department string
}

// profileFor builds the ADE profile of a group: supervised, mandatory, not
// removable, and waiting in Setup Assistant for DeviceConfigured.
func profileFor(group string, set ProfileSettings) *godep.ProfileJson {
	name := "Sundial"
	if group != "" {
		name += " " + group
	}
	yes := true
	p := &godep.ProfileJson{
		ProfileName: &name, Url: &set.EnrollURL,
		IsSupervised: &yes, IsMandatory: &yes, IsMdmRemovable: false, AwaitDeviceConfigured: &yes,
		SkipSetupItems: slices.Clone(set.SkipSetupItems),
	}
	if set.Anchor != nil {
		p.AnchorCerts = []string{base64.StdEncoding.EncodeToString(set.Anchor.Raw)}
	}
	if set.Department != "" {
		p.Department = &set.Department
	}
	return p
}

func profileHash(p *godep.ProfileJson) string {
	b, _ := json.Marshal(p)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// SetProfileSettings sets what new profile definitions carry; groups whose
// stored profile differs are defined again at their next assignment.
func (c *Connector) SetProfileSettings(s ProfileSettings) {
	c.mu.Lock()
	c.settings = s
	c.mu.Unlock()
}

// profileUUID returns the ABM profile of group on server name, defining it
// (again) when the server has none or the definition changed.
func (c *Connector) profileUUID(ctx context.Context, name, group string) (string, error) {
	c.mu.Lock()
	set := c.settings
	c.mu.Unlock()
	if set.EnrollURL == "" {
		return "", errors.New("abm profiles: no enrollment URL configured")
	}
	p := profileFor(group, set)
	hash := profileHash(p)
	srv, err := c.store.DEPServer(ctx, name)
	if err != nil {
		return "", err
	}
	if cur, ok := srv.Profiles[group]; ok && cur.Hash == hash && cur.UUID != "" {
		return cur.UUID, nil
	}
	resp, err := c.dep.DefineProfile(ctx, name, p)
	if err != nil {
		return "", fmt.Errorf("define abm profile for group %q: %w", group, err)
	}
	uuid := deref(resp.ProfileUuid)
	if uuid == "" || len(uuid) > storage.MaxADEField {
		return "", errors.New("define abm profile: ABM returned no usable profile uuid")
	}
	if srv, err = c.store.DEPServer(ctx, name); err != nil {
		return "", err
	}
	if srv.Profiles == nil {
		srv.Profiles = map[string]storage.DEPProfile{}
	}
	now := c.clock.Now()
	srv.Profiles[group] = storage.DEPProfile{UUID: uuid, Hash: hash, DefinedAt: now}
	srv.UpdatedAt = now
	if err := c.store.PutDEPServer(ctx, srv); err != nil {
		return "", err
	}
	return uuid, nil
}

// AssignGroups assigns each serial the profile of its group (from its ABM
// record) and stores Apple's per-serial result. It returns how many serials
// were sent.
func (c *Connector) AssignGroups(ctx context.Context, name string, serials []string) (int, error) {
	results, err := c.assign(ctx, name, serials)
	if len(results) > 0 {
		if serr := c.store.SetADEAssignResults(ctx, results, c.clock.Now()); serr != nil && err == nil {
			err = serr
		}
	}
	return len(results), err
}

// assign sends each serial to its group's profile (the group of its stored
// record; the default group for serials Sundial has no record of yet) and
// returns Apple's per-serial results.
func (c *Connector) assign(ctx context.Context, name string, serials []string) (map[string]string, error) {
	byGroup := map[string][]string{}
	for _, s := range serials {
		d, err := c.store.ADEDevice(ctx, s)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			byGroup[""] = append(byGroup[""], s)
		case err != nil:
			return nil, err
		default:
			byGroup[d.Group] = append(byGroup[d.Group], s)
		}
	}
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	results := make(map[string]string, len(serials))
	for _, g := range groups {
		uuid, err := c.profileUUID(ctx, name, g)
		if err != nil {
			return results, err
		}
		for chunk := range slices.Chunk(byGroup[g], pageLimit) {
			resp, err := c.dep.AssignProfile(ctx, name, uuid, chunk...)
			if err != nil {
				return results, fmt.Errorf("assign abm profile: %w", err)
			}
			for s, r := range resp.Devices {
				results[s] = truncateField(string(r))
			}
		}
	}
	return results, nil
}

func truncateField(s string) string { return truncate(s, storage.MaxADEField) }

// MoveSerial puts serial in group ("" is the default group) and assigns it
// that group's profile at once, so the Mac gets the new group's setup the
// next time it runs Setup Assistant.
func (c *Connector) MoveSerial(ctx context.Context, serial, group string) (*storage.ADEDevice, error) {
	d, err := c.store.ADEDevice(ctx, serial)
	if err != nil {
		return nil, err
	}
	if err := c.store.SetADEGroup(ctx, serial, group, c.clock.Now()); err != nil {
		return nil, err
	}
	if _, err := c.AssignGroups(ctx, d.Server, []string{serial}); err != nil {
		return nil, err
	}
	return c.store.ADEDevice(ctx, serial)
}
