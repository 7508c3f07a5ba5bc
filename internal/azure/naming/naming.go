// Package naming derives the Azure names of lithops resources: a runtime
// deployment's function app, plan and trigger queue, an executor's
// completion queue, a trigger queue's poison queue, the managed identity of
// keyless runtimes, and the storage account a configuration names. Names
// are deterministic, so the client, the CLI and the deployer find the same
// resources without storing them.
package naming

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/lithops-go/lithops/config"
)

// Names are the Azure resource names of one runtime deployment. They are
// stable per storage account, runtime name, memory size and lithops-go
// version, and respect Azure's limits: app and plan names 2–60 characters
// of letters, digits and hyphens; queue names 3–63 lowercase letters,
// digits and single hyphens.
type Names struct {
	App   string // function app (site)
	Plan  string // Flex Consumption plan
	Queue string // trigger queue
}

var nameJunk = regexp.MustCompile(`[^a-z0-9]+`)

// Key names one deployment of a runtime: the runtime at one instance
// memory size (Lithops keys runtimes by name and memory too).
func Key(runtime string, memoryMB int) string {
	return fmt.Sprintf("%s-%dmb", runtime, memoryMB)
}

// MemoryTiers are the instance memory sizes of Flex Consumption, in MB.
var MemoryTiers = []int{512, 2048, 4096}

// NextTier returns the next larger memory tier after mb.
func NextTier(mb int) (int, bool) {
	for _, t := range MemoryTiers {
		if t > mb {
			return t, true
		}
	}
	return 0, false
}

// Runtime derives the names of runtime at memoryMB on the storage account.
func Runtime(storageAccount, runtime string, memoryMB int, version string) Names {
	sum := sha256.Sum256([]byte(storageAccount + "\x00" + Key(runtime, memoryMB) + "\x00" + version))
	h := hex.EncodeToString(sum[:])[:10]
	slug := strings.Trim(nameJunk.ReplaceAllString(strings.ToLower(runtime), "-"), "-")
	if slug == "" {
		slug = "rt"
	}
	if len(slug) > 30 {
		slug = strings.TrimRight(slug[:30], "-")
	}
	base := fmt.Sprintf("lithops-%s-%d-%s", slug, memoryMB, h) // ≤ 8+30+1+4+1+10 = 54
	return Names{App: base, Plan: base + "-plan", Queue: base + "-in"}
}

// ResultQueue is the name of the per-executor queue that workers push
// completions to.
func ResultQueue(executorID string) string {
	slug := strings.Trim(nameJunk.ReplaceAllString(strings.ToLower(executorID), "-"), "-")
	if len(slug) > 40 {
		slug = slug[:40]
	}
	return "lithops-done-" + strings.TrimRight(slug, "-")
}

// PoisonQueue is where the platform moves a message of queue after its
// last failed delivery.
func PoisonQueue(queue string) string { return queue + "-poison" }

// Identity is the name of the user-assigned managed identity of the
// keyless runtimes that use the storage account: one per account.
func Identity(account string) string { return "lithops-" + account }

// Account is the storage account the config names (from the connection
// string when needed).
func Account(a config.AzureStorage) string {
	if a.StorageAccountName != "" {
		return a.StorageAccountName
	}
	for _, part := range strings.Split(a.ConnectionString, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && strings.TrimSpace(k) == "AccountName" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
