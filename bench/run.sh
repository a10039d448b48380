#!/usr/bin/env bash
# bench/run.sh: outbox and msmtp side by side against one private Postfix +
# Dovecot (tests/lib/mta.sh) on loopback.  `make bench` builds outbox and
# runs this.  See bench/README.md.
#
#   BENCH_QUICK=1     fewer runs, under a minute
#   BENCH_DELAY=MS    one-way delay of the round-trip proxy (default 25)
#   BENCH_FIGURES=1,3 only these figures (default 1,2,3,4,5,6,7,8,9)
#   BENCH_KEEP=DIR    keep the rtproxy traces and callgrind files in DIR
#   BENCH_WHATIF='--auth=plain; --queue=off; XDG_CACHE_HOME=@fresh'
#                     outbox variants measured too (figures 1-3), ';'
#                     between them; options and VAR=value (@fresh: a new
#                     empty folder per run); empty: none.  Default:
#                     --auth=plain; --auth=plain --queue=off;
#                     XDG_CACHE_HOME=@fresh (no TLS session cache)
#   OUTBOX=PATH       the outbox binary (default: ./outbox, built by make)
#   MSMTP=PATH        the msmtp binary (default: /usr/bin/msmtp)
#
# Needs root (the test bed's Postfix and Dovecot), msmtp, valgrind,
# /usr/bin/time (package time) and Debian's /usr/bin/python3.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3

die() {
	echo "bench: $*" >&2
	exit 1
}

[[ $(id -u) == 0 ]] || die "needs root: the test bed's Postfix and Dovecot start as root"
PATH=$PATH:/usr/sbin:/sbin
missing=()
for t in msmtp:msmtp valgrind:valgrind callgrind_annotate:valgrind \
    /usr/bin/time:time postconf:postfix dovecot:dovecot-core \
    gnome-keyring-daemon:gnome-keyring secret-tool:libsecret-tools \
    dbus-daemon:dbus; do
	command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t##*:}")
done
[[ -x $PY ]] || missing+=(python3)
((${#missing[@]} == 0)) ||
    die "missing: ${missing[*]}; install with: apt-get install ${missing[*]}"

OUTBOX=${OUTBOX:-$top/outbox}
[[ -x $OUTBOX ]] || die "$OUTBOX: not built (run make)"
MSMTP=${MSMTP:-$(command -v msmtp)}

pypid=
work=$(mktemp -d /tmp/outbox-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
	local rc=$? f
	trap - EXIT INT TERM
	if [[ -n ${pypid:-} ]] && kill -0 "$pypid" 2>/dev/null; then
		kill "$pypid" 2>/dev/null || true
		wait "$pypid" 2>/dev/null || true
	fi
	# rtproxy processes the Python driver may have left behind
	for f in "$work"/rtproxy.*.pid; do
		[[ -e $f ]] || continue
		kill "$(cat "$f")" 2>/dev/null || true
	done
	bash "$top/tests/lib/mta.sh" stop "$work/mta" >/dev/null 2>&1 || true
	bash "$top/tests/lib/keyring.sh" stop "$work/keyring" >/dev/null 2>&1 || true
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "bench: starting the test bed (Postfix + Dovecot) in $work/mta" >&2
bash "$top/tests/lib/mta.sh" start "$work/mta" >/dev/null ||
    die "the test bed did not start; see $work/mta/log/start.log"

figures=${BENCH_FIGURES:-1,2,3,4,5,6,7,8,9}
args=(--work "$work" --mta "$work/mta" --outbox "$OUTBOX" --msmtp "$MSMTP"
    --delay "${BENCH_DELAY:-25}" --figures "$figures")
# Figure 7 takes the password from a keyring (tests/lib/keyring.sh).
if [[ ,$figures, == *,7,* ]]; then
	echo "bench: starting a private keyring in $work/keyring" >&2
	bash "$top/tests/lib/keyring.sh" start "$work/keyring" >/dev/null ||
	    die "the keyring did not start; see $work/keyring/log"
	args+=(--keyring "$work/keyring/keyring.env")
fi
[[ -n ${BENCH_QUICK:-} && ${BENCH_QUICK} != 0 ]] && args+=(--quick)
[[ -n ${BENCH_KEEP:-} ]] && args+=(--keep "$BENCH_KEEP")
[[ -n ${BENCH_WHATIF+set} ]] && args+=("--whatif=$BENCH_WHATIF")
# In the background, so that a signal reaches the trap at once.
"$PY" "$top/bench/bench.py" "${args[@]}" &
pypid=$!
wait "$pypid"
