package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// notConfigured answers DeclarativeManagement check-ins for a server that
// manages no declarations: an empty, stable declaration set.
type notConfigured struct{}

// emptyToken is the declarations token of the empty set; it never changes, so
// a device that synced once does not sync again.
const emptyToken = "sundial-empty-declaration-set-v1"

func (notConfigured) Declarative(ctx context.Context, id, endpoint string, data []byte) ([]byte, error) {
	switch {
	case endpoint == "tokens":
		return json.Marshal(map[string]any{"SyncTokens": map[string]string{
			"DeclarationsToken": emptyToken,
			"Timestamp":         "2026-01-01T00:00:00Z",
		}})
	case endpoint == "declaration-items":
		empty := []any{}
		return json.Marshal(map[string]any{
			"Declarations": map[string]any{
				"Activations": empty, "Configurations": empty, "Assets": empty, "Management": empty,
			},
			"DeclarationsToken": emptyToken,
		})
	case endpoint == "status":
		return nil, nil
	case strings.HasPrefix(endpoint, "declaration/"):
		return nil, fmt.Errorf("%w: no declaration %s", ErrNotFound, endpoint)
	default:
		return nil, fmt.Errorf("%w: unknown declarative management endpoint", ErrNotFound)
	}
}
