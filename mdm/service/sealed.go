package service

import (
	"fmt"

	"github.com/sundial-mdm/sundial/mdm"
)

// bootstrapAD binds a sealed bootstrap token to its enrollment: a token
// copied into another device's record does not open there.
func bootstrapAD(id string) []byte { return []byte("bootstrap-token:" + id) }

// commandAD binds a sealed command body to its command.
func commandAD(uuid string) []byte { return []byte("command:" + uuid) }

// SealCommand returns the form in which a command that carries a secret
// (the agent's settings profile) is stored: a copy whose body is sealed to
// the command, so that neither the admin API, nor a backup, nor an export
// shows it, and opened only to be sent to the device.
func (s *Service) SealCommand(cmd *mdm.Command) (*mdm.Command, error) {
	var raw []byte
	var err error
	if as, ok := s.sealer.(appendSealer); ok {
		raw, err = as.AppendSealFor(mdm.SealedRawPrefix(sealOverhead+len(cmd.Raw)), cmd.Raw, commandAD(cmd.UUID))
	} else {
		var sealed []byte
		if sealed, err = s.sealer.SealFor(cmd.Raw, commandAD(cmd.UUID)); err == nil {
			raw = mdm.SealedRaw(sealed)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("seal command %s: %w", cmd.UUID, err)
	}
	stored := *cmd
	stored.Raw = raw
	return &stored, nil
}

// appendSealer is a Sealer that can append the sealed value to the stored
// body's prefix, which saves copying a command body (an agent settings
// profile, some KB) once more per enrolment.
type appendSealer interface {
	AppendSealFor(dst, plaintext, ad []byte) ([]byte, error)
}

// sealOverhead is room for a sealed value's header and tag (AES-GCM: a
// version byte, a 12-byte nonce, a 16-byte tag); a sealer that needs more
// grows the buffer itself.
const sealOverhead = 1 + 12 + 16

// unseal opens the body of a sealed command about to be sent.
func (s *Service) unseal(cmd *mdm.Command) (*mdm.Command, error) {
	if cmd == nil {
		return nil, nil
	}
	sealed, ok := mdm.SealedPart(cmd.Raw)
	if !ok {
		return cmd, nil
	}
	raw, err := s.sealer.OpenFor(sealed, commandAD(cmd.UUID))
	if err != nil {
		return nil, fmt.Errorf("open sealed command %s: %w", cmd.UUID, err)
	}
	out := *cmd
	out.Raw = raw
	return &out, nil
}
