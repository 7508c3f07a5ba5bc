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
//   - A raw call never blocks for long: pipes are read and written only
//     when the descriptor is non-blocking (pollable; a call that would block
//     waits in the runtime's poller, which is not a system call from the
//     runtime's view), and file calls are the metadata calls and small
//     writes of a record on a local file system (Local says which: on NFS
//     a raw call could hold its processor, and a garbage collection with
//     it, for as long as the server takes).
//   - Where a raw call cannot be made (another OS, a descriptor that is not
//     pollable) the ordinary call is made: same results, same errors.
package quietsys
