#!/usr/bin/env bash
# tests/lib/mta.sh start DIR | stop DIR | status DIR
#
# A private Postfix + Dovecot (SASL only) instance with every file under DIR:
#   DIR/pki/      certificates from pki.sh
#   DIR/postfix/  main.cf, master.cf, vmailbox   (postfix -c DIR/postfix)
#   DIR/queue/    queue_directory
#   DIR/data/     data_directory (owned by postfix)
#   DIR/dovecot/  dovecot.conf, passwd, state/
#   DIR/run/      Dovecot base_dir: master.pid, SASL socket auth-postfix
#   DIR/log/      maillog (Postfix), dovecot.log, start.log
#   DIR/mail/     Maildirs: bob/ (bob@example.org), catchall/ (everything else)
#   DIR/env       export lines for the test suites (written by start): the
#                 *_PORT variables below, MTA_CA MTA_PKI MTA_MAILDIR MTA_DIR
#
# Users (SASL): alice / 'wonder land-42', bob / 'b0b-pass' (stored in
# plain: a new SCRAM salt at every login); carol / 'c4rol scram-7' and
# dave / 'd4ve scram-1' stored as SCRAM-SHA-256 and SCRAM-SHA-1 credentials
# (fixed salt and count, as most providers keep them; PLAIN works too).
# Ports (127.0.0.1, picked at start, see DIR/env):
#   SUBMISSION_PORT  STARTTLS required before AUTH, AUTH required to send
#   SMTPS_PORT       implicit TLS, same rules
#   WRONGNAME_PORT   implicit TLS, certificate for wrong.example
#   EXPIRED_PORT     implicit TLS, expired certificate
#   SELFSIGNED_PORT  implicit TLS, self-signed certificate
#   PLAIN_PORT       no TLS at all, AUTH offered in clear anyway
#   SMALL_PORT       like SUBMISSION_PORT but message_size_limit=10000
#   FUTURE_PORT      implicit TLS, certificate not valid yet
#   WEAK_PORT        implicit TLS, certificate signed with SHA-1
#   OAUTH_PORT       like SUBMISSION_PORT, offering XOAUTH2 and OAUTHBEARER
#                    too (the other ports filter them out): Dovecot's oauth2
#                    passdb checks tokens at our authorization server
#   AUTHSERVER_PORT  tests/lib/authserver.py (HTTPS, the test CA), client id
#                    "outbox-test", user alice; started before Dovecot
# Needs root (Postfix's master and Dovecot start as root and drop privileges).
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

LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${TESTBED_PYTHON:-/usr/bin/python3}
START_TIMEOUT=${MTA_START_TIMEOUT:-15}
PORT_NAMES=(SUBMISSION_PORT SMTPS_PORT WRONGNAME_PORT EXPIRED_PORT SELFSIGNED_PORT PLAIN_PORT SMALL_PORT
	FUTURE_PORT WEAK_PORT OAUTH_PORT)

die() {
	echo "mta.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 start|stop|status|postfix-stop|postfix-start DIR" >&2
	exit 2
}

# pid of a running Postfix master for DIR, or nothing
postfix_pid() {
	local f=$dir/queue/pid/master.pid pid
	[[ -r $f ]] || return 1
	read -r pid <"$f" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == master ]] || return 1
	echo "$pid"
}

dovecot_pid() {
	local f=$dir/run/master.pid pid
	[[ -r $f ]] || return 1
	read -r pid <"$f" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == dovecot ]] || return 1
	echo "$pid"
}

# wait (bounded) until no process holds the lock on Postfix's master.pid
postfix_wait_unlocked() {
	local master n=100
	master=$(postconf -dh daemon_directory 2>/dev/null || echo /usr/lib/postfix/sbin)/master
	while ! "$master" -c "$dir/postfix" -t 2>/dev/null && ((n-- > 0)); do
		sleep 0.05
	done
}

# alive PID: the process exists and is not a zombie (daemons are reparented
# to pid 1, which may reap them late: a zombie counts as gone)
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# pgid_of PID: process group, from /proc (no procps needed)
pgid_of() {
	local stat pgid
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	read -r _ _ pgid _ <<<"$stat"
	echo "$pgid"
}

# wait_gone PID SECONDS: poll until PID has exited
wait_gone() {
	local pid=$1 n=$(($2 * 20))
	while alive "$pid" && ((n-- > 0)); do
		sleep 0.05
	done
	! alive "$pid"
}

