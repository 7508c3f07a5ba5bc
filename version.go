package lithops

import "github.com/lithops-go/lithops/internal/protocol"

// Version is the lithops-go release.
const Version = "0.1.0"

// ProtocolVersion is the version of the client–worker protocol; clients and
// runtimes must agree on it.
const ProtocolVersion = protocol.Version
