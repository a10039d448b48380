#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

const struct origin ORIGIN_CMDLINE = { "command line", 0 };
const struct origin ORIGIN_DEFAULT = { "default", 0 };

enum cftype {
	T_STR,		/* any text without control characters */
	T_SECRET,	/* any text */
	T_PATH,		/* a file name; ~ expanded */
	T_BOOL,		/* on|off; empty means on */
	T_PORT,		/* 1-65535 */
	T_INT,		/* a number >= 0 */
	T_TIMEOUT,	/* off or seconds */
	T_AUTH,		/* on|off|mechanism */
	T_AUTO,		/* auto|on|off */
	T_SET_TO,	/* off|on|undisclosed_recipients */
	T_DSN_NOTIFY,	/* off|never|success,failure,delay */
	T_DSN_RETURN,	/* off|headers|full */
	T_PROTOCOL,	/* smtp|lmtp */
	T_FINGERPRINT,	/* hex bytes with colons, or sha256//BASE64 */
	T_SYSLOG,	/* on|off|LOG_FACILITY */
	T_QUEUE,	/* off|on|always */
	T_PROVIDER,	/* google|microsoft */
	T_FLOW,		/* device|browser|client_credentials */
	T_DURATION,	/* N[s|m|h|d]; a bare N is seconds (queue_warn: or off) */
	T_DAYS,		/* N[s|m|h|d]; a bare N is days */
	T_UNSUPPORTED,	/* recognised, not available in outbox */
};

static const struct cfrow {
	const char	*name;
	enum cfkey	 key;
	enum cftype	 type;
	const char	*why;	/* T_UNSUPPORTED: what to do instead */
} cftab[] = {
	{ "host",		CF_HOST,		T_STR, NULL },
	{ "port",		CF_PORT,		T_PORT, NULL },
	{ "source_ip",		CF_SOURCE_IP,		T_STR, NULL },
	{ "proxy_host",		CF_PROXY_HOST,		T_STR, NULL },
	{ "proxy_port",		CF_PROXY_PORT,		T_PORT, NULL },
	{ "socket",		CF_SOCKET,		T_PATH, NULL },
	{ "timeout",		CF_TIMEOUT,		T_TIMEOUT, NULL },
	{ "session_timeout",	CF_SESSION_TIMEOUT,	T_TIMEOUT, NULL },
	{ "protocol",		CF_PROTOCOL,		T_PROTOCOL, NULL },
	{ "domain",		CF_DOMAIN,		T_STR, NULL },
	{ "auth",		CF_AUTH,		T_AUTH, NULL },
	{ "user",		CF_USER,		T_STR, NULL },
	{ "password",		CF_PASSWORD,		T_SECRET, NULL },
	{ "passwordeval",	CF_PASSWORDEVAL,	T_SECRET, NULL },
	{ "ntlmdomain",		CF_NTLMDOMAIN,		T_STR, NULL },
	{ "tls",		CF_TLS,			T_BOOL, NULL },
	{ "tls_starttls",	CF_TLS_STARTTLS,	T_BOOL, NULL },
	{ "tls_trust_file",	CF_TLS_TRUST_FILE,	T_PATH, NULL },
	{ "tls_crl_file",	CF_TLS_CRL_FILE,	T_PATH, NULL },
	{ "tls_fingerprint",	CF_TLS_FINGERPRINT,	T_FINGERPRINT, NULL },
	{ "tls_key_file",	CF_TLS_KEY_FILE,	T_PATH, NULL },
	{ "tls_cert_file",	CF_TLS_CERT_FILE,	T_PATH, NULL },
	{ "tls_certcheck",	CF_TLS_CERTCHECK,	T_BOOL, NULL },
	{ "tls_min_dh_prime_bits", CF_TLS_MIN_DH_PRIME_BITS, T_INT, NULL },
	{ "tls_priorities",	CF_TLS_PRIORITIES,	T_STR, NULL },
	{ "tls_host_override",	CF_TLS_HOST_OVERRIDE,	T_STR, NULL },
	{ "from",		CF_FROM,		T_STR, NULL },
	{ "from_full_name",	CF_FROM_FULL_NAME,	T_STR, NULL },
	{ "auto_from",		CF_AUTO_FROM,		T_BOOL, NULL },
	{ "maildomain",		CF_MAILDOMAIN,		T_STR, NULL },
	{ "allow_from_override", CF_ALLOW_FROM_OVERRIDE, T_BOOL, NULL },
	{ "dsn_notify",		CF_DSN_NOTIFY,		T_DSN_NOTIFY, NULL },
	{ "dsn_return",		CF_DSN_RETURN,		T_DSN_RETURN, NULL },
	{ "set_from_header",	CF_SET_FROM_HEADER,	T_AUTO, NULL },
	{ "set_date_header",	CF_SET_DATE_HEADER,	T_AUTO, NULL },
	{ "set_msgid_header",	CF_SET_MSGID_HEADER,	T_AUTO, NULL },
	{ "remove_bcc_headers",	CF_REMOVE_BCC_HEADERS,	T_BOOL, NULL },
	{ "set_to_header",	CF_SET_TO_HEADER,	T_SET_TO, NULL },
	{ "logfile",		CF_LOGFILE,		T_PATH, NULL },
	{ "logfile_time_format", CF_LOGFILE_TIME_FORMAT, T_STR, NULL },
	{ "syslog",		CF_SYSLOG,		T_SYSLOG, NULL },
	{ "queue",		CF_QUEUE,		T_QUEUE, NULL },
	{ "queue_lifetime",	CF_QUEUE_LIFETIME,	T_DAYS, NULL },
	{ "queue_retry",	CF_QUEUE_RETRY,		T_DURATION, NULL },
	{ "queue_retry_max",	CF_QUEUE_RETRY_MAX,	T_DURATION, NULL },
	{ "queue_warn",		CF_QUEUE_WARN,		T_DURATION, NULL },
	{ "aliases",		CF_ALIASES,		T_PATH, NULL },
	{ "all_or_nothing",	CF_ALL_OR_NOTHING,	T_BOOL, NULL },
	{ "desktop_notify",	CF_DESKTOP_NOTIFY,	T_BOOL, NULL },
	{ "linger",		CF_LINGER,		T_DURATION, NULL },
	{ "oauth_token_url",	CF_OAUTH_TOKEN_URL,	T_STR, NULL },
	{ "oauth_client_id",	CF_OAUTH_CLIENT_ID,	T_STR, NULL },
	{ "oauth_client_secret", CF_OAUTH_CLIENT_SECRET, T_SECRET, NULL },
	{ "oauth_tls_trust_file", CF_OAUTH_TLS_TRUST_FILE, T_PATH, NULL },
	{ "oauth_provider",	CF_OAUTH_PROVIDER,	T_PROVIDER, NULL },
	{ "oauth_tenant",	CF_OAUTH_TENANT,	T_STR, NULL },
	{ "oauth_auth_url",	CF_OAUTH_AUTH_URL,	T_STR, NULL },
	{ "oauth_device_url",	CF_OAUTH_DEVICE_URL,	T_STR, NULL },
	{ "oauth_scope",	CF_OAUTH_SCOPE,		T_STR, NULL },
	{ "oauth_flow",		CF_OAUTH_FLOW,		T_FLOW, NULL },
};

