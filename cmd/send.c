#include <sys/stat.h>

#include <ctype.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "front.h"
#include "../src/aliases.h"
#include "../src/log.h"
#include "../src/message.h"
#include "../src/queue.h"
#include "../src/secret.h"
#include "../src/util.h"

/* One submission's state, for reporting. */
struct submission {
	struct run		*r;
	struct sendreq		*req;
	struct msg		 m;
	struct addrlist		 rcpts;
	char			*sender;
	char			*from_hdr;
	struct smtp_result	 res;
	long long		 start;
	struct queue		 q;
	struct qentry		 qe;
	int			 queued;	/* qe is a committed entry */
	int			 detached;	/* the caller was told 0 */
	int			 spooling;	/* qe.fd is the spool */
};

static const char *
login_name(void)
{
	const char	*u = getenv("USER");
	struct passwd	*pw;

	if (u != NULL && *u != '\0' && !has_ctl(u) && strchr(u, ' ') == NULL)
		return u;
	pw = getpwuid(getuid());
	return pw ? pw->pw_name : "nobody";
}

/* msmtp's from substitutions: %U user, %H host, %C FQDN, %M maildomain. */
static char *
expand_from(const struct account *a, const char *pat)
{
	struct buf	b = { 0 };
	char		host[256];
	const char	*md = acct_str(a, CF_MAILDOMAIN);

	local_hostname(host, sizeof(host));
	for (; *pat; pat++) {
		if (pat[0] != '%' || pat[1] == '\0') {
			buf_addc(&b, *pat);
			continue;
		}
		switch (*++pat) {
		case 'U': buf_adds(&b, login_name()); break;
		case 'H': case 'C': buf_adds(&b, host); break;
		case 'M': buf_adds(&b, md ? md : host); break;
		case '%': buf_addc(&b, '%'); break;
		default: buf_addc(&b, '%'); buf_addc(&b, *pat); break;
		}
	}
	return b.p ? b.p : xstrdup("");
}

/* A -f value: "addr", "<addr>", "Name <addr>" or "" / "<>" (null sender). */
static int
parse_sender(const char *v, char **out, struct err *e)
{
	struct addrlist	l = { 0 };

	if (*v == '\0' || strcmp(v, "<>") == 0) {
		*out = xstrdup("");
		return 0;
	}
	if (addr_parse_list(&l, v, e) == -1 || l.n != 1) {
		if (l.n > 1 || e->cls == ERR_NONE)
			err_set(e, ERR_USAGE, "-f: expected one address, not "
			    "'%s'", v);
		e->cls = ERR_USAGE;
		addrlist_free(&l);
		return -1;
	}
	*out = xstrdup(l.v[0]);
	addrlist_free(&l);
	return 0;
}

/*
 * No from configured (cron's mail, often): the login name as an address
 * when it is one, else the user at this host's domain, or at the
 * server's domain when this host has no domain name.
 */
static char *
default_sender(const struct account *a)
{
	const char	*user = acct_str(a, CF_USER), *host, *dot;
	char		 fqdn[256];

	if (user != NULL && strchr(user, '@') != NULL)
		return xstrdup(user);
	local_hostname(fqdn, sizeof(fqdn));
	if (strchr(fqdn, '.') != NULL)
		return xasprintf("%s@%s", login_name(), fqdn);
	host = acct_str(a, CF_HOST);
	dot = strchr(host, '.');
	if (dot != NULL && strchr(dot + 1, '.') != NULL)
		host = dot + 1;
	return xasprintf("%s@%s", login_name(), host);
}

