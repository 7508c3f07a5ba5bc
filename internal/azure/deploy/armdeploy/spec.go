package armdeploy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lithops-go/lithops/internal/azure/appsettings"
)

// Tags written on every plan and site this package creates.
const (
	TagType          = "type"            // always TagTypeRuntime
	TagTypeRuntime   = "lithops-runtime" // value of TagType
	TagVersion       = "lithops-version" // lithops-go version of the runtime host
	TagRuntime       = "lithops-runtime" // lithops runtime name
	TagMemory        = "lithops-memory"  // instance memory in MB
	TagApp           = "lithops-app"     // on the plan: the app it was created for
	tagValueMaxBytes = 256
)

// Flex Consumption limits.
const (
	DefaultMemoryMB     = 2048 // instance memory when Spec.MemoryMB is 0
	DefaultMaxInstances = 100  // maximum instance count when Spec.MaxInstances is 0
	MinMaxInstances     = 1    // lowest maximum instance count Flex accepts (40 during the preview)
	MaxMaxInstances     = 1000 // highest maximum instance count Flex accepts
	// RegionalMemoryQuotaMB is the default quota of instance memory per
	// subscription and region (e.g. 1000 instances of 512 MB); Deploy warns
	// when MaxInstances × MemoryMB exceeds it.
	RegionalMemoryQuotaMB = 512_000
)

// MemorySizes are the instance memory sizes (MB) Flex Consumption offers.
var MemorySizes = []int{512, 2048, 4096}

// ErrInvalidSpec is wrapped by every error that rejects a Spec or an
// argument before any request is sent.
var ErrInvalidSpec = errors.New("armdeploy: invalid deployment spec")

// Spec describes one lithops runtime as a Flex Consumption function app.
// It never holds ARM credentials: those belong to the Deployer.
type Spec struct {
	Name          string // function app (site) name, 2–60 letters, digits, hyphens; globally unique
	PlanName      string // Flex Consumption plan name, 1–60 letters, digits, hyphens
	Region        string // Azure region, e.g. "westeurope"
	ResourceGroup string // existing resource group of plan and site

	RuntimeName string // lithops runtime name (tag lithops-runtime)
	Version     string // lithops-go version of the runtime host (tag lithops-version)

	// MemoryMB is the instance memory: 512, 2048 or 4096 (0 means 2048).
	MemoryMB int
	// MaxInstances is the maximum instance count (0 means 100). Flex accepts
	// 1..1000: larger values are lowered to 1000, with a warning in the log;
	// App.MaxInstances reports the value used. Deploy also warns when
	// MaxInstances × MemoryMB exceeds RegionalMemoryQuotaMB.
	MaxInstances int
	// TimeoutSeconds, when positive, sets the function timeout through the
	// app setting AzureFunctionsJobHost__functionTimeout.
	TimeoutSeconds int

	// AppSettings become the app's settings (environment of the runtime
	// host). They must contain DEPLOYMENT_STORAGE_CONNECTION_STRING and the
	// host storage (AzureWebJobsStorage, or identity-based
	// AzureWebJobsStorage__* settings). Settings Flex does not support and
	// settings that look like ARM credentials are rejected.
	AppSettings map[string]string

	// DeploymentContainerURL is the blob container the platform keeps the
	// package in, https://<account>.blob.core.windows.net/<container>; it is
	// read with the connection string in DEPLOYMENT_STORAGE_CONNECTION_STRING
	// (or with Identity).
	// Each app needs a container of its own (see DeploymentContainerName):
	// apps sharing one overwrite each other's package.
	DeploymentContainerURL string

	// Identity, when set, makes the app keyless: the site gets this
	// user-assigned managed identity, the platform reads the deployment
	// container with it (authentication UserAssignedIdentity), and no
	// connection string is needed or kept: AppSettings must then hold
	// neither DEPLOYMENT_STORAGE_CONNECTION_STRING nor AzureWebJobsStorage
	// (identity-based AzureWebJobsStorage__* settings instead), and a
	// redeploy removes them from the live app. The identity needs the blob
	// and queue data roles on the account (Deployer.AssignRoles).
	Identity *ManagedIdentity

	// Tags are extra tags for plan and site. The lithops tags (type,
	// lithops-version, lithops-runtime, lithops-memory) always win.
	Tags map[string]string
}

var (
	siteNameRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])$`)
	planNameRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])?$`)
)

