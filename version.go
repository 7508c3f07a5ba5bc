package lithops

import "github.com/lithops-go/lithops/internal/protocol"

// Version is the lithops-go release.
const Version = protocol.LithopsVersion

// ProtocolVersion is the version of the client–worker protocol; clients and
// runtimes must agree on it.
const ProtocolVersion = protocol.Version