static int
choose_sender(struct submission *s, struct err *e)
{
	const struct account	*a = s->r->acct;
	const char		*given = s->req->from;
	const char		*from = acct_str(a, CF_FROM);

	/*
	 * A bare local name (cronie's "-f root") cannot be an envelope
	 * sender at a submission server: the account's own is used instead.
	 */
	if (given != NULL && *given != '\0' && strchr(given, '@') == NULL &&
	    strcmp(given, "<>") != 0)
		given = NULL;
	if (given != NULL && (acct_on(a, CF_ALLOW_FROM_OVERRIDE) ||
	    from == NULL))
		return parse_sender(given, &s->sender, e);
	if (from != NULL)
		s->sender = expand_from(a, from);
	else if (acct_on(a, CF_AUTO_FROM) && acct_str(a, CF_MAILDOMAIN))
		s->sender = expand_from(a, "%U@%M");
	else
		s->sender = default_sender(a);
	return 0;
}

/* RFC 2047 for a non-ASCII name, a quoted string when it has specials. */
static char *
encode_name(const char *name)
{
	gnutls_datum_t	 in = { (unsigned char *)name, strlen(name) };
	gnutls_datum_t	 b64 = { NULL, 0 };
	struct buf	 b = { 0 };
	const char	*p;
	int		 special = 0;

	for (p = name; *p; p++) {
		if ((unsigned char)*p >= 0x80) {
			if (gnutls_base64_encode2(&in, &b64) < 0)
				break;
			buf_addf(&b, "=?UTF-8?B?%.*s?=", (int)b64.size,
			    b64.data);
			gnutls_free(b64.data);
			return b.p;
		}
		if (strchr("()<>[]:;@\\,.\"", *p) != NULL)
			special = 1;
	}
	if (!special)
		return xstrdup(name);
	buf_addc(&b, '"');
	for (p = name; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_addc(&b, '\\');
		buf_addc(&b, *p);
	}
	buf_addc(&b, '"');
	return b.p;
}

static void
make_from_header(struct submission *s)
{
	const char	*name = s->req->fullname;
	char		*enc;

	if (name == NULL)
		name = acct_str(s->r->acct, CF_FROM_FULL_NAME);
	if (name == NULL || *name == '\0') {
		s->from_hdr = xstrdup(*s->sender ? s->sender : "<>");
		return;
	}
	enc = encode_name(name);
	s->from_hdr = xasprintf("%s <%s>", enc, s->sender);
	free(enc);
}

static enum hdrmode
hdrmode(const struct account *a, enum cfkey k)
{
	const char	*v = acct_str(a, k);

	return strcmp(v, "off") == 0 ? HDR_OFF : strcmp(v, "on") == 0 ?
	    HDR_ON : HDR_AUTO;
}

static int
spool(struct submission *s, struct err *e)
{
	const struct account	*a = s->r->acct;
	struct msg_opts		 mo;
	const char		*at = strrchr(s->sender, '@');

	memset(&mo, 0, sizeof(mo));
	mo.dot_ends = s->req->dot_ends;
	mo.read_rcpts = s->req->read_rcpts;
	mo.remove_bcc = acct_on(a, CF_REMOVE_BCC_HEADERS);
	mo.undisclosed = acct_on(a, CF_UNDISCLOSED_RECIPIENTS);
	mo.set_from = hdrmode(a, CF_SET_FROM_HEADER);
	mo.set_date = hdrmode(a, CF_SET_DATE_HEADER);
	mo.set_msgid = hdrmode(a, CF_SET_MSGID_HEADER);
	mo.from_hdr = s->from_hdr;
	mo.msgid_domain = at && at[1] ? at + 1 : s->r->helo;
	mo.spool_fd = s->spooling ? s->qe.fd : -1;
	return msg_spool(s->req->in, &mo, &s->m, e);
}

static int
expand_aliases(struct submission *s, struct err *e)
{
	const char	*path = acct_str(s->r->acct, CF_ALIASES);
	struct aliases	 al;
	int		 rv;

	if (path == NULL)
		return 0;
	if (aliases_load(&al, path, e) == -1)
		return -1;
	rv = aliases_expand(&al, &s->rcpts, e);
	aliases_free(&al);
	return rv;
}