# Postfix daemons run as postfix/nobody/dovecot, so every ancestor of DIR must
# be searchable by others. bats makes its run folder 0700: add o+x (search
# only, never read) to ancestors that we own; fail on ones we do not.
make_traversable() {
	local d=$1
	while [[ $d != / && -n $d ]]; do
		if [[ -d $d ]] && ! stat -c %A "$d" | grep -q '^.\{9\}[xt]'; then
			if [[ $(stat -c %u "$d") == "$(id -u)" ]]; then
				chmod o+x "$d"
			else
				die "$d is not searchable by other users (Postfix/Dovecot run as other users)"
			fi
		fi
		d=$(dirname "$d")
	done
}

# print N distinct free TCP ports on 127.0.0.1 (held open together, then released)
free_ports() {
	"$PY" - "$1" <<'PYEOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PYEOF
}

# ports_listening PORT...: all are in LISTEN state on 127.0.0.1, read from
# /proc/net/tcp (no ss needed, and no test connection that smtpd would log
# as a failed TLS handshake)
ports_listening() {
	local table p
	table=$(cat /proc/net/tcp) || return 1
	for p; do
		grep -Eq ": (0100007F|7F000001):$(printf '%04X' "$p") 00000000:0000 0A " <<<"$table" || return 1
	done
}

print_logs() {
	local f
	for f in "$dir"/log/start.log "$dir"/log/maillog "$dir"/log/dovecot.log; do
		[[ -s $f ]] || continue
		echo "----- $f (last 40 lines)" >&2
		tail -n 40 "$f" >&2
	done
}

