package naming

import (
	"regexp"
	"strings"
	"testing"

	"github.com/lithops-go/lithops/config"
)

var (
	appName   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,58}[a-z0-9]$`)
	queueName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)
)

// Names respect Azure's limits whatever the runtime or executor is called,
// and differ by account, runtime, memory and version.
func TestNamesWithinAzureLimits(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range []string{"lithops-default", "My_Runtime.v2", strings.Repeat("x", 80), "---", "ÄÖÜ"} {
		for _, mb := range MemoryTiers {
			for _, acct := range []string{"acct", "other"} {
				n := Runtime(acct, rt, mb, "1.0.0")
				if !appName.MatchString(n.App) || !appName.MatchString(n.Plan) || !queueName.MatchString(n.Queue) || !queueName.MatchString(PoisonQueue(n.Queue)) {
					t.Errorf("%q at %d MB on %s: %+v", rt, mb, acct, n)
				}
				if seen[n.App] {
					t.Errorf("%q at %d MB on %s: app name %s taken", rt, mb, acct, n.App)
				}
				seen[n.App] = true
			}
		}
	}
	if a, b := Runtime("acct", "rt", 512, "1.0.0"), Runtime("acct", "rt", 512, "1.0.1"); a == b {
		t.Errorf("versions share names %+v", a)
	}
	for _, id := range []string{"abc", "E-0123456789abcdef", strings.Repeat("Z", 90) + "--"} {
		if q := ResultQueue(id); !queueName.MatchString(q) {
			t.Errorf("ResultQueue(%q) = %q", id, q)
		}
	}
}

func TestAccount(t *testing.T) {
	for _, c := range []struct {
		cfg  config.AzureStorage
		want string
	}{
		{config.AzureStorage{StorageAccountName: "named", ConnectionString: "AccountName=conn"}, "named"},
		{config.AzureStorage{ConnectionString: "DefaultEndpointsProtocol=https; AccountName = conn ;AccountKey=a2V5"}, "conn"},
		{config.AzureStorage{ConnectionString: "UseDevelopmentStorage=true"}, ""},
	} {
		if got := Account(c.cfg); got != c.want {
			t.Errorf("Account(%+v) = %q, want %q", c.cfg, got, c.want)
		}
	}
}

func TestNextTier(t *testing.T) {
	for _, c := range []struct{ mb, next int }{{0, 512}, {512, 2048}, {2048, 4096}, {4096, 0}} {
		if got, ok := NextTier(c.mb); got != c.next || ok != (c.next != 0) {
			t.Errorf("NextTier(%d) = %d, %v", c.mb, got, ok)
		}
	}
}
