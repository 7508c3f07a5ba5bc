package armdeploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Kudu deployment status codes (GET /api/deployments/<id>): Kudu's
// DeployStatus, Pending 0, Building 1, Deploying 2, Failed 3, Success 4,
// Conflict 5, PartialSuccess 6, and -1 for cancelled.
const (
	statusCancelled = -1
	statusFailed    = 3
	statusSuccess   = 4
	statusConflict  = 5 // superseded by another deployment: treated as cancelled
	statusPartial   = 6
)

// Errors wrapped by *DeploymentError and by the deploy timeout, for
// errors.Is.
var (
	// ErrDeploymentFailed: the service reports the deployment failed or only
	// partly succeeded.
	ErrDeploymentFailed = errors.New("deployment failed")
	// ErrDeploymentCancelled: the service reports the deployment cancelled or
	// superseded.
	ErrDeploymentCancelled = errors.New("deployment cancelled")
	// ErrDeploymentTimeout: the deployment did not complete within the
	// deploy timeout.
	ErrDeploymentTimeout = errors.New("deployment timed out")
)

// DeploymentError is a OneDeploy deployment the service reports as failed,
// cancelled or partial, with the service's own message.
type DeploymentError struct {
	App        string // function app
	ID         string // deployment id
	Status     int    // Kudu status: 3 failed, -1/5 cancelled, 6 partial
	StatusText string // the service's status_text
	Log        []string
	LogURL     string
}

// Error describes the deployment, its status, the service's message and the
// last lines of its log.
func (e *DeploymentError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deploy package to app %s: deployment %s ", e.App, e.ID)
	switch e.Status {
	case statusCancelled, statusConflict:
		b.WriteString("cancelled")
	case statusPartial:
		b.WriteString("partially succeeded")
	default:
		b.WriteString("failed")
	}
	fmt.Fprintf(&b, " (status %d)", e.Status)
	if e.StatusText != "" {
		b.WriteString(": " + e.StatusText)
	}
	if len(e.Log) > 0 {
		b.WriteString("; log: " + strings.Join(e.Log, " | "))
	}
	if e.LogURL != "" {
		b.WriteString("; details: " + e.LogURL)
	}
	return b.String()
}

// Unwrap returns ErrDeploymentCancelled or ErrDeploymentFailed.
func (e *DeploymentError) Unwrap() error {
	if e.Status == statusCancelled || e.Status == statusConflict {
		return ErrDeploymentCancelled
	}
	return ErrDeploymentFailed
}

// deployResult is the part of Kudu's DeployResult this package reads.
type deployResult struct {
	ID         string `json:"id"`
	Status     *int   `json:"status"`
	StatusText string `json:"status_text"`
	Message    string `json:"message"`
	Complete   *bool  `json:"complete"`
	LogURL     string `json:"log_url"`
}

type logEntry struct {
	Message string `json:"message"`
	Type    int    `json:"type"`
}

const maxBody = 1 << 20

const (
	// statusNotFoundGrace is how many 404 answers the status URL may give
	// before the record first appears (azd waits for three too); after
	// that, or once a record was seen, a 404 means the record is gone.
	statusNotFoundGrace = 3
	// maxRetryAfter caps the Retry-After of status answers.
	maxRetryAfter = time.Minute
)

// errStatusGone: the deployment record vanished (404) before it reported
// an outcome. Flex Consumption recycles deployment records, so this is not
// a failure: the outcome is unknown and the caller checks the app.
var errStatusGone = errors.New("deployment record gone before the outcome was reported")

var deploymentIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// publish uploads zip with OneDeploy and waits for the deployment, bounded
// by ctx and the deploy timeout.
func (d *Deployer) publish(ctx context.Context, app App, zip []byte) error {
	base := d.scmEndpoint
	if base == nil {
		base = &url.URL{Scheme: "https", Host: app.SCMHostName}
	}
	parent := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, d.deployTimeout, ErrDeploymentTimeout)
	defer cancel()

	auth := d.newSCMAuth(app.Name)
	publishURL := base.JoinPath("api", "publish")
	publishURL.RawQuery = "RemoteBuild=false"
	d.log.Info("uploading package with OneDeploy", "app", app.Name, "bytes", len(zip), "scm", base.Host)

	var resp *http.Response
	var lastErr error
	for attempt := 1; ; attempt++ {
		tok, err := auth.token(ctx)
		if err != nil {
			return fmt.Errorf("deploy package to app %s: %w", app.Name, err)
		}
		resp, lastErr = d.postZip(ctx, publishURL.String(), tok, zip)
		retry := false
		switch {
		case lastErr != nil:
			retry = ctx.Err() == nil // connection refused, DNS not yet propagated, …
		case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted:
		case resp.StatusCode == http.StatusUnauthorized && auth.fallBack():
			readSnippet(resp)
			attempt--
			continue
		case resp.StatusCode == http.StatusConflict, resp.StatusCode == http.StatusTooManyRequests,
			resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
			lastErr = fmt.Errorf("HTTP %s: %s", resp.Status, readSnippet(resp))
			retry = true
		default:
			msg := readSnippet(resp)
			hint := ""
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				hint = " (the credential needs a role such as Website Contributor on the app, and a token for scope " + auth.scope + ")"
			}
			return fmt.Errorf("deploy package to app %s: POST %s: HTTP %s: %s%s", app.Name, publishURL.Redacted(), resp.Status, msg, hint)
		}
		if !retry {
			break
		}
		if attempt >= 5 {
			return fmt.Errorf("deploy package to app %s: POST %s: giving up after %d attempts: %w", app.Name, publishURL.Redacted(), attempt, lastErr)
		}
		wait := backoff(attempt, d.pollInterval)
		d.log.Warn("OneDeploy upload failed, retrying", "app", app.Name, "attempt", attempt, "in", wait, "err", lastErr)
		if err := d.sleep(ctx, wait); err != nil {
			return d.deadlineError(parent, ctx, app, "", -99, lastErr)
		}
	}
	if lastErr != nil {
		return d.deadlineError(parent, ctx, app, "", -99, fmt.Errorf("POST %s: %w", publishURL.Redacted(), lastErr))
	}

	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	statusURL := d.statusURL(base, body, resp.Header.Get("Location"))
	d.log.Info("package accepted, waiting for the deployment", "app", app.Name, "status_url", statusURL.Redacted())
	return d.waitDeployment(parent, ctx, auth, app, base, statusURL)
}

// statusURL picks where to poll: the deployment id in the 202 body, else
// the Location header (same host only), else /api/deployments/latest.
func (d *Deployer) statusURL(base *url.URL, body []byte, location string) *url.URL {
	id := ""
	text := strings.TrimSpace(string(body))
	var s string
	var r deployResult
	switch {
	case json.Unmarshal([]byte(text), &s) == nil:
		id = s
	case json.Unmarshal([]byte(text), &r) == nil:
		id = r.ID
	default:
		id = text
	}
	if deploymentIDRE.MatchString(id) {
		return base.JoinPath("api", "deployments", id)
	}
	if location != "" {
		if u, err := base.Parse(location); err == nil && sameHost(u, base) {
			return u
		}
	}
	return base.JoinPath("api", "deployments", "latest")
}

func (d *Deployer) waitDeployment(parent, ctx context.Context, auth *scmAuth, app App, base, statusURL *url.URL) error {
	lastStatus, lastText := -99, ""
	notFound := 0
	for {
		r, code, retryAfter, err := d.getStatus(ctx, auth, statusURL)
		switch {
		case err != nil && ctx.Err() != nil:
			return d.deadlineError(parent, ctx, app, statusURL.String(), lastStatus, err)
		case err != nil:
			d.log.Debug("deployment status poll failed", "app", app.Name, "err", err)
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			return fmt.Errorf("deploy package to app %s: GET %s: HTTP %d: not authorized to read the deployment status", app.Name, statusURL.Redacted(), code)
		case code == http.StatusNotFound && (lastStatus != -99 || notFound >= statusNotFoundGrace):
			d.log.Info("deployment record gone before it reported the outcome (Flex Consumption recycles deployment records); the app must be checked",
				"app", app.Name, "status_url", statusURL.Redacted(), "last_status", lastStatus)
			return errStatusGone
		case code == http.StatusNotFound:
			notFound++
			d.log.Debug("deployment record not there yet", "app", app.Name, "answers", notFound)
		case code != http.StatusOK && code != http.StatusAccepted:
			d.log.Debug("deployment status not available yet", "app", app.Name, "http", code)
		case r.Status != nil:
			st := *r.Status
			if st != lastStatus || r.StatusText != lastText {
				d.log.Info("deployment status", "app", app.Name, "id", r.ID, "status", st, "text", r.StatusText)
				lastStatus, lastText = st, r.StatusText
			}
			switch {
			case st == statusSuccess && (r.Complete == nil || *r.Complete):
				return nil
			case st == statusFailed || st == statusCancelled || st == statusConflict || st == statusPartial:
				de := &DeploymentError{App: app.Name, ID: r.ID, Status: st, StatusText: firstNonEmpty(r.StatusText, r.Message), LogURL: r.LogURL}
				if de.ID == "" {
					de.ID = path.Base(statusURL.Path)
				}
				de.Log = d.fetchLog(ctx, auth, base, r.LogURL)
				return de
			}
		}
		wait := d.pollInterval
		if retryAfter > 0 {
			wait = min(retryAfter, maxRetryAfter)
		}
		if err := d.sleep(ctx, wait); err != nil {
			return d.deadlineError(parent, ctx, app, statusURL.String(), lastStatus, err)
		}
	}
}

