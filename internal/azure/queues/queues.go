// Package queues opens the queue service of a storage account and holds
// the small operations lithops-go performs on Azure Storage queues: create
// a queue if absent, push a message, fail fast on a host that does not
// exist. The client backend, the runtime host, the deployer and the CLI
// share it.
package queues

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2/queueerror"
	"github.com/lithops-go/lithops/config"
	azblobdriver "github.com/lithops-go/lithops/storage/azblob"
)

// MaxMessage is the largest queue message Azure accepts (characters, after
// base64).
const MaxMessage = 64 << 10

// Transport, when set (tests), carries the requests of the queue clients
// NewService builds.
var Transport policy.Transporter

func queueOptions() *azqueue.ClientOptions {
	return &azqueue.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: Transport,
		Retry: policy.RetryOptions{
			MaxRetries:    6,
			TryTimeout:    30 * time.Second,
			RetryDelay:    200 * time.Millisecond,
			MaxRetryDelay: 5 * time.Second,
			// 429 and 503 are among the SDK's defaults; the delays are
			// exponential with jitter.
		},
	}}
}

// NewService opens the queue service of the storage account in cfg:
// connection string, account key, SAS token or Entra ID, in that order.
// Entra ID is the managed identity (cfg.ClientID's, when set) with
// cfg.Credential "managedidentity", else the default credential chain.
func NewService(cfg config.AzureStorage) (*azqueue.ServiceClient, error) {
	if cfg.ConnectionString != "" {
		c, err := azqueue.NewServiceClientFromConnectionString(cfg.ConnectionString, queueOptions())
		if err != nil {
			return nil, fmt.Errorf("azure_storage.connection_string: %w", err)
		}
		return c, nil
	}
	if cfg.StorageAccountName == "" && (cfg.QueueEndpoint == "" || cfg.StorageAccountKey != "") {
		return nil, errors.New("azure_storage: storage_account_name is required unless connection_string (or, without a key, queue_endpoint) is set")
	}
	url := cfg.QueueEndpoint
	if url == "" {
		url = "https://" + cfg.StorageAccountName + ".queue.core.windows.net/"
	}
	switch {
	case cfg.StorageAccountKey != "":
		cred, err := azqueue.NewSharedKeyCredential(cfg.StorageAccountName, cfg.StorageAccountKey)
		if err != nil {
			return nil, fmt.Errorf("azure_storage.storage_account_key: %w", err)
		}
		return azqueue.NewServiceClientWithSharedKeyCredential(url, cred, queueOptions())
	case cfg.SASToken != "":
		return azqueue.NewServiceClientWithNoCredential(strings.TrimSuffix(url, "/")+"/?"+strings.TrimPrefix(cfg.SASToken, "?"), queueOptions())
	}
	cred, err := azblobdriver.Config{Credential: cfg.Credential, ClientID: cfg.ClientID}.EntraCredential()
	if err != nil {
		return nil, err
	}
	return azqueue.NewServiceClient(url, cred, queueOptions())
}

// Ensure creates the queue if it does not exist.
func Ensure(ctx context.Context, svc *azqueue.ServiceClient, name string) error {
	_, err := svc.CreateQueue(ctx, name, nil)
	if err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
		return fmt.Errorf("create queue %s: %w", name, err)
	}
	return nil
}

// Pusher pushes messages to queues of one account (the runtime host's way
// of reporting completions).
type Pusher struct{ Svc *azqueue.ServiceClient }

// Push implements host.Pusher.
func (p Pusher) Push(ctx context.Context, queue string, msg []byte) error {
	_, err := p.Svc.NewQueueClient(queue).EnqueueMessage(ctx, string(msg), nil)
	return err
}

// settings are the settings that make up the queue service's host.
const settings = "azure_storage.storage_account_name / queue_endpoint (or the connection string's account and QueueEndpoint)"

// CheckHost fails at once, naming the host, when the host of the queue
// service svc does not exist (DNS "no such host": a wrong account name or
// queue endpoint), where the queue client would retry for a while. It
// sends no request to the service (azblob.CheckHost).
func CheckHost(ctx context.Context, svc *azqueue.ServiceClient) error {
	return azblobdriver.CheckHost(ctx, svc.URL(), settings)
}
