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
	struct smtp_remote		 remote;	/* carried elsewhere */
	void				(*data_hook)(void *);
	void				*data_hook_arg;
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
 * The test hook after each step: "sent-VERB" once the command is on the
 * wire (flushed), as outbox's crash tests name them.
 */
static void
crash_step(struct smtp_session *s, const char *line, struct err *e)
{
	char	name[16];
	size_t	n = strcspn(line, " \r");

	if (getenv("OUTBOX_TEST_CRASH") == NULL)
		return;
	snprintf(name, sizeof(name), "sent-%.*s", (int)(n < 8 ? n : 8), line);
	conn_flush(s->c, e);
	crash_point(name);
}

/*
 * The longest command line: 512 octets for most commands (RFC 5321
 * section 4.5.3.1.4); an AUTH exchange's responses may be up to 12288
 * (RFC 4954 section 4), which bearer tokens need.
 */
#define CMD_LINE_MAX	1200
#define AUTH_LINE_MAX	12288
#define AUTH_INITIAL_MAX 512

/*
 * Queue a command.  Arguments that reach the wire were checked for CR/LF
 * where they entered the program; check again, cheaply, here.  AUTH data
 * never reaches the trace or an error message.
 */
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
	crash_step(s, line, e);
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
		if (have && have + 1 < sizeof(c->auth))
			c->auth[have++] = ' ';
		/* The list reaches the terminal in -S and in errors. */
		sanitize(c->auth + have, sizeof(c->auth) - have, t + 5,
		    strlen(t + 5));
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

	if (s->res != NULL)
		s->res->code = r->code;

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
	if (send_cmd(s, SHOW, e, "%s %s", s->p->lmtp ? "LHLO" : "EHLO",
	    s->p->helo) == -1 || read_reply(s, &r, &s->caps, e) == -1)
		return -1;
	if (r.code == 250) {
		s->esmtp = 1;
		return 0;
	}
	/* LMTP has no HELO to fall back on (RFC 2033 section 4.1). */
	if (r.code < 500 || r.code > 504 || s->p->lmtp)
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

/*
 * The server's replies during AUTH.  initial: a client-first response
 * too long for the AUTH line, sent after the server's first 334.
 */