write_config() {
	local p=$dir/pki
	# Users. {PLAIN} storage lets Dovecot offer PLAIN LOGIN CRAM-MD5 SCRAM-*,
	# with a fresh salt each time; {SCRAM-*} storage keeps one salt and
	# count (doveadm pw -s SCRAM-SHA-256), and does PLAIN and LOGIN.
	cat >"$dir/dovecot/passwd" <<-'EOF'
		alice:{PLAIN}wonder land-42::::::
		bob:{PLAIN}b0b-pass::::::
		carol:{SCRAM-SHA-256}4096,ZIX4O6j8KzQd2bTRyW95vQ==,7jVXSgECQV5jmwiyMl/5EC84QhqcHzrCyhEzrr6kdco=,DcByOO+HVnVNMV7FpIsrti7hVT5qtkuOsU/pg4ZNEUs=::::::
		dave:{SCRAM-SHA-1}4096,PuMFgEFwWs0tQRao2OM/jQ==,RtDGUQ054WsSaoox7SW8imu5f6A=,PA3DalM1GIX9LVN22ulZbzqn8yI=::::::
	EOF
	chown root:dovecot "$dir/dovecot/passwd"
	chmod 0640 "$dir/dovecot/passwd"

	cat >"$dir/dovecot/dovecot.conf" <<-EOF
		# outbox test bed: Dovecot as SASL server for Postfix only
		base_dir = $dir/run
		state_dir = $dir/dovecot/state
		instance_name = outbox-testbed-$$
		protocols = none
		listen = 127.0.0.1
		ssl = no
		disable_plaintext_auth = no
		auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256 xoauth2 oauthbearer
		auth_failure_delay = 0
		auth_verbose = yes
		log_path = $dir/log/dovecot.log
		info_log_path = $dir/log/dovecot.log
		debug_log_path = $dir/log/dovecot.log
		# Failed logins are answered on a 500 ms timer, even with
		# auth_failure_delay = 0, unless the "nodelay" field is set. A first
		# passdb that always matches sets it and hands over to the real one
		# (continue-fail: the final answer is the passwd-file's).
		passdb {
		  driver = static
		  args = nopassword=y nodelay=y
		  result_success = continue-fail
		  result_failure = continue-fail
		  result_internalfail = continue-fail
		}
		passdb {
		  driver = passwd-file
		  args = scheme=PLAIN username_format=%u $dir/dovecot/passwd
		  mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
		}
		# bearer tokens: checked at the authorization server's
		# introspection endpoint (RFC 7662)
		passdb {
		  driver = oauth2
		  mechanisms = xoauth2 oauthbearer
		  args = $dir/dovecot/oauth2.conf.ext
		}
		userdb {
		  driver = static
		  args = uid=65534 gid=65534 home=/nonexistent
		}
		# no growing delay (2, 4, 8, 15 s) per IP after failed logins: tests
		# send wrong passwords on purpose
		service anvil {
		  unix_listener anvil-auth-penalty {
		    mode = 0
		  }
		}
		service auth {
		  unix_listener auth-postfix {
		    mode = 0660
		    user = postfix
		    group = postfix
		  }
		}
	EOF

	cat >"$dir/dovecot/oauth2.conf.ext" <<-EOF
		introspection_mode = post
		introspection_url = https://localhost:$authserver/introspect
		tls_ca_cert_file = $p/ca.pem
		username_attribute = username
		active_attribute = active
		active_value = true
	EOF
	chown root:dovecot "$dir/dovecot/oauth2.conf.ext"
	chmod 0640 "$dir/dovecot/oauth2.conf.ext"

	# Recipients: bob -> mail/bob/, everything else -> mail/catchall/
	cat >"$dir/postfix/vmailbox" <<-'EOF'
		bob@example.org bob/
	EOF
	# Refused at RCPT whatever the client: later@ for now, never@ for good
	cat >"$dir/postfix/rcpt_access" <<-'EOF'
		later@example.org 451 4.7.1 later@example.org: try again later
		never@example.org 550 5.7.1 never@example.org: refused for good
	EOF

	cat >"$dir/postfix/main.cf" <<-EOF
		# outbox test bed: private Postfix instance, loopback only, no DNS, no relay
		compatibility_level = 3.6
		queue_directory = $dir/queue
		data_directory = $dir/data
		mail_owner = postfix
		setgid_group = postdrop
		myhostname = mx.outbox.test
		mydomain = outbox.test
		myorigin = \$myhostname
		mydestination =
		relay_domains =
		mynetworks = 127.0.0.1/32
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		biff = no

		# no DNS, no syslog
		smtp_dns_support_level = disabled
		smtp_host_lookup = native
		lmtp_host_lookup = native
		smtpd_peername_lookup = no
		alias_maps =
		alias_database =
		maillog_file = $dir/log/maillog
		maillog_file_prefixes = $dir/log

		# keep content byte-exact
		local_header_rewrite_clients =
		always_add_missing_headers = no
		smtpd_sasl_authenticated_header = no
		smtpd_tls_received_header = no

		# everything is delivered here, never relayed
		virtual_mailbox_domains = static:all
		virtual_mailbox_base = $dir/mail
		virtual_mailbox_maps = texthash:$dir/postfix/vmailbox, static:catchall/
		virtual_uid_maps = static:65534
		virtual_gid_maps = static:65534
		virtual_mailbox_limit = 0
		mailbox_size_limit = 0
		message_size_limit = 300000000
		default_transport = error:outbox test bed never relays
		relay_transport = error:outbox test bed never relays
		delay_warning_time = 0

		# SASL through Dovecot
		smtpd_sasl_type = dovecot
		smtpd_sasl_path = $dir/run/auth-postfix
		smtpd_sasl_auth_enable = yes
		smtpd_tls_auth_only = yes
		smtpd_relay_restrictions = permit_sasl_authenticated, reject
		# two recipients the server always refuses, for partial refusals
		smtpd_recipient_restrictions =
		    check_recipient_access texthash:$dir/postfix/rcpt_access,
		    permit_sasl_authenticated, reject

		# TLS (the -o options in master.cf pick the level per port)
		smtpd_tls_security_level = encrypt
		smtpd_tls_chain_files = $p/server.key, $p/server.pem
		smtpd_tls_loglevel = 1
		# ask for (never require) a client certificate, verified against the
		# test CA: the log then says "Trusted TLS connection" when the client
		# sent DIR/pki/client.pem, "Anonymous" when it sent none
		smtpd_tls_ask_ccert = yes
		smtpd_tls_CAfile = $p/ca.pem
		tls_random_source = dev:/dev/urandom
		outbox_wrongname_chain = $p/wrongname.key, $p/wrongname.pem
		outbox_expired_chain = $p/expired.key, $p/expired.pem
		outbox_selfsigned_chain = $p/selfsigned.key, $p/selfsigned.pem
		outbox_future_chain = $p/future.key, $p/future.pem
		outbox_weak_chain = $p/weak.key, $p/weak.pem

		# tests send wrong passwords and odd commands: no penalty sleeps
		smtpd_error_sleep_time = 0s
		smtpd_soft_error_limit = 1000
		smtpd_hard_error_limit = 1000
		smtpd_junk_command_limit = 1000
		smtpd_client_connection_count_limit = 0
		smtpd_client_connection_rate_limit = 0
		smtpd_client_auth_rate_limit = 0
	EOF

	local sub=$1 smtps=$2 wrong=$3 expired=$4 selfsigned=$5 plain=$6 small=$7
	local future=$8 weak=$9 oauth=${10}
	# Every port but OAUTH_PORT offers the mechanisms it always did.
	local nobearer="-o smtpd_sasl_mechanism_filter=!xoauth2,!oauthbearer,static:all"
	cat >"$dir/postfix/master.cf" <<-EOF
		# service type  private unpriv  chroot  wakeup  maxproc command + args
		127.0.0.1:$sub inet n - n - - smtpd
		  $nobearer
		  -o syslog_name=postfix/submission
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_auth_only=yes
		127.0.0.1:$smtps inet n - n - - smtpd
		  $nobearer
		  -o syslog_name=postfix/smtps
		  -o smtpd_tls_wrappermode=yes
		  -o smtpd_tls_security_level=encrypt
		127.0.0.1:$wrong inet n - n - - smtpd
		  $nobearer
		  -o syslog_name=postfix/wrongname
		  -o smtpd_tls_wrappermode=yes
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_chain_files=\$outbox_wrongname_chain
		127.0.0.1:$expired inet n - n - - smtpd
		  $nobearer
		  -o syslog_name=postfix/expired
		  -o smtpd_tls_wrappermode=yes
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_chain_files=\$outbox_expired_chain
		127.0.0.1:$selfsigned inet n - n - - smtpd
		  $nobearer
		  -o syslog_name=postfix/selfsigned
		  -o smtpd_tls_wrappermode=yes
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_chain_files=\$outbox_selfsigned_chain
		127.0.0.1:$plain inet n - n - - smtpd
		  $nobearer
		  -o syslog_name=postfix/plain
		  -o smtpd_tls_security_level=none
		  -o smtpd_tls_auth_only=no
		  -o smtpd_sasl_auth_enable=yes
		127.0.0.1:$small inet n - n - - smtpd
		  $nobearer
		  -o syslog_name=postfix/small
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_auth_only=yes
		  -o message_size_limit=10000
		127.0.0.1:$future inet n - n - - smtpd
		  $nobearer
		  -o syslog_name=postfix/future
		  -o smtpd_tls_wrappermode=yes
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_chain_files=\$outbox_future_chain
		127.0.0.1:$weak inet n - n - - smtpd
		  $nobearer
		  -o syslog_name=postfix/weak
		  -o smtpd_tls_wrappermode=yes
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_chain_files=\$outbox_weak_chain
		127.0.0.1:$oauth inet n - n - - smtpd
		  -o syslog_name=postfix/oauth
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_auth_only=yes
		pickup    unix  n       -       n       60      1       pickup
		cleanup   unix  n       -       n       -       0       cleanup
		qmgr      unix  n       -       n       300     1       qmgr
		tlsmgr    unix  -       -       n       1000?   1       tlsmgr
		rewrite   unix  -       -       n       -       -       trivial-rewrite
		bounce    unix  -       -       n       -       0       bounce
		defer     unix  -       -       n       -       0       bounce
		trace     unix  -       -       n       -       0       bounce
		verify    unix  -       -       n       -       1       verify
		flush     unix  n       -       n       1000?   0       flush
		proxymap  unix  -       -       n       -       -       proxymap
		proxywrite unix -       -       n       -       1       proxymap
		smtp      unix  -       -       n       -       -       smtp
		relay     unix  -       -       n       -       -       smtp
		showq     unix  n       -       n       -       -       showq
		error     unix  -       -       n       -       -       error
		retry     unix  -       -       n       -       -       error
		discard   unix  -       -       n       -       -       discard
		local     unix  -       n       n       -       -       local
		virtual   unix  -       n       n       -       -       virtual
		lmtp      unix  -       -       n       -       -       lmtp
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
	# Postfix re-reads a table or main.cf written less than ~2 s ago (300 ms
	# naps until its mtime is in the past). Backdate them to skip the wait.
	touch -d "@$((EPOCHSECONDS - 60))" "$dir"/postfix/{main.cf,master.cf,vmailbox,rcpt_access}
}

