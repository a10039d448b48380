# bash completion for outbox(1)

# Account names from the file given with -C, else from the user's file.
_outbox_accounts()
{
	local conf= f i w
	for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-C | --file)
			[[ ${COMP_WORDS[i + 1]} == = ]] && ((i++))
			conf=${COMP_WORDS[i + 1]} ;;
		--file=*) conf=${w#--file=} ;;
		-C?*) conf=${w#-C} ;;
		esac
	done
	if [[ -z $conf ]]; then
		for f in "${XDG_CONFIG_HOME:-$HOME/.config}/outbox/config" \
		    "$HOME/.config/outbox/config" "$HOME/.outboxrc" \
		    "$HOME/.msmtprc" "${XDG_CONFIG_HOME:-$HOME/.config}/msmtp/config"; do
			[[ -r $f ]] && conf=$f && break
		done
	fi
	conf=${conf/#\~/$HOME}
	[[ -r $conf ]] || return
	sed -n 's/^[[:space:]]*account[[:space:]]\{1,\}\([^[:space:]:]\{1,\}\).*/\1/p' "$conf"
}

# Queue ids: the entries of the queue and, with "failed", those given up.
_outbox_queue_ids()
{
	local d f
	if [[ $XDG_STATE_HOME == /* ]]; then
		d=$XDG_STATE_HOME/outbox/queue
	else
		d=$HOME/.local/state/outbox/queue
	fi
	for f in "$d"/*/env ${1:+"$d"/failed/*/env}; do
		[[ -e $f ]] || continue
		f=${f%/env}
		printf '%s\n' "${f##*/}"
	done
}

_outbox()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local opt= eq= vals=

	# "--opt=value" reaches us as "--opt" "=" "value".  An optional value
	# must follow "=": after "--tls " a word is a recipient.
	if [[ $cur == = ]]; then
		opt=$prev eq=1 cur=
	elif [[ $prev == = ]]; then
		opt=${COMP_WORDS[COMP_CWORD - 2]} eq=1
	elif [[ $cur == --*=* ]]; then
		opt=${cur%%=*} eq=1 cur=${cur#*=}
	elif [[ $prev == -* ]]; then
		opt=$prev
	fi

	case $opt in
	-a | --account | -qR)
		COMPREPLY=($(compgen -W "$(_outbox_accounts)" -- "$cur"))
		return ;;
	-qI | -qH | -qU)
		COMPREPLY=($(compgen -W "$(_outbox_queue_ids)" -- "$cur"))
		return ;;
	--drop)
		COMPREPLY=($(compgen -W "$(_outbox_queue_ids failed)" -- "$cur"))
		return ;;
	--errors)
		COMPREPLY=($(compgen -W "machine human" -- "$cur"))
		return ;;
	-C | --file | -X | --logfile | --aliases | --tls-trust-file | \
	--tls-crl-file | --tls-key-file | --tls-cert-file | --socket | -A)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--tls | --tls-starttls | --tls-certcheck | --auto-from | \
	--allow-from-override | --remove-bcc-headers | --undisclosed-recipients | \
	--all-or-nothing | --desktop-notify)
		[[ $eq ]] && vals="on off" ;;
	--set-from-header | --set-date-header | --set-msgid-header)
		[[ $eq ]] && vals="auto on off" ;;
	--set-to-header)
		[[ $eq ]] && vals="on off undisclosed_recipients" ;;
	--queue)
		[[ $eq ]] && vals="on off always" ;;
	--auth)
		[[ $eq ]] && vals="on off plain login cram-md5 scram-sha-1 scram-sha-1-plus
		    scram-sha-256 scram-sha-256-plus external gssapi" ;;
	--syslog)
		[[ $eq ]] && vals="on off LOG_USER LOG_MAIL LOG_LOCAL0 LOG_LOCAL1 LOG_LOCAL2
		    LOG_LOCAL3 LOG_LOCAL4 LOG_LOCAL5 LOG_LOCAL6 LOG_LOCAL7" ;;
	--protocol) vals="smtp lmtp" ;;
	--timeout | --session-timeout) vals="off" ;;
	--queue-warn) vals="off" ;;
	-N | --dsn-notify) vals="never success failure delay off" ;;
	-R) vals="hdrs full" ;;
	--dsn-return) vals="headers full off" ;;
	-B) vals="7BIT 8BITMIME" ;;
	-O) vals="smtputf8" ;;
	-b) vals="m s p i v" ;;
	-F | -f | -r | -V | -h | -L | -o | -e | -p | --host | --port | \
	--domain | --user | --passwordeval | --tls-fingerprint | \
	--tls-priorities | --tls-host-override | --tls-min-dh-prime-bits | \
	--source-ip | --proxy-host | --proxy-port | --maildomain | \
	--logfile-time-format | --from | --from-full-name | --queue-lifetime | \
	--queue-retry | --queue-retry-max)
		return ;;
	esac
	if [[ -n $vals ]]; then
		COMPREPLY=($(compgen -W "$vals" -- "$cur"))
		return
	fi

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W '-a -C -d -F -f -i -N -P -R -r -S -t -V -v
		    -bm -bs -bp -bi -bv -B -I -q -qI -qR -qH -qU -X -oi -o -A -c -G -h -L
		    -m -n -O -U -e -E -J -p -x --flush --drop= --account= --file= --debug --from=
		    --from-full-name= --read-recipients --read-envelope-from --dsn-notify=
		    --dsn-return= --pretend --check-config --configure= --trust-srv --dry-run --errors= --serverinfo --version --help --host=
		    --port= --timeout= --session-timeout= --protocol= --domain= --auth --user=
		    --passwordeval= --tls --tls-starttls --tls-trust-file=
		    --tls-crl-file= --tls-fingerprint= --tls-key-file=
		    --tls-cert-file= --tls-certcheck --tls-priorities=
		    --tls-host-override= --tls-min-dh-prime-bits= --source-ip=
		    --proxy-host= --proxy-port= --socket= --maildomain= --auto-from
		    --allow-from-override --set-from-header --set-date-header
		    --set-msgid-header --set-to-header --remove-bcc-headers --undisclosed-recipients
		    --logfile= --logfile-time-format= --syslog --aliases= --queue
		    --queue-lifetime= --queue-retry= --queue-retry-max= --queue-warn=
		    --all-or-nothing --desktop-notify --linger= --store-password
		    --forget-password --authorize' \
		    -- "$cur"))
		[[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
	fi
}

complete -F _outbox outbox
