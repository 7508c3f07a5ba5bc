// Function keys: read once the Functions host has started on an app.

package armdeploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Backoff between host key requests while the Functions host starts.
const (
	keyBackoffFirst = time.Second
	keyBackoffMax   = 15 * time.Second
)

// FunctionKey returns a host-level function key of the app, for calling
// its HTTP-triggered functions (authLevel function) with the
// x-functions-key header: the key named "default" when present, else the
// first by name. The master key is never returned. Keys exist only once
// the Functions host has started on the app: right after a deploy the
// service answers 400, 404, 409, 429 or 5xx, or no function key, and
// FunctionKey asks again with exponential backoff (1 s doubling to 15 s)
// for up to the key wait (WithKeyWait, default 5 minutes). Other 4xx
// answers (401, 403, …) fail at once.
func (d *Deployer) FunctionKey(ctx context.Context, resourceGroup, app string) (string, error) {
	if err := checkResourceGroup(resourceGroup); err != nil {
		return "", err
	}
	if app == "" {
		return "", fmt.Errorf("%w: app name is not set", ErrInvalidSpec)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, d.keyWait)
	defer cancel()
	wait := keyBackoffFirst
	// answer is the last failure that came from the service: when the wait
	// runs out mid-request, that says more than the deadline does.
	var answer error
	for attempt := 1; ; attempt++ {
		key, err := d.functionKeyOnce(ctx, resourceGroup, app)
		if err == nil || parent.Err() != nil {
			return key, err
		}
		if ctx.Err() == nil || answer == nil {
			if !keyRetryable(err) {
				return key, err
			}
			if ctx.Err() == nil {
				answer = err
			}
		}
		if ctx.Err() == nil {
			d.log.Debug("host keys not available yet, asking again", "app", app, "attempt", attempt, "in", wait, "err", err)
		}
		if ctx.Err() != nil || d.sleep(ctx, wait) != nil {
			if perr := parent.Err(); perr != nil {
				return "", fmt.Errorf("list host keys of app %s in resource group %s: %w", app, resourceGroup, perr)
			}
			return "", fmt.Errorf("list host keys of app %s in resource group %s: the Functions host gave no function key within %s (%d attempts): %w",
				app, resourceGroup, d.keyWait, attempt, cmp.Or(answer, err))
		}
		wait = min(2*wait, keyBackoffMax)
	}
}

// errNoFunctionKey: the host answered with keys but no function key yet.
var errNoFunctionKey = errors.New("no function key yet (has the Functions host started?)")

func (d *Deployer) functionKeyOnce(ctx context.Context, resourceGroup, app string) (string, error) {
	resp, err := d.sites.ListHostKeys(ctx, resourceGroup, app, nil)
	if err != nil {
		return "", fmt.Errorf("list host keys of app %s in resource group %s: %w", app, resourceGroup, err)
	}
	if k := resp.FunctionKeys["default"]; k != nil && *k != "" {
		return *k, nil
	}
	for _, name := range slices.Sorted(maps.Keys(resp.FunctionKeys)) {
		if k := resp.FunctionKeys[name]; k != nil && *k != "" {
			return *k, nil
		}
	}
	return "", fmt.Errorf("list host keys of app %s in resource group %s: %w", app, resourceGroup, errNoFunctionKey)
}

// keyRetryable reports whether a listkeys failure may go away once the
// Functions host is up.
func keyRetryable(err error) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return true // no function key yet, or the request did not get through
	}
	switch c := re.StatusCode; {
	case c == http.StatusBadRequest, c == http.StatusNotFound, c == http.StatusConflict, c == http.StatusTooManyRequests:
		return true
	case c >= 500:
		return true
	}
	return false
}
