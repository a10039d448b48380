#!/usr/bin/env bats
# Real callers from Debian, each pointed at outbox as its sendmail (never a
# system-wide /usr/sbin/sendmail): git send-email, mutt, neomutt, bsd-mailx,
# s-nail, cron's command lines and PHP's mail(). Every caller runs with no
# terminal (setsid) and a minimal environment, as from a daemon or a script;
# what it sends is checked where it lands, in the test bed's Postfix.
#
# The packages come from tests/lib/deps.sh. A caller that is not installed
# skips its tests, or fails them in strict mode (CI=true or OUTBOX_STRICT=1).
#
# The configuration lines used here are the ones to give users:
#   git      sendemail.sendmailcmd = outbox -C RC   (git >= 2.33; older:
#            sendemail.smtpServer = /path/to/a-wrapper-without-arguments)
#   mutt     set sendmail="outbox -C RC -oem -oi"   (mutt adds no -oi itself)
#   mailx    set sendmail=/path/to/a-wrapper        (bsd-mailx runs the path
#            as one program name, without splitting arguments)
#   s-nail   set mta=outbox mta-arguments='-C RC' sendwait
#   PHP      sendmail_path = "outbox -C RC -t -i"
#   cron     runs /usr/sbin/sendmail itself; here a wrapper stands in for it

# shellcheck disable=SC2154 # $stderr comes from bats' run --separate-stderr
load 'lib/testbed'
bats_require_minimum_version 1.5.0

setup_file() {
	mta_setup_file
}

teardown_file() {
	mta_teardown_file
}

setup() {
	T=$BATS_TEST_TMPDIR
	RC=$T/rc
	outbox_config "$RC"
	# A second account whose login the server refuses
	outbox_config "$T/rc.bad" 'password "not the password"'
	mkdir -p "$T/home"
	maildir_clear bob
	maildir_clear catchall
}

# need PROGRAM...: each must be installed, else the test is skipped (or, in
# strict mode, fails).
need() {
	local p
	for p; do
		if ! command -v "$p" >/dev/null; then
			testbed_unavailable "$p not installed (run tests/lib/deps.sh)"
			return 1
		fi
	done
}

# bare [VAR=value...] COMMAND...: run COMMAND as a daemon or a script would:
# no controlling terminal, a minimal environment, HOME in the test's folder.
bare() {
	local vars=()
	while [[ $1 == [A-Za-z_]*([A-Za-z0-9_])=* ]]; do
		vars+=("$1")
		shift
	done
	env -i PATH=/usr/bin:/bin HOME="$T/home" "${vars[@]}" setsid -w "$@"
}

# wrapper NAME [RCFILE]: write $T/NAME, a sendmail that execs outbox -C
# RCFILE (default $RC), for callers that run a path without arguments. It
# records the arguments it was given in $T/NAME.args.
wrapper() {
	local w=$T/$1
	{
		echo '#!/bin/bash'
		printf 'printf "%%s\\n" "$@" >%q\n' "$w.args"
		printf 'exec %q -C %q "$@"\n' "$OUTBOX" "${2:-$RC}"
	} >"$w"
	chmod 0755 "$w"
}

# header FILE NAME: the value of the first NAME field in FILE's header,
# continuation lines joined
header() {
	LC_ALL=C awk -v name="$2" '
		BEGIN { name = tolower(name) ":" }
		/^$/ { exit }
		/^[ \t]/ { if (found) value = value $0; next }
		{
			if (found) exit
			if (tolower(substr($0, 1, length(name))) == name) {
				found = 1
				value = substr($0, length(name) + 1)
			}
		}
		END { sub(/^[ \t]+/, "", value); print value }' "$1"
}

# body FILE: everything after the first empty line
body() {
	sed '1,/^$/d' "$1"
}

