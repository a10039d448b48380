#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	struct front_session	 fs;
	long long		 start;
	struct queue		 q;
	struct qentry		 qe;
	int			 queued;	/* qe is a committed entry */
	int			 detached;	/* the caller was told 0 */
	int			 spooling;	/* qe.fd is the spool */
	int			 from_pct_f;	/* the sender is from's %F */
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

/*
 * msmtp's from substitutions: %U user, %H host, %C FQDN, %M maildomain,
 * %F the message's From address (hdr; when NULL, %F is left as it is).
 */
static char *
expand_from(const struct account *a, const char *pat, const char *hdr)
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
		case 'F':
			if (hdr != NULL)
				buf_adds(&b, hdr);
			else
				buf_adds(&b, "%F");
			break;
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
	if (from != NULL) {
		s->sender = expand_from(a, from, NULL);
		s->from_pct_f = strstr(from, "%F") != NULL;
	}
	else if (acct_on(a, CF_AUTO_FROM) && acct_str(a, CF_MAILDOMAIN))
		s->sender = expand_from(a, "%U@%M", NULL);
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
	switch (acct_enum(a, k)) {
	case CF_AUTO_ON:
		return HDR_ON;
	case CF_AUTO_OFF:
		return HDR_OFF;
	default:
		return HDR_AUTO;
	}
}

/* The command line's recipients, parsed; a bad one is told later. */
static void
cmdline_rcpts(const struct sendreq *q, struct addrlist *l)
{
	struct err	e;
	int		k;

	for (k = 0; k < q->nrcpts; k++)
		addr_parse_list(l, q->rcpts[k], &e);
}

