#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "../src/util.h"

/*
 * Long options that set a config command.  has_arg 2 is optional: a bare
 * --tls means "on", as in msmtp.
 */
static const struct {
	const char	*opt;
	const char	*cmd;
	int		 has_arg;
} setters[] = {
	{ "host",			"host",			1 },
	{ "port",			"port",			1 },
	{ "timeout",			"timeout",		1 },
	{ "session-timeout",		"session_timeout",	1 },
	{ "protocol",			"protocol",		1 },
	{ "domain",			"domain",		1 },
	{ "auth",			"auth",			2 },
	{ "user",			"user",			1 },
	{ "passwordeval",		"passwordeval",		1 },
	{ "tls",			"tls",			2 },
	{ "tls-starttls",		"tls_starttls",		2 },
	{ "tls-trust-file",		"tls_trust_file",	1 },
	{ "tls-crl-file",		"tls_crl_file",		1 },
	{ "tls-fingerprint",		"tls_fingerprint",	1 },
	{ "tls-key-file",		"tls_key_file",		1 },
	{ "tls-cert-file",		"tls_cert_file",	1 },
	{ "tls-certcheck",		"tls_certcheck",	2 },
	{ "tls-priorities",		"tls_priorities",	1 },
	{ "tls-host-override",		"tls_host_override",	1 },
	{ "tls-min-dh-prime-bits",	"tls_min_dh_prime_bits", 1 },
	{ "source-ip",			"source_ip",		1 },
	{ "proxy-host",			"proxy_host",		1 },
	{ "proxy-port",			"proxy_port",		1 },
	{ "socket",			"socket",		1 },
	{ "maildomain",			"maildomain",		1 },
	{ "auto-from",			"auto_from",		2 },
	{ "allow-from-override",	"allow_from_override",	2 },
	{ "set-from-header",		"set_from_header",	2 },
	{ "set-date-header",		"set_date_header",	2 },
	{ "set-msgid-header",		"set_msgid_header",	2 },
	{ "remove-bcc-headers",		"remove_bcc_headers",	2 },
	{ "undisclosed-recipients",	"undisclosed_recipients", 2 },
	{ "set-to-header",		"set_to_header",	2 },
	{ "dsn-notify",			"dsn_notify",		1 },
	{ "dsn-return",			"dsn_return",		1 },
	{ "logfile",			"logfile",		1 },
	{ "logfile-time-format",	"logfile_time_format",	1 },
	{ "syslog",			"syslog",		2 },
	{ "aliases",			"aliases",		1 },
	{ "queue",			"queue",		2 },
	{ "queue-lifetime",		"queue_lifetime",	1 },
	{ "queue-retry",		"queue_retry",		1 },
	{ "queue-retry-max",		"queue_retry_max",	1 },
	{ "queue-warn",			"queue_warn",		1 },
	{ "all-or-nothing",		"all_or_nothing",	2 },
	{ "desktop-notify",		"desktop_notify",	2 },
	{ "linger",			"linger",		1 },
};

#define NSETTERS	(sizeof(setters) / sizeof(setters[0]))
#define SETTER_BASE	1000

enum {
	OPT_VERSION = 900, OPT_HELP, OPT_READ_ENV_FROM, OPT_FLUSH, OPT_DROP,
	OPT_STORE_PW, OPT_AUTHORIZE, OPT_FORGET_PW, OPT_CHECK_CONFIG, OPT_DRY_RUN, OPT_ERRORS,
	OPT_CONFIGURE, OPT_TRUST_SRV,
};

static void
add_override(struct opts *o, const char *cmd, const char *val)
{
	o->ov = xrealloc(o->ov, (o->nov + 1) * sizeof(*o->ov));
	o->ov[o->nov].cmd = cmd;
	o->ov[o->nov].val = val;
	o->nov++;
}