#define NROWS	(sizeof(cftab) / sizeof(cftab[0]))

static const char *const set_to_words[] = { "off", "on",
    "undisclosed_recipients", NULL };

static const char *const auth_values[] = {
	"on", "off", "plain", "login", "cram-md5", "scram-sha-1",
	"scram-sha-1-plus", "scram-sha-256", "scram-sha-256-plus", "external",
	"gssapi", "oauthbearer", "xoauth2", NULL
};

/* msmtp knows these; outbox cannot do them (yet). */
static const char *const auth_unsupported[] = {
	"digest-md5", "ntlm", NULL
};

static const char *const syslog_facilities[] = {
	"LOG_USER", "LOG_MAIL", "LOG_LOCAL0", "LOG_LOCAL1", "LOG_LOCAL2",
	"LOG_LOCAL3", "LOG_LOCAL4", "LOG_LOCAL5", "LOG_LOCAL6", "LOG_LOCAL7",
	NULL
};

struct parser {
	struct config	*cfg;
	struct account	*defaults;	/* values of the defaults sections */
	struct account	*cur;		/* account being read; defaults too */
	const char	*file;		/* interned in cfg->files */
	int		 line;
	int		 has_password;
	int		 system;
	uid_t		 owner;		/* of the file */
	mode_t		 mode;
};

static const struct cfrow *
row_by_name(const char *name)
{
	size_t	i;

	for (i = 0; i < NROWS; i++)
		if (strcmp(cftab[i].name, name) == 0)
			return &cftab[i];
	return NULL;
}

static const struct cfrow *
row_by_key(enum cfkey key)
{
	size_t	i;

	for (i = 0; i < NROWS; i++)
		if (cftab[i].key == key)
			return &cftab[i];
	return NULL;
}

const char *
cfkey_name(enum cfkey key)
{
	const struct cfrow *r = row_by_key(key);

	return r ? r->name : "?";
}

static int
parse_onoff(const char *v)
{
	if (*v == '\0' || strcmp(v, "on") == 0)
		return 1;
	if (strcmp(v, "off") == 0)
		return 0;
	return -1;
}

static int
all_digits(const char *v)
{
	if (*v == '\0')
		return 0;
	for (; *v; v++)
		if (!isdigit((unsigned char)*v))
			return 0;
	return 1;
}

static int
in_list(const char *v, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(v, *list) == 0)
			return 1;
	return 0;
}

static int
valid_dsn_notify(const char *v)
{
	char	*copy, *tok, *save;
	int	 ok = 1;

	if (strcmp(v, "off") == 0 || strcmp(v, "never") == 0)
		return 1;
	copy = xstrdup(v);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save))
		if (strcmp(tok, "success") != 0 && strcmp(tok, "failure") != 0 &&
		    strcmp(tok, "delay") != 0)
			ok = 0;
	free(copy);
	return ok && *v != '\0' && v[strlen(v) - 1] != ',';
}

static int
valid_fingerprint(const char *v)
{
	size_t	n = 0;

	if (strncmp(v, "sha256//", 8) == 0)
		return strlen(v) == 8 + 44;
	while (isxdigit((unsigned char)v[0]) && isxdigit((unsigned char)v[1])) {
		n++;
		v += 2;
		if (*v == '\0')
			break;
		if (*v++ != ':')
			return 0;
	}
	return *v == '\0' && (n == 32 || n == 20);
}

/* Seconds in one of a duration's units, or 0 for an unknown unit. */
static long long
unit_seconds(char u)
{
	switch (u) {
	case 's':
		return 1;
	case 'm':
		return 60;
	case 'h':
		return 3600;
	case 'd':
		return 86400;
	}
	return 0;
}

/*
 * A duration: up to 9 digits and one unit, s, m, h or d; a bare number is
 * in the unit given.  Returns it as written, with the unit made explicit
 * ("5" for days gives "5d"), or NULL.
 */
static char *
parse_duration(const char *v, char bare_unit)
{
	size_t	n = strspn(v, "0123456789");

	if (n == 0 || n > 9)
		return NULL;
	if (v[n] == '\0')
		return xasprintf("%s%c", v, bare_unit);
	if (v[n + 1] != '\0' || unit_seconds(v[n]) == 0)
		return NULL;
	return xstrdup(v);
}

static char *
expand_tilde(const char *v)
{
	const char	*home;

	if (v[0] != '~' || (v[1] != '/' && v[1] != '\0'))
		return xstrdup(v);
	home = getenv("HOME");
	if (home == NULL || *home == '\0') {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/";
	}
	return xasprintf("%s%s", home, v + 1);
}