static int
spool(struct submission *s, struct err *e)
{
	const struct account	*a = s->r->acct;
	struct msg_opts		 mo;
	struct addrlist		 given = { 0 };
	const char		*at = strrchr(s->sender, '@');
	int			 rv;

	memset(&mo, 0, sizeof(mo));
	mo.dot_ends = s->req->dot_ends;
	mo.read_rcpts = s->req->read_rcpts;
	mo.remove_bcc = acct_on(a, CF_REMOVE_BCC_HEADERS);
	mo.undisclosed = acct_enum(a, CF_SET_TO_HEADER) == CF_TO_UNDISCLOSED;
	mo.set_to = acct_enum(a, CF_SET_TO_HEADER) == CF_TO_ON;
	if (mo.set_to)
		cmdline_rcpts(s->req, &given);
	mo.cmd_rcpts = &given;
	mo.set_from = hdrmode(a, CF_SET_FROM_HEADER);
	/* The From is what the sender comes from: it stays. */
	if (s->from_pct_f && mo.set_from == HDR_ON)
		mo.set_from = HDR_AUTO;
	mo.set_date = hdrmode(a, CF_SET_DATE_HEADER);
	mo.set_msgid = hdrmode(a, CF_SET_MSGID_HEADER);
	mo.from_hdr = s->from_hdr;
	mo.msgid_domain = at && at[1] ? at + 1 : s->r->helo;
	mo.qualify_domain = acct_str(a, CF_MAILDOMAIN) ? acct_str(a,
	    CF_MAILDOMAIN) : at && at[1] ? at + 1 : NULL;
	mo.spool_fd = s->spooling ? s->qe.fd : -1;
	rv = msg_spool(s->req->in, &mo, &s->m, e);
	addrlist_free(&given);
	return rv;
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

static int
stdout_writer(void *ctx, const void *p, size_t len, struct err *e)
{
	(void)ctx;
	if (fwrite(p, 1, len, stdout) != len)
		return err_sys(e, ERR_IO, "stdout");
	return 0;
}

/*
 * With the queue: the message is on disk before the first byte goes to
 * the server, so that nothing is lost whatever happens next.
 */
static void
queue_start(struct submission *s)
{
	struct err	e;

	if (acct_enum(s->r->acct, CF_QUEUE) == CF_QUEUE_OFF)
		return;
	if (open_queue(&s->q, &e) == 0) {
		if (queue_spool(&s->q, &s->qe, &e) == 0) {
			s->spooling = 1;
			return;
		}
		queue_close(&s->q);
	}
	say_notice(s->r, "%s; sending without the queue", e.msg);
}

/* The entry and its envelope, as given and as the account says. */
static void
make_entry(struct submission *s)
{
	const struct account	*a = s->r->acct;
	struct qentry		*qe = &s->qe;
	struct envelope		*env = &qe->env;
	char			 why[64];
	size_t			 i;

	qe->account = xstrdup(a->name);
	env->sender = xstrdup(s->sender);
	for (i = 0; i < s->rcpts.n; i++)
		env_add_rcpt(env, s->rcpts.v[i]);
	if (s->req->envid != NULL)
		env->envid = xstrdup(s->req->envid);
	if (s->req->body != NULL)
		env->body = xstrdup(s->req->body);
	env->smtputf8 = s->req->smtputf8;
	if (s->req->label != NULL)
		qe->label = xstrdup(s->req->label);
	if (acct_on(a, CF_DSN_NOTIFY))
		env->notify = xstrdup(acct_str(a, CF_DSN_NOTIFY));
	if (acct_on(a, CF_DSN_RETURN))
		env->ret = xstrdup(acct_str(a, CF_DSN_RETURN));
	env->all_or_nothing = acct_on(a, CF_ALL_OR_NOTHING);
	qe->msgid = s->m.msgid ? xstrdup(s->m.msgid) : NULL;
	qe->queued = qe->next = queue_now();
	qe->eightbit = s->m.eightbit;
	if (msg_reshaped(&s->m, why, sizeof(why)) != NULL)
		qe->reshaped = xstrdup(why);
	qe->size = (long long)s->m.size;
}

static void
queue_commit_entry(struct submission *s)
{
	struct err	e;

	if (queue_commit(&s->q, &s->qe, &e) == 0) {
		s->queued = 1;
		return;
	}
	say_notice(s->r, "%s; sending without the queue", e.msg);
	queue_discard(&s->q, &s->qe);
}

/* What the caller hears of the first attempt, before the verdict. */
static void
tell(void *arg, const struct qentry *qe, const struct outcome *o)
{
	struct submission	*s = arg;
	struct err		 one;
	size_t			 i;
	int			 worst_is_addr = 0;

	if (o->log_err.cls != ERR_NONE)
		say_notice(s->r, "%s", o->log_err.msg);
	for (i = 0; i < qe->env.nrcpt; i++) {
		const struct rcpt *r = &qe->env.rcpt[i];

		if (!deliver_refused(r, &one))
			continue;
		say_error(s->r, s->r->acct, &one);
		/* For -bs: a bad address first, else the first given up. */
		if (r->state == RCPT_FAILED && (!s->req->refusal[0] ||
		    (one.cls == ERR_ADDR && !worst_is_addr)))
			snprintf(s->req->refusal, sizeof(s->req->refusal), "%s",
			    one.msg);
		worst_is_addr |= r->state == RCPT_FAILED && one.cls == ERR_ADDR;
	}
	if (o->fate != FATE_DEFERRED || !o->kept)
		return;
	if (o->err.cls != ERR_NONE && !o->rcpts_refused)
		say_error(s->r, s->r->acct, &o->err);
	say_notice(s->r, "account %s: queued as %s; it will be sent again "
	    "later, or now with outbox -q", s->r->acct->name, qe->id);
	front_desktop(s->r, qe, "queued", "It will be sent when the server "
	    "takes it; nothing to do.");
	snprintf(s->req->queued_id, sizeof(s->req->queued_id), "%s", qe->id);
}

/*
 * The first attempt, through the one delivery path; then what is due
 * for the same account, on the same connection.
 */
static int
submit(struct submission *s, struct err *e)
{
	struct deliver_params	dp;
	struct deliver_filter	f;
	struct delivery		d;
	struct outcome		o;
	int			more;

	/* Every entry of the account: a server that is back takes them all. */
	more = s->queued && queue_due(&s->q, s->r->acct->name, s->qe.id,
	    LLONG_MAX);
	if (!s->queued)
		s->qe.fd = dup(s->m.fd);
	front_deliver_params(s->r, &s->fs, &dp);
	dp.caller_waits = !s->detached;
	dp.start_ms = s->start;
	dp.report = tell;
	dp.report_arg = s;
	deliver_begin(&d, &dp, s->queued ? &s->q : NULL, NULL);
	/* With shared sessions, no QUIT with the data: a holder goes on. */
	deliver_entry(&d, &s->qe, !more && !front_linger_wanted(&s->fs),
	    &o);
	deliver_verdict(&d, &s->qe, &o, e);
	/* A bounce (queue always: the caller heard 0) goes out now too. */
	if ((more && o.fate == FATE_DELIVERED && d.s != NULL) ||
	    d.notices > 0) {
		memset(&f, 0, sizeof(f));
		f.account = s->r->acct->name;
		f.skip = s->qe.id;
		f.notices_only = !(more && o.fate == FATE_DELIVERED);
		f.force = !f.notices_only;
		dp.caller_waits = 0;
		dp.start_ms = 0;
		dp.report = flush_report;
		dp.report_arg = s->r;
		deliver_queue(&d, &f);
	}
	if (o.fate == FATE_DELIVERED && front_linger_keep(&s->fs, d.s, &d.res)) {
		smtp_abandon(d.s);
		d.s = NULL;
	}
	deliver_end(&d);
	front_session_end(&s->fs);
	/* What this run queued, or took from the queue, the retrier hears of. */
	if ((o.kept && o.fate == FATE_DEFERRED) || d.notices > 0 || more)
		s->r->queue_touched = 1;
	return e->cls == ERR_NONE ? 0 : -1;
}

/* --dry-run: what a real send would put on the wire, without connecting. */
static int
dry_run(struct submission *s, struct err *e)
{
	const struct account	*a = s->r->acct;
	struct caps		 all = { ~0u, 0, "" };
	char			 line[600];
	size_t			 i;

	make_entry(s);
	printf("account %s, server %s:%s\n", a->name, acct_str(a, CF_HOST),
	    acct_str(a, CF_PORT));
	if (smtp_mail_cmd(&all, &s->qe.env, &s->m, line, sizeof(line), e) == -1)
		return -1;
	printf("%s\n", line);
	for (i = 0; i < s->qe.env.nrcpt; i++) {
		smtp_rcpt_cmd(&all, &s->qe.env, &s->qe.env.rcpt[i], line,
		    sizeof(line));
		printf("%s\n", line);
	}
	printf("DATA (%lld bytes)\n", (long long)s->m.size);
	if (msg_write_dotted(&s->m, stdout_writer, NULL, e) == -1)
		return -1;
	fflush(stdout);
	return 0;
}

/* queue always: the caller is told at once; a child does the sending. */
static int
detach(void)
{
	pid_t	pid;

	fflush(NULL);
	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0)
		return 1;
	setsid();
	stdio_to_null();
	return 0;
}

