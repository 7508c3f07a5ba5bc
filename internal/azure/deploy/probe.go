package deploy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops/internal/azure/httptrigger"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
)

// ErrNoAnswer is wrapped by the error of a metadata probe that got no
// answer in time.
var ErrNoAnswer = errors.New("no answer from the runtime")

// Probe asks the deployed runtime for its metadata through its
// trigger queue, waits (up to timeout) until the runtime has written it, and
// stores it at lithops.runtimes/azure_functions/<runtime>-<memory>mb.meta.json. A
// runtime that answers is a runtime that works end to end: queue, host,
// storage.
func Probe(ctx context.Context, st *storage.Storage, svc *azqueue.ServiceClient, names naming.Names, runtime string, memoryMB int, timeout time.Duration) (*protocol.RuntimeMeta, error) {
	nonce := make([]byte, 6)
	rand.Read(nonce)
	probe := protocol.RuntimesPrefix + "azure_functions/" + runtime + ".probe-" + hex.EncodeToString(nonce) + ".json"
	inv := protocol.Invocation{Version: protocol.Version, Op: protocol.OpMetadata, Bucket: st.Bucket(), MetaKey: probe}
	raw, _ := json.Marshal(inv)
	if _, err := svc.NewQueueClient(names.Queue).EnqueueMessage(ctx, base64.StdEncoding.EncodeToString(raw), nil); err != nil {
		return nil, fmt.Errorf("azure_functions: probe runtime %s: enqueue to %s: %w", runtime, names.Queue, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		data, err := st.GetBytes(ctx, st.Bucket(), probe)
		if err == nil {
			st.Delete(ctx, st.Bucket(), probe)
			var m protocol.RuntimeMeta
			if err := json.Unmarshal(data, &m); err != nil {
				return nil, fmt.Errorf("azure_functions: runtime %s answered unreadable metadata: %w", runtime, err)
			}
			if m.Runtime == "" {
				m.Runtime = runtime
			}
			if m.Queue == "" {
				m.Queue = names.Queue // the queue that answered
			}
			m.Created = time.Now().UTC()
			out, _ := json.Marshal(m)
			if err := st.PutBytes(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", naming.Key(runtime, memoryMB)), out); err != nil {
				return nil, err
			}
			return &m, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("azure_functions: runtime %s did not answer a metadata probe within %v (queue %s): is the function app running? %w", runtime, timeout, names.Queue, ErrNoAnswer)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ProbeHTTP asks an HTTPS-triggered runtime for its metadata and
// stores it, with its endpoint, at lithops.runtimes/azure_functions/<runtime>.meta.json.
func ProbeHTTP(ctx context.Context, st *storage.Storage, hc *http.Client, url, key, runtime string, memoryMB int, timeout time.Duration) (*protocol.RuntimeMeta, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	probe := protocol.RuntimesPrefix + "azure_functions/" + runtime + ".probe.json"
	inv := protocol.Invocation{Version: protocol.Version, Op: protocol.OpMetadata, Bucket: st.Bucket(), MetaKey: probe}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out []byte
	var err error
	for {
		// A new app may answer 404 until its host has started.
		var code int
		out, code, err = httptrigger.Post(ctx, hc, url, key, inv)
		if err == nil || code != http.StatusNotFound {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("azure_functions: runtime %s at %s did not answer: %w", runtime, url, err)
		case <-time.After(2 * time.Second):
		}
	}
	if err != nil {
		return nil, err
	}
	st.Delete(ctx, st.Bucket(), probe)
	var m protocol.RuntimeMeta
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("azure_functions: runtime %s answered unreadable metadata: %w", runtime, err)
	}
	if m.Runtime == "" {
		m.Runtime = runtime
	}
	m.Endpoint, m.Created = url, time.Now().UTC()
	raw, _ := json.Marshal(m)
	if err := st.PutBytes(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", naming.Key(runtime, memoryMB)), raw); err != nil {
		return nil, err
	}
	return &m, nil
}

// ErrNotDeployed reports that the runtime has no metadata in storage.
var ErrNotDeployed = errors.New("runtime not deployed")

// ReadMeta reads a runtime's metadata record from storage.
func ReadMeta(ctx context.Context, st *storage.Storage, runtime string, memoryMB int) (*protocol.RuntimeMeta, error) {
	key := protocol.RuntimeMetaKey("azure_functions", naming.Key(runtime, memoryMB))
	raw, err := st.GetBytes(ctx, st.Bucket(), key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("azure_functions: %w: runtime %q has no metadata at %s/%s; deploy it with `lithops runtime deploy -b azure_functions -s azure_storage %s`", ErrNotDeployed, runtime, st.Bucket(), key, runtime)
	}
	if err != nil {
		return nil, fmt.Errorf("azure_functions: read runtime metadata: %w", err)
	}
	var m protocol.RuntimeMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("azure_functions: runtime metadata %s is not valid JSON: %w", key, err)
	}
	return &m, nil
}
