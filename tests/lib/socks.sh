#!/usr/bin/env bash
# tests/lib/socks.sh -- a private SOCKS5 server (microsocks) on 127.0.0.1.
#
#   socks.sh start DIR [PORT] [microsocks options...]
#                        start it on PORT (default: a free one); writes
#                        DIR/socks.env (SOCKS_PORT, SOCKS_LOG)
#   socks.sh stop DIR    stop it (safe to call twice)
#
# microsocks logs each connection it makes for a client to DIR/socks.log
# ("client[N] 127.0.0.1: connected to NAME:PORT", NAME as the client sent
# it). Give "-u USER -P PASS" for a proxy that requires authentication.
# Needs the microsocks package; not root.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || { echo "usage: $0 start|stop DIR [PORT] [options]" >&2; exit 2; }

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() {
	local pid
	if [[ -s $dir/socks.pid ]]; then
		pid=$(<"$dir/socks.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		rm -f "$dir/socks.pid"
	fi
}

start() {
	local port=${1:-}
	shift || true
	mkdir -p "$dir"
	[[ -n $port ]] || port=$(free_port)
	# Its stdio is never the caller's: a pipe held open would hang bats.
	microsocks -i 127.0.0.1 -p "$port" "$@" </dev/null >>"$dir/socks.log" 2>&1 &
	echo $! >"$dir/socks.pid"
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			printf 'export SOCKS_PORT=%s\nexport SOCKS_LOG=%s\n' "$port" "$dir/socks.log" >"$dir/socks.env"
			return 0
		fi
		kill -0 "$(<"$dir/socks.pid")" 2>/dev/null || break
		sleep 0.05
	done
	echo "socks.sh: microsocks did not start on port $port; see $dir/socks.log" >&2
	cat "$dir/socks.log" >&2 || true
	stop
	return 1
}

case $cmd in
start) shift 2; start "$@" ;;
stop) stop ;;
*) echo "usage: $0 start|stop DIR [PORT] [options]" >&2; exit 2 ;;
esac