# msg BOX SUBJECT: the path of the one message in BOX with that Subject
msg() {
	local f found=()
	for f in "$MTA_MAILDIR/$1"/new/*; do
		[[ -f $f ]] || continue
		[[ $(header "$f" Subject) == "$2" ]] && found+=("$f")
	done
	if ((${#found[@]} != 1)); then
		echo "msg: ${#found[@]} message(s) in $1 with Subject: $2" >&2
		return 1
	fi
	echo "${found[0]}"
}

# ---------------------------------------------------------------- git

# git_setup: ~/.gitconfig for Alice, a repository with three commits and
# their patches in $T/patches (0001-... to 0003-...)
git_setup() {
	need git perl || return 1
	if [[ ! -x $(git --exec-path)/git-send-email ]]; then
		testbed_unavailable "git send-email not installed (package git-email; run tests/lib/deps.sh)"
		return 1
	fi
	if ! perl -MMail::Address -e 1 2>/dev/null; then
		testbed_unavailable "Mail::Address missing (package libmailtools-perl; run tests/lib/deps.sh)"
		return 1
	fi
	cat >"$T/home/.gitconfig" <<-EOF
		[user]
			name = Alice A
			email = alice@example.org
		[init]
			defaultBranch = main
	EOF
	local i
	bare git init -q "$T/repo"
	for i in 1 2 3; do
		echo "line $i" >"$T/repo/file$i"
		bare git -C "$T/repo" add "file$i"
		bare git -C "$T/repo" commit -q -m "commit $i" -m "Grüße aus Köln, part $i." \
			-m . -m 'The paragraph above is a single dot.'
	done
	bare git -C "$T/repo" format-patch -q -3 -o "$T/patches"
}

# git_check_series BOX: the three patches are in BOX, threaded on the first,
# each with the patch's body byte for byte
git_check_series() {
	local box=$1 n f first id1
	first=$(msg "$box" '[PATCH 1/3] commit 1')
	id1=$(header "$first" Message-Id)
	assert_regex "$id1" '^<[^>]+@example\.org>$'
	assert_equal "$(header "$first" In-Reply-To)" ''
	for n in 1 2 3; do
		f=$(msg "$box" "[PATCH $n/3] commit $n")
		if ((n > 1)); then
			assert_equal "$(header "$f" In-Reply-To)" "$id1"
			assert_equal "$(header "$f" References)" "$id1"
		fi
		cmp <(body "$f") <(body "$T/patches/000$n-commit-$n.patch")
	done
}

@test "git send-email (sendemail.sendmailcmd): a threaded series, Cc, --envelope-sender" {
	git_setup
	printf '[sendemail]\n\tsendmailcmd = %s -C %s\n' "$OUTBOX" "$RC" >>"$T/home/.gitconfig"
	run --separate-stderr bare git -C "$T/repo" send-email --confirm=never \
		--suppress-cc=self --to bob@example.org --cc carol@example.org \
		--envelope-sender=patches@example.org "$T"/patches/*.patch </dev/null
	assert_success
	maildir_wait bob 3
	maildir_wait catchall 3
	assert_equal "$(maildir_count bob)" 3
	git_check_series bob
	git_check_series catchall
	local f
	for f in "$MTA_MAILDIR"/bob/new/* "$MTA_MAILDIR"/catchall/new/*; do
		assert_equal "$(header "$f" Return-Path)" '<patches@example.org>'
		assert_equal "$(header "$f" From)" 'Alice A <alice@example.org>'
		assert_equal "$(header "$f" To)" 'bob@example.org'
		assert_equal "$(header "$f" Cc)" 'carol@example.org'
	done
	for f in "$MTA_MAILDIR"/catchall/new/*; do
		assert_equal "$(header "$f" X-Original-To)" 'carol@example.org'
	done
}

@test "git send-email --smtp-server=PATH (the older form): the account's sender" {
	git_setup
	wrapper sendmail
	run --separate-stderr bare git -C "$T/repo" send-email --confirm=never \
		--suppress-cc=self --to bob@example.org \
		--smtp-server="$T/sendmail" "$T"/patches/*.patch </dev/null
	assert_success
	maildir_wait bob 3
	git_check_series bob
	local f
	for f in "$MTA_MAILDIR"/bob/new/*; do
		assert_equal "$(header "$f" Return-Path)" '<alice@example.org>'
	done
	# git asks for -i: a line with a single dot must not end a patch
	run cat "$T/sendmail.args"
	assert_line --index 0 '-i'
}

@test "git send-email: a refused login fails the command with outbox's reason" {
	git_setup
	run --separate-stderr bare git -C "$T/repo" send-email --confirm=never \
		--suppress-cc=self --to bob@example.org \
		--sendmail-cmd="$OUTBOX -C $T/rc.bad" "$T"/patches/*.patch </dev/null
	assert_failure
	assert_regex "$stderr" 'outbox: .*authentication'
	assert_equal "$(maildir_count bob)" 0
}

# ---------------------------------------------------------------- mutt

# mutt_send PROGRAM: mutt or neomutt in batch mode, DSN asked for, outbox
# run with -v so that its dialogue (on mutt's stderr) shows the envelope
mutt_send() {
	local prog=$1
	need "$prog" || return 1
	cat >"$T/muttrc" <<-EOF
		set sendmail="$OUTBOX -C $RC -oem -oi -v"
		set use_from=yes
		set from="Alice A <alice@example.org>"
		set dsn_notify="failure,delay"
		set dsn_return=hdrs
		set charset=utf-8
		set send_charset=utf-8
		set copy=no
	EOF
	printf 'Grüße aus Köln\n.\nthe line above is a single dot\n' >"$T/body"
	run --separate-stderr bare "$prog" -n -F "$T/muttrc" -s "from $prog" \
		-- bob@example.org <"$T/body"
	assert_success
	assert_output ''
	assert_regex "$stderr" 'MAIL FROM:<alice@example\.org> SIZE=[0-9]+ BODY=8BITMIME RET=HDRS'
	assert_regex "$stderr" 'RCPT TO:<bob@example\.org> NOTIFY=FAILURE,DELAY'
	maildir_wait bob 1
	local f
	f=$(msg bob "from $prog")
	assert_equal "$(header "$f" Return-Path)" '<alice@example.org>'
	assert_equal "$(header "$f" From)" 'Alice A <alice@example.org>'
	assert_equal "$(header "$f" To)" 'bob@example.org'
	assert_equal "$(header "$f" Content-Type)" 'text/plain; charset=utf-8'
	assert_equal "$(header "$f" Content-Transfer-Encoding)" '8bit'
	cmp <(body "$f") "$T/body"
}

@test "mutt -F muttrc: delivered with DSN, 8-bit body and a lone dot intact" {
	mutt_send mutt
}

@test "neomutt -F muttrc: delivered with DSN, 8-bit body and a lone dot intact" {
	mutt_send neomutt
}

@test "mutt: a refused login fails mutt with outbox's reason" {
	need mutt
	printf 'set sendmail="%s -C %s -oem -oi"\nset from=alice@example.org\nset copy=no\n' \
		"$OUTBOX" "$T/rc.bad" >"$T/muttrc"
	run --separate-stderr bare mutt -n -F "$T/muttrc" -s fails -- bob@example.org \
		< <(echo hello)
	assert_failure
	assert_regex "$stderr" 'outbox: .*authentication'
	assert_regex "$stderr" 'child exited 77'
	assert_equal "$(maildir_count bob)" 0
}

# ---------------------------------------------------------------- mail(1)

@test "bsd-mailx with MAILRC 'set sendmail=WRAPPER': To and Cc receive it" {
	need bsd-mailx
	wrapper sendmail
	echo "set sendmail=$T/sendmail" >"$T/mailrc"
	printf 'Hello from mailx\n.\nthe line above is a single dot\n' >"$T/body"
	run --separate-stderr bare MAILRC="$T/mailrc" bsd-mailx -s 'mailx subject' \
		-c carol@example.org bob@example.org <"$T/body"
	assert_success
	assert_output ''
	assert_equal "$stderr" ''
	maildir_wait bob 1
	maildir_wait catchall 1
	local f fb fc
	fb=$(msg bob 'mailx subject')
	fc=$(msg catchall 'mailx subject')
	for f in "$fb" "$fc"; do
		# bsd-mailx writes no From, Date or Message-ID: outbox adds them
		assert_equal "$(header "$f" From)" 'alice@example.org'
		assert_equal "$(header "$f" Return-Path)" '<alice@example.org>'
		assert_regex "$(header "$f" Date)" '^[A-Z][a-z]{2}, '
		assert_regex "$(header "$f" Message-ID)" '^<[^>]+@example\.org>$'
		assert_equal "$(header "$f" To)" 'bob@example.org'
		assert_equal "$(header "$f" Cc)" 'carol@example.org'
		cmp <(body "$f") "$T/body"
	done
	assert_equal "$(header "$fc" X-Original-To)" 'carol@example.org'
}

@test "bsd-mailx: a refused login makes mailx fail" {
	need bsd-mailx
	wrapper sendmail "$T/rc.bad"
	echo "set sendmail=$T/sendmail" >"$T/mailrc"
	run --separate-stderr bare MAILRC="$T/mailrc" bsd-mailx -s fails bob@example.org \
		< <(echo hello)
	assert_failure
	assert_regex "$stderr" 'outbox: .*authentication'
	assert_regex "$stderr" 'sendmail process failed with error code 77'
	assert_equal "$(maildir_count bob)" 0
}

@test "s-nail with 'set mta=outbox mta-arguments=... sendwait': To, Cc and -r" {
	need s-nail
	cat >"$T/mailrc" <<-EOF
		set mta=$OUTBOX mta-arguments='-C $RC' sendwait
		set from="Alice A <alice@example.org>"
	EOF
	printf 'Hello from s-nail\n.\nthe line above is a single dot\n' >"$T/body"
	run --separate-stderr bare MAILRC="$T/mailrc" s-nail -s 's-nail subject' \
		-c carol@example.org bob@example.org <"$T/body"
	assert_success
	assert_output ''
	assert_equal "$stderr" ''
	maildir_wait bob 1
	maildir_wait catchall 1
	local f fb fc
	fb=$(msg bob 's-nail subject')
	fc=$(msg catchall 's-nail subject')
	for f in "$fb" "$fc"; do
		assert_equal "$(header "$f" Return-Path)" '<alice@example.org>'
		assert_equal "$(header "$f" From)" 'Alice A <alice@example.org>'
		assert_equal "$(header "$f" To)" 'bob@example.org'
		assert_equal "$(header "$f" Cc)" 'carol@example.org'
		cmp <(body "$f") "$T/body"
	done
	# -r sets the envelope sender (s-nail passes it on as -f)
	run --separate-stderr bare MAILRC="$T/mailrc" s-nail -r bounces@example.org \
		-s 's-nail -r' bob@example.org <"$T/body"
	assert_success
	maildir_wait bob 2
	assert_equal "$(header "$(msg bob 's-nail -r')" Return-Path)" '<bounces@example.org>'
}

@test "s-nail: a refused login makes s-nail fail (with sendwait)" {
	need s-nail
	cat >"$T/mailrc" <<-EOF
		set mta=$OUTBOX mta-arguments='-C $T/rc.bad' sendwait
		set DEAD=$T/dead.letter
	EOF
	run --separate-stderr bare MAILRC="$T/mailrc" s-nail -s fails bob@example.org \
		< <(echo hello)
	assert_failure
	assert_regex "$stderr" 'outbox: .*authentication'
	assert_regex "$stderr" 'message not sent'
	grep -q '^hello$' "$T/dead.letter"
	assert_equal "$(maildir_count bob)" 0
}

# ---------------------------------------------------------------- cron

# A message shaped like the one cron writes for a job's output
cron_message() {
	local from=$1 to=$2
	printf 'From: %s\nTo: %s\n' "$from" "$to"
	printf 'Subject: Cron <root@host> /usr/local/bin/backup --all\n'
	printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n'
	printf 'Content-Transfer-Encoding: 8bit\n'
	printf 'X-Cron-Env: <SHELL=/bin/sh>\nX-Cron-Env: <HOME=/root>\n'
	printf 'X-Cron-Env: <PATH=/usr/bin:/bin>\nX-Cron-Env: <LOGNAME=root>\n\n'
	printf 'backup: 3 files copied to /srv/backup/Grüße\n.\nbackup: done\n'
}

# cron_run ARGS...: run the stand-in sendmail as cron does: no terminal, a
# minimal environment, the message on stdin, stdout and stderr to files
cron_run() {
	wrapper sendmail
	local rc=0
	bare "$T/sendmail" "$@" <"$T/cron.msg" >"$T/cron.out" 2>"$T/cron.err" || rc=$?
	assert_equal "$(cat "$T/cron.out" "$T/cron.err")" ''
	assert_equal "$rc" 0
}

# cron_check BOX: the message arrived as written, with a Date and a
# Message-ID added at the end of the header, and cron's bare "root" in
# From made a full address with the sender's domain
cron_check() {
	local f
	f=$(msg "$1" 'Cron <root@host> /usr/local/bin/backup --all')
	run grep -c -E '^(Date|Message-ID): ' "$f"
	assert_output 2
	cmp <(maildir_last "$1" | sed -E '1,/^$/{/^(Date|Message-ID): /d;}') \
		<(sed -E '1,/^$/{s/^From: root \(/From: root@example.org (/; s/<root>$/<root@example.org>/;}' "$T/cron.msg")
}

@test "Debian cron: -FCronDaemon -i -B8BITMIME -oem MAILTO (two addresses)" {
	# Debian's cron runs "/usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem
	# MAILTO" (MAILTO, or the crontab's user), split at blanks, so
	# MAILTO=bob@example.org,carol@example.org is a single argument.
	cron_message 'root (Cron Daemon)' 'bob@example.org,carol@example.org' >"$T/cron.msg"
	cron_run -FCronDaemon -i -B8BITMIME -oem bob@example.org,carol@example.org
	maildir_wait bob 1
	maildir_wait catchall 1
	cron_check bob
	cron_check catchall
	assert_equal "$(header "$(maildir_newest bob)" Return-Path)" '<alice@example.org>'
	assert_equal "$(header "$(maildir_newest catchall)" X-Original-To)" 'carol@example.org'
}

@test "cronie: -FCronDaemon -i -odi -oem -oi -t -f MAILFROM, recipients from To:" {
	# cronie runs "/usr/sbin/sendmail -FCronDaemon -i -odi -oem -oi -t -f
	# MAILFROM" (MAILFROM, or the crontab's user) and writes MAILTO to To:.
	cron_message '"(Cron Daemon)" <cron@example.org>' 'bob@example.org, carol@example.org' >"$T/cron.msg"
	cron_run -FCronDaemon -i -odi -oem -oi -t -f cron@example.org
	maildir_wait bob 1
	maildir_wait catchall 1
	cron_check bob
	cron_check catchall
	assert_equal "$(header "$(maildir_newest bob)" Return-Path)" '<cron@example.org>'
}

@test "cronie without MAILFROM: -f root, the user name alone, is still delivered" {
	# outbox sends MAIL FROM:<root> as given; this Postfix takes it and
	# qualifies it. A provider may refuse a sender without a domain.
	cron_message '"(Cron Daemon)" <root>' 'bob@example.org' >"$T/cron.msg"
	cron_run -FCronDaemon -i -odi -oem -oi -t -f root
	maildir_wait bob 1
	cron_check bob
}

@test "Debian cron: a job whose output holds a 100 KB line is delivered, quoted-printable" {
	# Before, exit 65 and no mail: cron can only log the status.
	cron_message 'root (Cron Daemon)' 'bob@example.org' >"$T/cron.msg"
	python3 -c '
import sys
sys.stdout.write("rsync: " + " ".join("/srv/backup/d%05d/file.dat" % i for i in range(4000)) + "\n")' >>"$T/cron.msg"
	sed '1,/^$/d' "$T/cron.msg" >"$T/cron.body"
	cron_run -FCronDaemon -i -B8BITMIME -oem bob@example.org
	maildir_wait bob 1
	f=$(maildir_newest bob)
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" Content-Transfer-Encoding)" quoted-printable
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" Content-Type)" 'text/plain; charset=UTF-8'
	cmp <("$TESTBED_LIB/decode.py" "$f") "$T/cron.body"
	run awk 'length($0) > 998' "$f"
	assert_output ''
}

@test "cron's bare names in From: and To: get the sender's domain, or maildomain" {
	# A submission server that wants a full From: takes the message.
	cron_message 'root (Cron Daemon)' 'root' >"$T/cron.msg"
	cron_run -FCronDaemon -i -B8BITMIME -oem bob@example.org
	maildir_wait bob 1
	f=$(maildir_newest bob)
	assert_equal "$(header "$f" From)" 'root@example.org (Cron Daemon)'
	assert_equal "$(header "$f" To)" 'root@example.org'
	maildir_clear bob
	outbox_config "$RC" "maildomain host.example.net"
	cron_message '"(Cron Daemon)" <root>' 'root, Ops <ops>, bob@example.org' >"$T/cron.msg"
	cron_run -FCronDaemon -i -odi -oem -oi -t -f root
	maildir_wait bob 1
	f=$(maildir_newest bob)
	assert_equal "$(header "$f" From)" '"(Cron Daemon)" <root@host.example.net>'
	assert_equal "$(header "$f" To)" 'root@host.example.net, Ops <ops@host.example.net>, bob@example.org'
	# set_from_header on: the From is outbox's own, and full anyway.
	maildir_clear bob
	outbox_config "$RC" "set_from_header on"
	cron_message 'root (Cron Daemon)' 'bob@example.org' >"$T/cron.msg"
	cron_run -FCronDaemon -i -B8BITMIME -oem bob@example.org
	maildir_wait bob 1
	assert_equal "$(header "$(maildir_newest bob)" From)" 'CronDaemon <alice@example.org>'
}

# ---------------------------------------------------------------- PHP

@test "PHP mail() with sendmail_path='outbox -C RC -t -i': To, Cc, -f, true" {
	need php
	# shellcheck disable=SC2016 # PHP code, not shell
	run --separate-stderr bare php -n \
		-d sendmail_path="$OUTBOX -C $RC -t -i" -r '
		$ok = mail("bob@example.org", "from PHP", "Hello from PHP\n.\nthe line above is a single dot",
			["From" => "Alice A <alice@example.org>", "Cc" => "carol@example.org",
			 "Content-Type" => "text/plain; charset=utf-8"],
			"-fbounces@example.org");
		echo $ok ? "sent" : "not sent";' </dev/null
	assert_success
	assert_output 'sent'
	assert_equal "$stderr" ''
	maildir_wait bob 1
	maildir_wait catchall 1
	local f fb fc
	fb=$(msg bob 'from PHP')
	fc=$(msg catchall 'from PHP')
	for f in "$fb" "$fc"; do
		assert_equal "$(header "$f" Return-Path)" '<bounces@example.org>'
		assert_equal "$(header "$f" From)" 'Alice A <alice@example.org>'
		assert_equal "$(header "$f" To)" 'bob@example.org'
		assert_equal "$(header "$f" Cc)" 'carol@example.org'
		# PHP ends its extra header lines with CRLF, the rest with LF
		run grep -c $'\r' "$f"
		assert_output 0
		assert_equal "$(body "$f")" $'Hello from PHP\n.\nthe line above is a single dot'
	done
}

@test "PHP mail() returns false when outbox fails" {
	need php
	# shellcheck disable=SC2016 # PHP code, not shell
	run --separate-stderr bare php -n \
		-d sendmail_path="$OUTBOX -C $T/rc.bad -t -i" -r '
		echo mail("bob@example.org", "fails", "hello") ? "sent" : "not sent";' </dev/null
	assert_success
	assert_output 'not sent'
	assert_regex "$stderr" 'outbox: .*authentication'
	assert_equal "$(maildir_count bob)" 0
}
