package armdeploy

import "testing"

// A keyless runtime on a path-style endpoint (Azurite on an IP address)
// has a deployment container URL https://<ip>:<port>/<account>/<container>;
// on a host name the path is the container alone.
func TestContainerURLPathStyle(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://acct.blob.core.windows.net/app-package-x":       true,
		"https://127.0.0.1:10000/devstoreaccount1/app-package-x": true,
		"https://127.0.0.1:10000/devstoreaccount1":               false, // no container
		"https://acct.blob.core.windows.net/acct/app-package-x":  false,
		"https://127.0.0.1:10000/a/b/c":                          false,
		"http://127.0.0.1:10000/devstoreaccount1/app-package-x":  false,
	} {
		if err := checkContainerURL(raw); (err == nil) != ok {
			t.Errorf("checkContainerURL(%q) = %v, want ok %v", raw, err, ok)
		}
	}
}