static int
prepare(struct submission *s, struct err *e)
{
	char	why[512];

	if (choose_sender(s, e) == -1)
		return -1;
	make_from_header(s);
	if (!s->req->dry_run)
		queue_start(s);
	if (spool(s, e) == -1 || collect_rcpts(s, e) == -1)
		return -1;
	if (s->r->o->verbose && msg_reshaped_text(&s->m, why, sizeof(why)))
		say_notice(s->r, "%s", why);
	if (s->from_pct_f) {
		if (s->m.from_addr == NULL)
			return err_set(e, ERR_DATA, "from %%F: the message has "
			    "no From header");
		free(s->sender);
		s->sender = expand_from(s->r->acct, acct_str(s->r->acct,
		    CF_FROM), s->m.from_addr);
	}
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
	int			rv = 0, forked = -1;

	memset(&s, 0, sizeof(s));
	s.r = r;
	s.req = req;
	s.start = now_ms();
	s.m.fd = -1;
	s.qe.fd = -1;
	s.fs.r = r;
	req->queued_id[0] = req->refusal[0] = '\0';
	if (prepare(&s, e) == -1) {
		if (s.spooling)
			queue_discard(&s.q, &s.qe);
		rv = -1;
	} else if (req->dry_run)
		rv = dry_run(&s, e);
	else {
		make_entry(&s);
		if (s.spooling)
			queue_commit_entry(&s);
		if (s.queued && acct_enum(r->acct, CF_QUEUE) ==
		    CF_QUEUE_ALWAYS) {
			forked = detach();
			/* In the child the caller was told 0 already. */
			s.detached = forked == 0;
		}
		if (forked != 1 && (rv = submit(&s, e)) == -1)
			r->blame = r->acct;
	}
	msg_free(&s.m);
	addrlist_free(&s.rcpts);
	free(s.sender);
	free(s.from_hdr);
	qentry_clear(&s.qe);
	if (s.spooling)
		queue_close(&s.q);
	return rv;
}