// flexRefuses reports whether Flex Consumption refuses the app setting
// name, and why.
func flexRefuses(name string) (string, bool) {
	if strings.Contains(name, ":") {
		return "is not supported on Flex Consumption (Linux app setting names cannot contain ':'; use '__')", true
	}
	for _, p := range appsettings.FlexUnsupported {
		if settingMatches(name, p) {
			return "is not supported on Flex Consumption (functionAppConfig or site properties replace it)", true
		}
	}
	return "", false
}

// credentialSettings are settings that would hand the deployer's identity
// to the workers; matched case-insensitively, '*' marks a substring.
var credentialSettings = []string{
	"*CLIENT_SECRET*",
	"*CLIENTSECRET*",
	"AZURE_PASSWORD",
	"AZURE_USERNAME",
	"AZURE_CLIENT_CERTIFICATE_PATH",
	"AZURE_CLIENT_CERTIFICATE_PASSWORD",
	"AZURE_FEDERATED_TOKEN_FILE",
}

func settingMatches(name, pattern string) bool {
	n, p := strings.ToUpper(name), strings.ToUpper(pattern)
	switch {
	case strings.HasPrefix(p, "*") && strings.HasSuffix(p, "*"):
		return strings.Contains(n, strings.Trim(p, "*"))
	case strings.HasSuffix(p, "*"):
		return strings.HasPrefix(n, strings.TrimSuffix(p, "*"))
	default:
		return n == p
	}
}

// normalized is a validated Spec with defaults applied.
type normalized struct {
	Spec
	clampedFrom int // MaxInstances asked for, when it was clamped; else 0
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, args...))
}

// validate checks s and applies defaults. It sends nothing.
func (s Spec) validate() (normalized, error) {
	n := normalized{Spec: s}
	if s.ResourceGroup == "" {
		return n, invalid("resource group is not set")
	}
	if err := checkResourceGroup(s.ResourceGroup); err != nil {
		return n, err
	}
	if s.Region == "" {
		return n, invalid("region is not set (app %q)", s.Name)
	}
	if !siteNameRE.MatchString(s.Name) {
		return n, invalid("app name %q: want 2–60 letters, digits or hyphens, not starting or ending with a hyphen", s.Name)
	}
	if !planNameRE.MatchString(s.PlanName) {
		return n, invalid("plan name %q of app %s: want 1–60 letters, digits or hyphens, not starting or ending with a hyphen", s.PlanName, s.Name)
	}
	if s.RuntimeName == "" {
		return n, invalid("runtime name of app %s is not set", s.Name)
	}
	if s.Version == "" {
		return n, invalid("lithops version of app %s is not set", s.Name)
	}
	if len(s.RuntimeName) > tagValueMaxBytes || len(s.Version) > tagValueMaxBytes {
		return n, invalid("runtime name or version of app %s longer than %d bytes (Azure tag limit)", s.Name, tagValueMaxBytes)
	}

	switch {
	case s.MemoryMB == 0:
		n.MemoryMB = DefaultMemoryMB
	case !slices.Contains(MemorySizes, s.MemoryMB):
		return n, invalid("memory %d MB of app %s: Flex Consumption offers %s MB", s.MemoryMB, s.Name, joinInts(MemorySizes))
	}

	switch {
	case s.MaxInstances < 0:
		return n, invalid("maximum instance count %d of app %s is negative", s.MaxInstances, s.Name)
	case s.MaxInstances == 0:
		n.MaxInstances = DefaultMaxInstances
	case s.MaxInstances < MinMaxInstances:
		n.MaxInstances, n.clampedFrom = MinMaxInstances, s.MaxInstances
	case s.MaxInstances > MaxMaxInstances:
		n.MaxInstances, n.clampedFrom = MaxMaxInstances, s.MaxInstances
	}

	if s.TimeoutSeconds < 0 {
		return n, invalid("timeout %d s of app %s is negative", s.TimeoutSeconds, s.Name)
	}

	if err := checkContainerURL(s.DeploymentContainerURL); err != nil {
		return n, fmt.Errorf("%w (app %s)", err, s.Name)
	}

	settings := maps.Clone(s.AppSettings)
	if settings == nil {
		settings = map[string]string{}
	}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		if k == "" {
			return n, invalid("app %s: empty app setting name", s.Name)
		}
		if why, bad := flexRefuses(k); bad {
			return n, invalid("app setting %s of app %s %s", k, s.Name, why)
		}
		for _, p := range credentialSettings {
			if settingMatches(k, p) {
				return n, invalid("app setting %s of app %s looks like an ARM credential: workers never receive the deployer's credentials", k, s.Name)
			}
		}
	}
	switch {
	case s.Identity != nil && (s.Identity.ResourceID == "" || s.Identity.ClientID == ""):
		return n, invalid("app %s: managed identity without resource id or client id", s.Name)
	case s.Identity != nil:
		for k := range settings {
			if keyedSetting(k) {
				return n, invalid("app %s is keyless (managed identity): app setting %s (a connection string) must not be set", s.Name, k)
			}
		}
	case settings[appsettings.DeploymentStorage] == "":
		return n, invalid("app %s: app setting %s (connection string of the deployment container's account) is not set", s.Name, appsettings.DeploymentStorage)
	}
	if !hasHostStorage(settings) {
		return n, invalid("app %s: app setting %s (or identity-based %s__*) is not set", s.Name, appsettings.HostStorage, appsettings.HostStorage)
	}
	if _, ok := settings[appsettings.FunctionTimeout]; !ok && s.TimeoutSeconds > 0 {
		settings[appsettings.FunctionTimeout] = timeSpan(time.Duration(s.TimeoutSeconds) * time.Second)
	}
	n.AppSettings = settings

	tags := maps.Clone(s.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[TagType] = TagTypeRuntime
	tags[TagVersion] = s.Version
	tags[TagRuntime] = s.RuntimeName
	tags[TagMemory] = strconv.Itoa(n.MemoryMB)
	n.Tags = tags
	return n, nil
}

