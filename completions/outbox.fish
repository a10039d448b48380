# fish completion for outbox(1)

# Account names from the file given with -C, else from the user's file.
function __outbox_accounts
    set -l tokens (commandline -opc)
    set -l conf
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case -C --file
                set -q tokens[(math $i + 1)]; and set conf $tokens[(math $i + 1)]
            case '--file=*'
                set conf (string replace -- --file= '' $tokens[$i])
            case '-C?*'
                set conf (string sub -s 3 -- $tokens[$i])
        end
    end
    if test -z "$conf"
        set -l xdg (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo ~/.config)
        for f in $xdg/outbox/config ~/.config/outbox/config ~/.outboxrc ~/.msmtprc $xdg/msmtp/config
            test -r $f; and set conf $f; and break
        end
    end
    set conf (string replace -r '^~' -- $HOME $conf)
    test -r "$conf"; or return
    string replace -rf '^\s*account\s+([^\s:]+).*' '$1' <$conf
end

# Queue ids: the entries of the queue and, with "failed", those given up.
function __outbox_queue_ids
    set -l d ~/.local/state/outbox/queue
    string match -q '/*' -- "$XDG_STATE_HOME"; and set d $XDG_STATE_HOME/outbox/queue
    set -l files $d/*/env
    test "$argv[1]" = failed; and set -a files $d/failed/*/env
    string replace -r '^.*/([^/]*)/env$' '$1' -- $files
end

# The word before the cursor is $argv[1].
function __outbox_prev_is
    test (commandline -opc)[-1] = $argv[1]
end

set -l onoff 'on off'
set -l auto 'auto on off'

# Operands are recipients, not files.
complete -c outbox -f

complete -c outbox -s a -l account -x -a '(__outbox_accounts)' -d 'Use this account'
complete -c outbox -s C -l file -r -F -d 'Read this config file'
complete -c outbox -s d -l debug -d 'Show the SMTP dialogue'
complete -c outbox -s v -d 'Show the SMTP dialogue'
complete -c outbox -s F -l from-full-name -x -d 'Full name for an added From'
complete -c outbox -s f -l from -x -d 'Envelope sender'
complete -c outbox -s r -x -d 'Envelope sender'
complete -c outbox -s i -d 'A line with a single dot does not end input'
complete -c outbox -s N -l dsn-notify -x -a 'never success failure delay off' -d 'DSN conditions'
complete -c outbox -s R -n 'not __outbox_prev_is -qR' -x -a 'hdrs full' -d 'What a DSN returns'
complete -c outbox -l dsn-return -x -a 'headers full off' -d 'What a DSN returns'
complete -c outbox -s t -l read-recipients -d 'Add recipients from To, Cc and Bcc'
complete -c outbox -s V -x -d 'DSN envelope id'
complete -c outbox -l read-envelope-from -d 'Take the envelope sender from From:'
complete -c outbox -s P -l pretend -d 'Show the account as resolved, send nothing'
complete -c outbox -l check-config -d 'Report every problem in the config'
complete -c outbox -l configure -x -d 'Find the server by DNS for an address'
complete -c outbox -l trust-srv -d 'With --configure, take a server outside the domain'
complete -c outbox -l dry-run -d 'Show the envelope and data, send nothing'
complete -c outbox -l errors -x -a 'machine human' -d 'Error format'
complete -c outbox -s S -l serverinfo -d 'Show what the server offers'
complete -c outbox -l store-password -d 'Store the password in the keyring'
complete -c outbox -l forget-password -d 'Remove the password from the keyring'
complete -c outbox -l authorize -d 'Sign in with OAuth 2.0 and keep the refresh token'
complete -c outbox -l version -d 'Show versions'
complete -c outbox -l help -d 'Show help'

