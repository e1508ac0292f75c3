package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Exceptions lists every exception.
func (c *Client) Exceptions(ctx context.Context) ([]scheduler.ExceptionRecord, error) {
	var out struct {
		Exceptions []scheduler.ExceptionRecord `json:"exceptions"`
	}
	return out.Exceptions, c.doJSON(ctx, http.MethodGet, "/api/v1/exceptions", nil, &out)
}

// ClearException revokes the exception of a device or group.
func (c *Client) ClearException(ctx context.Context, scope scheduler.ExceptionScope, id string) error {
	return c.doJSON(ctx, http.MethodDelete, "/api/v1/exceptions/"+url.PathEscape(string(scope))+"/"+url.PathEscape(id), nil, nil)
}
