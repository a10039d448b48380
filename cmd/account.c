#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"

#define DATA_WAIT_MS	(10 * 60 * 1000)
#include "../src/secret.h"
#include "../src/tokcache.h"
#include "../src/util.h"

static int
mkdir_p_0700(const char *path)
{
	char	tmp[512], *s;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (s = tmp + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(tmp, 0700) == -1 && errno != EEXIST ? -1 : 0;
}

void
local_hostname(char *buf, size_t len)
{
	struct addrinfo	 hints, *res;

	if (gethostname(buf, len) == -1 || *buf == '\0') {
		snprintf(buf, len, "localhost");
		return;
	}
	buf[len - 1] = '\0';
	if (strchr(buf, '.') != NULL)
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_CANONNAME;
	if (getaddrinfo(buf, NULL, &hints, &res) == 0) {
		if (res->ai_canonname != NULL && strchr(res->ai_canonname, '.'))
			snprintf(buf, len, "%s", res->ai_canonname);
		freeaddrinfo(res);
	}
}

static int
no_account(struct run *r, const char *name, struct err *e)
{
	if (r->cfg.nfiles == 0)
		return err_set(e, ERR_CONFIG, "no configuration file: create "
		    "~/.config/outbox/config (see outbox.conf(5)), or give "
		    "--host");
	return err_set(e, ERR_CONFIG, "no account '%s' in %s", name,
	    r->cfg.userfile ? r->cfg.userfile : r->cfg.files[0]);
}

/* A value that the command line gives overrides the file's. */
int
front_overrides(struct run *r, struct err *e)
{
	size_t	i;

	for (i = 0; i < r->o->nov; i++) {
		if (account_set(r->acct, r->o->ov[i].cmd, r->o->ov[i].val,
		    &ORIGIN_CMDLINE, e) == -1) {
			e->cls = ERR_USAGE;
			err_prefix(e, "--%s", r->o->ov[i].cmd);
			return -1;
		}
	}
	return 0;
}

static int
cmdline_has_host(const struct opts *o)
{
	size_t	i;

	for (i = 0; i < o->nov; i++)
		if (strcmp(o->ov[i].cmd, "host") == 0 ||
		    strcmp(o->ov[i].cmd, "socket") == 0)
			return 1;
	return 0;
}


void
front_adopt(struct run *r, struct account *a)
{
	r->cfg.acct = xrealloc(r->cfg.acct, (r->cfg.nacct + 1) *
	    sizeof(*r->cfg.acct));
	r->cfg.acct[r->cfg.nacct++] = a;
	r->acct = a;
}

int
front_use_account(struct run *r, const char *name, struct err *e)
{
	if ((r->acct = config_find(&r->cfg, name)) == NULL)
		return no_account(r, name, e);
	return front_ready(r, e);
}

int
front_account(struct run *r, struct err *e)
{
	const struct opts	*o = r->o;
	const char		*name = o->account ? o->account : "default";

	if (config_load(&r->cfg, o->conffile, e) == -1)
		return -1;
	if (o->account == NULL && (o->from != NULL || r->from_hint != NULL))
		r->acct = config_find_by_from(&r->cfg, o->from ? o->from :
		    r->from_hint);
	if (r->acct == NULL)
		r->acct = config_find(&r->cfg, name);
	if (r->acct == NULL && o->account == NULL && cmdline_has_host(o)) {
		/* msmtp style: everything on the command line. */
		front_adopt(r, account_new("command line"));
		r->acct->decl = ORIGIN_CMDLINE;
	}
	if (r->acct == NULL)
		return no_account(r, name, e);
	if (front_overrides(r, e) == -1)
		return -1;
	return front_ready(r, e);
}

/*
 * The domain command, with msmtp's %H and %C (this host's name) and %M
 * (maildomain, else this host's name) replaced.
 */
static void
expand_domain(const struct account *a, char *out, size_t len)
{
	const char	*p = acct_str(a, CF_DOMAIN), *md = acct_str(a,
			    CF_MAILDOMAIN);
	char		 host[256];
	size_t		 o = 0;

	local_hostname(host, sizeof(host));
	for (; *p != '\0' && o + 1 < len; p++) {
		const char *add = NULL;

		if (p[0] == '%' && (p[1] == 'H' || p[1] == 'C'))
			add = host;
		else if (p[0] == '%' && p[1] == 'M')
			add = md ? md : host;
		if (add == NULL) {
			out[o++] = *p;
			continue;
		}
		o += (size_t)snprintf(out + o, len - o, "%s", add);
		if (o >= len)
			o = len - 1;
		p++;
	}
	out[o] = '\0';
}

/* Resolve the current account's defaults and the EHLO name. */
int
front_ready(struct run *r, struct err *e)
{
	if (account_resolve(r->acct, e) == -1)
		return -1;
	if (acct_str(r->acct, CF_DOMAIN) != NULL)
		expand_domain(r->acct, r->helo, sizeof(r->helo));
	else
		local_hostname(r->helo, sizeof(r->helo));
	/* EHLO wants a fully qualified name; a bare host name is not one. */
	if (strchr(r->helo, '.') == NULL && strchr(r->helo, ':') == NULL)
		snprintf(r->helo, sizeof(r->helo), "localhost");
	return 0;
}

/*
 * Where the TLS session of an account is kept for resumption:
 * $XDG_CACHE_HOME/outbox/ (or ~/.cache/outbox/), one file per account,
 * host and port, so that a session is only offered where it came from.
 */
int
front_cache_file(const char *what, const struct account *a, int per_server,
    char *buf, size_t len)
{
	const char	*cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char		 dir[512];
	size_t		 i, n;

	buf[0] = '\0';
	if (cache != NULL && *cache == '/')
		snprintf(dir, sizeof(dir), "%s/outbox", cache);
	else if (home != NULL && *home == '/' && strcmp(home, "/") != 0)
		snprintf(dir, sizeof(dir), "%s/.cache/outbox", home);
	else
		return -1;
	if (mkdir_p_0700(dir) == -1)
		return -1;
	if (per_server)
		n = (size_t)snprintf(buf, len, "%s/%s-%s-%s-%s", dir, what,
		    a->name, acct_str(a, CF_HOST), acct_str(a, CF_PORT));
	else
		n = (size_t)snprintf(buf, len, "%s/%s-%s", dir, what, a->name);
	for (i = strlen(dir) + 1; i < n && i < len; i++)
		if (buf[i] == '/')
			buf[i] = '_';
	return 0;
}

void
front_smtp_params(struct run *r, struct smtp_params *p)
{
	const struct account	*a = r->acct;
	const char		*trust = acct_str(a, CF_TLS_TRUST_FILE);
	struct err		 why;

	memset(p, 0, sizeof(*p));
	p->host = acct_str(a, CF_HOST);
	p->port = acct_int(a, CF_PORT);
	p->source_ip = acct_str(a, CF_SOURCE_IP);
	p->socket_path = acct_str(a, CF_SOCKET);
	p->proxy_host = acct_str(a, CF_PROXY_HOST);
	p->proxy_port = acct_int(a, CF_PROXY_PORT);
	p->timeout_ms = acct_int(a, CF_TIMEOUT) * 1000;
	p->session_ms = acct_int(a, CF_SESSION_TIMEOUT) * 1000;
	/* RFC 5321 section 4.5.3.2.6: 10 minutes for the data's reply. */
	p->data_timeout_ms = p->timeout_ms > DATA_WAIT_MS ? p->timeout_ms :
	    DATA_WAIT_MS;
	p->lmtp = acct_enum(a, CF_PROTOCOL) == CF_PROTO_LMTP;
	p->tls = acct_on(a, CF_TLS);
	p->starttls = acct_on(a, CF_TLS_STARTTLS);
	p->tlsp.hostname = acct_str(a, CF_TLS_HOST_OVERRIDE) ?
	    acct_str(a, CF_TLS_HOST_OVERRIDE) : p->host;
	p->tlsp.certcheck = acct_on(a, CF_TLS_CERTCHECK);
	p->tlsp.trust_file = trust && *trust ? trust : NULL;
	p->tlsp.crl_file = acct_str(a, CF_TLS_CRL_FILE);
	p->tlsp.min_dh_bits = acct_int(a, CF_TLS_MIN_DH_PRIME_BITS);
	p->tlsp.fingerprint = acct_str(a, CF_TLS_FINGERPRINT) &&
	    *acct_str(a, CF_TLS_FINGERPRINT) ? acct_str(a, CF_TLS_FINGERPRINT) :
	    NULL;
	p->tlsp.cert_file = acct_str(a, CF_TLS_CERT_FILE);
	p->tlsp.key_file = acct_str(a, CF_TLS_KEY_FILE);
	p->tlsp.priorities = acct_str(a, CF_TLS_PRIORITIES) &&
	    *acct_str(a, CF_TLS_PRIORITIES) ? acct_str(a, CF_TLS_PRIORITIES) :
	    NULL;
	/* Checked once: a cache others could write is never offered. */
	if (r->tls_cache[0] == '\0' && !r->tls_cache_bad) {
		if (front_cache_file("tls", a, 1, r->tls_cache,
		    sizeof(r->tls_cache)) == -1)
			r->tls_cache_bad = 1;
		else if (cache_trusted(r->tls_cache, "TLS session cache",
		    &why) == -1) {
			say_notice(r, "warning: %s", why.msg);
			r->tls_cache_bad = 1;
		}
	}
	p->tlsp.cache_file = r->tls_cache_bad ? NULL : r->tls_cache;
	p->helo = r->helo;
	p->auth = acct_str(a, CF_AUTH);
	p->user = acct_str(a, CF_USER);
	p->verbose = r->o->verbose;
}

struct smtp_session *
front_open(void *arg, struct smtp_result *res, struct err *e)
{
	struct front_session	*fs = arg;
	struct smtp_session	*ss;

	if ((ss = front_linger_open(fs)) != NULL)
		return ss;
	return front_open_own(fs, res, e);
}

struct smtp_session *
front_open_own(struct front_session *fs, struct smtp_result *res,
    struct err *e)
{
	struct smtp_session	*ss;

	front_smtp_params(fs->r, &fs->p);
	secret_free(fs->pw);
	fs->pw = NULL;
	if (front_password(fs->r, &fs->pw, e) == -1)
		return NULL;
	fs->p.password = fs->pw;
	fs->p.keep = front_scram_keep(fs);
	ss = smtp_open(&fs->p, res, e);
	/* A cached OAuth token refused: once more with a fresh one. */
	if (ss == NULL && front_auth_retry(fs->r, &fs->pw, e)) {
		fs->p.password = fs->pw;
		ss = smtp_open(&fs->p, res, e);
	} else if (ss == NULL && front_scram_retry(fs, res, e))
		/* A kept SCRAM key refused: once more with the password. */
		ss = smtp_open(&fs->p, res, e);
	return ss;
}

void
front_session_end(struct front_session *fs)
{
	secret_free(fs->pw);
	fs->pw = NULL;
	if (fs->holder_open)
		close(fs->holder_fd);
	fs->holder_open = 0;
}

void
front_deliver_params(struct run *r, struct front_session *fs,
    struct deliver_params *dp)
{
	const struct account	*a = r->acct;

	memset(dp, 0, sizeof(*dp));
	fs->r = r;
	dp->account = a->name;
	dp->host = acct_str(a, CF_HOST);
	dp->port = acct_int(a, CF_PORT);
	dp->lifetime = acct_seconds(a, CF_QUEUE_LIFETIME);
	dp->retry = acct_seconds(a, CF_QUEUE_RETRY);
	dp->retry_max = acct_seconds(a, CF_QUEUE_RETRY_MAX);
	dp->warn = acct_seconds(a, CF_QUEUE_WARN);
	dp->bounces = 1;
	dp->reporter = r->helo[0] != '\0' ? r->helo : "localhost";
	dp->logfile = acct_str(a, CF_LOGFILE);
	dp->logtime = acct_str(a, CF_LOGFILE_TIME_FORMAT);
	dp->syslog = acct_on(a, CF_SYSLOG) ? acct_str(a, CF_SYSLOG) : NULL;
	dp->open = front_open;
	dp->open_arg = fs;
	dp->report = flush_report;
	dp->report_arg = r;
}

/* The values outbox picks differently from msmtp, for -P. */
static void
print_differences(const struct account *a, FILE *out)
{
	int		 tls_default = a->org[CF_TLS].file == ORIGIN_DEFAULT.file;
	/* msmtp: TLS off unless set; port 25, or 465 for implicit TLS. */
	const char	*msmtp_port = !tls_default && acct_on(a, CF_TLS) &&
	    !acct_on(a, CF_TLS_STARTTLS) ? "465" : "25";
	int		 tls_diff = tls_default && acct_on(a, CF_TLS);
	int		 port_diff = a->org[CF_PORT].file == ORIGIN_DEFAULT.file &&
	    strcmp(acct_str(a, CF_PORT), msmtp_port) != 0;
	/* msmtp: STARTTLS unless told otherwise, port 465 too. */
	int		 starttls_diff = a->org[CF_TLS_STARTTLS].file ==
	    ORIGIN_DEFAULT.file && acct_on(a, CF_TLS) &&
	    !acct_on(a, CF_TLS_STARTTLS);

	if (!tls_diff && !port_diff && !starttls_diff)
		return;
	fprintf(out, "\nValues where outbox's default differs from msmtp's:\n");
	if (tls_diff)
		fprintf(out, "    tls = on (msmtp: off)\n");
	if (starttls_diff)
		fprintf(out, "    tls_starttls = off, as port %s wants (msmtp: "
		    "on)\n", acct_str(a, CF_PORT));
	if (port_diff)
		fprintf(out, "    port = %s (msmtp: %s)\n", acct_str(a, CF_PORT),
		    msmtp_port);
}

int
mode_pretend(struct run *r, FILE *out, struct err *e)
{
	const struct account	*a;
	struct secret_query	 q;
	char			 where[300];
	int			 k;

	if (front_account(r, e) == -1)
		return -1;
	a = r->acct;
	origin_str(&a->decl, where, sizeof(where));
	fprintf(out, "account %s (%s)\n", a->name, where);
	for (k = 0; k < CF_NKEYS; k++) {
		const char *v = a->val[k];

		if (v == NULL)
			continue;
		origin_str(&a->org[k], where, sizeof(where));
		fprintf(out, "    %-24s = %s  (%s)\n", cfkey_name((enum cfkey)k),
		    k == CF_PASSWORD || k == CF_OAUTH_CLIENT_SECRET ? "*" : v,
		    where);
	}
	fprintf(out, "    %-24s = %s\n", "(EHLO domain)", r->helo);
	if (acct_on(a, CF_AUTH)) {
		memset(&q, 0, sizeof(q));
		q.password = acct_str(a, CF_PASSWORD);
		q.passwordeval = acct_str(a, CF_PASSWORDEVAL);
		fprintf(out, "    %-24s = %s\n", "(password source)",
		    secret_source_name(secret_planned(&q)));
	}
	print_differences(a, out);
	return 0;
}
