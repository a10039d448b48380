#!/bin/sh
# make demo: outbox's main job, end to end, on a throwaway local server.
# Starts a private Postfix (STARTTLS, AUTH via Dovecot) and a private
# keyring, stores the password in the keyring as msmtp users do, pipes a
# message to outbox and shows what arrived.  Everything lives in a
# temporary folder and is stopped afterwards.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/outbox-demo.XXXXXX)
chmod 755 "$dir"
cleanup() {
	bash "$top/tests/lib/mta.sh" stop "$dir/mta" >/dev/null 2>&1 || true
	bash "$top/tests/lib/keyring.sh" stop "$dir/keyring" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
# outbox's queue and caches too stay in the throwaway folder.
export XDG_STATE_HOME="$dir/state" XDG_CACHE_HOME="$dir/cache"

echo "== Starting a throwaway submission server (Postfix + Dovecot SASL) ..."
bash "$top/tests/lib/mta.sh" start "$dir/mta" >/dev/null
. "$dir/mta/env"
echo "== Starting a private keyring (gnome-keyring in its own D-Bus session) ..."
bash "$top/tests/lib/keyring.sh" start "$dir/keyring" >/dev/null
. "$dir/keyring/keyring.env"

cat >"$dir/config" <<CONF
defaults
tls on
tls_trust_file $MTA_CA

account demo
host localhost
port $SUBMISSION_PORT
user alice
from alice@example.org

account default : demo
CONF
echo "== The config (no password in it):"
sed 's/^/   /' "$dir/config"

echo "== Storing alice's password in the keyring:"
echo "   outbox -C config --store-password"
printf '%s\n' 'wonder land-42' | "$top/outbox" -C "$dir/config" --store-password 2>&1 |
    sed 's/^/   /'

echo "== Sending:"
echo "   printf 'To: bob@example.org\\nSubject: Hello from outbox\\n\\nIt works.\\n' | outbox -C config -t"
printf 'To: bob@example.org\nSubject: Hello from outbox\n\nIt works.\n' |
    "$top/outbox" -C "$dir/config" -t
echo "   exit status: $?"

i=0
while [ -z "$(ls "$MTA_MAILDIR/bob/new" 2>/dev/null)" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
echo "== What arrived in bob's mailbox:"
cat "$MTA_MAILDIR"/bob/new/* | sed 's/^/   /'
