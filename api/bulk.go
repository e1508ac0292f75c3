package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/mdm"
)

// MaxBulkEnqueue bounds the devices of one bulk enqueue: they are queued in
// one transaction and woken in one push batch. Callers page above it.
const MaxBulkEnqueue = 10000

// maxDeviceIDLen bounds one device ID in a bulk enqueue (a UDID is 36
// characters, a user channel's ID under 100).
const maxDeviceIDLen = 256

// maxBulkBody caps a bulk enqueue body: a command of up to maxAdminBody,
// escaped as a JSON string, and MaxBulkEnqueue quoted IDs.
const maxBulkBody = 2*maxAdminBody + MaxBulkEnqueue*(maxDeviceIDLen+3)

// GroupMembers lists the devices of a group in ID order after `after`, up to
// limit; storage.ErrNotFound for an unknown group.
type GroupMembers interface {
	GroupMembers(ctx context.Context, group, after string, limit int) ([]string, error)
}

// BulkEnqueueRequest queues one command for a list of devices, or for a
// page of a group's devices (those after After, up to MaxBulkEnqueue).
type BulkEnqueueRequest struct {
	Command   string   `json:"command"` // the command plist
	DeviceIDs []string `json:"device_ids,omitempty"`
	Group     string   `json:"group,omitempty"`
	After     string   `json:"after,omitempty"`
	// Raw queues a RequestType Sundial does not know, as given.
	Raw bool `json:"raw,omitempty"`
}

// BulkEnqueueResult answers a bulk enqueue. Next, for a group, is the
// After of the following page; empty when the group is done.
type BulkEnqueueResult struct {
	CommandUUID string   `json:"command_uuid"`
	RequestType string   `json:"request_type"`
	DeviceIDs   []string `json:"device_ids"`
	Next        string   `json:"next,omitempty"`
}

// WithGroupMembers lets a bulk enqueue name a group.
func (s *Server) WithGroupMembers(g GroupMembers) *Server {
	s.members = g
	return s
}

// bulkMax is the most devices one bulk enqueue queues: MaxBulkEnqueue, or
// less in tests.
func (s *Server) bulkMax() int {
	if s.bulkLimit > 0 {
		return s.bulkLimit
	}
	return MaxBulkEnqueue
}

func (s *Server) registerBulk(v1 *mux.Router) {
	v1.Handle("/commands", s.handle(s.bulkEnqueue)).Methods(http.MethodPost)
}

// bulkEnqueue queues one command for up to MaxBulkEnqueue devices in one
// store call: all of them or, on any error (an unknown device, the command
// already queued for one), none.
func (s *Server) bulkEnqueue(r *http.Request) (any, int, error) {
	var req BulkEnqueueRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBulkBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: fmt.Sprintf("decode body: %v", err)}
	}
	if len(req.Command) > maxAdminBody {
		return nil, 0, &Error{Code: CodeInvalid, Message: fmt.Sprintf("command is larger than %d bytes", maxAdminBody)}
	}
	cmd, err := mdm.DecodeCommand([]byte(req.Command))
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	if err := CheckCommand(cmd, req.Raw); err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	ids, next, err := s.bulkTargets(r.Context(), req)
	if err != nil {
		return nil, 0, err
	}
	out := BulkEnqueueResult{CommandUUID: cmd.UUID, RequestType: cmd.RequestType, DeviceIDs: ids, Next: next}
	if len(ids) == 0 { // an empty group
		out.DeviceIDs = []string{}
		return out, http.StatusOK, nil
	}
	if err := s.enq.Enqueue(r.Context(), ids, cmd); err != nil {
		return nil, 0, err
	}
	s.log.Info("command enqueued", "command_uuid", cmd.UUID, "request_type", cmd.RequestType,
		"devices", len(ids), "group", req.Group, "actor", actor(r))
	target := req.Group
	if target == "" {
		target = fmt.Sprintf("%d devices", len(ids))
	}
	s.audit(r, "command.enqueue", target, nil, map[string]any{"command_uuid": cmd.UUID, "request_type": cmd.RequestType, "devices": len(ids), "group": req.Group})
	return out, http.StatusCreated, nil
}

// bulkTargets checks a bulk request's devices, or reads its page of the
// group's.
func (s *Server) bulkTargets(ctx context.Context, req BulkEnqueueRequest) (ids []string, next string, err error) {
	switch {
	case (len(req.DeviceIDs) == 0) == (req.Group == ""):
		return nil, "", &Error{Code: CodeInvalid, Message: "give device_ids or group"}
	case req.Group == "" && req.After != "":
		return nil, "", &Error{Code: CodeInvalid, Message: "after goes with group"}
	case req.Group != "":
		if s.members == nil {
			return nil, "", &Error{Code: CodeInvalid, Message: "groups need the Managed OS engine"}
		}
		ids, err := s.members.GroupMembers(ctx, req.Group, req.After, s.bulkMax()+1)
		if err != nil {
			return nil, "", err
		}
		if len(ids) > s.bulkMax() {
			ids = ids[:s.bulkMax()]
			next = ids[len(ids)-1]
		}
		return ids, next, nil
	}
	if len(req.DeviceIDs) > s.bulkMax() {
		return nil, "", &Error{Code: CodeInvalid, Message: fmt.Sprintf("%d device IDs: at most %d a request", len(req.DeviceIDs), s.bulkMax())}
	}
	seen := make(map[string]struct{}, len(req.DeviceIDs))
	for _, id := range req.DeviceIDs {
		if id == "" || len(id) > maxDeviceIDLen {
			return nil, "", &Error{Code: CodeInvalid, Message: fmt.Sprintf("device ID %q: want 1 to %d bytes", id, maxDeviceIDLen)}
		}
		if _, dup := seen[id]; dup {
			return nil, "", &Error{Code: CodeInvalid, Message: fmt.Sprintf("device ID %s is listed twice", id)}
		}
		seen[id] = struct{}{}
	}
	return req.DeviceIDs, "", nil
}