func hasHostStorage(settings map[string]string) bool {
	if settings[appsettings.HostStorage] != "" {
		return true
	}
	for k, v := range settings {
		if v != "" && strings.HasPrefix(strings.ToLower(k), strings.ToLower(appsettings.IdentityPrefix)) {
			return true
		}
	}
	return false
}

func checkResourceGroup(rg string) error {
	if rg == "" {
		return invalid("resource group is not set")
	}
	if len(rg) > 90 || strings.ContainsAny(rg, "/\\?#%") || strings.HasSuffix(rg, ".") {
		return invalid("resource group %q: want at most 90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'", rg)
	}
	return nil
}

func checkContainerURL(raw string) error {
	if raw == "" {
		return invalid("deployment container URL is not set (want https://<account>.blob.core.windows.net/<container>)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("deployment container URL %q: %v", raw, err)
	}
	container := strings.Trim(u.Path, "/")
	if net.ParseIP(u.Hostname()) != nil {
		// Path-style addressing (an emulator such as Azurite on an IP
		// address): the path is <account>/<container>.
		_, container, _ = strings.Cut(container, "/")
	}
	if u.Scheme != "https" || u.Host == "" || container == "" || strings.Contains(container, "/") || u.RawQuery != "" || u.User != nil {
		return invalid("deployment container URL %q: want https://<account>.blob.core.windows.net/<container> without query or credentials", raw)
	}
	return nil
}

var containerJunk = regexp.MustCompile(`[^a-z0-9]+`)

// DeploymentContainerName returns the name of the blob container that holds
// the package of the function app appName. Flex Consumption keeps one
// released-package.zip per deployment container, so every app needs its
// own: "app-package-<app>-<hash>", like the az CLI's containers, where <app>
// is the lowercased app name (shortened when needed) and <hash> 8 hex digits
// of it. The result is a valid container name (3–63 lowercase letters,
// digits and single hyphens), the same for the same app (app names are
// case-insensitive) and different for different apps.
func DeploymentContainerName(appName string) string {
	const prefix = "app-package-"
	lower := strings.ToLower(appName)
	sum := sha256.Sum256([]byte(lower))
	h := hex.EncodeToString(sum[:4])
	slug := strings.Trim(containerJunk.ReplaceAllString(lower, "-"), "-")
	if n := 63 - len(prefix) - 1 - len(h); len(slug) > n {
		slug = strings.TrimRight(slug[:n], "-")
	}
	if slug == "" {
		return prefix + h
	}
	return prefix + slug + "-" + h
}

// timeSpan formats d as a .NET TimeSpan ("hh:mm:ss" or "d.hh:mm:ss"), the
// format of host.json's functionTimeout.
func timeSpan(d time.Duration) string {
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	hms := fmt.Sprintf("%02d:%02d:%02d", s/3600, s%3600/60, s%60)
	if days > 0 {
		return fmt.Sprintf("%d.%s", days, hms)
	}
	return hms
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ", ")
}
