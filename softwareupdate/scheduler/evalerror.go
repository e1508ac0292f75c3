package scheduler

import (
	"strings"
	"time"
)

// EvaluationRetry is how long after an error while evaluating a device
// (a storage error in its enforcer, a declaration that cannot be built) it
// is evaluated again. The error is recorded on that device only: the pass
// goes on with the others.
const EvaluationRetry = time.Hour

// maxFailureLen bounds a failure reason kept on a device.
const maxFailureLen = 512

const evaluationFailurePrefix = "evaluation error: "

// evaluationFailure is the failure reason recorded for an evaluation error.
func evaluationFailure(err error) string {
	return clip(evaluationFailurePrefix + err.Error())
}

func isEvaluationFailure(reason string) bool {
	return strings.HasPrefix(reason, evaluationFailurePrefix)
}

func clip(s string) string {
	if len(s) > maxFailureLen {
		return s[:maxFailureLen] + "..."
	}
	return s
}
