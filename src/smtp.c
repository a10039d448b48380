#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sasl.h"
#include "smtp.h"
#include "util.h"

#define AUTH_STEPS_MAX	8

enum state {
	S_INIT, S_CONNECT, S_TLS, S_GREETING, S_EHLO, S_HELO, S_STARTTLS,
	S_AUTH, S_MAIL, S_RCPT, S_DATA, S_BODY, S_QUIT, S_DONE,
};

static const char *const state_names[] = {
	"INIT", "CONNECT", "TLS", "GREETING", "EHLO", "HELO", "STARTTLS",
	"AUTH", "MAIL", "RCPT", "DATA", "BODY", "QUIT", "DONE",
};

struct smtp_session {
	const struct smtp_params	*p;
	const struct smtp_envelope	*env;	/* the current message */
	struct conn			*c;
	int				 broken;	/* no further message */
	int				 quit_sent;
	const char			*auth_pending;	/* AUTH sent, reply unread */
	int				 auth_code;	/* AUTH's refusal code */
	enum state			 state;
	struct caps			 caps;
	int				 esmtp;
	char				 greeting[REPLY_TEXT_MAX];
	char				 cmd[600];	/* for error messages */
	struct smtp_result		*res;
};

static void
trace(const struct smtp_session *s, const char *dir, const char *line)
{
	char	clean[REPLY_LINE_MAX];

	if (!s->p->verbose)
		return;
	sanitize(clean, sizeof(clean), line, strlen(line));
	fprintf(stderr, "%s %s\n", dir, clean);
}

/* After a handshake, -v says what was negotiated. */
static void
trace_tls(const struct smtp_session *s)
{
	struct tls_info	ti;

	if (!s->p->verbose)
		return;
	conn_tls_info(s->c, &ti, 0);
	fprintf(stderr, "--- %s%s\n", ti.cipher, ti.resumed ?
	    ", session resumed" : "");
}

/* The only way to change state. */
static void
set_state(struct smtp_session *s, enum state st)
{
	if (s->p->verbose)
		fprintf(stderr, "--- %s -> %s\n", state_names[s->state],
		    state_names[st]);
	s->state = st;
}

enum visibility { SHOW, HIDE_ARGS, HIDE_ALL };

/*
 * Queue a command.  Arguments that reach the wire were checked for CR/LF
 * where they entered the program; check again, cheaply, here.  AUTH data
 * never reaches the trace or an error message.
 */
/*
 * The longest command line: 512 octets for most commands (RFC 5321
 * section 4.5.3.1.4); an AUTH exchange's responses may be up to 12288
 * (RFC 4954 section 4), which bearer tokens need.
 */
#define CMD_LINE_MAX	1200
#define AUTH_LINE_MAX	12288
#define AUTH_INITIAL_MAX 512

static int
send_cmd(struct smtp_session *s, enum visibility vis, struct err *e,
    const char *fmt, ...)
{
	size_t	cap = vis == SHOW ? CMD_LINE_MAX : AUTH_LINE_MAX + 3;
	char	*line;
	va_list	ap;
	int	n, keep, rv;

	line = xmalloc(cap);
	va_start(ap, fmt);
	n = vsnprintf(line, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - 2) {
		explicit_bzero(line, cap);
		free(line);
		return err_set(e, ERR_USAGE, "SMTP command too long");
	}
	if (strpbrk(line, "\r\n") != NULL) {
		explicit_bzero(line, cap);
		free(line);
		return err_set(e, ERR_USAGE, "line break in an SMTP command");
	}
	switch (vis) {
	case HIDE_ALL:
		snprintf(s->cmd, sizeof(s->cmd), "[hidden]");
		break;
	case HIDE_ARGS:		/* "AUTH MECH [hidden]" */
		keep = (int)strcspn(line, " ");
		keep += 1 + (int)strcspn(line + keep + 1, " ");
		snprintf(s->cmd, sizeof(s->cmd), "%.*s [hidden]",
		    keep > 100 ? 100 : keep, line);
		break;
	case SHOW:
		snprintf(s->cmd, sizeof(s->cmd), "%.*s",
		    (int)sizeof(s->cmd) - 1, line);
		break;
	}
	trace(s, "-->", s->cmd);
	memcpy(line + n, "\r\n", 2);
	rv = conn_write(s->c, line, (size_t)n + 2, e);
	explicit_bzero(line, cap);
	free(line);
	return rv;
}

