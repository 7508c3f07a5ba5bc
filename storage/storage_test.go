package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/localfs"
	"github.com/lithops-go/lithops/storage/memory"
)

func TestParseURI(t *testing.T) {
	cases := []struct {
		in      string
		want    storage.URI
		wantErr bool
	}{
		{in: "localhost://bench/wc/", want: storage.URI{Backend: "localhost", Bucket: "bench", Key: "wc/"}},
		{in: "azure_storage://container/data/part-0.txt", want: storage.URI{Backend: "azure_storage", Bucket: "container", Key: "data/part-0.txt"}},
		{in: "bucket", want: storage.URI{Bucket: "bucket"}},
		{in: "bucket/", want: storage.URI{Bucket: "bucket"}},
		{in: "bucket/a/b", want: storage.URI{Bucket: "bucket", Key: "a/b"}},
		{in: "memory://b", want: storage.URI{Backend: "memory", Bucket: "b"}},
		{in: "://b/k", wantErr: true},
		{in: "localhost://", wantErr: true},
		{in: "", wantErr: true},
		{in: "/abs/path", wantErr: true},
		{in: "../x", wantErr: true},
	}
	for _, c := range cases {
		got, err := storage.ParseURI(c.in)
		if c.wantErr {
			if err == nil || !errors.Is(err, storage.ErrInvalidArgument) {
				t.Errorf("ParseURI(%q) = %+v, %v; want an ErrInvalidArgument error", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseURI(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if back, err := storage.ParseURI(got.String()); err != nil || back != got {
			t.Errorf("ParseURI(%q.String() = %q) = %+v, %v; want a round trip", c.in, got.String(), back, err)
		}
	}
}

func TestErrorNamesLocation(t *testing.T) {
	s := storage.New(memory.New(), "memory", "b")
	ctx := context.Background()
	if err := s.CreateBucket(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Head(ctx, "b", "dir/key")
	var se *storage.Error
	if !errors.As(err, &se) || se.Op != "head" || se.Bucket != "b" || se.Key != "dir/key" || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Head of a missing key: %#v", err)
	}
	if got, want := err.Error(), "storage: head memory://b/dir/key: not found"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

func TestDeletePrefixBatches(t *testing.T) {
	s := storage.New(memory.New(), "memory", "b")
	ctx := context.Background()
	for i := range 600 { // more than one batch of 256
		if err := s.PutBytes(ctx, "b", fmt.Sprintf("p/%03d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutBytes(ctx, "b", "q/keep", nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeletePrefix(ctx, "b", "p/"); err != nil || n != 600 {
		t.Errorf("DeletePrefix = %d, %v; want 600", n, err)
	}
	if infos, err := s.List(ctx, "b", ""); err != nil || len(infos) != 1 || infos[0].Key != "q/keep" {
		t.Errorf("left after DeletePrefix: %+v, %v", infos, err)
	}
}

// TestPrepare: Storage.Prepare and Unprepare check their prefix and do
// nothing on a driver that keeps no directories; on localfs they reach
// the driver (its own tests and the conformance suite say what it does).
func TestPrepare(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*storage.Storage{
		"memory":  storage.New(memory.New(), "memory", "b"),
		"localfs": storage.New(d, "localhost", "b"),
	} {
		s.CreateBucket(ctx, "b")
		for _, bad := range []string{"no/slash", ""} {
			err := s.Prepare(ctx, "b", bad)
			if name == "localfs" && !errors.Is(err, storage.ErrInvalidArgument) {
				t.Errorf("%s: Prepare(%q): %v, want ErrInvalidArgument", name, bad, err)
			}
			if name == "memory" && err != nil {
				t.Errorf("%s: Prepare(%q): %v, want nothing done", name, bad, err)
			}
		}
		if err := s.Prepare(ctx, "b", "jobs/x/"); err != nil {
			t.Errorf("%s: Prepare: %v", name, err)
		}
		if infos, err := s.List(ctx, "b", ""); err != nil || len(infos) != 0 {
			t.Errorf("%s: a prepared prefix lists as %v, %v", name, infos, err)
		}
		if err := s.Unprepare(ctx, "b", "jobs/x/"); err != nil {
			t.Errorf("%s: Unprepare: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "b", "jobs")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("localfs: Unprepare left %v", err)
	}
}
