// Package quietsys makes the few short system calls of a warm call (a
// pipe read or write, a small record's create and link, a directory made,
// getrusage) as raw system calls, without the Go runtime's syscall entry
// and exit.
//
// Why: a warm call leaves both the client and its worker idle between
// calls, and the runtime's monitor thread (sysmon) then sleeps deeply. The
// first system call entered the usual way after that wakes it, and it then
// ticks every 20 µs while any processor is busy: two thread wake-ups per
// call and a handful of ticks, each taking a core from the client or the
// worker on a small machine. On 2 cores they cost a warm call about 50 µs
// of its 200–250 (bench/README, "The runtime's monitor left asleep").
//
// Invariants:
//   - A raw call never waits on a network or another process: pipes are
//     read and written raw only when they are non-blocking pipes or sockets
//     (a call that would block waits in the runtime's poller, which is not
//     a system call from the runtime's view), and file calls are raw only
//     for a record's few metadata calls and small writes on a local file
//     system (Local says which: on NFS a raw call could hold its processor,
//     and a garbage collection with it, for as long as the server takes).
//   - A raw file call may still wait for the local disk (cold metadata, a
//     full journal, dirty-page throttling, a frozen file system): that long
//     its processor is held. Env turns file calls raw off.
//   - Where a raw call cannot be made (another OS, a descriptor that is not
//     pollable) the ordinary call is made: same results, same errors.
package quietsys

// Env is the environment variable that, set to "0", keeps every file call
// the runtime's own (Local reports false): for a disk whose metadata calls
// may wait long (a file system frozen for a snapshot), where a raw call
// would hold its processor, and a garbage collection with it, as long.
const Env = "LITHOPS_QUIET_SYSCALLS"
