package azurefunctions

import (
	"context"

	"github.com/lithops-go/lithops/internal/azure/build"
)

// HostFunc is the name of the function through which a program that
// imports github.com/lithops-go/lithops/azure serves as the runtime host;
// a runtime's handler must contain it (the CLI checks executables for it).
const HostFunc = build.HostFunc

// Program implements compute.ProgramUploader.
func (b *Backend) Program(ctx context.Context) (string, error) { return b.program(ctx) }

// program makes sure the user program is in storage and returns its hash.
func (b *Backend) program(ctx context.Context) (string, error) {
	b.progMu.Lock()
	defer b.progMu.Unlock()
	if b.progSHA != "" {
		return b.progSHA, nil
	}
	path, cleanup, err := build.ProgramPath(ctx, b.opts.Program)
	if err != nil {
		return "", err
	}
	defer cleanup()
	sha, err := build.UploadProgram(ctx, b.st, path)
	if err != nil {
		return "", err
	}
	b.progSHA = sha
	return sha, nil
}
