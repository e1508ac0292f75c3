// Package enrollment builds and serves Sundial's MDM enrollment profile and
// runs the SCEP endpoint that issues device identity certificates.
//
// The pieces, and the URLs the server mounts them on:
//
//   - [BuildProfile] renders the .mobileconfig: Sundial's CA certificate, a
//     SCEP identity payload and the com.apple.mdm payload.
//   - [ProfileHandler] serves it, signed, on GET [PathEnroll], optionally
//     gated by an enrollment secret.
//   - [SharedChallenge] and [OneTimeChallenges] hand out and check the SCEP
//     challenge password that the profile carries.
//   - [SCEPHandler] answers GetCACaps, GetCACert and PKIOperation on
//     [PathSCEP].
//
// Importing this package sets the github.com/smallstep/pkcs7 package
// defaults to SHA-256 digests and AES-128-CBC content encryption (see
// init in scep.go), because the SCEP library builds its replies with those
// defaults and the stock ones are SHA-1 and DES.
package enrollment
