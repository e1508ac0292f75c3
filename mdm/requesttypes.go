package mdm

import "regexp"

// knownRequestTypes are the RequestTypes Apple documents for MDM commands
// (apple/device-management, mdm/commands/*.yaml). A command with another
// RequestType is queued only when the admin asks for it explicitly: a typo
// would otherwise sit in a Mac's queue until the Mac answers it with an
// error.
var knownRequestTypes = map[string]bool{}

func init() {
	for _, t := range []string{
		"AccountConfiguration", "ActiveNSExtensions", "NSExtensionMappings",
		"InstallEnterpriseApplication", "InstallApplication", "InstalledApplicationList",
		"InviteToProgram", "ManagedApplicationList", "ApplyRedemptionCode", "RemoveApplication",
		"ValidateApplications", "CertificateList", "DeclarativeManagement",
		"ActivationLockBypassCode", "ClearActivationLockBypassCode", "DeviceConfigured",
		"EraseDevice", "RefreshCellularPlans", "DeviceLock", "DisableLostMode", "EnableLostMode",
		"DeviceLocation", "PlayLostModeSound", "RestartDevice", "ClearRestrictionsPassword",
		"Restrictions", "ShutDownDevice", "ContentCachingInformation", "DeviceInformation",
		"SecurityInfo", "LOMDeviceRequest", "LOMSetupRequest", "ManagedApplicationAttributes",
		"ManagedApplicationConfiguration", "ManagedApplicationFeedback", "InstallMedia",
		"ManagedMediaList", "RemoveMedia", "RequestMirroring", "StopMirroring", "ClearPasscode",
		"SetFirmwarePassword", "VerifyFirmwarePassword", "SetRecoveryLock", "VerifyRecoveryLock",
		"InstallProfile", "ProfileList", "InstallProvisioningProfile", "ProvisioningProfileList",
		"RemoveProvisioningProfile", "RemoveProfile", "DisableRemoteDesktop", "EnableRemoteDesktop",
		"RotateFileVaultKey", "SetAutoAdminPassword", "Settings", "AvailableOSUpdates",
		"ScheduleOSUpdateScan", "ScheduleOSUpdate", "OSUpdateStatus",
		"TriggerEnhancedLogCollection", "CancelEnhancedLogCollection",
		"DeleteUser", "UserList", "LogOutUser", "UnlockUserAccount",
	} {
		knownRequestTypes[t] = true
	}
}

// KnownRequestType reports whether Apple documents RequestType t.
func KnownRequestType(t string) bool { return knownRequestTypes[t] }

var strictUUID = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// IsUUID reports whether s is a UUID in its 8-4-4-4-12 hex form, as every
// CommandUUID Sundial generates is.
func IsUUID(s string) bool { return strictUUID.MatchString(s) }
