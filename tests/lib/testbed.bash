# tests/lib/testbed.bash -- shared helpers for the outbox bats suites.
#
# In a suite (tests/NN-name.bats):
#
#   load lib/testbed
#   setup_file()    { mta_setup_file; keyring_setup_file; }
#   teardown_file() { keyring_teardown_file; mta_teardown_file; }
#   setup()         { maildir_clear bob; maildir_clear catchall; }
#
# Strict mode (CI=true or OUTBOX_STRICT=1): a server or keyring that cannot
# be provided fails setup_file. Otherwise missing prerequisites (not root,
# package not installed) skip the suite with the reason. A start that fails
# although everything is installed fails in both modes: that is a bug.
#
# Variables after mta_setup_file: SUBMISSION_PORT SMTPS_PORT WRONGNAME_PORT
# EXPIRED_PORT SELFSIGNED_PORT PLAIN_PORT SMALL_PORT MTA_CA MTA_PKI MTA_MAILDIR
# MTA_DIR (see tests/lib/mta.sh). After keyring_setup_file:
# DBUS_SESSION_BUS_ADDRESS XDG_DATA_HOME KEYRING_DIR.
# shellcheck shell=bash

TESTBED_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TESTBED_LIB

# bats-support / bats-assert as packaged by Debian
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# Each test gets its own queue (outbox's state folder), so tests do not
# share queued messages and nothing is left in the real home.
export XDG_STATE_HOME="${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-/tmp}}/state"
export XDG_CACHE_HOME="${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-/tmp}}/cache"
# No background retrier unless a test asks for one (tests/76-retrier.bats):
# each test decides when its queue is flushed.
export OUTBOX_NO_RETRIER=1

# The binary under test.
if [[ -z ${OUTBOX:-} ]]; then
	OUTBOX=$(realpath -m "$BATS_TEST_DIRNAME/../outbox")
fi
export OUTBOX

# bats before 1.9 (Debian 12 has 1.8.2) cannot skip from setup_file. So
# testbed_unavailable records the reason in TESTBED_SKIP_REASON (exported
# from setup_file to every test) and this hook on bats' per-test entry
# point skips each test instead of running setup/teardown.
if declare -F bats_test_begin >/dev/null && ! declare -F _testbed_bats_test_begin >/dev/null; then
	eval "_testbed_$(declare -f bats_test_begin)"
	bats_test_begin() {
		if [[ -n ${TESTBED_SKIP_REASON:-} ]]; then
			# shellcheck disable=SC2317
			setup() { skip "$TESTBED_SKIP_REASON"; }
			# shellcheck disable=SC2317
			teardown() { :; }
		fi
		_testbed_bats_test_begin "$@"
	}
fi

testbed_strict() {
	[[ ${CI:-} == true || ${OUTBOX_STRICT:-0} == 1 ]]
}

# testbed_unavailable REASON: the test bed cannot be provided. Strict mode:
# fails (returns 1). Otherwise: in a test or setup, skips; in setup_file,
# marks every test of the file to be skipped and returns 0 -- the rest of
# setup_file still runs, so guard code there that needs the servers with
# [[ -z ${TESTBED_SKIP_REASON:-} ]].
testbed_unavailable() {
	if testbed_strict; then
		echo "testbed: $1 (strict mode: CI=true or OUTBOX_STRICT=1 turns this into a failure)" >&2
		return 1
	fi
	if [[ -n ${BATS_TEST_NAME:-} ]]; then
		skip "$1"
	fi
	# keep the first reason
	export TESTBED_SKIP_REASON=${TESTBED_SKIP_REASON:-$1}
}

# ---------------------------------------------------------------- mail server

_mta_missing() {
	if [[ $(id -u) != 0 ]]; then
		echo "the Postfix/Dovecot test bed needs root"
		return 0
	fi
	local b
	for b in postfix dovecot; do
		if ! command -v "$b" >/dev/null && [[ ! -x /usr/sbin/$b ]]; then
			echo "$b not installed (run tests/lib/deps.sh)"
			return 0
		fi
	done
	if [[ ! -x /usr/bin/python3 ]] || ! /usr/bin/python3 -c 'import cryptography' 2>/dev/null; then
		echo "/usr/bin/python3 with python3-cryptography not installed (run tests/lib/deps.sh)"
		return 0
	fi
	return 1
}

# Use the instance in $MTA_SHARED_DIR if one runs there, else start a private
# one in $BATS_FILE_TMPDIR/mta (stopped again by mta_teardown_file).
mta_setup_file() {
	local dir reason
	if [[ -n ${MTA_SHARED_DIR:-} ]] && "$TESTBED_LIB/mta.sh" status "$MTA_SHARED_DIR" >/dev/null 2>&1; then
		dir=$MTA_SHARED_DIR
		export TESTBED_MTA_OWNED=0
	else
		if reason=$(_mta_missing); then
			testbed_unavailable "$reason"
			return
		fi
		dir=$BATS_FILE_TMPDIR/mta
		if ! "$TESTBED_LIB/mta.sh" start "$dir" >&2; then
			echo "testbed: tests/lib/mta.sh start $dir failed" >&2
			return 1
		fi
		export TESTBED_MTA_OWNED=1
	fi
	# shellcheck source=/dev/null
	source "$dir/env"
}