/* Copy all of fd into a new unlinked file, positioned at its start. */
static int
copy_input(int fd, struct err *e)
{
	char	 buf[65536];
	ssize_t	 n;
	int	 out;

	if ((out = msg_tmpfile(NULL, e)) == -1)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || write_all(out, buf, (size_t)n) == -1) {
			err_sys(e, n == -1 ? ERR_IO : ERR_TEMP, n == -1 ?
			    "cannot read the message" : "cannot write a "
			    "temporary file");
			close(out);
			return -1;
		}
	}
	lseek(out, 0, SEEK_SET);
	return out;
}

/*
 * --read-envelope-from with neither -a nor -f: as in msmtp, the account
 * is the one whose from matches the message's From (else the default),
 * so the message is read into a file first and its header looked at.
 * From a terminal the default account is used: nothing is read ahead.
 * Returns the fd to read the message from.
 */
static int
from_of_message(struct run *r, char **from, struct err *e)
{
	struct msg_opts	mo;
	struct msg	m;
	struct err	e2;
	int		fd;

	if (isatty(STDIN_FILENO))
		return STDIN_FILENO;
	if ((fd = copy_input(STDIN_FILENO, e)) == -1)
		return -1;
	memset(&mo, 0, sizeof(mo));
	mo.headers_only = 1;
	mo.spool_fd = -1;
	if (msg_spool(fd, &mo, &m, &e2) == 0 && m.from_addr != NULL) {
		*from = m.from_addr;
		m.from_addr = NULL;
		r->from_hint = *from;
	}
	msg_free(&m);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

int
mode_send(struct run *r, struct err *e)
{
	const struct opts	*o = r->o;
	struct sendreq		 req;
	char			*hdr_from = NULL;
	off_t			 start;
	int			 rv, in = STDIN_FILENO;

	start = lseek(STDIN_FILENO, 0, SEEK_CUR);
	if (o->read_env_from && o->account == NULL && o->from == NULL &&
	    (in = from_of_message(r, &hdr_from, e)) == -1)
		return -1;
	rv = front_account(r, e);
	r->from_hint = NULL;
	if (rv == 0 && hdr_from != NULL && o->verbose)
		say_notice(r, "the message's From is <%s>: account %s",
		    hdr_from, r->acct->name);
	free(hdr_from);
	if (rv == -1) {
		if (in != STDIN_FILENO)
			close(in);
		return -1;
	}
	memset(&req, 0, sizeof(req));
	req.in = in;
	req.from = o->from;
	req.rcpts = o->rcpts;
	req.nrcpts = o->nrcpts;
	req.read_rcpts = o->read_rcpts;
	req.dot_ends = o->dot_ends;
	req.read_env_from = o->read_env_from;
	req.fullname = o->fullname;
	req.envid = o->envid;
	req.body = o->body;
	req.smtputf8 = o->smtputf8;
	req.label = o->label;
	req.dry_run = o->dry_run;
	rv = send_message(r, &req, e);
	if (in != STDIN_FILENO)
		close(in);
	/*
	 * Not sent: leave a regular-file stdin where it was, for callers
	 * such as bsd-mailx that save the message from it (dead.letter).
	 */
	if (rv == -1 && start != -1)
		lseek(STDIN_FILENO, start, SEEK_SET);
	return rv;
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
	int			 rv = 0;

	if (front_account(r, e) == -1)
		return -1;
	a = r->acct;
	memset(&s, 0, sizeof(s));
	memset(&req, 0, sizeof(req));
	req.from = o->from;
	req.rcpts = o->rcpts;
	req.nrcpts = o->nrcpts;
	s.r = r;
	s.req = &req;
	if (choose_sender(&s, e) == -1 || collect_rcpts(&s, e) == -1)
		rv = -1;
	else {
		printf("sender <%s>, account %s, server %s:%s\n", s.sender,
		    a->name, acct_str(a, CF_HOST), acct_str(a, CF_PORT));
		for (i = 0; i < s.rcpts.n; i++)
			printf("<%s>... deliverable\n", s.rcpts.v[i]);
	}
	addrlist_free(&s.rcpts);
	free(s.sender);
	return rv;
}
