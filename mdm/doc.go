// Package mdm holds Apple MDM protocol types: the check-in messages a device
// sends to the CheckInURL, the command reports it sends to the ServerURL, the
// command envelope Sundial sends back, and strict decoders for all of them.
//
// Decoders accept XML property lists only: the plist library Sundial uses has
// no limits on its binary decoder, so binary plists from devices are refused.
package mdm