static int
collect_rcpts(struct submission *s, struct err *e)
{
	const struct sendreq	*q = s->req;
	struct addrlist		 l = { 0 };
	size_t			 i;
	int			 k;

	for (k = 0; k < q->nrcpts; k++) {
		if (addr_parse_list(&l, q->rcpts[k], e) == -1) {
			e->cls = ERR_USAGE;
			addrlist_free(&l);
			return -1;
		}
	}
	for (i = 0; i < s->m.rcpts.n; i++)
		addrlist_add(&l, s->m.rcpts.v[i]);
	for (i = 0; i < l.n; i++)
		if (!addrlist_has(&s->rcpts, l.v[i]))
			addrlist_add(&s->rcpts, l.v[i]);
	addrlist_free(&l);
	if (expand_aliases(s, e) == -1)
		return -1;
	if (s->rcpts.n == 0)
		return err_set(e, ERR_USAGE, "no recipients: give them as "
		    "arguments, or use -t to read them from the message");
	return 0;
}

/*
 * Report each refused recipient on its own line.  The result is the
 * worst: temporary wins, so that the caller tries again.
 */
static int
report_rcpts(const struct submission *s)
{
	const struct account	*a = s->r->acct;
	struct err		 worst = { ERR_NONE, "" };
	enum err_class		 cls;
	size_t			 i;

	for (i = 0; s->res.rcpt != NULL && i < s->rcpts.n; i++) {
		const struct rcpt_result *rr = &s->res.rcpt[i];
		struct err		  one;

		if (rr->code < 400)
			continue;
		cls = smtp_reply_class(rr->code, rr->text, ERR_PERM);
		err_set(&one, cls, "RCPT TO:<%s>: %d %s", s->rcpts.v[i],
		    rr->code, rr->text);
		say_error(s->r, a, &one);
		if (worst.cls == ERR_NONE || cls == ERR_TEMP)
			worst.cls = cls;
	}
	return err_exitcode(&worst);
}

/* The log line; e is the error when the attempt failed, else NULL. */
static void
write_log(const struct submission *s, int ex, const struct err *e)
{
	const struct account	*a = s->r->acct;
	struct logrec		 l;
	struct buf		 rc = { 0 };
	size_t			 i;

	if (acct_str(a, CF_LOGFILE) == NULL && (acct_str(a, CF_SYSLOG) == NULL ||
	    strcmp(acct_str(a, CF_SYSLOG), "off") == 0))
		return;
	for (i = 0; i < s->rcpts.n; i++)
		buf_addf(&rc, "%s<%s>=%d", i ? "," : "", s->rcpts.v[i],
		    s->res.rcpt ? s->res.rcpt[i].code : 0);
	memset(&l, 0, sizeof(l));
	l.account = a->name;
	l.host = acct_str(a, CF_HOST);
	l.port = acct_int(a, CF_PORT);
	l.tls = s->res.tls.version[0] ? s->res.tls.version : "off";
	l.cipher = s->res.tls.cipher[0] ? s->res.tls.cipher : NULL;
	l.queued = s->req->queued_id[0] ? s->req->queued_id : NULL;
	l.mech = s->res.mech;
	l.sender = s->sender;
	l.rcpts = rc.p;
	l.size = (long long)s->m.size;
	l.msgid = s->m.msgid;
	l.reply = s->res.final;
	l.ms = now_ms() - s->start;
	l.exitcode = ex;
	l.error = e != NULL ? e->msg : NULL;
	log_message(acct_str(a, CF_LOGFILE), acct_str(a,
	    CF_LOGFILE_TIME_FORMAT), acct_str(a, CF_SYSLOG), &l);
	buf_free(&rc);
}

static void
make_envelope(const struct submission *s, struct smtp_envelope *env)
{
	const struct account	*a = s->r->acct;

	memset(env, 0, sizeof(*env));
	env->sender = s->sender;
	env->rcpts = &s->rcpts;
	env->dsn_notify = acct_str(a, CF_DSN_NOTIFY);
	if (env->dsn_notify != NULL && strcmp(env->dsn_notify, "off") == 0)
		env->dsn_notify = NULL;
	env->dsn_return = acct_str(a, CF_DSN_RETURN);
	if (env->dsn_return != NULL && strcmp(env->dsn_return, "off") == 0)
		env->dsn_return = NULL;
	env->envid = s->req->envid;
	env->all_or_nothing = acct_on(a, CF_ALL_OR_NOTHING);
}

