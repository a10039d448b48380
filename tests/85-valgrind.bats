#!/usr/bin/env bats
# Memory checks: outbox under valgrind memcheck on the main paths -- a
# delivery over STARTTLS and over implicit TLS to the real server, -P, a
# config error, a 5xx from the fault server and a bad message -- with no
# memory error and no definite or indirect leak.  GnuTLS and p11-kit keep
# "still reachable" blocks until exit; those are not counted.  A library
# leak that shows as definite goes into tests/valgrind.supp (naming the
# library), never a frame of outbox's own.

load 'lib/testbed'
load 'lib/faultsmtp'
bats_require_minimum_version 1.5.0

setup_file() {
	if ! command -v valgrind >/dev/null; then
		testbed_unavailable "valgrind not installed"
	fi
	mta_setup_file
}

teardown_file() {
	mta_teardown_file
}

setup() {
	RC=$BATS_TEST_TMPDIR/rc
	MSG=$BATS_TEST_TMPDIR/msg
	export OUTBOX_SYSCONF=
	export XDG_STATE_HOME=$BATS_TEST_TMPDIR/state
	printf 'From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: vg\n\nunder valgrind\n' >"$MSG"
}

teardown() {
	fault_stop
}

# vg ARGS...: run outbox under memcheck (stdin from $MSG) into status,
# output and stderr.  Memcheck's findings go to $VGDIR/vg.PID.log, one per
# process (children are followed: "queue always" sends from a child); a
# non-empty log holds findings, and exit 99 means an error or a counted leak.
vg() {
	VGDIR=$BATS_TEST_TMPDIR/valgrind
	mkdir -p "$VGDIR"
	local supp=()
	[[ -f $BATS_TEST_DIRNAME/valgrind.supp ]] &&
		supp=(--suppressions="$BATS_TEST_DIRNAME/valgrind.supp")
	run --separate-stderr valgrind -q --error-exitcode=99 \
		--leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --track-fds=no \
		--trace-children=yes --num-callers=30 "${supp[@]}" \
		--log-file="$VGDIR/vg.%p.log" "$OUTBOX" "$@" <"$MSG"
}

# assert_clean: no memcheck report from any process, and outbox's own
# status is not the one memcheck uses.
assert_clean() {
	local f dirty=0
	for f in "$VGDIR"/vg.*.log; do
		[[ -s $f ]] && dirty=1
	done
	if ((dirty)) || [[ $status == 99 ]]; then
		echo "memcheck found problems (exit $status):" >&2
		cat "$VGDIR"/vg.*.log >&2
		echo "outbox stderr: $stderr" >&2
		return 1
	fi
}

@test "STARTTLS delivery: no memory error or leak, exit 0" {
	outbox_config "$RC"
	maildir_clear bob
	vg -C "$RC" bob@example.org
	assert_clean
	assert_equal "$status" 0
	maildir_wait bob 1
}

@test "implicit TLS delivery: no memory error or leak, exit 0" {
	outbox_config "$RC" "port $SMTPS_PORT" "tls_starttls off"
	maildir_clear bob
	vg -C "$RC" bob@example.org
	assert_clean
	assert_equal "$status" 0
	maildir_wait bob 1
}

@test "-P: no memory error or leak, exit 0" {
	outbox_config "$RC"
	vg -C "$RC" -P
	assert_clean
	assert_equal "$status" 0
	assert_output --partial "$SUBMISSION_PORT"
}

@test "config error: no memory error or leak, exit 78" {
	outbox_config "$RC" "port 99999"
	vg -C "$RC" bob@example.org
	assert_clean
	assert_equal "$status" 78
	assert_regex "$stderr" "rc:[0-9]+: .*port"
}

@test "550 to RCPT from the fault server: no memory error or leak, exit 67" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT TO:<b@example.org>
		send 550 5.1.1 no such user
		expect QUIT
		send 221 bye
	EOF
	printf '%s\n' "account default" "host 127.0.0.1" "port $FAULT_PORT" \
		"tls off" "auth off" "from a@example.org" "timeout 10" >"$RC"
	vg -C "$RC" b@example.org
	assert_clean
	assert_equal "$status" 67
	assert_regex "$stderr" '550 5\.1\.1 no such user'
}

@test "554 greeting from the fault server: no memory error or leak, exit 69" {
	fault_start 'send 554 no service for you'
	printf '%s\n' "account default" "host 127.0.0.1" "port $FAULT_PORT" \
		"tls off" "auth off" "from a@example.org" "timeout 10" >"$RC"
	vg -C "$RC" b@example.org
	assert_clean
	assert_equal "$status" 69
	assert_regex "$stderr" 'greeting: 554 no service for you$'
}

@test "lines over 998 bytes, re-encoded and folded: no memory error or leak" {
	outbox_config "$RC"
	{
		printf 'To: bob@example.org\nSubject: long\nX-Long: %s\n\n' "$(printf '%*s' 3000 '' | tr ' ' h)"
		printf 'a = b  \n'
		printf '%*s\n' 99999 '' | tr ' ' x
	} >"$MSG"
	vg -v -C "$RC" bob@example.org
	assert_clean
	assert_equal "$status" 0
	assert_regex "$stderr" 'quoted-printable'
	{
		printf 'To: bob@example.org\nSubject: long\nContent-Type: multipart/mixed; boundary=x\n\n'
		printf '%*s\n' 5000 '' | tr ' ' x
	} >"$MSG"
	vg -v -C "$RC" bob@example.org
	assert_clean
	assert_equal "$status" 0
	assert_regex "$stderr" 'folded'
}
