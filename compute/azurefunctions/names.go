package azurefunctions

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// Names are the Azure resource names of one runtime. They are stable per
// storage account, runtime name and lithops-go version, and respect Azure's
// limits: app and plan names 2–60 characters of letters, digits and hyphens;
// queue names 3–63 lowercase letters, digits and single hyphens.
type Names struct {
	App   string // function app (site)
	Plan  string // Flex Consumption plan
	Queue string // trigger queue
}

var nameJunk = regexp.MustCompile(`[^a-z0-9]+`)

// RuntimeNames derives the names of runtime on the storage account.
func RuntimeNames(storageAccount, runtime, version string) Names {
	sum := sha256.Sum256([]byte(storageAccount + "\x00" + runtime + "\x00" + version))
	h := hex.EncodeToString(sum[:])[:10]
	slug := strings.Trim(nameJunk.ReplaceAllString(strings.ToLower(runtime), "-"), "-")
	if slug == "" {
		slug = "rt"
	}
	if len(slug) > 30 {
		slug = strings.TrimRight(slug[:30], "-")
	}
	base := "lithops-" + slug + "-" + h // ≤ 8+30+1+10 = 49
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