/*
 * With the queue: the message is on disk before the first byte goes to
 * the server, so that nothing is lost whatever happens next.
 */
static void
queue_start(struct submission *s)
{
	struct err	e;

	if (strcmp(acct_str(s->r->acct, CF_QUEUE), "off") == 0)
		return;
	s->qe.fd = -1;
	if (open_queue(&s->q, &e) == 0) {
		if (queue_spool(&s->q, &s->qe, &e) == 0) {
			s->spooling = 1;
			return;
		}
		queue_close(&s->q);
	}
	fprintf(stderr, "outbox: %s; sending without the queue\n", e.msg);
}

static void
queue_commit_entry(struct submission *s)
{
	const struct account	*a = s->r->acct;
	struct qentry		*qe = &s->qe;
	struct smtp_envelope	 env;
	struct err		 e;
	size_t			 i;

	make_envelope(s, &env);
	qe->account = xstrdup(a->name);
	qe->sender = xstrdup(s->sender);
	for (i = 0; i < s->rcpts.n; i++)
		addrlist_add(&qe->rcpts, s->rcpts.v[i]);
	qe->envid = env.envid ? xstrdup(env.envid) : NULL;
	qe->notify = env.dsn_notify ? xstrdup(env.dsn_notify) : NULL;
	qe->ret = env.dsn_return ? xstrdup(env.dsn_return) : NULL;
	qe->msgid = s->m.msgid ? xstrdup(s->m.msgid) : NULL;
	qe->queued = qe->next = queue_now();
	qe->eightbit = s->m.eightbit;
	qe->size = (long long)s->m.size;
	if (queue_commit(&s->q, qe, &e) == 0) {
		s->queued = 1;
		return;
	}
	fprintf(stderr, "outbox: %s; sending without the queue\n", e.msg);
	queue_discard(&s->q, qe);
}

/* The exit code of the worst permanent recipient refusal, or 0. */
static int
perm_refusals(const struct submission *s)
{
	struct err	worst = { ERR_NONE, "" };
	size_t		i;

	for (i = 0; s->res.rcpt != NULL && i < s->rcpts.n; i++) {
		const struct rcpt_result *rr = &s->res.rcpt[i];

		if (rr->code >= 500 && worst.cls != ERR_ADDR)
			worst.cls = smtp_reply_class(rr->code, rr->text,
			    ERR_PERM);
	}
	return err_exitcode(&worst);
}

/* What became of a queued message after the attempt. */
static int
queue_outcome(struct submission *s, int rv, int ex, const struct err *e)
{
	struct qentry	*qe = &s->qe;
	struct err	 e2;
	size_t		 i;
	int		 temp = 0;

	for (i = 0; s->res.rcpt != NULL && i < s->rcpts.n; i++)
		temp |= s->res.rcpt[i].code / 100 == 4;
	if (rv == 0 && !temp) {
		if (queue_remove(&s->q, qe, &e2) == -1)
			fprintf(stderr, "outbox: %s\n", e2.msg);
		return ex;
	}
	if (rv == -1 && e->cls != ERR_TEMP) {
		/*
		 * The caller hears of it, unless it was already told all
		 * is well (queue always): then the message goes to failed/.
		 */
		free(qe->error);
		qe->error = xstrdup(e->msg);
		if ((s->detached ? queue_fail(&s->q, qe, &e2) :
		    queue_remove(&s->q, qe, &e2)) == -1)
			fprintf(stderr, "outbox: %s\n", e2.msg);
		return ex;
	}
	if (s->res.rcpt != NULL)
		keep_rcpts(qe, &s->res, rv == 0);
	qe->attempts = 1;
	qe->next = queue_now() + queue_backoff(1);
	free(qe->error);
	qe->error = xstrdup(rv == 0 ? "some recipients were refused for now" :
	    e->msg);
	if (queue_update(&s->q, qe, &e2) == -1)
		fprintf(stderr, "outbox: %s\n", e2.msg);
	fprintf(stderr, "outbox: account %s: queued as %s; it will be sent "
	    "again later, or now with outbox -q\n", s->r->acct->name, qe->id);
	snprintf(s->req->queued_id, sizeof(s->req->queued_id), "%s", qe->id);
	/* Recipients refused for good are not in the queue: that counts. */
	return perm_refusals(s);
}

