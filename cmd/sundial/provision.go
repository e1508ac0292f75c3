package main

import "github.com/sundial-mdm/sundial/mdm"

// sealFunc adapts a function to agentapi.CommandSealer: the MDM service
// that seals is built after the provisioner, one of its check-in hooks.
type sealFunc func(cmd *mdm.Command) (*mdm.Command, error)

func (f sealFunc) SealCommand(cmd *mdm.Command) (*mdm.Command, error) { return f(cmd) }
