#!/usr/bin/env bash
# azurite.sh start|stop|restart|status — the Azurite storage emulator for tests and CI.
#
# start: runs Azurite (pinned in package.json, installed with `npm ci` when
#        missing) on 127.0.0.1 — blob 10000, queue 10001, table 10002 — in
#        memory, in the background, with its pid in .azurite/azurite.pid and
#        its log in .azurite/azurite.log; waits until blob and queue answer
#        (at most AZURITE_WAIT seconds, default 60) and fails loudly otherwise.
#        Starting when it already runs is not an error.
# stop:  stops the Azurite this script started.
# restart: stop, then start (frees the in-memory store, which Azurite
#        otherwise reclaims from deleted blobs only every 10 minutes).
# status: exit 0 when it runs and answers, 1 otherwise.
#
# AZURITE_LOCATION=DIR keeps data on disk in DIR instead of in memory. Long
# runs (bench/soak) need it: in memory every blob and message is its own
# extent, and Azurite's 10-minute garbage collector deletes extents one at a
# time, rebuilding an index each time, so tens of thousands of deleted blobs
# or messages freeze it for many minutes. On disk extents are 64 MB files.
#
# --skipApiVersionCheck: the Go SDK sends API versions newer than Azurite
# 3.35.0 knows. --extentMemoryLimit caps the in-memory blob data (MB).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$root/.azurite
pidfile=$dir/azurite.pid
logfile=$dir/azurite.log
bin=$root/node_modules/.bin/azurite
host=127.0.0.1
ports=(10000 10001) # blob, queue: what the tests use
wait_s=${AZURITE_WAIT:-60}

die() { echo "azurite.sh: $*" >&2; exit 1; }

# answers PORT: true when something speaks HTTP (any status) on host:PORT.
answers() {
	if command -v curl >/dev/null 2>&1; then
		curl -s -o /dev/null --max-time 2 "http://$host:$1/"
	else
		(exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
	fi
}

# ourpid: prints the pid from the pid file if that process is a live Azurite.
ourpid() {
	[[ -f $pidfile ]] || return 1
	local pid
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# Guard against a recycled pid: the process must be our Azurite.
	if [[ -r /proc/$pid/cmdline ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q azurite; then
		return 1
	fi
	echo "$pid"
}

# taken PORT: true when anything accepts TCP connections on host:PORT.
taken() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

all_answer() {
	local p
	for p in "${ports[@]}"; do answers "$p" || return 1; done
}

start() {
	local pid
	if pid=$(ourpid); then
		all_answer || die "Azurite (pid $pid) runs but does not answer on ports ${ports[*]}; see $logfile"
		echo "azurite.sh: already running (pid $pid)"
		return 0
	fi
	local p
	for p in "${ports[@]}" 10002; do
		if taken "$p"; then
			die "port $host:$p is already taken by another process (not started by this script); stop it first"
		fi
	done
	if [[ ! -x $bin ]]; then
		command -v npm >/dev/null || die "npm not found: install Node.js 20 and npm, then run: npm ci"
		echo "azurite.sh: installing Azurite (npm ci)..."
		(cd "$root" && npm ci --no-audit --no-fund) || die "npm ci failed"
	fi
	mkdir -p "$dir"
	local persist=(--inMemoryPersistence --extentMemoryLimit 2048)
	if [[ -n ${AZURITE_LOCATION:-} ]]; then
		mkdir -p "$AZURITE_LOCATION"
		persist=(--location "$AZURITE_LOCATION")
	fi
	# setsid: its own session, so it outlives this shell and its job control.
	setsid "$bin" \
		--blobHost "$host" --blobPort 10000 \
		--queueHost "$host" --queuePort 10001 \
		--tableHost "$host" --tablePort 10002 \
		"${persist[@]}" --skipApiVersionCheck --loose \
		--disableTelemetry --silent \
		>"$logfile" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$pidfile"
	local deadline=$((SECONDS + wait_s))
	until all_answer; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$pidfile"
			tail -n 20 "$logfile" >&2 || true
			die "Azurite exited during startup (log above, $logfile)"
		fi
		if ((SECONDS >= deadline)); then
			kill "$pid" 2>/dev/null || true
			rm -f "$pidfile"
			tail -n 20 "$logfile" >&2 || true
			die "Azurite did not answer on $host ports ${ports[*]} within ${wait_s}s (log above, $logfile)"
		fi
		sleep 0.2
	done
	echo "azurite.sh: started (pid $pid): blob http://$host:10000/devstoreaccount1, queue http://$host:10001/devstoreaccount1"
}

stop() {
	local pid
	if ! pid=$(ourpid); then
		rm -f "$pidfile"
		echo "azurite.sh: not running"
		return 0
	fi
	kill "$pid"
	local i
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	echo "azurite.sh: stopped (pid $pid)"
}

status() {
	local pid
	if pid=$(ourpid) && all_answer; then
		echo "azurite.sh: running (pid $pid), answering on $host ports ${ports[*]}"
		return 0
	fi
	if pid=$(ourpid); then
		echo "azurite.sh: process $pid runs but does not answer on $host ports ${ports[*]}"
	else
		echo "azurite.sh: not running"
	fi
	return 1
}

case ${1:-} in
start) start ;;
stop) stop ;;
restart) stop && start ;;
status) status ;;
*) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