static int
submit(struct submission *s, struct err *e)
{
	struct smtp_params	 p;
	struct smtp_envelope	 env;
	struct smtp_session	*ss = NULL;
	char			*pw;
	int			 rv, ex, more;

	more = s->queued && queue_due(&s->q, s->r->acct->name, s->qe.id);
	if ((rv = front_password(s->r, &pw, e)) == 0) {
		front_smtp_params(s->r, &p);
		p.password = pw;
		make_envelope(s, &env);
		memset(&s->res, 0, sizeof(s->res));
		ss = smtp_open(&p, &s->res, e);
		/* A cached OAuth token refused: once more with a fresh one. */
		if (ss == NULL && front_auth_retry(s->r, &pw, e)) {
			p.password = pw;
			ss = smtp_open(&p, &s->res, e);
		}
		if (ss == NULL)
			rv = -1;
		else
			rv = smtp_transaction(ss, &env, &s->m, !more, &s->res,
			    e);
	}
	ex = report_rcpts(s);
	if (rv == -1 && !s->res.rcpts_refused)
		ex = fail(s->r, e, 1);
	else if (rv == -1)
		ex = err_exitcode(e);
	if (s->queued)
		ex = queue_outcome(s, rv, ex, e);
	write_log(s, ex, rv == -1 ? e : NULL);
	/* Then what is due for the same account, on the same connection. */
	if (more && rv == 0 && smtp_reusable(ss))
		flush_queue(s->r, &s->q, s->r->acct->name, ss, 0);
	else
		smtp_close(ss, &s->res);
	secret_free(pw);
	return ex;
}

static int
stdout_writer(void *ctx, const void *p, size_t len, struct err *e)
{
	(void)ctx;
	if (fwrite(p, 1, len, stdout) != len)
		return err_sys(e, ERR_IO, "stdout");
	return 0;
}

/* --dry-run: what a real send would put on the wire, without connecting. */
static int
dry_run(struct submission *s, struct err *e)
{
	const struct account	*a = s->r->acct;
	struct smtp_envelope	 env;
	size_t			 i;

	make_envelope(s, &env);
	printf("account %s, server %s:%s\n", a->name, acct_str(a, CF_HOST),
	    acct_str(a, CF_PORT));
	printf("MAIL FROM:<%s>%s%s%s%s%s\n", s->sender, s->m.eightbit ?
	    " BODY=8BITMIME" : "", env.dsn_return ? " RET=" : "",
	    env.dsn_return ? (strcmp(env.dsn_return, "headers") == 0 ?
	    "HDRS" : "FULL") : "", env.envid ? " ENVID=" : "",
	    env.envid ? env.envid : "");
	for (i = 0; i < s->rcpts.n; i++)
		printf("RCPT TO:<%s>%s%s\n", s->rcpts.v[i], env.dsn_notify ?
		    " NOTIFY=" : "", env.dsn_notify ? env.dsn_notify : "");
	printf("DATA (%lld bytes)\n", (long long)s->m.size);
	if (msg_write_dotted(&s->m, stdout_writer, NULL, e) == -1)
		return fail(s->r, e, 0);
	fflush(stdout);
	return EX_OK;
}

/* queue always: the caller is told at once; a child does the sending. */
static int
detach(void)
{
	pid_t	pid;
	int	null;

	fflush(NULL);
	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0)
		return 1;
	setsid();
	if ((null = open("/dev/null", O_RDWR)) != -1) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > 2)
			close(null);
	}
	return 0;
}

