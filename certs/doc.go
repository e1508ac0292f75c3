// Package certs is Sundial's PKI.
//
// It holds the certificate authority that issues device identities (an
// ECDSA P-256 CA), the SCEP registration authority (RSA, because SCEP
// devices encrypt to it), the enrollment-profile signer, the server TLS
// certificate, and the MDM push certificate. It also verifies what devices
// present: the Mdm-Signature header (a detached CMS signature over the
// request body), client certificates forwarded by a TLS-terminating proxy,
// and the chain from an identity certificate to the CA.
//
// Nothing in this package reads the clock: callers pass now. Errors never
// contain key material or passwords.
package certs
