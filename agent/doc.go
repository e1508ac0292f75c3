// Package agent is the platform-independent core of sundial-agent, the
// companion that runs in the user's session on each managed Mac.
//
// The core has three layers:
//
//   - [Machine] is a pure, clock-driven state machine. Given the [Plan] the
//     server sent, the persisted user [State] and the current instant, it
//     says what the user should see now ([Decision]), which events to report
//     and when it wants to be woken next. It starts no goroutines and never
//     reads the clock.
//   - [FileStore] persists the user's state (snoozes, a closed countdown
//     window, a requested install) in a small JSON file, so a restart of the
//     agent changes nothing the user decided.
//   - [Runner] drives the machine: it polls a [PlanSource], shows prompts
//     through a [Presenter], feeds the user's answers back into the machine
//     and delivers events to a [Reporter]. Its loop is Run around a testable
//     Step, with an injected [Clock].
//
// Presenters live in sub-packages: agent/terminal for Linux, development and
// demos, and agent/macos built on osascript. agent/launchd renders the
// LaunchAgent property list that starts the agent at login.
//
// The user-facing timeline, with D the device's deadline:
//
//	before D-5d        nothing
//	D-5d .. D          menu status with a red dot; reminder banners
//	                   (Learn More, Remind in 1 hour, Remind Tomorrow);
//	                   Update Info with Start Now
//	D .. D+30m         countdown window; once closed, a "restart soon"
//	                   banner every 5 minutes with Reopen Timer
//	D+30m              one forced-install event; install progress
//
// Compliant and unmanaged Macs see nothing.
package agent