/*
 * Check v against the row's type; on success return the value to store
 * (normalised), else NULL with a message in e.
 */
static char *
validate(const struct cfrow *r, const char *v, struct err *e)
{
	int	b;

	if (r->type != T_SECRET && has_ctl(v)) {
		err_set(e, ERR_CONFIG, "%s: the value contains control "
		    "characters", r->name);
		return NULL;
	}
	switch (r->type) {
	case T_UNSUPPORTED:
		err_set(e, ERR_CONFIG, "%s: %s", r->name, r->why);
		return NULL;
	case T_STR:
	case T_SECRET:
		if (*v == '\0' && r->key != CF_PASSWORD &&
		    r->key != CF_FROM_FULL_NAME && r->key != CF_TLS_PRIORITIES &&
		    r->key != CF_LOGFILE_TIME_FORMAT) {
			err_set(e, ERR_CONFIG, "%s needs a value", r->name);
			return NULL;
		}
		return xstrdup(v);
	case T_PATH:
		return expand_tilde(v);
	case T_BOOL:
		if ((b = parse_onoff(v)) == -1)
			break;
		return xstrdup(b ? "on" : "off");
	case T_PORT:
		if (!all_digits(v) || atol(v) < 1 || atol(v) > 65535 ||
		    strlen(v) > 5)
			break;
		return xstrdup(v);
	case T_INT:
		if (!all_digits(v) || strlen(v) > 9)
			break;
		return xstrdup(v);
	case T_TIMEOUT:
		if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0)
			return xstrdup("off");
		if (!all_digits(v) || strlen(v) > 7)
			break;
		return xstrdup(v);
	case T_AUTH:
		if (*v == '\0')
			return xstrdup("on");
		{
			char *lower = xstrdup(v), *p;

			for (p = lower; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			if (in_list(lower, auth_values))
				return lower;
			if (in_list(lower, auth_unsupported)) {
				err_set(e, ERR_CONFIG, "auth %s is not supported: "
				    "%s; use scram-sha-256 or plain (over TLS)",
				    lower, strcmp(lower, "ntlm") == 0 ? "NTLM is "
				    "undocumented and unsafe" : "DIGEST-MD5 is "
				    "obsolete (RFC 6331)");
				free(lower);
				return NULL;
			}
			free(lower);
		}
		break;
	case T_AUTO:
		if (*v == '\0' || strcmp(v, "auto") == 0 || strcmp(v, "on") == 0 ||
		    strcmp(v, "off") == 0)
			return xstrdup(*v ? v : "auto");
		break;
	case T_SET_TO:
		if (*v == '\0' || in_list(v, set_to_words))
			return xstrdup(*v ? v : "on");
		break;
	case T_DSN_NOTIFY:
		if (valid_dsn_notify(v))
			return xstrdup(v);
		break;
	case T_DSN_RETURN:
		if (strcmp(v, "off") == 0 || strcmp(v, "headers") == 0 ||
		    strcmp(v, "full") == 0)
			return xstrdup(v);
		break;
	case T_PROTOCOL:
		if (strcmp(v, "smtp") == 0 || strcmp(v, "lmtp") == 0)
			return xstrdup(v);
		break;
	case T_FINGERPRINT:
		if (*v == '\0' || valid_fingerprint(v))
			return xstrdup(v);
		err_set(e, ERR_CONFIG, "tls_fingerprint: expected a SHA-256 "
		    "fingerprint like 3A:F1:...:7C (32 bytes) or sha256//BASE64 "
		    "of the public key, not '%s'", v);
		return NULL;
	case T_QUEUE:
		if (strcmp(v, "off") == 0 || strcmp(v, "on") == 0 ||
		    strcmp(v, "always") == 0)
			return xstrdup(v);
		if (*v == '\0')
			return xstrdup("on");
		break;
	case T_PROVIDER:
		if (strcmp(v, "google") == 0 || strcmp(v, "microsoft") == 0)
			return xstrdup(v);
		err_set(e, ERR_CONFIG, "oauth_provider: google or microsoft, "
		    "not '%s' (set oauth_auth_url, oauth_token_url... for "
		    "another provider)", v);
		return NULL;
	case T_FLOW:
		if (strcmp(v, "device") == 0 || strcmp(v, "browser") == 0 ||
		    strcmp(v, "client_credentials") == 0)
			return xstrdup(v);
		break;
	case T_DURATION:
	case T_DAYS:
		if (r->key == CF_QUEUE_WARN && strcmp(v, "off") == 0)
			return xstrdup(v);
		{
			char *d = parse_duration(v, r->type == T_DAYS ? 'd' :
			    's');

			/* A retry every 0 s would spin. */
			if (d != NULL && r->type == T_DURATION &&
			    r->key != CF_LINGER && strtoll(d, NULL, 10) == 0) {
				free(d);
				err_set(e, ERR_CONFIG, "%s: the time must be "
				    "more than 0%s", r->name, r->key ==
				    CF_QUEUE_WARN ? " (or off)" : "");
				return NULL;
			}
			if (d != NULL)
				return d;
		}
		err_set(e, ERR_CONFIG, "invalid value '%s' for %s: expected a "
		    "time such as 30s, 5m, 4h or 5d%s", v, r->name,
		    r->type == T_DAYS ? " (a bare number is days)" :
		    r->key == CF_QUEUE_WARN ? ", or off" : "");
		return NULL;
	case T_SYSLOG:
		if (*v == '\0' || strcmp(v, "on") == 0 || strcmp(v, "off") == 0 ||
		    in_list(v, syslog_facilities))
			return xstrdup(*v ? v : "on");
		break;
	}
	err_set(e, ERR_CONFIG, "invalid value '%s' for %s", v, r->name);
	return NULL;
}