static struct option *
long_options(void)
{
	static const struct option fixed[] = {
		{ "version",		no_argument,	   NULL, OPT_VERSION },
		{ "help",		no_argument,	   NULL, OPT_HELP },
		{ "pretend",		no_argument,	   NULL, 'P' },
		{ "debug",		no_argument,	   NULL, 'd' },
		{ "serverinfo",		no_argument,	   NULL, 'S' },
		{ "file",		required_argument, NULL, 'C' },
		{ "account",		required_argument, NULL, 'a' },
		{ "from",		required_argument, NULL, 'f' },
		{ "from-full-name",	required_argument, NULL, 'F' },
		{ "read-recipients",	no_argument,	   NULL, 't' },
		{ "read-envelope-from",	no_argument,	   NULL,
		    OPT_READ_ENV_FROM },
		{ "flush",		no_argument,	   NULL, OPT_FLUSH },
		{ "drop",		required_argument, NULL, OPT_DROP },
		{ "store-password",	no_argument,	   NULL, OPT_STORE_PW },
		{ "authorize",		no_argument,	   NULL, OPT_AUTHORIZE },
		{ "forget-password",	no_argument,	   NULL, OPT_FORGET_PW },
		{ "check-config",	no_argument,	   NULL, OPT_CHECK_CONFIG },
		{ "dry-run",		no_argument,	   NULL, OPT_DRY_RUN },
		{ "configure",		required_argument, NULL, OPT_CONFIGURE },
		{ "trust-srv",		no_argument,	   NULL, OPT_TRUST_SRV },
		{ "errors",		required_argument, NULL, OPT_ERRORS },
	};
	size_t		 nfixed = sizeof(fixed) / sizeof(fixed[0]), i;
	struct option	*lo = xcalloc(nfixed + NSETTERS + 1, sizeof(*lo));

	memcpy(lo, fixed, sizeof(fixed));
	for (i = 0; i < NSETTERS; i++) {
		lo[nfixed + i].name = setters[i].opt;
		lo[nfixed + i].has_arg = setters[i].has_arg == 2 ?
		    optional_argument : required_argument;
		lo[nfixed + i].val = SETTER_BASE + (int)i;
	}
	return lo;
}

/* -b MODE */
static int
opt_b(struct opts *o, const char *arg, struct err *e)
{
	if (strcmp(arg, "m") == 0)
		o->mode = MODE_SEND;
	else if (strcmp(arg, "s") == 0)
		o->mode = MODE_SMTP;
	else if (strcmp(arg, "p") == 0)
		o->mode = MODE_QUEUE_LIST;
	else if (strcmp(arg, "i") == 0)
		o->mode = MODE_NEWALIASES;
	else if (strcmp(arg, "v") == 0)
		o->mode = MODE_VERIFY;
	else
		return err_set(e, ERR_USAGE, "-b%s: not supported: outbox is a "
		    "submission client, not a mail server", arg);
	return 0;
}

/* -o X: only -oi means something; the rest are documented no-ops. */
static int
opt_o(struct opts *o, const char *arg)
{
	if (strcmp(arg, "i") == 0)
		o->dot_ends = 0;
	return 0;
}

static int
opt_B(struct opts *o, const char *arg, struct err *e)
{
	if (strcasecmp(arg, "7BIT") == 0)
		o->body = "7BIT";
	else if (strcasecmp(arg, "8BITMIME") == 0)
		o->body = "8BITMIME";
	else
		return err_set(e, ERR_USAGE, "-B: expected 7BIT or 8BITMIME, "
		    "not '%s'", arg);
	return 0;
}

/*
 * -O option=value: sendmail's options.  SMTPUTF8 (Postfix's and
 * sendmail's way to say the message needs it) is taken; every other one is
 * accepted and ignored, as outbox(1) says.
 */
static int
opt_O(struct opts *o, const char *arg)
{
	size_t	n = strcspn(arg, "=");

	if (n == 8 && strncasecmp(arg, "SMTPUTF8", 8) == 0)
		o->smtputf8 = arg[n] == '\0' || strcasecmp(arg + n + 1,
		    "false") != 0;
	return 0;
}

/*
 * -q: flush the whole queue now; -qI ID (or -qIID) one entry, -qR ACCOUNT
 * one account.  With an interval (-q15m), as a timer runs it: only the
 * entries whose retry time has come.  -qH ID holds an entry, -qU ID
 * releases it.
 */
static int
opt_q(struct opts *o, int argc, char **argv, struct err *e)
{
	const char	**dst = NULL;

	o->mode = MODE_FLUSH;
	if (optarg == NULL)
		return 0;
	if (optarg[0] == 'I' || optarg[0] == 'H' || optarg[0] == 'U')
		dst = &o->flush_id;
	else if (optarg[0] == 'R')
		dst = &o->flush_account;
	if (optarg[0] == 'H')
		o->mode = MODE_HOLD;
	else if (optarg[0] == 'U')
		o->mode = MODE_RELEASE;
	if (dst == NULL) {
		o->flush_due = 1;
		return 0;
	}
	if (optarg[1] != '\0')
		*dst = optarg + 1;
	else if (optind < argc)
		*dst = argv[optind++];
	else
		return err_set(e, ERR_USAGE, "-q%c needs a value", optarg[0]);
	return 0;
}

static int
check_address_arg(const char *opt, const char *v, struct err *e)
{
	if (has_ctl(v))
		return err_set(e, ERR_USAGE, "%s: the address contains "
		    "control characters", opt);
	return 0;
}