mta_teardown_file() {
	if [[ ${TESTBED_MTA_OWNED:-0} == 1 && -n ${MTA_DIR:-} ]]; then
		"$TESTBED_LIB/mta.sh" stop "$MTA_DIR" >&2
	fi
}

# mta_log [N]: last N (default 30) lines of the Postfix log, for diagnostics
mta_log() {
	tail -n "${1:-30}" "$MTA_DIR/log/maillog"
}

# mta_log_mark: remember the end of the Postfix log; mta_log_wait then only
# looks at lines written after it.
mta_log_mark() {
	TESTBED_LOG_MARK=$(wc -l <"$MTA_DIR/log/maillog")
}

# mta_log_since_mark: the Postfix log lines written after the last
# mta_log_mark (all of it without a mark). The log is shared by every test
# of a file (of all files with MTA_SHARED_DIR), so check absence this way:
#   mta_log_mark; run "$OUTBOX" ...; mta_log_wait 'disconnect from'
#   run mta_log_since_mark; refute_output --partial 'sasl_method=PLAIN'
mta_log_since_mark() {
	tail -n +$((${TESTBED_LOG_MARK:-0} + 1)) "$MTA_DIR/log/maillog"
}

# mta_log_wait ERE [TIMEOUT]: wait (default 10 s) until a Postfix log line
# (after the last mta_log_mark) matches the extended regexp; print it.
# Postfix logs through postlogd, a moment after the event.
mta_log_wait() {
	local re=$1 timeout=${2:-10} deadline
	deadline=$((SECONDS + timeout))
	while :; do
		if mta_log_since_mark | grep -E -m1 -- "$re"; then
			return 0
		fi
		if ((SECONDS >= deadline)); then
			echo "mta_log_wait: no log line matching '$re' after ${timeout}s" >&2
			mta_log 15 >&2
			return 1
		fi
		sleep 0.05
	done
}

# ---------------------------------------------------------------- keyring

_keyring_missing() {
	local b
	for b in dbus-daemon dbus-send gnome-keyring-daemon secret-tool; do
		if ! command -v "$b" >/dev/null; then
			echo "$b not installed (run tests/lib/deps.sh)"
			return 0
		fi
	done
	return 1
}

# Use the keyring in $KEYRING_SHARED_DIR if one runs there, else start a
# private one in $BATS_FILE_TMPDIR/keyring. Exports DBUS_SESSION_BUS_ADDRESS
# and XDG_DATA_HOME, so every later command talks to it.
keyring_setup_file() {
	local dir reason
	if [[ -n ${KEYRING_SHARED_DIR:-} ]] && "$TESTBED_LIB/keyring.sh" status "$KEYRING_SHARED_DIR" >/dev/null 2>&1; then
		dir=$KEYRING_SHARED_DIR
		export TESTBED_KEYRING_OWNED=0
	else
		if reason=$(_keyring_missing); then
			testbed_unavailable "$reason"
			return
		fi
		dir=$BATS_FILE_TMPDIR/keyring
		if ! "$TESTBED_LIB/keyring.sh" start "$dir" >&2; then
			echo "testbed: tests/lib/keyring.sh start $dir failed" >&2
			return 1
		fi
		export TESTBED_KEYRING_OWNED=1
	fi
	# shellcheck source=/dev/null
	source "$dir/keyring.env"
}

keyring_teardown_file() {
	if [[ ${TESTBED_KEYRING_OWNED:-0} == 1 && -n ${KEYRING_DIR:-} ]]; then
		"$TESTBED_LIB/keyring.sh" stop "$KEYRING_DIR" >&2
	fi
}

# ---------------------------------------------------------------- Maildirs
# BOX is a folder under $MTA_MAILDIR: "bob" (bob@example.org) or "catchall"
# (every other recipient). Postfix creates it on first delivery.