static const char *const auto_words[] = { "auto", "on", "off", NULL };
static const char *const queue_words[] = { "off", "on", "always", NULL };
static const char *const protocol_words[] = { "smtp", "lmtp", NULL };

static long
word_index(const char *const *words, const char *v)
{
	long	i;

	for (i = 0; words[i] != NULL; i++)
		if (strcmp(words[i], v) == 0)
			return i;
	return 0;
}

static long
port_number(const char *v)
{
	static const struct {
		const char	*name;
		long		 port;
	} names[] = { { "smtp", 25 }, { "submission", 587 }, { "smtps", 465 } };
	size_t	i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(v, names[i].name) == 0)
			return names[i].port;
	return strtol(v, NULL, 10);
}

/* The value of a validated setting, typed for the places that use it. */
static long
typed(enum cfkey key, const char *v)
{
	size_t	i;

	for (i = 0; i < NROWS && cftab[i].key != key; i++)
		;
	if (i == NROWS)
		return 1;
	switch (cftab[i].type) {
	case T_PORT:
		return port_number(v);
	case T_INT:
	case T_TIMEOUT:
		return strcmp(v, "off") == 0 ? 0 : strtol(v, NULL, 10);
	case T_AUTO:
		return word_index(auto_words, v);
	case T_QUEUE:
		return word_index(queue_words, v);
	case T_SET_TO:
		return word_index(set_to_words, v);
	case T_PROTOCOL:
		return word_index(protocol_words, v);
	default:
		return strcmp(v, "off") != 0;
	}
}

static void
acct_put(struct account *a, enum cfkey key, char *val, const struct origin *o)
{
	a->num[key] = val != NULL ? typed(key, val) : 0;
	if (key == CF_PASSWORD || key == CF_OAUTH_CLIENT_SECRET)
		secret_free(a->val[key]);
	else
		free(a->val[key]);
	a->val[key] = val;
	a->org[key] = *o;
}

/* Old msmtp spellings, mapped onto the current commands. */
static int
set_legacy(struct account *a, const char *cmd, const char *v,
    const struct origin *o, struct err *e)
{
	int	b = parse_onoff(v);

	if (strcmp(cmd, "tls_nocertcheck") == 0) {
		if (*v != '\0')
			return err_set(e, ERR_CONFIG, "tls_nocertcheck takes no "
			    "value");
		return account_set(a, "tls_certcheck", "off", o, e);
	}
	if (strcmp(cmd, "tls_nostarttls") == 0) {
		if (*v != '\0')
			return err_set(e, ERR_CONFIG, "tls_nostarttls takes no "
			    "value");
		return account_set(a, "tls_starttls", "off", o, e);
	}
	if (strcmp(cmd, "connect_timeout") == 0)
		return account_set(a, "timeout", v, o, e);
	if (strcmp(cmd, "tls_force_sslv3") == 0) {
		if (b == 0)
			return 0;
		return err_set(e, ERR_CONFIG, "tls_force_sslv3: SSLv3 is broken "
		    "and not supported; remove this line");
	}
	if (b == -1)
		return err_set(e, ERR_CONFIG, "invalid value '%s' for %s", v,
		    cmd);
	if (strcmp(cmd, "keepbcc") == 0)
		return account_set(a, "remove_bcc_headers", b ? "off" : "on",
		    o, e);
	if (strcmp(cmd, "add_missing_from_header") == 0)
		return account_set(a, "set_from_header", b ? "auto" : "off",
		    o, e);
	if (strcmp(cmd, "add_missing_date_header") == 0)
		return account_set(a, "set_date_header", b ? "auto" : "off",
		    o, e);
	if (strcmp(cmd, "undisclosed_recipients") == 0)
		return account_set(a, "set_to_header", b ?
		    "undisclosed_recipients" : "off", o, e);
	return err_set(e, ERR_CONFIG, "unknown command '%s'", cmd);
}

static int
is_legacy(const char *cmd)
{
	static const char *const legacy[] = {
		"tls_nocertcheck", "tls_force_sslv3", "keepbcc",
		"add_missing_from_header", "add_missing_date_header",
		"undisclosed_recipients", "tls_nostarttls", "connect_timeout",
		NULL
	};

	return in_list(cmd, legacy);
}

int
account_set(struct account *a, const char *cmd, const char *val,
    const struct origin *o, struct err *e)
{
	const struct cfrow	*r;
	char			*v;

	if (is_legacy(cmd))
		return set_legacy(a, cmd, val, o, e);
	if ((r = row_by_name(cmd)) == NULL)
		return err_set(e, ERR_CONFIG, "unknown command '%s'", cmd);
	/* An empty argument unsets a file name, as in msmtp. */
	if (*val == '\0' && (r->type == T_PATH || r->key == CF_SOURCE_IP ||
	    r->key == CF_PROXY_HOST || r->key == CF_PROXY_PORT ||
	    r->key == CF_TLS_HOST_OVERRIDE || r->key == CF_DSN_NOTIFY ||
	    r->key == CF_DSN_RETURN || r->key == CF_PASSWORDEVAL ||
	    r->key == CF_FROM || r->key == CF_DOMAIN ||
	    r->key == CF_NTLMDOMAIN || r->key == CF_TLS_MIN_DH_PRIME_BITS)) {
		acct_put(a, r->key, NULL, o);
		a->org[r->key].file = NULL;
		return 0;
	}
	if ((v = validate(r, val, e)) == NULL)
		return -1;
	acct_put(a, r->key, v, o);
	return 0;
}

struct account *
account_new(const char *name)
{
	struct account	*a = xcalloc(1, sizeof(*a));

	a->name = xstrdup(name);
	return a;
}

void
account_free(struct account *a)
{
	size_t	i;

	if (a == NULL)
		return;
	for (i = 0; i < CF_NKEYS; i++) {
		if (i == CF_PASSWORD || i == CF_OAUTH_CLIENT_SECRET)
			secret_free(a->val[i]);
		else
			free(a->val[i]);
	}
	free(a->name);
	free(a);
}