static int
short_opt(struct opts *o, int c, int argc, char **argv, struct err *e)
{
	switch (c) {
	/*
	 * Accepted and ignored (outbox(1) says why): -A -c -G -h -m -n -U
	 * as in Postfix's sendmail; -e X, the old error modes (Postfix,
	 * OpenSMTPD; -oeX is in opt_o); -p PROTOCOL (Postfix, OpenSMTPD;
	 * Exim's -pPROTO:HOST); -x (Exim, OpenSMTPD: AIX's mail sets it);
	 * -E, -J with an optional value (OpenSMTPD).
	 */
	case 'A': case 'G': case 'h': case 'm': case 'n': case 'U':
	case 'c': case 'X': case 'e': case 'E': case 'J': case 'p': case 'x':
		return 0;			/* accepted and ignored */
	case 'L':
		o->label = optarg;
		return check_address_arg("-L", optarg, e);
	case 'a':
		o->account = optarg;
		return 0;
	case 'B':
		return opt_B(o, optarg, e);
	case 'b':
		return opt_b(o, optarg, e);
	case 'C':
		o->conffile = optarg;
		return 0;
	case 'd': case 'v':
		o->verbose = 1;
		return 0;
	case 'F':
		o->fullname = optarg;
		return check_address_arg("-F", optarg, e);
	case 'f': case 'r':
		o->from = optarg;
		return check_address_arg("-f", optarg, e);
	case 'I':
		o->mode = MODE_NEWALIASES;
		return 0;
	case 'i':
		o->dot_ends = 0;
		return 0;
	case 'N':
		add_override(o, "dsn_notify", optarg);
		return 0;
	case 'O':
		return opt_O(o, optarg);
	case 'o':
		return opt_o(o, optarg);
	case 'P':
		o->mode = MODE_PRETEND;
		return 0;
	case 'q':
		return opt_q(o, argc, argv, e);
	case 'R':
		add_override(o, "dsn_return", strcasecmp(optarg, "hdrs") == 0 ?
		    "headers" : optarg);
		return 0;
	case 'S':
		o->mode = MODE_SERVERINFO;
		return 0;
	case 't':
		o->read_rcpts = 1;
		return 0;
	case 'V':
		o->envid = optarg;
		if (strlen(optarg) > 100)
			return err_set(e, ERR_USAGE, "-V: the envelope id is "
			    "longer than 100 characters");
		return check_address_arg("-V", optarg, e);
	case OPT_VERSION:
		o->mode = MODE_VERSION;
		return 0;
	case OPT_HELP:
		o->mode = MODE_HELP;
		return 0;
	case OPT_READ_ENV_FROM:
		o->read_env_from = 1;
		return 0;
	case OPT_FLUSH:
		o->mode = MODE_FLUSH;
		return 0;
	case OPT_DROP:
		o->mode = MODE_DROP;
		o->flush_id = optarg;
		return 0;
	case OPT_STORE_PW:
		o->mode = MODE_STORE_PW;
		return 0;
	case OPT_AUTHORIZE:
		o->mode = MODE_AUTHORIZE;
		return 0;
	case OPT_FORGET_PW:
		o->mode = MODE_FORGET_PW;
		return 0;
	case OPT_CHECK_CONFIG:
		o->mode = MODE_CHECK_CONFIG;
		return 0;
	case OPT_DRY_RUN:
		o->dry_run = 1;
		return 0;
	case OPT_CONFIGURE:
		o->mode = MODE_CONFIGURE;
		o->configure = optarg;
		return 0;
	case OPT_TRUST_SRV:
		o->trust_srv = 1;
		return 0;
	case OPT_ERRORS:
		if (strcmp(optarg, "machine") != 0 && strcmp(optarg, "human"))
			return err_set(e, ERR_USAGE, "--errors: expected machine "
			    "or human, not '%s'", optarg);
		o->machine_errors = strcmp(optarg, "machine") == 0;
		return 0;
	}
	if (c >= SETTER_BASE && c < SETTER_BASE + (int)NSETTERS) {
		add_override(o, setters[c - SETTER_BASE].cmd,
		    optarg ? optarg : "");
		return 0;
	}
	return err_set(e, ERR_USAGE, "unknown option");
}

static int
check_operands(struct opts *o, int argc, char **argv, int dashdash,
    struct err *e)
{
	int	i;

	for (i = 0; i < argc; i++) {
		if (has_ctl(argv[i]))
			return err_set(e, ERR_USAGE, "recipient %d contains "
			    "control characters", i + 1);
		if (argv[i][0] == '-' && !dashdash)
			return err_set(e, ERR_USAGE, "recipient '%s' begins "
			    "with '-'; put '--' before it if it is really an "
			    "address", argv[i]);
	}
	o->rcpts = argv;
	o->nrcpts = argc;
	return 0;
}