maildir_count() {
	local files
	shopt -s nullglob
	files=("$MTA_MAILDIR/$1"/new/*)
	shopt -u nullglob
	echo "${#files[@]}"
}

# maildir_wait BOX N [TIMEOUT]: wait until BOX/new holds at least N messages
maildir_wait() {
	local box=$1 want=$2 timeout=${3:-10} n
	local deadline=$((SECONDS + timeout))
	while :; do
		n=$(maildir_count "$box")
		((n >= want)) && return 0
		if ((SECONDS >= deadline)); then
			echo "maildir_wait: $box has $n message(s), wanted $want, after ${timeout}s" >&2
			echo "----- last lines of $MTA_DIR/log/maillog" >&2
			tail -n 15 "$MTA_DIR/log/maillog" >&2 || true
			return 1
		fi
		sleep 0.05
	done
}

# maildir_newest BOX: path of the newest message in BOX/new. Maildir names
# from Postfix are SECONDS.V<dev>I<inode>M<microseconds>.HOST.
maildir_newest() {
	local newest
	# shellcheck disable=SC2012 # Maildir names are plain ASCII
	newest=$(cd "$MTA_MAILDIR/$1/new" 2>/dev/null && ls -1 | LC_ALL=C awk '
		{
			sec = $0; sub(/\..*/, "", sec)
			us = 0
			if (match($0, /M[0-9]+/)) us = substr($0, RSTART + 1, RLENGTH - 1)
			key = sec * 1000000 + us
			if (NR == 1 || key > best) { best = key; name = $0 }
		}
		END { if (NR) print name }')
	if [[ -z $newest ]]; then
		echo "maildir_newest: no message in $MTA_MAILDIR/$1/new" >&2
		return 1
	fi
	echo "$MTA_MAILDIR/$1/new/$newest"
}

# maildir_raw BOX: the newest message as stored, Postfix's headers included
maildir_raw() {
	local file
	file=$(maildir_newest "$1") || return 1
	cat "$file"
}

# maildir_last BOX: the newest message without the headers Postfix put on
# top (Return-Path, X-Original-To, Delivered-To, and the first Received
# with its continuation lines): the rest is byte for byte what the client
# sent after DATA, with CRLF turned into LF and dot-stuffing undone.
maildir_last() {
	local file
	file=$(maildir_newest "$1") || return 1
	local LC_ALL=C line skip=0 rp=0 xo=0 dt=0 rc=0
	while IFS= read -r line; do
		if ((rc)); then
			# Received seen: skip its continuation lines, then stop
			[[ $line == [$' \t']* ]] || break
		else
			case $line in
			Return-Path:*) ((rp)) && break; rp=1 ;;
			X-Original-To:*) ((xo)) && break; xo=1 ;;
			Delivered-To:*) ((dt)) && break; dt=1 ;;
			Received:*) rc=1 ;;
			*) break ;;
			esac
		fi
		skip=$((skip + ${#line} + 1))
	done <"$file"
	# tail -c keeps every byte of the rest (NULs, long lines, no final LF)
	tail -c +$((skip + 1)) "$file"
}

maildir_clear() {
	local d
	for d in new cur tmp; do
		rm -f "$MTA_MAILDIR/$1/$d"/* 2>/dev/null || true
	done
}

# ---------------------------------------------------------------- client config

# outbox_config [--no-password] FILE [extra lines...]
# msmtp-style config for the STARTTLS port as alice. Extra lines go at the
# end, inside the account (later lines override earlier ones). With
# --no-password the password line is left out (keyring tests).
outbox_config() {
	local with_password=1
	if [[ ${1:-} == --no-password ]]; then
		with_password=0
		shift
	fi
	local file=$1
	shift
	: "${SUBMISSION_PORT:?outbox_config: no mail server (call mta_setup_file)}"
	(
		umask 077
		{
			echo "# written by tests/lib/testbed.bash outbox_config"
			echo "account default"
			echo "host localhost"
			echo "port $SUBMISSION_PORT"
			echo "from alice@example.org"
			echo "auth on"
			echo "user alice"
			if ((with_password)); then
				echo 'password "wonder land-42"'
			fi
			echo "tls on"
			echo "tls_trust_file $MTA_CA"
			local l
			for l in "$@"; do
				printf '%s\n' "$l"
			done
		} >"$file"
	)
	chmod 0600 "$file"
}

# pin_of CERT: the SHA-256 fingerprint (AB:CD:...) of a certificate in the
# test bed's pki folder, as tls_fingerprint takes it
pin_of() {
	openssl x509 -in "$MTA_DIR/pki/$1" -noout -fingerprint -sha256 | cut -d= -f2
}

# ---------------------------------------------------------------- raw SMTP

# smtp_ehlo PORT: connect in plaintext to 127.0.0.1:PORT, send EHLO and print
# the banner and EHLO reply lines (CR removed). For checking what a port
# offers before TLS, e.g. that PLAIN_PORT offers AUTH but no STARTTLS.
smtp_ehlo() {
	local port=$1 fd line
	exec {fd}<>"/dev/tcp/127.0.0.1/$port" || return 1
	if ! IFS= read -r -t 5 line <&"$fd"; then
		exec {fd}>&-
		echo "smtp_ehlo: no banner from port $port" >&2
		return 1
	fi
	printf '%s\n' "${line%$'\r'}"
	printf 'EHLO testbed.invalid\r\n' >&"$fd"
	while IFS= read -r -t 5 line <&"$fd"; do
		line=${line%$'\r'}
		printf '%s\n' "$line"
		[[ $line == [0-9][0-9][0-9]' '* ]] && break
	done
	printf 'QUIT\r\n' >&"$fd"
	exec {fd}>&-
}