int
reply_parse_line(const char *line, size_t len, int *code, int *last,
    const char **text, struct err *e)
{
	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || line[0] < '2' || line[0] > '5')
		return err_set(e, ERR_PROTO, "malformed reply from the server: "
		    "no status code");
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return err_set(e, ERR_PROTO, "malformed reply from the server: "
		    "bad separator after the status code");
	if (memchr(line, '\0', len) != NULL)
		return err_set(e, ERR_PROTO, "malformed reply from the server: "
		    "NUL byte");
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*last = len == 3 || line[3] == ' ';
	*text = len > 4 ? line + 4 : "";
	return 0;
}

void
caps_parse_line(struct caps *c, const char *t)
{
	static const struct {
		const char	*kw;
		unsigned int	 flag;
	} kws[] = {
		{ "STARTTLS", CAP_STARTTLS }, { "PIPELINING", CAP_PIPELINING },
		{ "CHUNKING", CAP_CHUNKING }, { "8BITMIME", CAP_8BITMIME },
		{ "SMTPUTF8", CAP_SMTPUTF8 }, { "DSN", CAP_DSN },
		{ "ENHANCEDSTATUSCODES", CAP_ENHANCED },
	};
	size_t	n = strcspn(t, " =");
	size_t	i;

	for (i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
		if (n == strlen(kws[i].kw) && strncasecmp(t, kws[i].kw, n) == 0)
			c->flags |= kws[i].flag;
	if (n == 4 && strncasecmp(t, "SIZE", 4) == 0) {
		c->flags |= CAP_SIZE;
		c->size = t[4] == ' ' ? strtoul(t + 5, NULL, 10) : 0;
	}
	if (n == 4 && strncasecmp(t, "AUTH", 4) == 0 && t[4] != '\0') {
		size_t have = strlen(c->auth);

		c->flags |= CAP_AUTH;
		/* "AUTH=" is the old spelling; both may come. */
		snprintf(c->auth + have, sizeof(c->auth) - have, "%s%s",
		    have ? " " : "", t + 5);
	}
}

/*
 * Read a whole reply.  With caps, each line after the first is a
 * capability (EHLO).
 */
static int
read_reply(struct smtp_session *s, struct reply *r, struct caps *caps,
    struct err *e)
{
	char		 line[REPLY_LINE_MAX + 1];
	const char	*text;
	size_t		 len, tl;
	int		 code, last = 0;

	memset(r, 0, sizeof(*r));
	while (!last) {
		if (conn_getline(s->c, line, sizeof(line), &len, e) == -1)
			return -1;
		trace(s, "<--", line);
		if (reply_parse_line(line, len, &code, &last, &text, e) == -1)
			return -1;
		if (r->nlines > 0 && code != r->code)
			return err_set(e, ERR_PROTO, "malformed reply from the "
			    "server: mixed status codes %d and %d", r->code,
			    code);
		if (++r->nlines > REPLY_LINES_MAX)
			return err_set(e, ERR_PROTO, "the server sent a reply "
			    "of more than %d lines", REPLY_LINES_MAX);
		r->code = code;
		if (caps != NULL && r->nlines > 1)
			caps_parse_line(caps, text);
		tl = strlen(r->text);
		if (tl + 4 < sizeof(r->text) && (caps == NULL || r->nlines == 1))
			sanitize(r->text + tl + (tl ? 1 : 0),
			    sizeof(r->text) - tl - 1, text, strlen(text));
		if (tl && tl + 1 < sizeof(r->text) && (caps == NULL ||
		    r->nlines == 1))
			r->text[tl] = ' ';
		snprintf(r->arg, sizeof(r->arg), "%s", text);
	}
	return 0;
}

enum err_class
smtp_reply_class(int code, const char *text, enum err_class perm)
{
	if (code >= 400 && code < 500)
		return ERR_TEMP;
	if (code < 500)
		return ERR_PROTO;
	if (perm == ERR_PERM && strncmp(text, "5.1.", 4) == 0 &&
	    isdigit((unsigned char)text[4]))
		return ERR_ADDR;
	return perm;
}

/* A refusal, named by the command that drew it. */
static int
reply_error(struct smtp_session *s, const struct reply *r, enum err_class perm,
    struct err *e)
{
	enum err_class	cls = smtp_reply_class(r->code, r->text, perm);

	return err_set(e, cls, "%s: %s%d %s", s->cmd, cls == ERR_PROTO ?
	    "unexpected reply " : "", r->code, r->text);
}

static int
expect(struct smtp_session *s, int want, struct reply *r, struct err *e)
{
	if (read_reply(s, r, NULL, e) == -1)
		return -1;
	if (r->code / 100 != want / 100)
		return reply_error(s, r, ERR_PERM, e);
	return 0;
}

static int
do_ehlo(struct smtp_session *s, struct err *e)
{
	struct reply	r;

	set_state(s, S_EHLO);
	memset(&s->caps, 0, sizeof(s->caps));
	if (send_cmd(s, SHOW, e, "EHLO %s", s->p->helo) == -1 ||
	    read_reply(s, &r, &s->caps, e) == -1)
		return -1;
	if (r.code == 250) {
		s->esmtp = 1;
		return 0;
	}
	if (r.code < 500 || r.code > 504)
		return reply_error(s, &r, ERR_PERM, e);
	/* An old server: HELO, and no extensions at all. */
	set_state(s, S_HELO);
	memset(&s->caps, 0, sizeof(s->caps));
	s->esmtp = 0;
	if (send_cmd(s, SHOW, e, "HELO %s", s->p->helo) == -1)
		return -1;
	return expect(s, 250, &r, e);
}

static int
do_starttls(struct smtp_session *s, struct err *e)
{
	struct reply	r;

	if (!(s->caps.flags & CAP_STARTTLS))
		return err_set(e, ERR_PROTO, "the server does not offer "
		    "STARTTLS, and outbox never sends in plaintext (if this "
		    "server really has no TLS, set 'tls off'; if it uses "
		    "implicit TLS, set 'tls_starttls off' and port 465)");
	set_state(s, S_STARTTLS);
	if (send_cmd(s, SHOW, e, "STARTTLS") == -1 || expect(s, 220, &r, e) == -1)
		return -1;
	/* Anything sent before the handshake is an injection attempt. */
	if (conn_pending(s->c) > 0)
		return err_set(e, ERR_PROTO, "the server sent %zu bytes after "
		    "its STARTTLS reply and before TLS began (a STARTTLS "
		    "injection attack?); stopping", conn_pending(s->c));
	set_state(s, S_TLS);
	if (conn_starttls(s->c, &s->p->tlsp, e) == -1)
		return -1;
	trace_tls(s);
	/* What the server said in plaintext cannot be trusted: ask again. */
	return do_ehlo(s, e);
}

/* A refused AUTH; for bearer tokens with what the server's JSON said. */
static int
auth_refused(struct smtp_session *s, const struct reply *r, struct sasl *sasl,
    const char *mech, struct err *e)
{
	const char	*why = sasl_server_error(sasl);

	s->auth_code = r->code;
	snprintf(s->cmd, sizeof(s->cmd), "AUTH %s", mech);
	if (r->code >= 500)
		return err_set(e, ERR_AUTH, "authentication with %s failed: "
		    "%d %s%s%s%s", mech, r->code, r->text, why ? " (" : "",
		    why ? why : "", why ? ")" : "");
	return reply_error(s, r, ERR_AUTH, e);
}

/*
 * The server's replies during AUTH.  initial: a client-first response
 * too long for the AUTH line, sent after the server's first 334.
 */
static int
auth_reply(struct smtp_session *s, struct sasl *sasl, const char *mech,
    const char *initial, struct err *e)
{
	struct reply	 r;
	struct err	 se;
	char		*out;
	int		 done = 0, rv, steps;

	/*
	 * Every mechanism is done in a few steps; a server that keeps
	 * challenging could otherwise hold the session forever.
	 */
	for (steps = 0; steps < AUTH_STEPS_MAX; steps++) {
		if (read_reply(s, &r, NULL, e) == -1)
			return -1;
		/*
		 * SCRAM is mutual: a server that says yes before proving it
		 * knows the password (its signature) may be an impostor.
		 */
		if (r.code == 235 && !done && strncmp(mech, "SCRAM-", 6) == 0)
			return err_set(e, ERR_AUTH, "AUTH %s: the server accepted "
			    "without proving it knows the password (no SCRAM "
			    "server signature); stopping", mech);
		if (r.code == 235)
			return 0;
		if (r.code != 334)
			return auth_refused(s, &r, sasl, mech, e);
		if (initial != NULL) {
			rv = send_cmd(s, HIDE_ALL, e, "%s", initial);
			initial = NULL;
			if (rv == -1)
				return -1;
			continue;
		}
		if (done) {
			send_cmd(s, HIDE_ALL, e, "*");
			return err_set(e, ERR_PROTO, "AUTH %s: the server asked "
			    "for more after the exchange was complete", mech);
		}
		if ((rv = sasl_step(sasl, r.arg, &out, e)) == -1) {
			se = *e;
			send_cmd(s, HIDE_ALL, e, "*");
			conn_flush(s->c, e);
			if (se.cls == ERR_PROTO)	/* said by sasl.c */
				return err_set(e, ERR_PROTO, "AUTH %s: %s",
				    mech, se.msg);
			return err_set(e, ERR_AUTH, "AUTH %s: %s", mech,
			    strncmp(mech, "SCRAM-", 6) == 0 && steps > 0 ?
			    "the server's SCRAM signature is wrong: it does not "
			    "know the password; stopping" :
			    "the server's challenge is invalid");
		}
		done = rv;
		rv = send_cmd(s, HIDE_ALL, e, "%s", out);
		secret_free(out);
		if (rv == -1)
			return -1;
	}
	return err_set(e, ERR_PROTO, "AUTH %s: the server asked for more than "
	    "%d steps", mech, AUTH_STEPS_MAX);
}

/* Mechanisms done in one message, the server's 235 or refusal. */
static int
one_step(const char *mech)
{
	return strcmp(mech, "PLAIN") == 0 || strcmp(mech, "EXTERNAL") == 0;
}

static int
auth_pending_reply(struct smtp_session *, struct err *);

/*
 * AUTH with the client-first response on the line when it fits in 512
 * octets, else after the server's 334 (RFC 4954 section 4).  XOAUTH2
 * refused in the one-line form as a command error (500, 501, 504) is
 * tried once more in the two-step form, which some servers need.
 */
static int
auth_exchange(struct smtp_session *s, struct sasl *sasl, const char *mech,
    struct err *e)
{
	char	*out = NULL;
	int	 rv = 0, oneline;

	s->auth_code = 0;
	if (!sasl_initial_response(mech)) {
		if (send_cmd(s, SHOW, e, "AUTH %s", mech) == -1)
			return -1;
		return auth_reply(s, sasl, mech, NULL, e);
	}
	if (sasl_step(sasl, "", &out, e) == -1)
		return -1;
	if (out == NULL || *out == '\0') {
		secret_free(out);
		out = xstrdup("=");
	}
	oneline = strlen("AUTH ") + strlen(mech) + 1 + strlen(out) + 2 <=
	    AUTH_INITIAL_MAX;
	if (oneline)
		rv = send_cmd(s, HIDE_ARGS, e, "AUTH %s %s", mech, out);
	else
		rv = send_cmd(s, SHOW, e, "AUTH %s", mech);
	/*
	 * A one-step mechanism with PIPELINING: its reply is read with the
	 * envelope's (RFC 4954 section 4), a round trip less.
	 */
	if (rv != -1 && oneline && one_step(mech) &&
	    (s->caps.flags & CAP_PIPELINING)) {
		s->auth_pending = mech;
		secret_free(out);
		return 0;
	}
	if (rv != -1)
		rv = auth_reply(s, sasl, mech, oneline ? NULL : out, e);
	if (rv == -1 && oneline && strcmp(mech, "XOAUTH2") == 0 &&
	    (s->auth_code == 500 || s->auth_code == 501 ||
	    s->auth_code == 504)) {
		trace(s, "---", "XOAUTH2 again, the token after the 334");
		rv = send_cmd(s, SHOW, e, "AUTH %s", mech);
		if (rv != -1)
			rv = auth_reply(s, sasl, mech, out, e);
	}
	secret_free(out);
	return rv;
}

static int
do_auth(struct smtp_session *s, struct err *e)
{
	const struct smtp_params *p = s->p;
	struct sasl_creds	 cr;
	struct sasl		*sasl;
	const char		*mech, *cbname = NULL;
	char			*cb;
	int			 rv;

	if (strcmp(p->auth, "off") == 0)
		return 0;
	set_state(s, S_AUTH);
	if (!(s->caps.flags & CAP_AUTH) && strcmp(p->auth, "on") == 0)
		return err_set(e, ERR_PERM, "the server offers no "
		    "authentication (AUTH); set 'auth off' if it needs none");
	cb = conn_channel_binding(s->c, &cbname);
	if (sasl_choose(s->caps.auth, p->auth, conn_is_tls(s->c), cb != NULL,
	    &mech, e) == -1) {
		free(cb);
		return -1;
	}
	snprintf(s->res->mech, sizeof(s->res->mech), "%s", mech);
	cr.user = p->user;
	cr.password = p->password;
	cr.cb_name = cbname;
	cr.cb_data = cb;
	rv = sasl_start(&sasl, mech, &cr, e);
	free(cb);
	if (rv == -1)
		return -1;
	rv = auth_exchange(s, sasl, mech, e);
	sasl_end(sasl);
	return rv;
}

/* The reply to a pipelined AUTH: 235, or the refusal. */
static int
auth_pending_reply(struct smtp_session *s, struct err *e)
{
	struct reply	 r;
	const char	*mech = s->auth_pending;

	s->auth_pending = NULL;
	if (read_reply(s, &r, NULL, e) == -1)
		return -1;
	if (r.code == 235)
		return 0;
	snprintf(s->cmd, sizeof(s->cmd), "AUTH %s", mech);
	if (r.code >= 500)
		return err_set(e, ERR_AUTH, "authentication with %s failed: "
		    "%d %s", mech, r.code, r.text);
	return reply_error(s, &r, ERR_AUTH, e);
}

static int
session_open(struct smtp_session *s, struct err *e)
{
	const struct smtp_params *p = s->p;
	struct conn_params	 cp = { p->host, p->port, p->source_ip,
	    p->timeout_ms, p->session_ms };
	struct reply		 r;

	set_state(s, S_CONNECT);
	if (conn_open(&s->c, &cp, e) == -1)
		return -1;
	if (p->tls && !p->starttls) {
		set_state(s, S_TLS);
		if (conn_starttls(s->c, &p->tlsp, e) == -1)
			return -1;
		trace_tls(s);
	}
	set_state(s, S_GREETING);
	snprintf(s->cmd, sizeof(s->cmd), "greeting");
	if (read_reply(s, &r, NULL, e) == -1) {
		/* A silent server may be waiting for a TLS handshake. */
		if (!(p->tls && !p->starttls) && e->cls == ERR_TEMP &&
		    strstr(e->msg, "timed out") != NULL)
			err_prefix(e, "no greeting (%s implicit TLS? then set "
			    "%s'tls_starttls off')", p->port == 465 ?
			    "port 465 expects" : "does this port expect",
			    p->tls ? "" : "'tls on' and ");
		return -1;
	}
	if (r.code != 220)
		return reply_error(s, &r, ERR_PERM, e);
	if (conn_pending(s->c) > 0)
		return err_set(e, ERR_PROTO, "the server sent more than its "
		    "greeting before outbox spoke; stopping");
	snprintf(s->greeting, sizeof(s->greeting), "%s", r.text);
	if (do_ehlo(s, e) == -1)
		return -1;
	if (p->tls && p->starttls) {
		if (!s->esmtp)
			return err_set(e, ERR_PROTO, "the server does not speak "
			    "ESMTP, so it cannot offer STARTTLS; outbox never "
			    "sends in plaintext");
		if (do_starttls(s, e) == -1)
			return -1;
	}
	return 0;
}

static int
write_cb(void *ctx, const void *data, size_t len, struct err *e)
{
	return conn_write(ctx, data, len, e);
}

/* Append key and value in xtext (RFC 3461): "+HH" for '+', '=' and others. */
static void
xtext(char *buf, size_t len, const char *key, const char *v)
{
	size_t	o = (size_t)snprintf(buf, len, "%s", key);

	for (; *v != '\0' && o + 4 < len; v++) {
		unsigned char c = (unsigned char)*v;

		if (c < 33 || c > 126 || c == '+' || c == '=')
			o += (size_t)snprintf(buf + o, len - o, "+%02X", c);
		else
			buf[o++] = (char)c;
	}
	buf[o < len ? o : len - 1] = '\0';
}

/* MAIL FROM parameters, checked against what the server offers. */
static int
mail_params(struct smtp_session *s, struct msg *m, char *buf, size_t len,
    struct err *e)
{
	const struct smtp_envelope *p = s->env;
	int			 utf8 = addr_is_utf8(p->sender);
	size_t			 i, o = 0;

	for (i = 0; i < p->rcpts->n; i++)
		utf8 |= addr_is_utf8(p->rcpts->v[i]);
	buf[0] = '\0';
	if (s->caps.size > 0 && (unsigned long)m->size > s->caps.size)
		return err_set(e, ERR_PERM, "the message is %lld bytes; the "
		    "server accepts at most %lu", (long long)m->size,
		    s->caps.size);
	if (s->caps.flags & CAP_SIZE)
		o += (size_t)snprintf(buf + o, len - o, " SIZE=%lld",
		    (long long)m->size);
	if (m->eightbit && (s->caps.flags & CAP_8BITMIME))
		o += (size_t)snprintf(buf + o, len - o, " BODY=8BITMIME");
	if (utf8 && !(s->caps.flags & CAP_SMTPUTF8))
		return err_set(e, ERR_PERM, "an address is not ASCII and the "
		    "server does not offer SMTPUTF8");
	if (utf8)
		o += (size_t)snprintf(buf + o, len - o, " SMTPUTF8");
	if ((s->caps.flags & CAP_DSN) && p->dsn_return != NULL)
		o += (size_t)snprintf(buf + o, len - o, " RET=%s",
		    strcmp(p->dsn_return, "headers") == 0 ? "HDRS" : "FULL");
	if ((s->caps.flags & CAP_DSN) && p->envid != NULL)
		xtext(buf + o, len - o, " ENVID=", p->envid);
	return 0;
}

static void
rcpt_params(struct smtp_session *s, char *buf, size_t len)
{
	const char	*n = s->env->dsn_notify;
	size_t		 i, o;

	buf[0] = '\0';
	if (n == NULL || !(s->caps.flags & CAP_DSN))
		return;
	o = (size_t)snprintf(buf, len, " NOTIFY=");
	for (i = 0; n[i] != '\0' && o + 1 < len; i++)
		buf[o++] = (char)toupper((unsigned char)n[i]);
	buf[o] = '\0';
}

static int
send_envelope(struct smtp_session *s, struct msg *m, struct err *e)
{
	char	mp[600], rp[64];
	size_t	i;

	if (mail_params(s, m, mp, sizeof(mp), e) == -1)
		return -1;
	rcpt_params(s, rp, sizeof(rp));
	set_state(s, S_MAIL);
	if (send_cmd(s, SHOW, e, "MAIL FROM:<%s>%s", s->env->sender, mp) == -1)
		return -1;
	for (i = 0; i < s->env->rcpts->n; i++)
		if (send_cmd(s, SHOW, e, "RCPT TO:<%s>%s", s->env->rcpts->v[i],
		    rp) == -1)
			return -1;
	return 0;
}

static int
read_mail_reply(struct smtp_session *s, struct err *e)
{
	struct reply	r;

	snprintf(s->cmd, sizeof(s->cmd), "MAIL FROM:<%s>", s->env->sender);
	if (read_reply(s, &r, NULL, e) == -1)
		return -1;
	if (r.code / 100 != 2)
		return reply_error(s, &r, ERR_PERM, e);
	return 0;
}

/* Read one reply per recipient; returns how many were accepted. */
static int
read_rcpt_replies(struct smtp_session *s, struct err *e)
{
	struct reply	r;
	size_t		i;
	int		ok = 0;

	set_state(s, S_RCPT);
	for (i = 0; i < s->env->rcpts->n; i++) {
		snprintf(s->cmd, sizeof(s->cmd), "RCPT TO:<%s>",
		    s->env->rcpts->v[i]);
		if (read_reply(s, &r, NULL, e) == -1)
			return -1;
		s->res->rcpt[i].code = r.code;
		snprintf(s->res->rcpt[i].text, sizeof(s->res->rcpt[i].text),
		    "%s", r.text);
		if (r.code / 100 == 2)
			ok++;
	}
	return ok;
}

/* The error when recipients were refused: 4xx anywhere makes it temporary. */
static int
rcpt_error(struct smtp_session *s, struct err *e)
{
	size_t		i;
	int		worst = -1;
	enum err_class	cls, wcls = ERR_NONE;

	for (i = 0; i < s->env->rcpts->n; i++) {
		const struct rcpt_result *rr = &s->res->rcpt[i];

		if (rr->code / 100 == 2)
			continue;
		cls = smtp_reply_class(rr->code, rr->text, ERR_PERM);
		if (worst == -1 || (cls == ERR_TEMP && wcls != ERR_TEMP)) {
			worst = (int)i;
			wcls = cls;
		}
	}
	s->res->rcpts_refused = 1;
	if (worst == -1)	/* all_or_nothing cannot get here empty */
		return err_set(e, ERR_PERM, "no recipient accepted");
	return err_set(e, wcls, "RCPT TO:<%s>: %d %s", s->env->rcpts->v[worst],
	    s->res->rcpt[worst].code, s->res->rcpt[worst].text);
}

static int
rcpts_refused(const struct smtp_session *s, int accepted)
{
	return accepted == 0 ||
	    (s->env->all_or_nothing && (size_t)accepted < s->env->rcpts->n);
}

static int
final_reply(struct smtp_session *s, struct err *e)
{
	struct reply	r;

	if (read_reply(s, &r, NULL, e) == -1) {
		err_prefix(e, "after sending the message (it may or may not "
		    "have been accepted)");
		return -1;
	}
	if (r.code / 100 != 2)
		return reply_error(s, &r, ERR_PERM, e);
	snprintf(s->res->final, sizeof(s->res->final), "%d %.*s", r.code,
	    (int)sizeof(s->res->final) - 8, r.text);
	s->res->delivered = 1;
	return 0;
}

/* BDAT with the whole message in one chunk. */
static int
send_bdat(struct smtp_session *s, struct msg *m, int quit, struct err *e)
{
	set_state(s, S_BODY);
	if (send_cmd(s, SHOW, e, "BDAT %lld LAST", (long long)m->size) == -1)
		return -1;
	trace(s, "-->", "[message data]");
	if (msg_write_raw(m, write_cb, s->c, e) == -1)
		return -1;
	if (quit && send_cmd(s, SHOW, e, "QUIT") == -1)
		return -1;
	s->quit_sent = quit;
	snprintf(s->cmd, sizeof(s->cmd), "BDAT %lld LAST", (long long)m->size);
	return 0;
}

static int
send_body_dotted(struct smtp_session *s, struct msg *m, int quit,
    struct err *e)
{
	set_state(s, S_BODY);
	trace(s, "-->", "[message data]");
	if (msg_write_dotted(m, write_cb, s->c, e) == -1)
		return -1;
	if (quit && send_cmd(s, SHOW, e, "QUIT") == -1)
		return -1;
	s->quit_sent = quit;
	snprintf(s->cmd, sizeof(s->cmd), "end of data");
	return 0;
}

/*
 * PIPELINING: one flight for the envelope and, with CHUNKING, the body;
 * on the last message QUIT goes in the same flight.
 */
static int
transaction_pipelined(struct smtp_session *s, struct msg *m, int last,
    struct err *e)
{
	struct reply	r;
	int		chunk = (s->caps.flags & CAP_CHUNKING) &&
	    !s->env->all_or_nothing;
	int		accepted;

	if (send_envelope(s, m, e) == -1)
		return -1;
	if (chunk) {
		if (send_bdat(s, m, last, e) == -1)
			return -1;
	} else {
		set_state(s, S_DATA);
		if (send_cmd(s, SHOW, e, "DATA") == -1)
			return -1;
	}
	if (s->auth_pending != NULL && auth_pending_reply(s, e) == -1)
		return -1;
	if (read_mail_reply(s, e) == -1 ||
	    (accepted = read_rcpt_replies(s, e)) == -1)
		return -1;
	if (chunk) {
		if (accepted == 0)
			return rcpt_error(s, e);
		snprintf(s->cmd, sizeof(s->cmd), "BDAT %lld LAST",
		    (long long)m->size);
		return final_reply(s, e);
	}
	snprintf(s->cmd, sizeof(s->cmd), "DATA");
	if (read_reply(s, &r, NULL, e) == -1)
		return -1;
	if (rcpts_refused(s, accepted))
		return rcpt_error(s, e);	/* closing aborts any DATA */
	if (r.code != 354)
		return reply_error(s, &r, ERR_PERM, e);
	/* More replies than commands: which one was for what? Stop. */
	if (conn_pending(s->c) > 0)
		return err_set(e, ERR_PROTO, "the server sent more replies than "
		    "outbox sent commands; stopping before the message");
	if (send_body_dotted(s, m, last, e) == -1)
		return -1;
	return final_reply(s, e);
}

static int
transaction_lockstep(struct smtp_session *s, struct msg *m, struct err *e)
{
	struct reply	r;
	char		mp[600], rp[64];
	size_t		i;
	int		accepted = 0;

	if (mail_params(s, m, mp, sizeof(mp), e) == -1)
		return -1;
	rcpt_params(s, rp, sizeof(rp));
	set_state(s, S_MAIL);
	if (send_cmd(s, SHOW, e, "MAIL FROM:<%s>%s", s->env->sender, mp) == -1 ||
	    expect(s, 250, &r, e) == -1)
		return -1;
	set_state(s, S_RCPT);
	for (i = 0; i < s->env->rcpts->n; i++) {
		if (send_cmd(s, SHOW, e, "RCPT TO:<%s>%s", s->env->rcpts->v[i],
		    rp) == -1 || read_reply(s, &r, NULL, e) == -1)
			return -1;
		s->res->rcpt[i].code = r.code;
		snprintf(s->res->rcpt[i].text, sizeof(s->res->rcpt[i].text),
		    "%s", r.text);
		accepted += r.code / 100 == 2;
	}
	if (rcpts_refused(s, accepted))
		return rcpt_error(s, e);
	if (s->caps.flags & CAP_CHUNKING) {
		if (send_bdat(s, m, 0, e) == -1)
			return -1;
		return final_reply(s, e);
	}
	set_state(s, S_DATA);
	if (send_cmd(s, SHOW, e, "DATA") == -1 || expect(s, 354, &r, e) == -1)
		return -1;
	if (send_body_dotted(s, m, 0, e) == -1)
		return -1;
	return final_reply(s, e);
}

static void
result_reset(struct smtp_result *res, size_t nrcpt)
{
	free(res->rcpt);
	res->rcpt = xcalloc(nrcpt ? nrcpt : 1, sizeof(*res->rcpt));
	res->delivered = 0;
	res->rcpts_refused = 0;
	res->final[0] = '\0';
}

struct smtp_session *
smtp_open(const struct smtp_params *p, struct smtp_result *res, struct err *e)
{
	struct smtp_session	*s = xcalloc(1, sizeof(*s));

	s->p = p;
	s->res = res;
	if (session_open(s, e) == -1 || do_auth(s, e) == -1) {
		smtp_close(s, res);
		return NULL;
	}
	conn_tls_info(s->c, &res->tls, 0);
	return s;
}

int
smtp_transaction(struct smtp_session *s, const struct smtp_envelope *env,
    struct msg *m, int last, struct smtp_result *res, struct err *e)
{
	const struct smtp_result *first = s->res;
	int			 rv;

	if (res != first) {
		memcpy(res->mech, first->mech, sizeof(res->mech));
		res->tls = first->tls;
	}
	result_reset(res, env->rcpts->n);
	s->env = env;
	s->res = res;
	rv = s->caps.flags & CAP_PIPELINING ?
	    transaction_pipelined(s, m, last, e) :
	    transaction_lockstep(s, m, e);
	if (rv == -1)
		s->broken = 1;
	return rv;
}

int
smtp_reusable(const struct smtp_session *s)
{
	return s != NULL && !s->broken && !s->quit_sent;
}

void
smtp_close(struct smtp_session *s, struct smtp_result *res)
{
	struct err	ignored;

	if (s == NULL)
		return;
	if (s->c != NULL) {
		if (!s->quit_sent && s->state >= S_GREETING) {
			set_state(s, S_QUIT);
			if (send_cmd(s, SHOW, &ignored, "QUIT") == 0)
				conn_flush(s->c, &ignored);
		}
		if (res != NULL)
			res->waits = conn_waits(s->c);
		if (s->p->verbose)
			fprintf(stderr, "--- %d round trips waited for\n",
			    conn_waits(s->c));
		conn_close(s->c);
	}
	set_state(s, S_DONE);
	free(s);
}

void
smtp_result_free(struct smtp_result *res)
{
	free(res->rcpt);
	res->rcpt = NULL;
}

static void
print_time(FILE *out, const char *label, time_t t)
{
	char		buf[64];
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(out, "    %-12s %s\n", label, buf);
}

static void
print_caps(FILE *out, const struct caps *c)
{
	fprintf(out, "Capabilities:\n");
	if (c->flags & CAP_SIZE) {
		if (c->size)
			fprintf(out, "    SIZE %lu (%lu MiB)\n", c->size,
			    c->size >> 20);
		else
			fprintf(out, "    SIZE (no limit given)\n");
	}
	fprintf(out, "    PIPELINING   %s\n", c->flags & CAP_PIPELINING ?
	    "yes" : "no");
	fprintf(out, "    CHUNKING     %s\n", c->flags & CAP_CHUNKING ?
	    "yes" : "no");
	fprintf(out, "    8BITMIME     %s\n", c->flags & CAP_8BITMIME ?
	    "yes" : "no");
	fprintf(out, "    SMTPUTF8     %s\n", c->flags & CAP_SMTPUTF8 ?
	    "yes" : "no");
	fprintf(out, "    DSN          %s\n", c->flags & CAP_DSN ? "yes" : "no");
	fprintf(out, "    STARTTLS     %s\n", c->flags & CAP_STARTTLS ?
	    "yes" : "no");
	fprintf(out, "    AUTH         %s\n", c->flags & CAP_AUTH ? c->auth :
	    "(none)");
}

int
smtp_serverinfo(const struct smtp_params *p, FILE *out, struct err *e)
{
	struct smtp_session	*s = xcalloc(1, sizeof(*s));
	struct smtp_result	 res;
	struct tls_info		 ti;
	int			 rv;

	memset(&res, 0, sizeof(res));
	s->p = p;
	s->res = &res;
	rv = session_open(s, e);
	if (rv == 0) {
		fprintf(out, "SMTP server at %s, port %d:\n    %s\n", p->host,
		    p->port, s->greeting);
		conn_tls_info(s->c, &ti, 1);
		if (conn_is_tls(s->c)) {
			fprintf(out, "TLS:\n    %-12s %s\n    %-12s %s\n",
			    "version", ti.version, "session", ti.cipher);
			fprintf(out, "    %-12s %s\n    %-12s %s\n", "subject",
			    ti.subject, "issuer", ti.issuer);
			print_time(out, "valid from", ti.not_before);
			print_time(out, "valid until", ti.not_after);
			fprintf(out, "    %-12s %s\n    %-12s %s\n", "SHA-256",
			    ti.sha256, "public key", ti.spki);
		} else
			fprintf(out, "TLS: not used\n");
		print_caps(out, &s->caps);
	}
	smtp_close(s, NULL);
	return rv;
}