// deadlineError reports why waiting stopped: the caller's context, or the
// deploy timeout.
func (d *Deployer) deadlineError(parent, ctx context.Context, app App, statusURL string, lastStatus int, cause error) error {
	if err := parent.Err(); err != nil {
		return fmt.Errorf("deploy package to app %s: %w", app.Name, err)
	}
	if errors.Is(context.Cause(ctx), ErrDeploymentTimeout) {
		last := "no status yet"
		if lastStatus != -99 {
			last = "last status " + strconv.Itoa(lastStatus) + " " + statusName(lastStatus)
		}
		where := ""
		if statusURL != "" {
			where = ", see " + statusURL
		}
		return fmt.Errorf("deploy package to app %s: %w after %s (%s%s): %w", app.Name, ErrDeploymentTimeout, d.deployTimeout, last, where, context.DeadlineExceeded)
	}
	return fmt.Errorf("deploy package to app %s: %w", app.Name, cause)
}

// scmAuth picks the token scope for the SCM requests of one publish: the
// deployer's scope, then, after a 401, the fallback scope for the rest of
// the publish. It is used by one goroutine.
type scmAuth struct {
	d        *Deployer
	app      string
	scope    string
	fallback string // "" once used, or when there is none
}

func (d *Deployer) newSCMAuth(app string) *scmAuth {
	return &scmAuth{d: d, app: app, scope: d.scmScope, fallback: d.scmFallback}
}

func (a *scmAuth) token(ctx context.Context) (string, error) {
	tok, err := a.d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{a.scope}})
	if err != nil {
		return "", fmt.Errorf("get token for scope %s: %w", a.scope, err)
	}
	return tok.Token, nil
}

// fallBack switches to the fallback scope after the SCM endpoint answered
// 401; it reports false when the fallback was used already or there is
// none.
func (a *scmAuth) fallBack() bool {
	if a.fallback == "" || a.fallback == a.scope {
		return false
	}
	a.d.log.Info("SCM endpoint refused the token, retrying with another audience", "app", a.app, "refused", a.scope, "scope", a.fallback)
	a.scope, a.fallback = a.fallback, ""
	return true
}

func (d *Deployer) postZip(ctx context.Context, u, tok string, zip []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(zip))
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(zip))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(zip)), nil }
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("User-Agent", "lithops-go-armdeploy")
	return d.httpClient.Do(req)
}

// getJSON GETs u from the SCM endpoint and decodes a 200 or 202 answer
// into v; after a 401 it asks once more with a token of the fallback scope.
// It returns the HTTP status and the answer's Retry-After (0 if none).
func (d *Deployer) getJSON(ctx context.Context, auth *scmAuth, u *url.URL, v any) (int, time.Duration, error) {
	for {
		code, retryAfter, err := d.getJSONOnce(ctx, auth, u, v)
		if code == http.StatusUnauthorized && auth.fallBack() {
			continue
		}
		return code, retryAfter, err
	}
}

func (d *Deployer) getJSONOnce(ctx context.Context, auth *scmAuth, u *url.URL, v any) (int, time.Duration, error) {
	tok, err := auth.token(ctx)
	if err != nil {
		return 0, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "lithops-go-armdeploy")
	resp, err := d.httpClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return resp.StatusCode, retryAfter, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(v); err != nil {
		return resp.StatusCode, retryAfter, fmt.Errorf("GET %s: decode: %w", u.Redacted(), err)
	}
	return resp.StatusCode, retryAfter, nil
}

// parseRetryAfter reads a Retry-After header in seconds; 0 when absent or
// not a positive number of seconds.
func parseRetryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 1<<20)) * time.Second
}

func (d *Deployer) getStatus(ctx context.Context, auth *scmAuth, u *url.URL) (deployResult, int, time.Duration, error) {
	var r deployResult
	code, retryAfter, err := d.getJSON(ctx, auth, u, &r)
	return r, code, retryAfter, err
}

// fetchLog returns the last messages of the deployment log, best effort,
// only from the SCM host (the bearer token goes nowhere else).
func (d *Deployer) fetchLog(ctx context.Context, auth *scmAuth, base *url.URL, logURL string) []string {
	if logURL == "" {
		return nil
	}
	u, err := base.Parse(logURL)
	if err != nil || !sameHost(u, base) {
		return nil
	}
	var entries []logEntry
	if code, _, err := d.getJSON(ctx, auth, u, &entries); err != nil || code != http.StatusOK {
		return nil
	}
	var msgs []string
	for _, e := range entries {
		if m := strings.TrimSpace(e.Message); m != "" {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) > 5 {
		msgs = msgs[len(msgs)-5:]
	}
	return msgs
}

func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

func readSnippet(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty body)"
	}
	return s
}

func backoff(attempt int, base time.Duration) time.Duration {
	d := base << (attempt - 1)
	d = min(d, time.Minute)
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func statusName(st int) string {
	switch st {
	case 0:
		return "pending"
	case 1:
		return "building"
	case 2:
		return "deploying"
	case statusFailed:
		return "failed"
	case statusSuccess:
		return "success"
	default:
		return "unknown"
	}
}