# print the logs, stop whatever did start, fail
start_failed() {
	print_logs
	do_stop
	die "$*"
}

do_start() {
	if [[ $(id -u) != 0 ]]; then
		die "must run as root (Postfix and Dovecot start as root)"
	fi
	local b
	for b in postfix postconf dovecot; do
		command -v "$b" >/dev/null || [[ -x /usr/sbin/$b ]] || die "$b not installed (run tests/lib/deps.sh)"
	done
	export PATH=$PATH:/usr/sbin:/sbin
	if postfix_pid >/dev/null || dovecot_pid >/dev/null; then
		die "an instance is already running in $dir (run: $0 stop $dir)"
	fi

	mkdir -p "$dir"/{postfix,queue,data,dovecot/state,run,log,mail}
	make_traversable "$dir"
	chmod 0755 "$dir" "$dir"/{postfix,queue,dovecot,dovecot/state,log}
	chown postfix "$dir/data"
	chown 65534:65534 "$dir/mail"
	chmod 0755 "$dir/mail"
	rm -f "$dir/env"
	: >"$dir/log/start.log"
	"$LIB/pki.sh" "$dir/pki" >>"$dir/log/start.log" 2>&1 || start_failed "pki.sh failed"

	# The authorization server first: Dovecot's oauth2 passdb points at it.
	local authserver
	authserver_start || start_failed "authserver.py did not start"
	authserver=$(<"$dir/authserver.port")

	local attempt ports
	for attempt in 1 2 3; do
		read -r -a ports <<<"$(free_ports ${#PORT_NAMES[@]})" || true
		if ((${#ports[@]} != ${#PORT_NAMES[@]})); then
			start_failed "could not pick free ports with $PY"
		fi
		write_config "${ports[@]}"
		# creates the queue folders; silence and detach all fds
		if ! postfix -c "$dir/postfix" check </dev/null >>"$dir/log/start.log" 2>&1; then
			start_failed "postfix check failed"
		fi
		# postfix start would run the same checks again unless told not to
		touch "$dir/queue/quick-start"
		if ! dovecot_pid >/dev/null; then
			# stale sockets of a killed instance confuse the new one (a
			# leftover anvil-auth-penalty socket costs 5 s on the first login)
			rm -rf "$dir/run"
			mkdir -p "$dir/run"
			if ! dovecot -c "$dir/dovecot/dovecot.conf" </dev/null >>"$dir/log/start.log" 2>&1; then
				start_failed "dovecot failed to start"
			fi
		fi
		postfix_wait_unlocked
		if postfix -c "$dir/postfix" start </dev/null >>"$dir/log/start.log" 2>&1; then
			break
		fi
		# most likely a port was taken between picking and binding: retry
		if ((attempt == 3)); then
			start_failed "postfix failed to start"
		fi
		echo "mta.sh: postfix start failed, retrying with other ports" >>"$dir/log/start.log"
	done

	# wait (bounded) for every port and the SASL socket
	local deadline=$((SECONDS + START_TIMEOUT))
	while :; do
		if [[ -S $dir/run/auth-postfix ]] && ports_listening "${ports[@]}"; then
			break
		fi
		if ((SECONDS >= deadline)); then
			start_failed "servers not ready after ${START_TIMEOUT}s"
		fi
		sleep 0.05
	done

	local i tmp=$dir/env.tmp
	{
		for i in "${!PORT_NAMES[@]}"; do
			echo "export ${PORT_NAMES[$i]}=${ports[$i]}"
		done
		echo "export MTA_CA=$dir/pki/ca.pem"
		echo "export MTA_PKI=$dir/pki"
		echo "export MTA_MAILDIR=$dir/mail"
		echo "export MTA_DIR=$dir"
		echo "export AUTHSERVER_PORT=$authserver"
	} >"$tmp"
	mv -f "$tmp" "$dir/env"
}

# tests/lib/authserver.py for Dovecot's oauth2 passdb, detached, its pid
# and port under DIR/run/authserver.*
authserver_start() {
	local i
	mkdir -p "$dir/run"
	rm -f "$dir/authserver.port"
	setsid "$PY" "$LIB/authserver.py" --port-file "$dir/authserver.port" \
		--log "$dir/log/authserver.log" --cert "$dir/pki/server.pem" \
		--key "$dir/pki/server.key" --client-id outbox-test --user alice --token-length 3000 \
		--max-seconds 86400 </dev/null >>"$dir/log/start.log" 2>&1 &
	echo $! >"$dir/authserver.pid.tmp"
	for ((i = 0; i < 100; i++)); do
		[[ -s $dir/authserver.port ]] && break
		sleep 0.05
	done
	[[ -s $dir/authserver.port ]]
}

authserver_stop() {
	local pid
	[[ -r $dir/authserver.pid.tmp ]] || return 0
	read -r pid <"$dir/authserver.pid.tmp" || return 0
	if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" &&
		grep -q authserver "/proc/$pid/cmdline" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait_gone "$pid" 2 || kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/authserver.pid.tmp"
}

# Postfix alone, on the ports it had: a server that goes away and comes
# back (the queue tests); Dovecot and the authorization server stay.
do_postfix_stop() {
	local ppid
	ppid=$(postfix_pid) || return 0
	kill -TERM "$ppid" 2>/dev/null || true
	if ! wait_gone "$ppid" 5; then
		kill -KILL "$ppid" 2>/dev/null || true
		wait_gone "$ppid" 2 || true
	fi
	kill -KILL -- "-$ppid" 2>/dev/null || true
	postfix_wait_unlocked
}

do_postfix_start() {
	export PATH=$PATH:/usr/sbin:/sbin
	postfix_pid >/dev/null && return 0
	postfix_wait_unlocked
	touch "$dir/queue/quick-start"
	postfix -c "$dir/postfix" start </dev/null >>"$dir/log/start.log" 2>&1 ||
		die "postfix start failed (see $dir/log/start.log)"
}

do_stop() {
	local ppid dpid
	authserver_stop
	if ppid=$(postfix_pid); then
		kill -TERM "$ppid" 2>/dev/null || true
	fi
	# Dovecot only does SASL here: nothing to save, and a graceful stop costs
	# 1 s (its master naps after signalling its children). Kill its process
	# group (the master is a session leader) outright.
	if dpid=$(dovecot_pid); then
		if [[ $(pgid_of "$dpid") == "$dpid" ]]; then
			kill -KILL -- "-$dpid" 2>/dev/null || true
		else
			kill -TERM "$dpid" 2>/dev/null || true
		fi
	fi
	if [[ -n $ppid ]]; then
		if ! wait_gone "$ppid" 5; then
			kill -KILL "$ppid" 2>/dev/null || true
			wait_gone "$ppid" 2 || true
		fi
		# The master is a session leader; its children (same process group)
		# got SIGTERM from it but may linger and keep master.pid locked, so
		# the next "postfix start" would say "already running".
		kill -KILL -- "-$ppid" 2>/dev/null || true
		postfix_wait_unlocked
	fi
	if [[ -n $dpid ]] && ! wait_gone "$dpid" 5; then
		kill -KILL "$dpid" 2>/dev/null || true
		wait_gone "$dpid" 2 || true
	fi
	# A killed Dovecot may linger as a zombie until pid 1 reaps it, and the
	# next "dovecot" start would take it for a running instance.
	if [[ -n $dpid ]] && ! alive "$dpid"; then
		rm -f "$dir/run/master.pid"
	fi
	rm -f "$dir/env"
}

do_status() {
	local pp dp rc=0
	if pp=$(postfix_pid); then
		echo "postfix: running (pid $pp)"
	else
		echo "postfix: not running"
		rc=1
	fi
	if dp=$(dovecot_pid); then
		echo "dovecot: running (pid $dp)"
	else
		echo "dovecot: not running"
		rc=1
	fi
	if ((rc == 0)) && [[ -r $dir/env ]]; then
		cat "$dir/env"
	elif ((rc == 0)); then
		rc=1 # still starting, or start failed half way
	fi
	return $rc
}

[[ $# -eq 2 ]] || usage
cmd=$1
[[ -n $2 ]] || usage
[[ $2 != *[[:space:],\"\'\$\\]* ]] || die "DIR must not contain spaces, commas, quotes, \$ or backslashes: $2"
dir=$(realpath -m "$2")
if [[ $cmd == start ]]; then
	# Unix socket paths are limited to 107 bytes (Dovecot's longest is
	# DIR/run/token-login/tokenlogin).
	if ((${#dir} > 70)); then
		die "DIR path too long for unix sockets (${#dir} > 70 chars): $dir"
	fi
	mkdir -p "$dir" || die "cannot create $dir"
fi

case $cmd in
start) do_start ;;
stop) do_stop ;;
postfix-stop) do_postfix_stop ;;
postfix-start) do_postfix_start ;;
status) do_status ;;
*) usage ;;
esac
