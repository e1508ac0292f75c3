// Package ddm is Sundial's declarative device management over MDM: the
// DeclarativeManagement check-in endpoints (tokens, declaration-items,
// declaration/<kind>/<identifier>, status), each device's declaration set,
// and its status channel.
//
// # Declarations
//
// Every device channel gets a status subscription
// (com.apple.configuration.management.status-subscriptions for the
// softwareupdate.* items Sundial reads and device.operating-system.version,
// .build-version and .supplemental.build-version) with an activation. While
// the scheduler enforces an update, the set also holds a
// com.apple.configuration.softwareupdate.enforcement.specific and an
// activation that references it. A declaration's ServerToken is a hash of
// its type, identifier and payload, and the DeclarationsToken a hash over the
// set, so a device sees every change and nothing else. Sets are built from
// the stored record on each request; nothing is cached.
//
// # Time
//
// TargetLocalDateTime has no zone: the device reads it as its own wall-clock
// time. Sundial writes the personal deadline D plus the 30-minute countdown
// (Countdown) converted to the device's zone. The scheduler passes that zone
// in Enforcement.Location: the zone the companion agent reported when known,
// else the policy's zone (DeviceZone does this choice). With the policy's
// zone, a device elsewhere installs at the policy zone's wall-clock time in
// its own zone. A change of D, of the target or of the zone that changes
// the payload gives a new ServerToken and a new sync.
//
// # Status channel
//
// Each status report is decoded (size-capped; malformed reports are an
// *mdm.ParseError, which the device handler answers with 400, and nothing is
// stored), merged into the device's state (a full report replaces it, an
// incremental one replaces the items it carries), summarised into a bounded
// history, and passed to Observers. The enforcement is confirmed when
// management.declarations shows it active and valid with the current server
// token; inactive or invalid is a failure carrying Apple's reasons.
//
// # Delivery
//
// SetEnforcement and RemoveEnforcement queue a DeclarativeManagement command
// (Data: {"SyncTokens": ...}) through the MDM service, which pushes.
// EnsureDelivery re-sends it to devices that have not confirmed their
// enforcement some hours before their deadline. Authenticate keeps the
// desired set; the TokenUpdate that follows a re-enrollment queues a sync,
// so a re-enrolled Mac gets its declarations again.
package ddm