static void
account_copy_from(struct account *dst, const struct account *src)
{
	size_t	i;

	for (i = 0; i < CF_NKEYS; i++) {
		if (src->val[i] == NULL)
			continue;
		acct_put(dst, (enum cfkey)i, xstrdup(src->val[i]), &src->org[i]);
	}
}

struct account *
config_find(const struct config *cfg, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->nacct; i++)
		if (strcmp(cfg->acct[i]->name, name) == 0)
			return cfg->acct[i];
	return NULL;
}

/* Does addr match the from pattern?  Wildcards, and user+detail@domain. */
static int
from_matches(const char *pattern, const char *addr)
{
	const char	*plus, *at;
	char		*bare;
	int		 m;

	if (strcasecmp(pattern, addr) == 0 ||
	    fnmatch(pattern, addr, FNM_CASEFOLD) == 0)
		return 1;
	plus = strchr(addr, '+');
	at = strrchr(addr, '@');
	if (plus == NULL || at == NULL || plus > at)
		return 0;
	bare = xasprintf("%.*s%s", (int)(plus - addr), addr, at);
	m = strcasecmp(pattern, bare) == 0 ||
	    fnmatch(pattern, bare, FNM_CASEFOLD) == 0;
	free(bare);
	return m;
}

struct account *
config_find_by_from(const struct config *cfg, const char *addr)
{
	size_t	i;

	for (i = 0; i < cfg->nacct; i++) {
		const char *f = cfg->acct[i]->val[CF_FROM];

		if (f != NULL && from_matches(f, addr))
			return cfg->acct[i];
	}
	return NULL;
}

static void
config_add_account(struct config *cfg, struct account *a)
{
	size_t	i;

	for (i = 0; i < cfg->nacct; i++) {
		if (strcmp(cfg->acct[i]->name, a->name) == 0) {
			/* A user account replaces a system one of that name. */
			account_free(cfg->acct[i]);
			cfg->acct[i] = a;
			return;
		}
	}
	cfg->acct = xrealloc(cfg->acct, (cfg->nacct + 1) * sizeof(*cfg->acct));
	cfg->acct[cfg->nacct++] = a;
}

/* Split "NAME [: P1, P2...]" and start a new account. */
static int
cmd_account(struct parser *p, char *arg, struct err *e)
{
	char		*colon, *name, *parents, *tok, *save;
	struct account	*a;
	size_t		 i, n;

	colon = strchr(arg, ':');
	parents = colon ? colon + 1 : NULL;
	if (colon)
		*colon = '\0';
	name = arg;
	n = strlen(name);
	while (n > 0 && isspace((unsigned char)name[n - 1]))
		name[--n] = '\0';
	if (n == 0)
		return err_set(e, ERR_CONFIG, "account needs a name");
	for (i = 0; i < n; i++)
		if (isspace((unsigned char)name[i]) || name[i] == ',')
			return err_set(e, ERR_CONFIG, "invalid account name "
			    "'%s'", name);
	if (strcmp(name, "defaults") == 0)
		return err_set(e, ERR_CONFIG, "'defaults' is not an account "
		    "name");
	/* Within one file a name may be used once. */
	for (i = 0; i < p->cfg->nacct; i++) {
		a = p->cfg->acct[i];
		if (strcmp(a->name, name) == 0 && a->decl.file == p->file)
			return err_set(e, ERR_CONFIG, "account %s is already "
			    "defined at line %d", name, a->decl.line);
	}
	a = account_new(name);
	a->decl.file = p->file;
	a->decl.line = p->line;
	account_copy_from(a, p->defaults);
	for (tok = parents ? strtok_r(parents, ",", &save) : NULL; tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		struct account *parent;

		while (isspace((unsigned char)*tok))
			tok++;
		n = strlen(tok);
		while (n > 0 && isspace((unsigned char)tok[n - 1]))
			tok[--n] = '\0';
		if ((parent = config_find(p->cfg, tok)) == NULL) {
			account_free(a);
			return err_set(e, ERR_CONFIG, "account %s: unknown "
			    "parent account '%s'", name, tok);
		}
		account_copy_from(a, parent);
	}
	config_add_account(p->cfg, a);
	p->cur = a;
	return 0;
}

/*
 * Split a line into command and argument.  The argument is the rest of the
 * line; when it starts with a double quote it must be one quoted string, in
 * which backslash escapes the next character.  Returns 1 for a command, 0 for
 * a blank or comment line, -1 on error.
 */
static int
split_line(char *line, char **cmd, char **arg, struct err *e)
{
	char	*p = line, *end, *o;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	*cmd = p;
	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	if (*p != '\0')
		*p++ = '\0';
	while (isspace((unsigned char)*p))
		p++;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	*arg = p;
	if (*p != '"')
		return 1;
	for (o = p, p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		*o++ = *p;
	}
	if (*p != '"')
		return err_set(e, ERR_CONFIG, "unterminated quoted argument");
	if (p[1] != '\0')
		return err_set(e, ERR_CONFIG, "text after the closing quote");
	*o = '\0';
	return 1;
}

static int parse_stream(struct parser *, FILE *, int evaldepth, struct err *);