int
opts_parse(struct opts *o, int argc, char **argv, struct err *e)
{
	static const char shortopts[] =
	    "+:a:A:B:b:C:cdE::e:F:f:Gh:IiJ::L:mN:nO:o:Pp:q::R:r:StUV:vX:x";
	struct option	*lo = long_options();
	int		 c, rv = 0, idx, dashdash;

	memset(o, 0, sizeof(*o));
	o->dot_ends = 1;
	opterr = 0;
	optind = 1;
	while (rv == 0 &&
	    (c = getopt_long(argc, argv, shortopts, lo, &idx)) != -1) {
		if (c == '?') {
			if (optopt && optopt < 256)
				rv = err_set(e, ERR_USAGE, "unknown option "
				    "-%c", optopt);
			else
				rv = err_set(e, ERR_USAGE, "unknown option %s",
				    argv[optind - 1]);
		} else if (c == ':')
			rv = err_set(e, ERR_USAGE, "option %s needs a value",
			    argv[optind - 1]);
		else
			rv = short_opt(o, c, argc, argv, e);
	}
	free(lo);
	if (rv == -1)
		return -1;
	dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
	return check_operands(o, argc - optind, argv + optind, dashdash, e);
}

void
opts_free(struct opts *o)
{
	free(o->ov);
	o->ov = NULL;
}

void
usage_print(FILE *fp)
{
	fputs(
"usage: outbox [-itv] [-a account] [-C file] [-F name] [-f sender]\n"
"              [-N dsn] [-R ret] [-V envid] [--] [recipient ...]\n"
"       outbox -P | -S | --version | --help [-a account] [-C file]\n"
"       outbox -q [-v] [-qI id] [-qR account] | -qH id | -qU id | -bp |\n"
"              --drop=id\n"
"       outbox --store-password | --forget-password [-a account]\n"
"       outbox --authorize [-a account]\n"
"\n"
"Reads a message on standard input and submits it to the account's server.\n"
"\n"
"  -a, --account=NAME        use account NAME (default: matched by sender,\n"
"                            else 'default')\n"
"  -C, --file=FILE           read FILE instead of the usual config files\n"
"  -t, --read-recipients     add recipients from To, Cc and Bcc\n"
"  -i, -oi                   a line with a single dot does not end input\n"
"  -f, -r, --from=ADDR       envelope sender\n"
"  -F, --from-full-name=NAME full name for an added From header\n"
"      --read-envelope-from  take the envelope sender from From:\n"
"  -N, --dsn-notify=LIST     never, or success,failure,delay\n"
"  -R, --dsn-return=WHAT     headers (hdrs) or full\n"
"  -V ENVID                  DSN envelope id\n"
"  -v, -d, --debug           show the SMTP dialogue (secrets hidden)\n"
"  -P, --pretend             show the account as resolved, send nothing\n"
"      --dry-run             read the message, show the envelope and the\n"
"                            exact data that would be sent; send nothing\n"
"      --check-config        report every problem in the config\n"
"      --configure=ADDRESS   find the server by DNS, print an account\n"
"      --trust-srv           with --configure: take a server outside the\n"
"                            address's domain without asking\n"
"      --errors=machine      errors as one key=value line each\n"
"  -S, --serverinfo          show what the server offers\n"
"  -q, --flush               send what is queued now (-qI ID, -qR ACCOUNT)\n"
"  -qH ID, -qU ID            hold a queued message (no retries), release it\n"
"      --drop=ID             remove a queue entry\n"
"      --store-password      store the account's password in the keyring\n"
"      --forget-password     remove it from the keyring\n"
"      --authorize           sign in with OAuth 2.0 and keep the refresh\n"
"                            token where the password would be\n"
"      --version             show versions\n"
"      --help                show this help\n"
"Config commands as options: --host --port --timeout --session-timeout\n"
"  --protocol --domain\n"
"  --auth --user --passwordeval --tls --tls-starttls --tls-trust-file\n"
"  --tls-crl-file --tls-fingerprint --tls-key-file --tls-cert-file\n"
"  --tls-certcheck --tls-priorities --tls-host-override\n"
"  --tls-min-dh-prime-bits --source-ip --proxy-host --proxy-port --socket\n"
"  --maildomain --auto-from --allow-from-override --set-from-header\n"
"  --set-date-header --set-msgid-header --remove-bcc-headers\n"
"  --undisclosed-recipients --set-to-header --dsn-notify --dsn-return --logfile\n"
"  --logfile-time-format --syslog --aliases --queue --queue-lifetime\n"
"  --queue-retry --queue-retry-max --queue-warn --all-or-nothing\n"
"  --desktop-notify --linger\n"
"Sendmail compatibility: -bm -bs -bp -bi -bv -I -q, -B 8BITMIME,\n"
"  -L label, -O smtputf8; ignored: -oX -A -G -h -m -n -U -c -e -E -J -p -x -X\n"
"Exit status: 0 sent, 64 usage, 65 bad message, 69 refused, 75 try later,\n"
"  76 protocol error, 77 authentication refused, 78 configuration error.\n",
	    fp);
}