# Config commands as options.
complete -c outbox -l host -x -a '(__fish_print_hostnames)' -d 'SMTP server'
complete -c outbox -l port -x -a '587 465 25' -d 'Server port'
complete -c outbox -l timeout -x -a 'off 60' -d 'Network timeout'
complete -c outbox -l session-timeout -x -a 'off 600' -d 'Bound on a whole session'
complete -c outbox -l protocol -x -a 'smtp lmtp' -d Protocol
complete -c outbox -l domain -x -d 'EHLO argument'
complete -c outbox -l auth -f -a 'on off plain login cram-md5 scram-sha-1 scram-sha-1-plus scram-sha-256 scram-sha-256-plus external gssapi' -d Authenticate
complete -c outbox -l user -x -d 'Login name'
complete -c outbox -l passwordeval -x -a '(__fish_complete_command)' -d 'Command that prints the password'
complete -c outbox -l tls -f -a $onoff -d 'Use TLS'
complete -c outbox -l tls-starttls -f -a $onoff -d 'Use STARTTLS'
complete -c outbox -l tls-trust-file -r -F -d 'Trusted CA file'
complete -c outbox -l tls-crl-file -r -F -d 'CRL file'
complete -c outbox -l tls-fingerprint -x -d 'Server certificate fingerprint'
complete -c outbox -l tls-key-file -r -F -d 'Client key file'
complete -c outbox -l tls-cert-file -r -F -d 'Client certificate file'
complete -c outbox -l tls-certcheck -f -a $onoff -d 'Verify the server certificate'
complete -c outbox -l tls-priorities -x -d 'GnuTLS priority string'
complete -c outbox -l tls-host-override -x -d 'Name to verify'
complete -c outbox -l tls-min-dh-prime-bits -x -d Ignored
complete -c outbox -l source-ip -x -d 'Local address'
complete -c outbox -l proxy-host -x -a '(__fish_print_hostnames)' -d 'SOCKS5 proxy'
complete -c outbox -l proxy-port -x -d 'SOCKS5 proxy port'
complete -c outbox -l socket -r -F -d 'Unix socket instead of host and port'
complete -c outbox -l maildomain -x -d 'Domain for %M'
complete -c outbox -l auto-from -f -a $onoff -d 'Make the sender from the user name'
complete -c outbox -l allow-from-override -f -a $onoff -d 'Let -f replace from'
complete -c outbox -l set-from-header -f -a $auto -d 'When to add From'
complete -c outbox -l set-date-header -f -a $auto -d 'When to add Date'
complete -c outbox -l set-msgid-header -f -a $auto -d 'When to add Message-ID'
complete -c outbox -l remove-bcc-headers -f -a $onoff -d 'Remove Bcc'
complete -c outbox -l undisclosed-recipients -f -a $onoff -d 'Hide the recipients'
complete -c outbox -l set-to-header -f -a 'on off undisclosed_recipients' -d 'Replace To, Cc, Bcc with one To'
complete -c outbox -l logfile -r -F -d 'Log file'
complete -c outbox -l logfile-time-format -x -d 'strftime format'
complete -c outbox -l syslog -f -a 'on off LOG_USER LOG_MAIL LOG_LOCAL0 LOG_LOCAL1 LOG_LOCAL2 LOG_LOCAL3 LOG_LOCAL4 LOG_LOCAL5 LOG_LOCAL6 LOG_LOCAL7' -d 'Log to syslog'
complete -c outbox -l aliases -r -F -d 'Aliases file'
complete -c outbox -l queue -f -a 'on off always' -d 'Queue on a temporary failure'
complete -c outbox -l queue-lifetime -x -d 'How long an entry may stay queued (5d; bare: days)'
complete -c outbox -l queue-retry -x -d 'First wait before a retry (30s, 5m, 4h)'
complete -c outbox -l queue-retry-max -x -d 'Longest wait between two attempts'
complete -c outbox -l queue-warn -x -a 'off 1h 4h 1d' -d 'When the sender is told a message is delayed'
complete -c outbox -l all-or-nothing -f -a $onoff -d 'Send nothing unless every recipient is accepted'
complete -c outbox -l desktop-notify -f -a $onoff -d 'Desktop notices of queued, delayed and given up mail'
complete -c outbox -l linger -x -d 'Keep the session open for the next message'

# The queue.
complete -c outbox -s q -l flush -f -d 'Send what is queued now'
complete -c outbox -n '__outbox_prev_is -qI' -x -a '(__outbox_queue_ids)' -d 'Queue id'
complete -c outbox -n '__outbox_prev_is -qH' -x -a '(__outbox_queue_ids)' -d 'Queue id to hold'
complete -c outbox -n '__outbox_prev_is -qU' -x -a '(__outbox_queue_ids)' -d 'Queue id to release'
complete -c outbox -n '__outbox_prev_is -qR' -x -a '(__outbox_accounts)' -d Account
complete -c outbox -l drop -x -a '(__outbox_queue_ids failed)' -d 'Remove a queue entry'

# Sendmail compatibility.
complete -c outbox -s b -x -a 'm\tsend s\t"SMTP on stdin" p\t"list queue" i\tnewaliases v\tverify' -d 'Sendmail mode'
complete -c outbox -s B -x -a '7BIT 8BITMIME' -d 'Body type'
complete -c outbox -s I -d Newaliases
complete -c outbox -s o -x -a i -d 'Sendmail option (only -oi matters)'
complete -c outbox -s A -r -d Ignored
complete -c outbox -s c -d Ignored
complete -c outbox -s G -d Ignored
complete -c outbox -s h -x -d Ignored
complete -c outbox -s L -x -d 'Tag the log line'
complete -c outbox -s X -r -F -d Ignored
complete -c outbox -s m -d Ignored
complete -c outbox -s n -d Ignored
complete -c outbox -s O -x -a smtputf8 -d 'Sendmail option (smtputf8)'
complete -c outbox -s U -d Ignored
complete -c outbox -s e -x -d 'Ignored (error mode)'
complete -c outbox -s E -d Ignored
complete -c outbox -s J -d Ignored
complete -c outbox -s p -x -d 'Ignored (protocol)'
complete -c outbox -s x -d Ignored
