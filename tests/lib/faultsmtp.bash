# bats helpers for tests/lib/faultsmtp.py, the scriptable hostile SMTP server.
#
#   load 'lib/faultsmtp'            (from a .bats file in tests/)
#
#   fault_start SCRIPT [ARGS...]    start a server running SCRIPT (text);
#   fault_start - [ARGS...] <<EOF   ... or the script from stdin (also when no
#                                   argument at all is given).  ARGS go to
#                                   faultsmtp.py (--connections 2, --cert F ...).
#       Exports FAULT_PORT, FAULT_LOG (raw client bytes), FAULT_TRACE,
#       FAULT_ERR (server stderr), FAULT_SCRIPT.  Fails if the server has not
#       published its port within 5 s.
#   fault_wait [SECONDS]            wait (default 40 s, then kill) for the server
#                                   to exit; returns its exit status and sets
#                                   FAULT_STATUS; on non-zero prints its stderr.
#                                   Works under `run` too (status is read from a file).
#   fault_stop                      kill every server this test started that is
#                                   still running (call it from teardown).
#   fault_make_cert                 make a throwaway self-signed cert (once per
#                                   file) and export FAULT_CERT / FAULT_KEY.
#
#   Several servers may run at once; the FAULT_* variables and fault_wait refer
#   to the latest one.  Exit statuses: 0 ok, 1 an expectation failed, 2 bad
#   script or usage, 124 hard timeout (--max-seconds, default 30), 143 killed.

# No background retrier or shared-session holder unless a test asks for
# one: the scripts expect each outbox to finish its own dialogue.
export OUTBOX_NO_RETRIER=1

FAULTSMTP_PY="${FAULTSMTP_PY:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/faultsmtp.py}"
FAULT_N=0

fault_start() {
	local script
	if (($# == 0)) || [[ $1 == - ]]; then
		script=$(cat)
		(($#)) && shift
	else
		script=$1
		shift
	fi
	FAULT_N=$((FAULT_N + 1))
	local base="$BATS_TEST_TMPDIR/fault$FAULT_N"
	export FAULT_SCRIPT="$base.script" FAULT_LOG="$base.log" FAULT_TRACE="$base.log.trace"
	export FAULT_ERR="$base.err" FAULT_PORT=
	FAULT_BASE=$base
	printf '%s\n' "$script" >"$FAULT_SCRIPT"
	rm -f "$base.port" "$base.pid" "$base.status"
	# The subshell records python's pid and exit status in files, so that
	# fault_wait works from any (sub)shell.  No fd of the caller is kept open:
	# bats waits for fd 3 to close before it finishes.
	(
		set +eE # bats runs tests under errexit; a failing server must still be recorded
		trap - ERR
		/usr/bin/python3 "$FAULTSMTP_PY" --script "$FAULT_SCRIPT" --port-file "$base.port" \
			--log "$FAULT_LOG" "$@" </dev/null >"$base.out" 2>"$FAULT_ERR" &
		echo $! >"$base.pid"
		wait $!
		echo $? >"$base.status"
	) </dev/null >/dev/null 2>&1 3>&- &
	local i
	for ((i = 0; i < 100; i++)); do
		if [[ -s $base.port && -s $base.pid ]]; then
			FAULT_PORT=$(<"$base.port")
			return 0
		fi
		[[ -e $base.status ]] && break
		sleep 0.05
	done
	echo "fault_start: server did not start (status $(cat "$base.status" 2>/dev/null))" >&2
	cat "$FAULT_ERR" >&2 2>/dev/null
	fault_stop
	return 1
}

fault_wait() {
	local limit=${1:-40} base=$FAULT_BASE i
	for ((i = 0; i < limit * 20; i++)); do
		[[ -e $base.status ]] && break
		sleep 0.05
	done
	if [[ ! -e $base.status ]]; then
		echo "fault_wait: server still running after ${limit}s, killing it" >&2
		fault_stop
	fi
	for ((i = 0; i < 40; i++)); do # the status file is written right after exit
		[[ -s $base.status ]] && break
		sleep 0.05
	done
	FAULT_STATUS=$(cat "$base.status" 2>/dev/null || echo 255)
	if ((FAULT_STATUS != 0)); then
		echo "fault_wait: faultsmtp exited $FAULT_STATUS; its stderr:" >&2
		cat "$FAULT_ERR" >&2
	fi
	return "$FAULT_STATUS"
}

fault_stop() {
	local pidfile
	for pidfile in "${BATS_TEST_TMPDIR:-/nonexistent}"/fault*.pid; do
		[[ -s $pidfile && ! -e ${pidfile%.pid}.status ]] || continue
		kill "$(<"$pidfile")" 2>/dev/null || true
	done
	return 0
}

fault_make_cert() {
	export FAULT_CERT="$BATS_FILE_TMPDIR/fault-cert.pem" FAULT_KEY="$BATS_FILE_TMPDIR/fault-key.pem"
	[[ -s $FAULT_CERT && -s $FAULT_KEY ]] && return 0
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
		-keyout "$FAULT_KEY" -out "$FAULT_CERT" >/dev/null 2>&1
}
