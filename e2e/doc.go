// Package e2e holds end-to-end tests that stand where a user stands: a Go
// module of their own outside this repository (a replace directive points
// at the checkout), the CLI built as `go install` builds it, and programs
// built in that module, all run as separate processes against Azurite and
// the platform doubles (internal/azuredouble, internal/hostdouble).
package e2e