static int
prepare(struct submission *s, struct err *e)
{
	if (choose_sender(s, e) == -1)
		return -1;
	make_from_header(s);
	if (!s->req->dry_run)
		queue_start(s);
	if (spool(s, e) == -1 || collect_rcpts(s, e) == -1)
		return -1;
	if (s->req->read_env_from) {
		if (s->m.from_addr == NULL)
			return err_set(e, ERR_DATA, "--read-envelope-from: the "
			    "message has no From header");
		free(s->sender);
		s->sender = xstrdup(s->m.from_addr);
	}
	return 0;
}

int
send_message(struct run *r, struct sendreq *req, struct err *e)
{
	struct submission	s;
	int			ex;

	memset(&s, 0, sizeof(s));
	s.r = r;
	s.req = req;
	s.start = now_ms();
	s.m.fd = -1;
	s.qe.fd = -1;
	req->queued_id[0] = '\0';
	if (prepare(&s, e) == -1) {
		if (s.spooling)
			queue_discard(&s.q, &s.qe);
		ex = fail(r, e, 0);
		goto out;
	}
	if (req->dry_run) {
		ex = dry_run(&s, e);
		goto out;
	}
	if (s.spooling)
		queue_commit_entry(&s);
	if (s.queued && strcmp(acct_str(r->acct, CF_QUEUE), "always") == 0) {
		if ((s.detached = detach()) == 1) {
			ex = EX_OK;
			goto out;
		}
		s.detached = 1;
	}
	ex = submit(&s, e);
out:
	msg_free(&s.m);
	addrlist_free(&s.rcpts);
	smtp_result_free(&s.res);
	free(s.sender);
	free(s.from_hdr);
	if (s.spooling) {
		qentry_clear(&s.qe);
		queue_close(&s.q);
	}
	return ex;
}

int
mode_send(struct run *r, struct err *e)
{
	const struct opts	*o = r->o;
	struct sendreq		 req;
	off_t			 start;
	int			 ex;

	if (front_account(r, e) == -1)
		return fail(r, e, 0);
	memset(&req, 0, sizeof(req));
	req.in = STDIN_FILENO;
	req.from = o->from;
	req.rcpts = o->rcpts;
	req.nrcpts = o->nrcpts;
	req.read_rcpts = o->read_rcpts;
	req.dot_ends = o->dot_ends;
	req.read_env_from = o->read_env_from;
	req.fullname = o->fullname;
	req.envid = o->envid;
	req.dry_run = o->dry_run;
	start = lseek(STDIN_FILENO, 0, SEEK_CUR);
	ex = send_message(r, &req, e);
	/*
	 * Not sent: leave a regular-file stdin where it was, for callers
	 * such as bsd-mailx that save the message from it (dead.letter).
	 */
	if (ex != EX_OK && start != -1)
		lseek(STDIN_FILENO, start, SEEK_SET);
	return ex;
}

/* -bv: the envelope as it would be sent, with aliases resolved; no mail. */
int
mode_verify(struct run *r, struct err *e)
{
	const struct opts	*o = r->o;
	const struct account	*a;
	struct submission	 s;
	struct sendreq		 req;
	size_t			 i;
	int			 ex = EX_OK;

	if (front_account(r, e) == -1)
		return fail(r, e, 0);
	a = r->acct;
	memset(&s, 0, sizeof(s));
	memset(&req, 0, sizeof(req));
	req.from = o->from;
	req.rcpts = o->rcpts;
	req.nrcpts = o->nrcpts;
	s.r = r;
	s.req = &req;
	if (choose_sender(&s, e) == -1 || collect_rcpts(&s, e) == -1)
		ex = fail(r, e, 0);
	else {
		printf("sender <%s>, account %s, server %s:%s\n", s.sender,
		    a->name, acct_str(a, CF_HOST), acct_str(a, CF_PORT));
		for (i = 0; i < s.rcpts.n; i++)
			printf("<%s>... deliverable\n", s.rcpts.v[i]);
	}
	addrlist_free(&s.rcpts);
	free(s.sender);
	return ex;
}