/* eval CMD: run the command and read its output as config lines. */
static int
cmd_eval(struct parser *p, const char *arg, int depth, struct err *e)
{
	struct buf	 b = { 0 };
	FILE		*fp;
	int		 status, rv, line = p->line;

	if (depth > 4)
		return err_set(e, ERR_CONFIG, "eval nested too deeply");
	if (*arg == '\0')
		return err_set(e, ERR_CONFIG, "eval needs a command");
	rv = run_capture(arg, 60, 1 << 20, &b, &status);
	if (rv == -1)
		return err_sys(e, ERR_CONFIG, "eval: cannot run the command");
	if (rv == -2 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		buf_wipe(&b);
		return err_set(e, ERR_CONFIG, rv == -2 ? "eval: the command did "
		    "not finish within 60 s" : "eval: the command failed (exit "
		    "status %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	if ((fp = fmemopen(b.p ? b.p : (char *)"", b.len, "r")) == NULL) {
		buf_wipe(&b);
		return err_sys(e, ERR_OS, "eval");
	}
	rv = parse_stream(p, fp, depth + 1, e);
	fclose(fp);
	buf_wipe(&b);
	p->line = line;
	return rv;
}

/*
 * A file whose lines run commands (eval, passwordeval) must be the user's or
 * root's, and writable by nobody else: whoever can write it runs commands as
 * the user.  Checked before the command runs.
 */
static int
check_runs_commands(const struct parser *p, const char *cmd, struct err *e)
{
	if (strcmp(cmd, "eval") != 0 && strcmp(cmd, "passwordeval") != 0)
		return 0;
	if (p->owner != geteuid() && p->owner != 0)
		return err_set(e, ERR_CONFIG, "%s runs a command, but %s is "
		    "owned by another user (uid %u)", cmd, p->file,
		    (unsigned)p->owner);
	if (p->mode & (S_IWGRP | S_IWOTH))
		return err_set(e, ERR_CONFIG, "%s runs a command, but others "
		    "can write %s; run: chmod go-w %s", cmd, p->file, p->file);
	return 0;
}

static int
do_command(struct parser *p, char *cmd, char *arg, int depth, struct err *e)
{
	struct origin	o = { p->file, p->line };

	if (check_runs_commands(p, cmd, e) == -1)
		return -1;

	if (strcmp(cmd, "defaults") == 0) {
		if (*arg != '\0')
			return err_set(e, ERR_CONFIG, "defaults takes no value");
		p->cur = p->defaults;
		return 0;
	}
	if (strcmp(cmd, "account") == 0)
		return cmd_account(p, arg, e);
	if (strcmp(cmd, "eval") == 0)
		return cmd_eval(p, arg, depth, e);
	if (p->cur == NULL) {
		/* As in msmtp: commands before any section make "default". */
		char name[] = "default";

		if (cmd_account(p, name, e) == -1)
			return -1;
	}
	if (strcmp(cmd, "password") == 0 ||
	    strcmp(cmd, "oauth_client_secret") == 0)
		p->has_password = 1;
	return account_set(p->cur, cmd, arg, &o, e);
}

static int
parse_stream(struct parser *p, FILE *fp, int depth, struct err *e)
{
	char	*line = NULL, *cmd, *arg;
	size_t	 cap = 0;
	ssize_t	 n;
	int	 rv = 0, base = p->line;

	while ((n = getline(&line, &cap, fp)) != -1) {
		if (depth == 0)
			p->line++;
		else
			p->line = base;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if ((size_t)n != strlen(line)) {
			rv = err_set(e, ERR_CONFIG, "NUL byte in line");
			break;
		}
		rv = split_line(line, &cmd, &arg, e);
		if (rv == 1)
			rv = do_command(p, cmd, arg, depth, e);
		if (rv == -1 && depth == 0)
			err_prefix(e, "%s:%d", p->file, p->line);
		if (rv == -1 && depth == 0 && p->cfg->on_error != NULL) {
			p->cfg->on_error(p->cfg->on_error_ctx, e);
			p->cfg->nerrors++;
			rv = 0;
			continue;
		}
		if (rv == -1)
			break;
		rv = 0;
	}
	if (rv == 0 && depth == 0 && p->cfg->nerrors > 0)
		rv = err_set(e, ERR_CONFIG, "%d errors", p->cfg->nerrors);
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	return rv;
}

static const char *
intern_file(struct config *cfg, const char *path)
{
	cfg->files = xrealloc(cfg->files, (cfg->nfiles + 1) * sizeof(char *));
	cfg->files[cfg->nfiles] = xstrdup(path);
	return cfg->files[cfg->nfiles++];
}

static int
check_perms(int fd, const char *path, int system, struct err *e)
{
	struct stat	st;

	if (fstat(fd, &st) == -1)
		return err_sys(e, ERR_CONFIG, "%s", path);
	if (system) {
		if (st.st_mode & S_IROTH)
			return err_set(e, ERR_CONFIG, "%s: contains a password "
			    "but anyone can read it; run: chmod o-r %s", path,
			    path);
		return 0;
	}
	if (st.st_uid != geteuid())
		return err_set(e, ERR_CONFIG, "%s: contains a password but is "
		    "owned by another user (uid %u)", path,
		    (unsigned)st.st_uid);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return err_set(e, ERR_CONFIG, "%s: contains a password but "
		    "others can read it; run: chmod 600 %s", path, path);
	return 0;
}

/* The defaults sections carry from one file to the next. */
static struct account *
parser_defaults(struct config *cfg)
{
	if (cfg->defaults == NULL)
		cfg->defaults = account_new("defaults");
	return cfg->defaults;
}

int
config_parse_file(struct config *cfg, const char *path, int system,
    struct err *e)
{
	struct parser	 p;
	struct stat	 st;
	FILE		*fp;
	char		 iobuf[BUFSIZ];	/* ours, to wipe: it may hold a password */
	int		 rv;

	if ((fp = fopen(path, "re")) == NULL)
		return err_sys(e, ERR_CONFIG,
		    "%s", path);
	if (fstat(fileno(fp), &st) == -1) {
		fclose(fp);
		return err_sys(e, ERR_CONFIG, "%s", path);
	}
	setvbuf(fp, iobuf, _IOFBF, sizeof(iobuf));
	memset(&p, 0, sizeof(p));
	p.owner = st.st_uid;
	p.mode = st.st_mode;
	p.cfg = cfg;
	p.file = intern_file(cfg, path);
	p.defaults = parser_defaults(cfg);
	p.system = system;
	rv = parse_stream(&p, fp, 0, e);
	if (p.has_password && (rv == 0 || cfg->on_error != NULL) &&
	    check_perms(fileno(fp), path, system, e) == -1) {
		rv = -1;
		if (cfg->on_error != NULL) {
			cfg->on_error(cfg->on_error_ctx, e);
			cfg->nerrors++;
		}
	}
	fclose(fp);
	explicit_bzero(iobuf, sizeof(iobuf));
	return rv;
}

static char *
user_config_path(void)
{
	const char	*home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
	char		*cand[4];
	size_t		 i, n = 0;
	char		*found = NULL;

	if (home == NULL || *home == '\0') {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (xdg != NULL && *xdg == '/')
		cand[n++] = xasprintf("%s/outbox/config", xdg);
	else if (home != NULL)
		cand[n++] = xasprintf("%s/.config/outbox/config", home);
	if (home != NULL)
		cand[n++] = xasprintf("%s/.outboxrc", home);
	if (home != NULL)
		cand[n++] = xasprintf("%s/.msmtprc", home);
	if (xdg != NULL && *xdg == '/')
		cand[n++] = xasprintf("%s/msmtp/config", xdg);
	else if (home != NULL)
		cand[n++] = xasprintf("%s/.config/msmtp/config", home);
	for (i = 0; i < n; i++) {
		if (found == NULL && access(cand[i], F_OK) == 0)
			found = cand[i];
		else
			free(cand[i]);
	}
	return found;
}

int
config_load(struct config *cfg, const char *path, struct err *e)
{
	const char	*sys = getenv("OUTBOX_SYSCONF");
	char		*user;
	int		 rv = 0;

	if (sys == NULL)
		sys = access("/etc/outbox.conf", F_OK) == 0 ?
		    "/etc/outbox.conf" : "/etc/msmtprc";
	if (*sys != '\0' && access(sys, F_OK) == 0 &&
	    config_parse_file(cfg, sys, 1, e) == -1)
		return -1;
	if (path != NULL) {
		if ((rv = config_parse_file(cfg, path, 0, e)) == 0)
			cfg->userfile = cfg->files[cfg->nfiles - 1];
		return rv;
	}
	if ((user = user_config_path()) != NULL) {
		if ((rv = config_parse_file(cfg, user, 0, e)) == 0)
			cfg->userfile = cfg->files[cfg->nfiles - 1];
		free(user);
	}
	return rv;
}

void
config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
}

void
config_wipe_secrets(struct config *cfg)
{
	size_t	i;

	for (i = 0; i < cfg->nacct; i++) {
		struct account *a = cfg->acct[i];

		if (a->val[CF_PASSWORD] != NULL)
			explicit_bzero(a->val[CF_PASSWORD],
			    strlen(a->val[CF_PASSWORD]));
		if (a->val[CF_OAUTH_CLIENT_SECRET] != NULL)
			explicit_bzero(a->val[CF_OAUTH_CLIENT_SECRET],
			    strlen(a->val[CF_OAUTH_CLIENT_SECRET]));
	}
}

void
config_free(struct config *cfg)
{
	size_t	i;

	for (i = 0; i < cfg->nacct; i++)
		account_free(cfg->acct[i]);
	free(cfg->acct);
	account_free(cfg->defaults);
	for (i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	free(cfg->files);
	memset(cfg, 0, sizeof(*cfg));
}

const char *
acct_str(const struct account *a, enum cfkey key)
{
	return a->val[key];
}

int
acct_on(const struct account *a, enum cfkey key)
{
	return a->val[key] != NULL && a->num[key] != 0;
}

long long
acct_seconds(const struct account *a, enum cfkey key)
{
	const char	*v = a->val[key];
	char		*end;
	long long	 n;

	if (v == NULL || strcmp(v, "off") == 0)
		return -1;
	n = strtoll(v, &end, 10);
	return n * unit_seconds(*end);
}

int
acct_int(const struct account *a, enum cfkey key)
{
	return a->val[key] != NULL ? (int)a->num[key] : 0;
}

int
acct_enum(const struct account *a, enum cfkey key)
{
	return a->val[key] != NULL ? (int)a->num[key] : 0;
}

void
origin_str(const struct origin *o, char *buf, size_t len)
{
	if (o->file == NULL)
		snprintf(buf, len, "not set");
	else if (o->line == 0)
		snprintf(buf, len, "%s", o->file);
	else
		snprintf(buf, len, "%s:%d", o->file, o->line);
}

/*
 * Only addresses are loopback (127.0.0.0/8, ::1, as written or in brackets),
 * and the name localhost: 127.mx.example.net is a name like any other.
 */
int
host_is_loopback(const char *h)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;
	char		 v6[INET6_ADDRSTRLEN + 2];
	size_t		 n = strlen(h);

	if (strcasecmp(h, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n > 2 && n < sizeof(v6) && h[0] == '[' && h[n - 1] == ']') {
		memcpy(v6, h + 1, n - 2);
		v6[n - 2] = '\0';
		h = v6;
	}
	return inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static void
set_default(struct account *a, enum cfkey key, const char *v)
{
	if (a->val[key] == NULL)
		acct_put(a, key, xstrdup(v), &ORIGIN_DEFAULT);
}

static void
set_default_own(struct account *a, enum cfkey key, char *v)
{
	if (a->val[key] == NULL)
		acct_put(a, key, v, &ORIGIN_DEFAULT);
	else
		free(v);
}

/*
 * oauth_provider: the endpoints, scope, server and mechanism, each only
 * where the account does not set it.
 */
static void
oauth_preset(struct account *a)
{
	const char	*p = a->val[CF_OAUTH_PROVIDER], *t;
	char		*base;
	int		 app;

	if (p == NULL)
		return;
	set_default(a, CF_AUTH, "xoauth2");
	if (strcmp(p, "google") == 0) {
		set_default(a, CF_HOST, "smtp.gmail.com");
		set_default(a, CF_OAUTH_AUTH_URL,
		    "https://accounts.google.com/o/oauth2/v2/auth");
		set_default(a, CF_OAUTH_DEVICE_URL,
		    "https://oauth2.googleapis.com/device/code");
		set_default(a, CF_OAUTH_TOKEN_URL,
		    "https://oauth2.googleapis.com/token");
		set_default(a, CF_OAUTH_SCOPE, "https://mail.google.com/");
		/* Google's device flow does not grant the mail scope. */
		set_default(a, CF_OAUTH_FLOW, "browser");
		return;
	}
	set_default(a, CF_HOST, "smtp.office365.com");
	set_default(a, CF_OAUTH_TENANT, "common");
	t = a->val[CF_OAUTH_TENANT];
	base = xasprintf("https://login.microsoftonline.com/%s/oauth2/v2.0", t);
	set_default(a, CF_OAUTH_FLOW, "device");
	app = strcmp(a->val[CF_OAUTH_FLOW], "client_credentials") == 0;
	set_default(a, CF_OAUTH_SCOPE, app ?
	    "https://outlook.office365.com/.default" :
	    "https://outlook.office.com/SMTP.Send offline_access");
	set_default_own(a, CF_OAUTH_AUTH_URL, xasprintf("%s/authorize", base));
	set_default_own(a, CF_OAUTH_DEVICE_URL,
	    xasprintf("%s/devicecode", base));
	set_default_own(a, CF_OAUTH_TOKEN_URL, xasprintf("%s/token", base));
	free(base);
}

int
account_resolve(struct account *a, struct err *e)
{
	const char	*host;
	int		 tls, smtps;

	oauth_preset(a);
	/* A Unix socket needs no host; the name is for TLS and the keyring. */
	if (a->val[CF_SOCKET] != NULL)
		set_default(a, CF_HOST, "localhost");
	host = a->val[CF_HOST];

	if (host == NULL)
		return err_set(e, ERR_CONFIG, "account %s: no host given (add "
		    "a line such as 'host smtp.example.org')", a->name);
	/*
	 * RFC 8314: TLS unless asked not to; loopback relays, and local
	 * sockets, may be plain (behind a proxy, "localhost" is the
	 * proxy's, not ours).  Port 465 is implicit TLS, loopback or not:
	 * STARTTLS or plaintext there would wait out the greeting timeout.
	 */
	smtps = acct_int(a, CF_PORT) == 465;
	set_default(a, CF_TLS, (a->val[CF_SOCKET] != NULL ||
	    (host_is_loopback(host) && a->val[CF_PROXY_HOST] == NULL)) &&
	    !smtps ? "off" : "on");
	if (a->val[CF_PROXY_HOST] != NULL)
		set_default(a, CF_PROXY_PORT, "1080");
	set_default(a, CF_TLS_STARTTLS, smtps ? "off" : "on");
	tls = acct_on(a, CF_TLS);
	set_default(a, CF_PORT, !tls ? "25" :
	    acct_on(a, CF_TLS_STARTTLS) ? "587" : "465");
	set_default(a, CF_TIMEOUT, "60");
	set_default(a, CF_SESSION_TIMEOUT, "600");
	set_default(a, CF_PROTOCOL, "smtp");
	set_default(a, CF_AUTH, a->val[CF_USER] ? "on" : "off");
	set_default(a, CF_TLS_CERTCHECK, "on");
	set_default(a, CF_TLS_TRUST_FILE, "system");
	set_default(a, CF_ALLOW_FROM_OVERRIDE, "on");
	set_default(a, CF_SET_FROM_HEADER, "auto");
	set_default(a, CF_SET_DATE_HEADER, "auto");
	set_default(a, CF_SET_MSGID_HEADER, "auto");
	set_default(a, CF_REMOVE_BCC_HEADERS, "on");
	set_default(a, CF_SET_TO_HEADER, "off");
	set_default(a, CF_AUTO_FROM, "off");
	set_default(a, CF_QUEUE, "on");
	set_default(a, CF_ALL_OR_NOTHING, "off");
	set_default(a, CF_QUEUE_LIFETIME, "5d");
	set_default(a, CF_QUEUE_RETRY, "5m");
	set_default(a, CF_QUEUE_RETRY_MAX, "4h");
	set_default(a, CF_QUEUE_WARN, "4h");
	set_default(a, CF_DESKTOP_NOTIFY, "on");
	set_default(a, CF_LINGER, "5s");
	if (strcmp(a->val[CF_AUTH], "off") != 0 && a->val[CF_USER] == NULL &&
	    strcmp(a->val[CF_AUTH], "external") != 0)
		return err_set(e, ERR_CONFIG, "account %s: auth is on but no "
		    "user is given (add 'user NAME')", a->name);
	if (a->val[CF_OAUTH_TOKEN_URL] != NULL &&
	    a->val[CF_OAUTH_CLIENT_ID] == NULL)
		return err_set(e, ERR_CONFIG, "account %s: OAuth 2.0 needs "
		    "oauth_client_id: register a client with the provider (see "
		    "the README) and add 'oauth_client_id ID'", a->name);
	if (a->val[CF_OAUTH_FLOW] != NULL &&
	    strcmp(a->val[CF_OAUTH_FLOW], "client_credentials") == 0 &&
	    a->val[CF_OAUTH_CLIENT_SECRET] == NULL)
		return err_set(e, ERR_CONFIG, "account %s: oauth_flow "
		    "client_credentials needs oauth_client_secret", a->name);
	if (a->val[CF_TLS_CERT_FILE] != NULL && a->val[CF_TLS_KEY_FILE] == NULL)
		return err_set(e, ERR_CONFIG, "account %s: tls_cert_file needs "
		    "tls_key_file too", a->name);
	if (a->val[CF_TLS_KEY_FILE] != NULL && a->val[CF_TLS_CERT_FILE] == NULL)
		return err_set(e, ERR_CONFIG, "account %s: tls_key_file needs "
		    "tls_cert_file too", a->name);
	return 0;
}
