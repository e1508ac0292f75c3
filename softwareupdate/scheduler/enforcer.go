package scheduler

import (
	"context"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
)

// Enforcer turns a device's phase into commands for one enforcement path
// (the legacy ScheduleOSUpdate family, or declarative management). The
// scheduler calls it with the device's state locked and commits the state
// it leaves together with the commands it returns, atomically, so a step
// recorded in the state is never sent twice.
type Enforcer interface {
	// Step returns what to send now for a device in in.Decision's phase and
	// records it in st's step fields (Step, StepAt, StepCommand, Awaiting,
	// NextCheck, Attempts, Failure...). It is called for every phase,
	// including compliant (to stop) and failed.
	Step(ctx context.Context, st *State, in Input) (Action, error)
	// HandleResult folds a device's report on a command into st and returns
	// history entries worth keeping. Reports for commands it did not send
	// (st.StepCommand) may still carry useful facts.
	HandleResult(ctx context.Context, st *State, res Result, now time.Time) ([]Transition, error)
}

// ResultTypes is implemented by enforcers that want reports on request
// types (the scheduler registers them with the MDM service).
type ResultTypes interface {
	RequestTypes() []string
}

// Input is what an enforcer decides from.
type Input struct {
	Target   softwareupdate.Target
	Decision softwareupdate.Decision
	Now      time.Time
	// Policy is the device's group policy (read-only).
	Policy *softwareupdate.Policy
}

// Action is an enforcer's answer: commands to queue for the device and
// history entries (the steps sent, with their reasons).
type Action struct {
	Commands []*mdm.Command
	Events   []Transition
}

// Result is a device's report on a command.
type Result struct {
	RequestType string
	CommandUUID string
	Status      mdm.Status
	ErrorChain  []mdm.ErrorChainItem
	Raw         []byte
}

// Retirer is implemented by enforcers that leave something on the device
// that must go when the device moves to another path (the declarative
// path's enforcement declaration: a Mac would ignore legacy update commands
// while it is active).
type Retirer interface {
	Retire(ctx context.Context, st *State, now time.Time) ([]Transition, error)
}
