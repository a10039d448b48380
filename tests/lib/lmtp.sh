#!/usr/bin/env bash
# tests/lib/lmtp.sh -- a private Dovecot LMTP server on 127.0.0.1.
#
#   lmtp.sh start DIR    start it; writes DIR/lmtp.env (LMTP_PORT, LMTP_SOCKET,
#                        LMTP_MAILDIR)
#   lmtp.sh stop DIR     stop it (safe to call twice)
#
# It listens on 127.0.0.1:LMTP_PORT and on the Unix socket LMTP_SOCKET.
# Users bob and carol (any domain) get mail in DIR/mail/USER/Maildir, as
# uid 65534; any other recipient is refused at RCPT (550 5.1.1).  carol's
# quota is 1 kB, so a larger message is refused for her after the data
# while bob gets it: one reply per recipient, as LMTP gives.  Needs root
# and the dovecot-core and dovecot-lmtpd packages.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() {
	local pid
	if [[ -s $dir/run/master.pid ]]; then
		pid=$(<"$dir/run/master.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		rm -f "$dir/run/master.pid"
	fi
}

# Dovecot's auth and lmtp processes run as other users: every ancestor of
# DIR must be searchable (o+x, never read) by them.
make_traversable() {
	local d=$1
	while [[ $d != / && -n $d ]]; do
		if ! stat -c %A "$d" | grep -q '^.\{9\}[xt]'; then
			[[ $(stat -c %u "$d") == "$(id -u)" ]] || {
				echo "lmtp.sh: $d is not searchable by other users" >&2
				return 1
			}
			chmod o+x "$d"
		fi
		d=$(dirname "$d")
	done
}

start() {
	mkdir -p "$dir"/{run,state,mail,log}
	dir=$(realpath "$dir")
	make_traversable "$dir"
	chmod 0755 "$dir" "$dir/run" "$dir/state" "$dir/log"
	chown 65534:65534 "$dir/mail"
	local port attempt
	printf 'bob::65534:65534::%s/mail/bob\ncarol::65534:65534::%s/mail/carol::userdb_quota_rule=*:bytes=1k\n' \
		"$dir" "$dir" >"$dir/users"
	chmod 0644 "$dir/users"
	for attempt in 1 2 3; do
		port=$(free_port)
		cat >"$dir/dovecot.conf" <<-EOF
			# outbox test bed: Dovecot LMTP only, loopback
			base_dir = $dir/run
			state_dir = $dir/state
			instance_name = outbox-lmtp-$$
			protocols = lmtp
			listen = 127.0.0.1
			ssl = no
			log_path = $dir/log/dovecot.log
			info_log_path = $dir/log/dovecot.log
			auth_username_format = %n
			first_valid_uid = 1
			mail_location = maildir:~/Maildir
			mail_plugins = quota
			lmtp_rcpt_check_quota = no
			plugin {
			  quota = maildir:User quota
			}
			passdb {
			  driver = passwd-file
			  args = username_format=%n $dir/users
			}
			userdb {
			  driver = passwd-file
			  args = username_format=%n $dir/users
			}
			service lmtp {
			  inet_listener lmtp {
			    address = 127.0.0.1
			    port = $port
			  }
			  unix_listener lmtp {
			    mode = 0666
			  }
			}
		EOF
		if dovecot -c "$dir/dovecot.conf" </dev/null >>"$dir/log/start.log" 2>&1; then
			for _ in $(seq 100); do
				if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
					[[ -S $dir/run/lmtp ]]; then
					printf 'export LMTP_PORT=%s\nexport LMTP_SOCKET=%s\nexport LMTP_MAILDIR=%s\nexport LMTP_DIR=%s\n' \
						"$port" "$dir/run/lmtp" "$dir/mail" "$dir" >"$dir/lmtp.env"
					return 0
				fi
				sleep 0.05
			done
		fi
		stop
	done
	echo "lmtp.sh: Dovecot LMTP did not start; see $dir/log" >&2
	cat "$dir/log/start.log" "$dir/log/dovecot.log" >&2 2>/dev/null || true
	return 1
}

case $cmd in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
