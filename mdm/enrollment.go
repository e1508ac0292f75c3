package mdm

import (
	"errors"
	"strings"
)

// Enrollment holds the identity keys common to every device message. The
// device channel carries UDID (device enrollments) or EnrollmentID (User
// Enrollment); the user channel adds UserID and friends.
type Enrollment struct {
	UDID             string `plist:",omitempty"`
	EnrollmentID     string `plist:",omitempty"`
	UserID           string `plist:",omitempty"`
	UserShortName    string `plist:",omitempty"`
	UserLongName     string `plist:",omitempty"`
	EnrollmentUserID string `plist:",omitempty"`
}

// ErrNoIdentity is returned for a message that names no device.
var ErrNoIdentity = errors.New("message has neither UDID nor EnrollmentID")

// maxIDLen bounds identifiers taken from devices; real ones are UUIDs.
const maxIDLen = 128

// DeviceID is the device channel's identifier: the UDID, or the EnrollmentID
// for User Enrollment.
func (e Enrollment) DeviceID() (string, error) {
	id := e.UDID
	if id == "" {
		id = e.EnrollmentID
	}
	if id == "" {
		return "", ErrNoIdentity
	}
	if len(id) > maxIDLen || strings.ContainsAny(id, "\x00/:") {
		return "", errors.New("device identifier has an invalid form")
	}
	return id, nil
}

// UserChannel reports whether the message came over the user channel.
func (e Enrollment) UserChannel() bool {
	return e.UserID != "" || e.EnrollmentUserID != ""
}

// ID is the enrollment this message belongs to: the device ID for the device
// channel, "<device>:<user>" for the user channel.
func (e Enrollment) ID() (string, error) {
	dev, err := e.DeviceID()
	if err != nil {
		return "", err
	}
	if !e.UserChannel() {
		return dev, nil
	}
	user := e.UserID
	if user == "" {
		user = e.EnrollmentUserID
	}
	if len(user) > maxIDLen || strings.ContainsAny(user, "\x00/:") {
		return "", errors.New("user identifier has an invalid form")
	}
	return dev + ":" + user, nil
}
