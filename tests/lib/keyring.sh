#!/usr/bin/env bash
# tests/lib/keyring.sh start DIR | stop DIR | status DIR
#
# A private D-Bus session bus and gnome-keyring-daemon (secrets component,
# "login" collection unlocked) with all state under DIR:
#   DIR/bus             the bus socket
#   DIR/bus.conf        bus config: no service activation (a dead keyring
#                       makes clients fail fast instead of auto-starting one)
#   DIR/data/           XDG_DATA_HOME (keyrings/login.keyring lives here)
#   DIR/runtime/        XDG_RUNTIME_DIR of the keyring daemon (control socket)
#   DIR/dbus.pid DIR/keyring.pid
#   DIR/log/            dbus.log, keyring.log
#   DIR/keyring.env     export lines for clients (written by start)
# Does not need root. start verifies readiness with a secret-tool
# store + lookup round trip of a dummy item.
set -euo pipefail

# Daemons started from here must not inherit the caller's descriptors: bats
# waits for EOF on its fd 3, a CI log pipe waits for every writer to go.
# stdin/stdout/stderr are redirected per command; close everything else.
for _fd in "/proc/$$/fd/"*; do
	_fd=${_fd##*/}
	if [[ $_fd =~ ^[0-9]+$ ]] && ((_fd > 2 && _fd < 255)); then
		eval "exec $_fd>&-" 2>/dev/null || true
	fi
done
unset _fd

START_TIMEOUT=${KEYRING_START_TIMEOUT:-10}
KEYRING_PASSWORD=outbox-testbed

die() {
	echo "keyring.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 start|stop|status DIR" >&2
	exit 2
}

# alive PID: exists and is not a zombie (pid 1 may reap late)
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# pid_of NAME COMM: pid from DIR/NAME.pid if that process is alive and is COMM
pid_of() {
	local f=$dir/$1.pid pid
	[[ -r $f ]] || return 1
	read -r pid <"$f" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2"* ]] || return 1
	echo "$pid"
}

kill_wait() {
	local pid=$1 n=100
	kill -TERM "$pid" 2>/dev/null || return 0
	while alive "$pid" && ((n-- > 0)); do
		sleep 0.02
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

print_logs() {
	local f
	for f in "$dir"/log/*.log; do
		[[ -s $f ]] || continue
		echo "----- $f" >&2
		tail -n 30 "$f" >&2
	done
}

start_failed() {
	print_logs
	do_stop
	die "$*"
}

# environment of the daemons and of secret-tool calls (an array, not a
# function: "env ... daemon &" must be a simple command for $! to be its pid)
set_env() {
	kenv=(env -u DISPLAY -u WAYLAND_DISPLAY -u GNOME_KEYRING_CONTROL
		DBUS_SESSION_BUS_ADDRESS="$address"
		XDG_DATA_HOME="$dir/data"
		XDG_RUNTIME_DIR="$dir/runtime"
		XDG_CONFIG_HOME="$dir/config"
		XDG_CACHE_HOME="$dir/cache")
}

do_start() {
	local b
	for b in dbus-daemon dbus-send gnome-keyring-daemon secret-tool; do
		command -v "$b" >/dev/null || die "$b not installed (run tests/lib/deps.sh)"
	done
	if pid_of dbus dbus-daemon >/dev/null || pid_of keyring gnome-keyring >/dev/null; then
		die "already running in $dir (run: $0 stop $dir)"
	fi
	# fresh keyring every time: an old one with another password stays locked
	rm -rf "$dir/data" "$dir/runtime" "$dir/config" "$dir/cache" "$dir/bus" "$dir/keyring.env"
	mkdir -p "$dir/data" "$dir/runtime" "$dir/config" "$dir/cache" "$dir/log"
	chmod 0700 "$dir/runtime"
	address=unix:path=$dir/bus

	cat >"$dir/bus.conf" <<-EOF
		<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
		 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
		<busconfig>
		  <type>session</type>
		  <keep_umask/>
		  <listen>$address</listen>
		  <auth>EXTERNAL</auth>
		  <policy context="default">
		    <allow send_destination="*" eavesdrop="true"/>
		    <allow eavesdrop="true"/>
		    <allow own="*"/>
		  </policy>
		</busconfig>
	EOF

	# --nofork in the background: $! is its pid (env execs it)
	"${kenv[@]}" dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile \
		</dev/null >"$dir/log/dbus.log" 2>&1 &
	echo $! >"$dir/dbus.pid"

	local deadline=$((SECONDS + START_TIMEOUT))
	until [[ -S $dir/bus ]]; do
		alive "$(cat "$dir/dbus.pid")" || start_failed "dbus-daemon exited"
		((SECONDS < deadline)) || start_failed "bus socket not there after ${START_TIMEOUT}s"
		sleep 0.02
	done

	# --unlock reads the password from stdin and creates/unlocks "login"
	printf '%s' "$KEYRING_PASSWORD" |
		"${kenv[@]}" gnome-keyring-daemon --foreground --unlock --components=secrets \
			>"$dir/log/keyring.log" 2>&1 &
	echo $! >"$dir/keyring.pid"

	# wait for org.freedesktop.secrets on the bus, then a store+lookup round trip
	while ! "${kenv[@]}" dbus-send --session --print-reply --dest=org.freedesktop.DBus \
		/org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets \
		2>/dev/null | grep -q 'boolean true'; do
		alive "$(cat "$dir/keyring.pid")" || start_failed "gnome-keyring-daemon exited"
		((SECONDS < deadline)) || start_failed "keyring not on the bus after ${START_TIMEOUT}s"
		sleep 0.02
	done
	local probe=probe-$$-$RANDOM got=
	while :; do
		if printf '%s' "$probe" | "${kenv[@]}" timeout 5 secret-tool store --label=outbox-testbed-probe \
			outbox-testbed probe >>"$dir/log/keyring.log" 2>&1; then
			got=$("${kenv[@]}" timeout 5 secret-tool lookup outbox-testbed probe 2>>"$dir/log/keyring.log") || true
			[[ $got == "$probe" ]] && break
		fi
		((SECONDS < deadline)) || start_failed "secret-tool store/lookup round trip failed"
		sleep 0.05
	done
	"${kenv[@]}" timeout 5 secret-tool clear outbox-testbed probe >>"$dir/log/keyring.log" 2>&1 || true

	local tmp=$dir/keyring.env.tmp
	{
		echo "export DBUS_SESSION_BUS_ADDRESS=$address"
		echo "export XDG_DATA_HOME=$dir/data"
		echo "export KEYRING_DIR=$dir"
	} >"$tmp"
	mv -f "$tmp" "$dir/keyring.env"
}

do_stop() {
	local pid
	if pid=$(pid_of keyring gnome-keyring); then
		kill_wait "$pid"
	fi
	if pid=$(pid_of dbus dbus-daemon); then
		kill_wait "$pid"
	fi
	rm -f "$dir/keyring.env" "$dir/bus"
}

do_status() {
	local rc=0 pid
	if pid=$(pid_of dbus dbus-daemon); then
		echo "dbus-daemon: running (pid $pid)"
	else
		echo "dbus-daemon: not running"
		rc=1
	fi
	if pid=$(pid_of keyring gnome-keyring); then
		echo "gnome-keyring-daemon: running (pid $pid)"
	else
		echo "gnome-keyring-daemon: not running"
		rc=1
	fi
	if ((rc == 0)) && [[ -r $dir/keyring.env ]]; then
		cat "$dir/keyring.env"
	else
		rc=1
	fi
	return $rc
}

[[ $# -eq 2 && -n $2 ]] || usage
cmd=$1
[[ $2 != *[[:space:],\;\"\'\$\\]* ]] || die "DIR must not contain spaces, commas, semicolons, quotes, \$ or backslashes: $2"
dir=$(realpath -m "$2")
if [[ $cmd == start ]]; then
	# unix socket paths are limited to 107 bytes (DIR/runtime/keyring/control)
	if ((${#dir} > 80)); then
		die "DIR path too long for unix sockets (${#dir} > 80 chars): $dir"
	fi
	mkdir -p "$dir" || die "cannot create $dir"
fi
address=unix:path=$dir/bus
set_env

case $cmd in
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
*) usage ;;
esac