static int
auth_refused(struct smtp_session *, const char *, const struct reply *,
    const char *, struct err *);

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
			return auth_refused(s, mech, &r, sasl_server_error(sasl), e);
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
	if (!sasl_mech(mech)->initial) {
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
	if (rv != -1 && oneline && sasl_mech(mech)->one_step &&
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

/* -v: whether SCRAM's PBKDF2 ran, and what became of its result. */
static void
trace_key(const struct smtp_session *s, int k)
{
	if (k == SASL_KEY_USED)
		trace(s, "---", "SCRAM: used the kept salted password (no "
		    "PBKDF2); the server's signature checked");
	else if (k == SASL_KEY_KEPT)
		trace(s, "---", "SCRAM: salted password computed (PBKDF2) and "
		    "kept for the next session");
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
	cr.keep = p->keep;
	rv = sasl_start(&sasl, mech, &cr, e);
	free(cb);
	if (rv == -1)
		return -1;
	rv = auth_exchange(s, sasl, mech, e);
	s->res->key_used = sasl_key_used(sasl);
	if (rv == 0)
		trace_key(s, sasl_accepted(sasl));
	sasl_end(sasl);
	return rv;
}

static int
session_open(struct smtp_session *s, struct err *e)
{
	const struct smtp_params *p = s->p;
	struct conn_params	 cp = { .host = p->host, .port = p->port,
	    .source_ip = p->source_ip, .socket_path = p->socket_path,
	    .proxy_host = p->proxy_host, .proxy_port = p->proxy_port,
	    .timeout_ms = p->timeout_ms, .session_ms = p->session_ms };
	struct reply		 r;
	char			 via[320];

	set_state(s, S_CONNECT);
	if (p->proxy_host != NULL && p->socket_path == NULL) {
		snprintf(via, sizeof(via), "through the SOCKS5 proxy %s:%d",
		    p->proxy_host, p->proxy_port);
		trace(s, "---", via);
	}
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
		if (!(p->tls && !p->starttls) && conn_timed_out(s->c))
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

static int
env_is_utf8(const struct envelope *env)
{
	size_t	i;
	int	utf8 = addr_is_utf8(env->sender);

	for (i = 0; i < env->nrcpt; i++)
		utf8 |= rcpt_todo(&env->rcpt[i]) &&
		    addr_is_utf8(env->rcpt[i].addr);
	return utf8;
}

int
smtp_mail_cmd(const struct caps *c, const struct envelope *env,
    const struct msg *m, char *buf, size_t len, struct err *e)
{
	int	utf8 = env_is_utf8(env);
	size_t	o;

	if (c->size > 0 && (unsigned long)m->size > c->size)
		return err_set(e, ERR_PERM, "the message is %lld bytes; the "
		    "server accepts at most %lu", (long long)m->size, c->size);
	if (utf8 && !(c->flags & CAP_SMTPUTF8))
		return err_set(e, ERR_PERM, "an address is not ASCII and the "
		    "server does not offer SMTPUTF8");
	o = (size_t)snprintf(buf, len, "MAIL FROM:<%s>", env->sender);
	if (o < len && (c->flags & CAP_SIZE))
		o += (size_t)snprintf(buf + o, len - o, " SIZE=%lld",
		    (long long)m->size);
	if (o < len && (m->eightbit || (env->body != NULL &&
	    strcmp(env->body, "8BITMIME") == 0)) && (c->flags & CAP_8BITMIME))
		o += (size_t)snprintf(buf + o, len - o, " BODY=8BITMIME");
	else if (o < len && env->body != NULL && (c->flags & CAP_8BITMIME))
		o += (size_t)snprintf(buf + o, len - o, " BODY=7BIT");
	/* Asked for with -O smtputf8: given when the server offers it. */
	if (o < len && (utf8 || (env->smtputf8 && (c->flags & CAP_SMTPUTF8))))
		o += (size_t)snprintf(buf + o, len - o, " SMTPUTF8");
	if (o < len && (c->flags & CAP_DSN) && env->ret != NULL)
		o += (size_t)snprintf(buf + o, len - o, " RET=%s",
		    strcmp(env->ret, "headers") == 0 ? "HDRS" : "FULL");
	if (o < len && (c->flags & CAP_DSN) && env->envid != NULL)
		xtext(buf + o, len - o, " ENVID=", env->envid);
	return 0;
}

void
smtp_rcpt_cmd(const struct caps *c, const struct envelope *env,
    const struct rcpt *r, char *buf, size_t len)
{
	const char	*n = env->notify;
	size_t		 o = (size_t)snprintf(buf, len, "RCPT TO:<%s>", r->addr);

	if (n == NULL || !(c->flags & CAP_DSN) || o >= len)
		return;
	o += (size_t)snprintf(buf + o, len - o, " NOTIFY=");
	for (; *n != '\0' && o + 1 < len; n++)
		buf[o++] = (char)toupper((unsigned char)*n);
	buf[o < len ? o : len - 1] = '\0';
}

/*
 * One transaction: the commands sent whose replies are still to read, in
 * order, so that each reply meets its own command.  With PIPELINING the
 * window is the whole envelope; without it, one: the same loop either way.
 */
enum cmdkind { C_AUTH, C_MAIL, C_RCPT, C_DATA, C_BDAT };

struct pending {
	enum cmdkind	 kind;
	struct rcpt	*rcpt;		/* C_RCPT */
	char		 cmd[600];	/* for error messages */
};

struct txn {
	struct envelope	*env;
	struct msg	*m;
	struct pending	*q;
	size_t		 head, tail;	/* q[head..tail): awaiting replies */
	size_t		 window;
	int		 accepted;	/* RCPTs answered 2xx */
	int		 last;		/* QUIT may go with the data */
	int		 pipelined;
	int		 chunked;	/* BDAT */
};

static void
stage(struct smtp_session *s, enum smtp_stage st)
{
	s->res->stage = st;
}

/* The error when recipients were refused: 4xx anywhere makes it temporary. */
static int
rcpt_error(struct smtp_session *s, struct txn *t, struct err *e)
{
	const struct rcpt	*worst = NULL;
	enum err_class		 cls, wcls = ERR_NONE;
	size_t			 i;

	for (i = 0; i < t->env->nrcpt; i++) {
		const struct rcpt *r = &t->env->rcpt[i];

		if (!r->tried || r->code / 100 == 2)
			continue;
		cls = smtp_reply_class(r->code, r->text, ERR_PERM);
		if (worst == NULL || (cls == ERR_TEMP && wcls != ERR_TEMP)) {
			worst = r;
			wcls = cls;
		}
	}
	s->res->rcpts_refused = 1;
	if (worst == NULL)	/* all_or_nothing cannot get here empty */
		return err_set(e, ERR_PERM, "no recipient accepted");
	return err_set(e, wcls, "RCPT TO:<%s>: %d %s", worst->addr, worst->code,
	    worst->text);
}

static int
rcpts_refused(const struct txn *t)
{
	return t->accepted == 0 || (t->env->all_or_nothing &&
	    (size_t)t->accepted < env_todo(t->env));
}

/*
 * LMTP: one reply to the data for each recipient accepted, in order, each
 * its own outcome (RFC 2033 section 4.2).  A reply that does not come
 * leaves its recipient, and those after it, unknown.
 */
static int
lmtp_replies(struct smtp_session *s, struct txn *t, struct err *e)
{
	struct rcpt	*worst = NULL;
	struct reply	 r;
	size_t		 i;
	int		 ok = 0;

	stage(s, STAGE_DOT);
	for (i = 0; i < t->env->nrcpt; i++) {
		struct rcpt *rc = &t->env->rcpt[i];

		if (!rc->tried || rc->code / 100 != 2)
			continue;
		snprintf(s->cmd, sizeof(s->cmd), "end of data for <%s>",
		    rc->addr);
		conn_final_wait(s->c, s->p->data_timeout_ms);
		if (read_reply(s, &r, NULL, e) == -1) {
			conn_final_wait(s->c, 0);
			err_prefix(e, "after sending the message (it may or may "
			    "not have been delivered to <%s>)", rc->addr);
			return -1;
		}
		conn_final_wait(s->c, 0);
		rcpt_set_reply(rc, r.code, r.text);
		rc->replied = 1;
		ok += r.code / 100 == 2;
		if (r.code / 100 != 2 && (worst == NULL || r.code / 100 == 4))
			worst = rc;
		if (r.code / 100 == 2 && !s->res->final[0])
			snprintf(s->res->final, sizeof(s->res->final), "%d %.*s",
			    r.code, (int)sizeof(s->res->final) - 8, r.text);
	}
	s->res->delivered = ok > 0;
	if (ok > 0)
		return 0;
	stage(s, STAGE_DATA);
	s->res->rcpts_refused = 1;
	s->res->code = worst ? worst->code : 0;
	return err_set(e, smtp_reply_class(worst->code, worst->text, ERR_PERM),
	    "end of data for <%s>: %d %s", worst->addr, worst->code,
	    worst->text);
}

/*
 * After the last reply of a transaction, is there more than the reply to
 * a QUIT sent with the data?  If so the session is broken: the next message
 * could not tell its replies from these.
 */
static int
extra_replies(struct smtp_session *s)
{
	struct reply	r;
	struct err	ignored;
	int		rv = conn_unread(s->c);

	if (rv == 1 && s->quit_sent) {
		if (read_reply(s, &r, NULL, &ignored) == -1 || r.code != 221)
			rv = 1;
		else
			rv = conn_unread(s->c);
	}
	if (rv != 0)
		s->broken = 1;
	return rv == 1;
}

/* The reply to the message itself; no reply at all leaves it unknown. */
static int
final_reply(struct smtp_session *s, struct txn *t, struct err *e)
{
	struct reply	r;
	int		rv;

	if (s->p->lmtp)
		return lmtp_replies(s, t, e);
	stage(s, STAGE_DOT);
	conn_final_wait(s->c, s->p->data_timeout_ms);
	rv = read_reply(s, &r, NULL, e);
	conn_final_wait(s->c, 0);
	if (rv == -1) {
		err_prefix(e, "after sending the message (it may or may not "
		    "have been accepted)");
		return -1;
	}
	if (r.code / 100 != 2) {
		stage(s, STAGE_DATA);
		return reply_error(s, &r, ERR_PERM, e);
	}
	/*
	 * With BDAT pipelined, every reply is read after the data: one too
	 * many, and this one may be another command's.
	 */
	if (extra_replies(s) && t->chunked && t->pipelined) {
		stage(s, STAGE_DOT);
		return err_set(e, ERR_PROTO, "the server sent more replies than "
		    "outbox sent commands, so its answer to the message is "
		    "unknown (it may or may not have been accepted)");
	}
	snprintf(s->res->final, sizeof(s->res->final), "%d %.*s", r.code,
	    (int)sizeof(s->res->final) - 8, r.text);
	s->res->delivered = 1;
	crash_point("accepted");
	return 0;
}

static int
send_body(struct smtp_session *s, struct txn *t, int chunked, struct err *e)
{
	if (s->data_hook != NULL)
		s->data_hook(s->data_hook_arg);
	set_state(s, S_BODY);
	stage(s, STAGE_DATA);
	trace(s, "-->", "[message data]");
	if ((chunked ? msg_write_raw(t->m, write_cb, s->c, e) :
	    msg_write_dotted(t->m, write_cb, s->c, e)) == -1)
		return -1;
	if (getenv("OUTBOX_TEST_CRASH") != NULL && conn_flush(s->c, e) == 0)
		crash_point("sent-body");
	/* QUIT in the same flight, when nothing follows. */
	if (t->last && t->pipelined && send_cmd(s, SHOW, e, "QUIT") == -1)
		return -1;
	s->quit_sent = t->last && t->pipelined;
	snprintf(s->cmd, sizeof(s->cmd), "%s", chunked ? t->q[t->tail - 1].cmd :
	    "end of data");
	return 0;
}

/*
 * A refused AUTH, the same error wherever its reply was read; why: what
 * a bearer token's JSON error said, or NULL.
 */
static int
auth_refused(struct smtp_session *s, const char *mech, const struct reply *r,
    const char *why, struct err *e)
{
	s->auth_code = r->code;
	stage(s, STAGE_SESSION);
	snprintf(s->cmd, sizeof(s->cmd), "AUTH %s", mech);
	if (r->code >= 500)
		return err_set(e, ERR_AUTH, "authentication with %s failed: "
		    "%d %s%s%s%s", mech, r->code, r->text, why ? " (" : "",
		    why ? why : "", why ? ")" : "");
	return reply_error(s, r, ERR_AUTH, e);
}

/* Handle the reply to the oldest command awaiting one. */
static int
on_reply(struct smtp_session *s, struct txn *t, struct err *e)
{
	struct pending	*p = &t->q[t->head++];
	struct reply	 r;

	snprintf(s->cmd, sizeof(s->cmd), "%s", p->cmd);
	if (p->kind == C_BDAT)
		return t->accepted == 0 ? rcpt_error(s, t, e) :
		    final_reply(s, t, e);
	if (read_reply(s, &r, NULL, e) == -1)
		return -1;
	switch (p->kind) {
	case C_AUTH:
		return r.code == 235 ? 0 : auth_refused(s, p->cmd + 5, &r, NULL, e);
	case C_MAIL:
		return r.code / 100 == 2 ? 0 : reply_error(s, &r, ERR_PERM, e);
	case C_RCPT:
		rcpt_set_reply(p->rcpt, r.code, r.text);
		t->accepted += r.code / 100 == 2;
		return 0;
	case C_DATA:
		if (rcpts_refused(t))
			return rcpt_error(s, t, e);	/* closing aborts DATA */
		if (r.code != 354)
			return reply_error(s, &r, ERR_PERM, e);
		/* More replies than commands: which one was for what? Stop. */
		if (conn_pending(s->c) > 0)
			return err_set(e, ERR_PROTO, "the server sent more "
			    "replies than outbox sent commands; stopping before "
			    "the message");
		if (send_body(s, t, 0, e) == -1)
			return -1;
		return final_reply(s, t, e);
	case C_BDAT:
		break;
	}
	return 0;
}

/* Read replies until at most keep commands await theirs. */
static int
drain(struct smtp_session *s, struct txn *t, size_t keep, struct err *e)
{
	while (t->tail - t->head > keep)
		if (on_reply(s, t, e) == -1)
			return -1;
	return 0;
}

/* Send a command (already sent when line is NULL) and await its reply. */
static int
issue(struct smtp_session *s, struct txn *t, enum cmdkind kind,
    struct rcpt *r, const char *line, struct err *e)
{
	struct pending	*p = &t->q[t->tail];

	p->kind = kind;
	p->rcpt = r;
	snprintf(p->cmd, sizeof(p->cmd), "%s", line);
	if (kind != C_AUTH && send_cmd(s, SHOW, e, "%s", line) == -1)
		return -1;
	t->tail++;
	return drain(s, t, t->window - 1, e);
}

static int
send_rcpts(struct smtp_session *s, struct txn *t, struct err *e)
{
	char	line[600];
	size_t	i;

	set_state(s, S_RCPT);
	for (i = 0; i < t->env->nrcpt; i++) {
		struct rcpt *r = &t->env->rcpt[i];

		if (!rcpt_todo(r))
			continue;
		r->tried = 1;
		smtp_rcpt_cmd(&s->caps, t->env, r, line, sizeof(line));
		if (issue(s, t, C_RCPT, r, line, e) == -1)
			return -1;
	}
	return 0;
}

static int
transaction(struct smtp_session *s, struct txn *t, struct err *e)
{
	char	line[600];
	int	quiet;
	int	chunk = (s->caps.flags & CAP_CHUNKING) &&
	    !(t->pipelined && t->env->all_or_nothing);

	stage(s, STAGE_ENVELOPE);
	if (smtp_mail_cmd(&s->caps, t->env, t->m, line, sizeof(line), e) == -1)
		return -1;
	/*
	 * A connection carried over from the last message must be quiet, and
	 * so must a new one, unless the reply to a pipelined AUTH is due.
	 */
	quiet = s->auth_pending == NULL ? conn_unread(s->c) : 0;
	if (quiet == -1)
		return err_set(e, ERR_TEMP, "the server closed the connection "
		    "before the next message");
	if (quiet == 1)
		return err_set(e, ERR_PROTO, "the server sent a reply nobody "
		    "asked for before the next message; stopping");
	set_state(s, S_MAIL);
	if (s->auth_pending != NULL) {
		snprintf(line + 300, 300, "AUTH %s", s->auth_pending);
		s->auth_pending = NULL;
		if (issue(s, t, C_AUTH, NULL, line + 300, e) == -1)
			return -1;
	}
	if (issue(s, t, C_MAIL, NULL, line, e) == -1 ||
	    send_rcpts(s, t, e) == -1)
		return -1;
	/* In lockstep every reply is in: no DATA for refused recipients. */
	if (t->tail == t->head && rcpts_refused(t))
		return rcpt_error(s, t, e);
	stage(s, STAGE_DATA);
	if (!chunk) {
		set_state(s, S_DATA);
		return issue(s, t, C_DATA, NULL, "DATA", e) == -1 ? -1 :
		    drain(s, t, 0, e);
	}
	t->chunked = 1;
	/* In lockstep every reply is in: one more would pass for BDAT's. */
	if (!t->pipelined && conn_unread(s->c) != 0)
		return err_set(e, ERR_PROTO, "the server sent more replies than "
		    "outbox sent commands; stopping before the message");
	snprintf(line, sizeof(line), "BDAT %lld LAST", (long long)t->m->size);
	t->q[t->tail].kind = C_BDAT;
	snprintf(t->q[t->tail].cmd, sizeof(t->q[t->tail].cmd), "%s", line);
	t->tail++;
	if (send_cmd(s, SHOW, e, "%s", line) == -1 ||
	    send_body(s, t, 1, e) == -1)
		return -1;
	return drain(s, t, 0, e);
}

struct smtp_session *
smtp_open(const struct smtp_params *p, struct smtp_result *res, struct err *e)
{
	struct smtp_session	*s = xcalloc(1, sizeof(*s));

	s->p = p;
	s->res = res;
	res->key_used = 0;
	stage(s, STAGE_SESSION);
	if (session_open(s, e) == -1 || do_auth(s, e) == -1) {
		smtp_close(s, res);
		return NULL;
	}
	conn_tls_info(s->c, &res->tls, 0);
	return s;
}

struct smtp_session *
smtp_remote_session(const struct smtp_remote *r)
{
	struct smtp_session	*s = xcalloc(1, sizeof(*s));

	s->remote = *r;
	return s;
}

int
smtp_is_remote(const struct smtp_session *s)
{
	return s != NULL && s->remote.transaction != NULL;
}

void
smtp_set_data_hook(struct smtp_session *s, void (*hook)(void *), void *arg)
{
	s->data_hook = hook;
	s->data_hook_arg = arg;
}

int
smtp_fd(const struct smtp_session *s)
{
	return s->c != NULL ? conn_fd(s->c) : -1;
}

void
smtp_abandon(struct smtp_session *s)
{
	if (s == NULL)
		return;
	conn_abandon(s->c);
	free(s);
}

int
smtp_transaction(struct smtp_session *s, struct envelope *env, struct msg *m,
    int last, struct smtp_result *res, struct err *e)
{
	const struct smtp_result *first = s->res;
	struct txn		 t;
	size_t			 i;
	int			 rv;

	if (s->remote.transaction != NULL)
		return s->remote.transaction(s->remote.arg, env, m, last, res,
		    e);

	if (res != first) {
		memcpy(res->mech, first->mech, sizeof(res->mech));
		res->tls = first->tls;
	}
	res->delivered = res->rcpts_refused = res->code = 0;
	res->final[0] = '\0';
	for (i = 0; i < env->nrcpt; i++)
		env->rcpt[i].tried = env->rcpt[i].replied = 0;
	s->res = res;
	memset(&t, 0, sizeof(t));
	t.env = env;
	t.m = m;
	t.last = last;
	t.pipelined = (s->caps.flags & CAP_PIPELINING) != 0;
	t.window = t.pipelined ? env->nrcpt + 4 : 1;
	t.q = xcalloc(env->nrcpt + 4, sizeof(*t.q));
	rv = transaction(s, &t, e);
	free(t.q);
	/* A pipelined AUTH refused: the session's trouble, not the message's. */
	if (rv == -1)
		s->broken = 1;
	return rv;
}

int
smtp_reusable(const struct smtp_session *s)
{
	if (s != NULL && s->remote.transaction != NULL)
		return s->remote.reusable(s->remote.arg);
	return s != NULL && !s->broken && !s->quit_sent;
}

void
smtp_close(struct smtp_session *s, struct smtp_result *res)
{
	struct err	ignored;

	if (s == NULL)
		return;
	if (s->remote.transaction != NULL) {
		s->remote.close(s->remote.arg, res);
		free(s);
		return;
	}
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
	char			 via[320];
	int			 rv;

	memset(&res, 0, sizeof(res));
	s->p = p;
	s->res = &res;
	rv = session_open(s, e);
	if (rv == 0) {
		if (p->socket_path != NULL)
			fprintf(out, "%s server at socket %s:\n    %s\n",
			    p->lmtp ? "LMTP" : "SMTP", p->socket_path,
			    s->greeting);
		else {
			via[0] = '\0';
			if (p->proxy_host != NULL)
				snprintf(via, sizeof(via), ", through the "
				    "SOCKS5 proxy %s:%d", p->proxy_host,
				    p->proxy_port);
			fprintf(out, "%s server at %s, port %d%s:\n    %s\n",
			    p->lmtp ? "LMTP" : "SMTP", p->host, p->port, via,
			    s->greeting);
		}
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
