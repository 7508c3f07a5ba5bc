package config

// Overrides are a program's choices that take precedence over the file
// (lithops.WithBackend, WithStorage, WithRuntime, WithMaxWorkers,
// WithRuntimeMemory). Zero values change nothing.
type Overrides struct {
	Backend, Storage, Runtime string
	MaxWorkers, RuntimeMemory int
	// Region is the compute backend's region (Lithops' -r/--region); a
	// backend without regions (localhost) has none to set.
	Region string
}

// Override applies o to c. Runtime, MaxWorkers and RuntimeMemory land in
// the section of the compute backend selected after o.Backend. A backend
// whose workers cannot reach this machine's disk (azure_functions) moves
// the storage from localhost to azure_storage unless o.Storage names one.
func (c *Config) Override(o Overrides) {
	if o.Backend != "" {
		if o.Storage == "" && o.Backend == "azure_functions" && c.Lithops.Storage == "localhost" {
			c.Lithops.Storage = "azure_storage"
		}
		c.Lithops.Backend = o.Backend
	}
	if o.Storage != "" {
		c.Lithops.Storage = o.Storage
	}
	azure := c.Lithops.Backend == "azure_functions"
	if o.Runtime != "" {
		if azure {
			c.AzureFunctions.Runtime = o.Runtime
		} else {
			c.Localhost.Runtime = o.Runtime
		}
	}
	if o.MaxWorkers != 0 {
		if azure {
			c.AzureFunctions.MaxWorkers = o.MaxWorkers
		} else {
			c.Localhost.WorkerProcesses = o.MaxWorkers
		}
	}
	if o.Region != "" && azure {
		c.AzureFunctions.Region = o.Region
	}
	if o.RuntimeMemory != 0 {
		if azure {
			c.AzureFunctions.RuntimeMemory = o.RuntimeMemory
		} else {
			c.Localhost.RuntimeMemory = o.RuntimeMemory
		}
	}
}

// ForWorker returns what a worker needs of c: the lithops section and the
// settings of its storage backend. Compute credentials (the azure section,
// function keys) and the other storage's settings stay with the client.
func (c *Config) ForWorker() *Config {
	w := &Config{Lithops: c.Lithops}
	switch c.Lithops.Storage {
	case "localhost":
		w.Localhost.StorageRoot, w.Localhost.StorageBucket = c.Localhost.StorageRoot, c.Localhost.StorageBucket
	case "azure_storage":
		w.AzureStorage = c.AzureStorage
	}
	return w
}
