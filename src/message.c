#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "message.h"
#include "util.h"

#define MAXLINE		998		/* RFC 5322 2.1.1 */
#define MAXHEADER	(16 * 1024 * 1024)
#define IOBUF		65536
#define QP_LINE		76		/* RFC 2045 6.7 (5) */
/* After a lone dot with no -i: how long to wait for more input. */
#define DOT_WAIT_MS	1000

/* A buffered writer to a file; total counts the bytes flushed. */
struct obuf {
	int	 fd;
	size_t	 len;
	off_t	 total;
	char	 b[IOBUF];
};

/*
 * What the line being read is, once it has outgrown the line buffer: the
 * part read so far has gone out already, and the rest follows it.
 */
enum partial {
	P_NONE,
	P_SKIP,		/* an mbox "From " line */
	P_HEADER,	/* into the header field (folded when it is done) */
	P_FOLD,		/* into the spool, CRLF SPACE after each full buffer */
	P_QP		/* into the raw body, quoted-printable at the end */
};

/* Spool writer and header state while reading. */
struct spooler {
	const struct msg_opts	*o;
	struct msg		*m;
	struct obuf		 sp;		/* the spool */
	struct obuf		*raw;		/* the body to re-encode, or NULL */
	char			 line[MAXLINE + 1];
	size_t			 linelen;
	enum partial		 partial;
	int			 lineno;
	int			 in_body;
	int			 first;
	struct buf		 field;		/* current header field */
	int			 field_long;	/* it has a line over MAXLINE */
	int			 field_line;	/* the line it starts on */
	size_t			 hdrbytes;
	int			 has_from, has_date, has_msgid, has_to;
	int			 resent;	/* saw Resent-To/Cc/Bcc */
	/* The MIME fields, to choose between re-encoding and folding. */
	int			 has_mimever, n_ctype, n_cte;
	int			 ctype_text;	/* Content-Type: text/... */
	int			 cte_plain;	/* no CTE, or 7bit or 8bit */
	off_t			 cte_off;	/* the CTE field in the spool */
	size_t			 cte_len;
	off_t			 body_off;	/* where the body starts */
	struct addrlist		 plain, resent_rcpts;
	char			*resent_from;
};

static int
obuf_flush(struct obuf *o, struct err *e)
{
	if (o->len == 0)
		return 0;
	if (write_all(o->fd, o->b, o->len) == -1)
		return err_sys(e, ERR_TEMP, "cannot write the spool file");
	o->total += (off_t)o->len;
	o->len = 0;
	return 0;
}

static int
obuf_put(struct obuf *o, const char *p, size_t len, struct err *e)
{
	size_t	n;

	while (len > 0) {
		if (o->len == sizeof(o->b) && obuf_flush(o, e) == -1)
			return -1;
		n = sizeof(o->b) - o->len;
		if (n > len)
			n = len;
		memcpy(o->b + o->len, p, n);
		o->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int
spool_put(struct spooler *s, const char *p, size_t len, struct err *e)
{
	return obuf_put(&s->sp, p, len, e);
}

/* Where the next byte put into the spool will be. */
static off_t
spool_pos(const struct spooler *s)
{
	return s->sp.total + (off_t)s->sp.len;
}

/* A body line: into the spool, or into the raw body once re-encoding. */
static int
body_put(struct spooler *s, const char *p, size_t len, struct err *e)
{
	return obuf_put(s->raw ? s->raw : &s->sp, p, len, e);
}

static int
spool_line(struct spooler *s, const char *p, size_t len, struct err *e)
{
	if (body_put(s, p, len, e) == -1)
		return -1;
	return body_put(s, "\r\n", 2, e);
}

/* Length of the field name when line starts a header field, else 0. */
static size_t
field_name_len(const char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == ':')
			return i;
		if (c <= 32 || c >= 127)
			return 0;
	}
	return 0;
}

static int
name_is(const char *field, const char *name)
{
	size_t	n = strlen(name);

	return strncasecmp(field, name, n) == 0 && field[n] == ':';
}

/* The value of a field, unfolded (CRLF before white space removed). */
static char *
field_value(const struct buf *f)
{
	const char	*v = strchr(f->p, ':') + 1;
	char		*out = xmalloc(strlen(v) + 1), *o = out;

	for (; *v; v++)
		if (*v != '\r' && *v != '\n')
			*o++ = *v;
	*o = '\0';
	return out;
}

static int
collect(struct spooler *s, struct addrlist *l, struct err *e)
{
	char	*v = field_value(&s->field);
	int	 rv = addr_parse_list(l, v, e);

	free(v);
	if (rv == -1) {
		e->cls = ERR_DATA;
		err_prefix(e, "header %.*s", (int)strcspn(s->field.p, ":"),
		    s->field.p);
	}
	return rv;
}

static int
first_addr(struct spooler *s, char **out, struct err *e)
{
	struct addrlist	l = { 0 };
	int		rv;

	if ((rv = collect(s, &l, e)) == 0 && l.n > 0 && *out == NULL)
		*out = xstrdup(l.v[0]);
	addrlist_free(&l);
	return rv;
}

/* The value's first word, without white space and comments. */
static void
field_word(const struct buf *f, char *out, size_t cap)
{
	char	*v = field_value(f), *p = v;
	size_t	 n = 0;
	int	 depth = 0;

	for (; *p && n + 1 < cap; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (depth == 0 && (*p == ';' || (n > 0 &&
		    isspace((unsigned char)*p))))
			break;
		else if (depth == 0 && !isspace((unsigned char)*p))
			out[n++] = *p;
	}
	out[n] = '\0';
	free(v);
}

static void
mime_field(struct spooler *s)
{
	char	w[64];

	field_word(&s->field, w, sizeof(w));
	if (name_is(s->field.p, "MIME-Version")) {
		s->has_mimever = 1;
	} else if (name_is(s->field.p, "Content-Type")) {
		s->n_ctype++;
		s->ctype_text = strncasecmp(w, "text/", 5) == 0;
	} else {
		s->n_cte++;
		s->cte_plain = strcasecmp(w, "7bit") == 0 ||
		    strcasecmp(w, "8bit") == 0;
		s->cte_off = spool_pos(s);
		s->cte_len = s->field.len;
	}
}

/*
 * Fold each line of the field that is over MAXLINE: before the last
 * white space that leaves it within MAXLINE, else (a run of more than
 * MAXLINE bytes without white space) with CRLF SPACE, as Postfix does.
 */
static void
fold_field(struct buf *f)
{
	struct buf	 out = { 0 };
	const char	*p = f->p, *end = f->p + f->len, *eol;
	size_t		 len, cut, room;

	while (p < end) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		len = (size_t)(eol - p);
		room = MAXLINE;
		while (len > room) {
			for (cut = room; cut > 1; cut--)
				if (p[cut] == ' ' || p[cut] == '\t')
					break;
			if (cut > 1) {
				buf_add(&out, p, cut);
				buf_add(&out, "\r\n", 2);
				room = MAXLINE;
			} else {
				cut = room;
				buf_add(&out, p, cut);
				buf_add(&out, "\r\n ", 3);
				room = MAXLINE - 1;
			}
			p += cut;
			len -= cut;
		}
		buf_add(&out, p, len + 2);
		p = eol + 2;
	}
	buf_free(f);
	*f = out;
}

static int
is_addr_field(const char *f)
{
	static const char *const names[] = { "From", "Sender", "Reply-To",
	    "To", "Cc", "Bcc", "Resent-From", "Resent-Sender", "Resent-To",
	    "Resent-Cc", "Resent-Bcc", NULL };
	size_t	i;

	for (i = 0; names[i] != NULL; i++)
		if (name_is(f, names[i]))
			return 1;
	return 0;
}

/*
 * Addresses without a domain ("root (Cron Daemon)") become full ones, as
 * an MTA qualifies them, so that a submission server takes the message.
 */
static void
qualify_field(struct spooler *s)
{
	char	*colon = strchr(s->field.p, ':'), *v;
	size_t	 n = (size_t)(colon + 1 - s->field.p), i, len = 0;

	if ((v = addr_qualify(colon + 1, s->o->qualify_domain)) == NULL)
		return;
	if (strlen(v) < 2 || strcmp(v + strlen(v) - 2, "\r\n") != 0) {
		free(v);	/* it cannot be: the field ends with CRLF */
		return;
	}
	s->field.len = n;
	buf_adds(&s->field, v);
	free(v);
	/* The domain may push a line past the limit: fold it then. */
	for (i = 0; i < s->field.len; i++, len++) {
		if (s->field.p[i] == '\n')
			len = (size_t)-1;
		else if (len > MAXLINE)
			s->field_long = 1;
	}
}

/* Decide what to do with the complete field in s->field. */
static int
field_done(struct spooler *s, struct err *e)
{
	const char	*f = s->field.p;
	int		 drop = 0, rv = 0;

	if (s->field.len == 0)
		return 0;
	if (name_is(f, "Bcc") || name_is(f, "Resent-Bcc"))
		drop = s->o->remove_bcc;
	if (name_is(f, "To") || name_is(f, "Cc") || name_is(f, "Bcc")) {
		s->has_to = 1;
		if (s->o->undisclosed || s->o->set_to)
			drop = 1;
		if (s->o->read_rcpts)
			rv = collect(s, &s->plain, e);
	} else if (name_is(f, "Resent-To") || name_is(f, "Resent-Cc") ||
	    name_is(f, "Resent-Bcc")) {
		s->resent = 1;
		if (s->o->read_rcpts)
			rv = collect(s, &s->resent_rcpts, e);
	} else if (name_is(f, "From")) {
		s->has_from = 1;
		if (s->o->set_from == HDR_ON)
			drop = 1;
		rv = first_addr(s, &s->m->from_addr, e);
		/* An unparsable From is the author's business, not ours. */
		rv = 0;
	} else if (name_is(f, "Resent-From")) {
		first_addr(s, &s->resent_from, e);
	} else if (name_is(f, "Date")) {
		s->has_date = 1;
		if (s->o->set_date == HDR_ON)
			drop = 1;
	} else if (name_is(f, "Message-ID")) {
		char *v = field_value(&s->field), *p = v;

		s->has_msgid = 1;
		while (isspace((unsigned char)*p))
			p++;
		free(s->m->msgid);
		s->m->msgid = xstrdup(p);
		free(v);
	}
	if (!drop && s->o->qualify_domain != NULL && is_addr_field(f))
		qualify_field(s);
	if (s->field_long) {
		fold_field(&s->field);
		s->field_long = 0;
		if (s->m->hdr_fold_line == 0)
			s->m->hdr_fold_line = s->field_line;
	}
	f = s->field.p;
	if (name_is(f, "MIME-Version") || name_is(f, "Content-Type") ||
	    name_is(f, "Content-Transfer-Encoding"))
		mime_field(s);
	if (rv == 0 && !drop)
		rv = spool_put(s, s->field.p, s->field.len, e);
	buf_reset(&s->field);
	return rv;
}

/* RFC 5322 date of now, for the Date field. */
void
msg_date(char *buf, size_t len)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t		now = time(NULL);
	struct tm	tm;
	long		off;

	localtime_r(&now, &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(buf, len, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

char *
msg_make_msgid(const char *domain)
{
	unsigned char	rnd[12];
	char		hex[sizeof(rnd) * 2 + 1];
	size_t		i;
	time_t		now = time(NULL);
	struct tm	tm;
	char		ts[32];

	gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%d%H%M%S", &tm);
	return xasprintf("<%s.%s@%s>", ts, hex, domain);
}

/* set_to_header on: one To with every recipient, one to a line. */
static void
to_header(const struct spooler *s, struct buf *h)
{
	const struct addrlist	*hdr = s->resent ? &s->resent_rcpts : &s->plain;
	struct addrlist		 all = { 0 };
	size_t			 i;

	for (i = 0; s->o->cmd_rcpts != NULL && i < s->o->cmd_rcpts->n; i++)
		addrlist_add(&all, s->o->cmd_rcpts->v[i]);
	for (i = 0; s->o->read_rcpts && i < hdr->n; i++)
		if (!addrlist_has(&all, hdr->v[i]))
			addrlist_add(&all, hdr->v[i]);
	for (i = 0; i < all.n; i++)
		buf_addf(h, "%s%s", i ? ",\r\n " : "To: ", all.v[i]);
	if (all.n > 0)
		buf_adds(h, "\r\n");
	addrlist_free(&all);
}

/* Add the headers outbox supplies, at the end of the header section. */
static int
add_headers(struct spooler *s, struct err *e)
{
	struct buf	h = { 0 };
	char		date[64];
	int		rv;

	if (s->o->from_hdr != NULL && (s->o->set_from == HDR_ON ||
	    (s->o->set_from == HDR_AUTO && !s->has_from)))
		buf_addf(&h, "From: %s\r\n", s->o->from_hdr);
	if (s->o->set_date == HDR_ON ||
	    (s->o->set_date == HDR_AUTO && !s->has_date)) {
		msg_date(date, sizeof(date));
		buf_addf(&h, "Date: %s\r\n", date);
	}
	if (s->o->set_msgid != HDR_OFF && !s->has_msgid) {
		free(s->m->msgid);
		s->m->msgid = msg_make_msgid(s->o->msgid_domain ?
		    s->o->msgid_domain : "localhost");
		buf_addf(&h, "Message-ID: %s\r\n", s->m->msgid);
	}
	if (s->o->undisclosed && s->has_to)
		buf_adds(&h, "To: undisclosed-recipients:;\r\n");
	else if (s->o->set_to)
		to_header(s, &h);
	rv = h.len ? spool_put(s, h.p, h.len, e) : 0;
	buf_free(&h);
	return rv;
}

/* The separator is always sent, even when the input had none. */
static int
end_headers(struct spooler *s, struct err *e)
{
	if (field_done(s, e) == -1 || add_headers(s, e) == -1)
		return -1;
	s->in_body = 1;
	if (spool_put(s, "\r\n", 2, e) == -1)
		return -1;
	s->body_off = spool_pos(s);
	return 0;
}

static int
header_bytes(struct spooler *s, size_t n, struct err *e)
{
	s->hdrbytes += n;
	if (s->hdrbytes > MAXHEADER)
		return err_set(e, ERR_DATA, "the header section is larger "
		    "than %d MB", MAXHEADER >> 20);
	return 0;
}

/*
 * Where a header line (or the start of a long one) goes: 1 into the
 * field being read (a continuation, or a new field once the one before
 * it is done), 0 nowhere: the body starts with it, without a blank line.
 */
static int
header_start(struct spooler *s, const char *p, size_t len, int lineno,
    struct err *e)
{
	if ((p[0] == ' ' || p[0] == '\t') && s->field.len > 0)
		return 1;
	if (field_name_len(p, len) == 0)
		return 0;
	if (field_done(s, e) == -1)
		return -1;
	s->field_line = lineno;
	return 1;
}

static void
scan_8bit(struct spooler *s, const char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len && !s->m->eightbit; i++)
		if ((unsigned char)p[i] >= 0x80)
			s->m->eightbit = 1;
}

static int
body_line(struct spooler *s, const char *p, size_t len, struct err *e)
{
	scan_8bit(s, p, len);
	return spool_line(s, p, len, e);
}

static int
header_line(struct spooler *s, const char *p, size_t len, struct err *e)
{
	int	rv;

	if (len == 0)
		return end_headers(s, e);
	if ((rv = header_start(s, p, len, s->lineno, e)) == -1)
		return -1;
	if (rv == 0)
		return end_headers(s, e) == -1 ? -1 : body_line(s, p, len, e);
	buf_add(&s->field, p, len);
	buf_add(&s->field, "\r\n", 2);
	return header_bytes(s, len + 2, e);
}

/*
 * Whether the body can be re-encoded as quoted-printable without
 * changing what it means: not MIME, or a single text part in 7bit or 8bit.
 */
static int
qp_fits(const struct spooler *s)
{
	if (s->n_ctype > 1 || s->n_cte > 1 || (s->n_cte == 1 && !s->cte_plain))
		return 0;
	return s->n_ctype == 0 || s->ctype_text;
}

/* Append bytes [from, to) of fd to o. */
static int
copy_range(int fd, off_t from, off_t to, struct obuf *o, struct err *e)
{
	char	 buf[IOBUF];
	ssize_t	 n;

	while (from < to) {
		n = pread(fd, buf, (size_t)(to - from) < sizeof(buf) ?
		    (size_t)(to - from) : sizeof(buf), from);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_sys(e, ERR_TEMP, "cannot read the spool file");
		if (obuf_put(o, buf, (size_t)n, e) == -1)
			return -1;
		from += n;
	}
	return 0;
}

/*
 * From the first long line on, the body goes to a second file, raw: the
 * body read so far moves there, and the spool keeps the header section,
 * without its separator, until the end of the input.
 */
static int
start_qp(struct spooler *s, struct err *e)
{
	struct obuf	*r;
	off_t		 hdr_end = s->body_off - 2;

	if (obuf_flush(&s->sp, e) == -1)
		return -1;
	r = xcalloc(1, sizeof(*r));
	if ((r->fd = msg_tmpfile(s->o->spool_dir, e)) == -1) {
		free(r);
		return -1;
	}
	s->raw = r;
	if (copy_range(s->m->fd, s->body_off, s->sp.total, r, e) == -1)
		return -1;
	if (ftruncate(s->m->fd, hdr_end) == -1 ||
	    lseek(s->m->fd, hdr_end, SEEK_SET) == -1)
		return err_sys(e, ERR_TEMP, "cannot write the spool file");
	s->sp.total = hdr_end;
	return 0;
}

/* A line over MAXLINE in the body: re-encode the body, or fold the line. */
static int
long_body_line(struct spooler *s, struct err *e)
{
	if (s->raw == NULL && qp_fits(s)) {
		if (start_qp(s, e) == -1)
			return -1;
		s->m->qp_line = s->lineno + 1;
	}
	if (s->raw != NULL) {
		s->partial = P_QP;
		return 0;
	}
	s->partial = P_FOLD;
	if (s->m->nfolded++ == 0)
		s->m->fold_line = s->lineno + 1;
	return 0;
}

static int
nul_byte(int lineno, struct err *e)
{
	return err_set(e, ERR_DATA, "line %d of the message holds a NUL byte",
	    lineno);
}

/* The line buffer is full and the line goes on: what is it? */
static int
long_line_start(struct spooler *s, struct err *e)
{
	int	rv;

	if (s->first) {
		s->first = 0;
		if (memcmp(s->line, "From ", 5) == 0) {
			s->partial = P_SKIP;
			return 0;
		}
	}
	if (!s->in_body) {
		rv = header_start(s, s->line, s->linelen, s->lineno + 1, e);
		if (rv == -1)
			return -1;
		if (rv == 1) {
			s->partial = P_HEADER;
			s->field_long = 1;
			return 0;
		}
		if (end_headers(s, e) == -1)
			return -1;
	}
	return long_body_line(s, e);
}

/* A piece of a long line; last: its end (the line end follows). */
static int
partial_put(struct spooler *s, const char *p, size_t len, int last,
    struct err *e)
{
	switch (s->partial) {
	case P_HEADER:
		buf_add(&s->field, p, len);
		if (last)
			buf_add(&s->field, "\r\n", 2);
		return header_bytes(s, len + (last ? 2 : 0), e);
	case P_QP:
		scan_8bit(s, p, len);
		if (body_put(s, p, len, e) == -1)
			return -1;
		return last ? body_put(s, "\r\n", 2, e) : 0;
	case P_FOLD:
		scan_8bit(s, p, len);
		if (spool_line(s, p, len, e) == -1)
			return -1;
		if (!last) {
			/* The rest goes on a continuation line, as Postfix. */
			s->line[0] = ' ';
			s->linelen = 1;
		}
		return 0;
	default:
		return 0;
	}
}

static int
long_chunk(struct spooler *s, struct err *e)
{
	size_t	len = s->linelen;

	if (memchr(s->line, '\0', len) != NULL)
		return nul_byte(s->lineno + 1, e);
	if (s->partial == P_NONE && long_line_start(s, e) == -1)
		return -1;
	s->linelen = 0;
	return partial_put(s, s->line, len, 0, e);
}

/* One complete input line, without its line end. */
static int
input_line(struct spooler *s, struct err *e)
{
	const char	*p = s->line;
	size_t		 len = s->linelen;
	int		 rv;

	s->lineno++;
	s->linelen = 0;
	if (memchr(p, '\0', len) != NULL)
		return nul_byte(s->lineno, e);
	if (s->partial != P_NONE) {
		rv = partial_put(s, p, len, 1, e);
		s->partial = P_NONE;
		return rv;
	}
	if (s->first) {
		s->first = 0;
		/* An mbox "From " line is not part of the message. */
		if (len >= 5 && memcmp(p, "From ", 5) == 0)
			return 0;
	}
	if (!s->in_body)
		return header_line(s, p, len, e);
	return body_line(s, p, len, e);
}

/* Bytes of the current line; a line over MAXLINE goes on in pieces. */
static int
add_bytes(struct spooler *s, const char *p, size_t n, struct err *e)
{
	size_t	k;

	for (;;) {
		k = MAXLINE - s->linelen;
		if (k > n)
			k = n;
		memcpy(s->line + s->linelen, p, k);
		s->linelen += k;
		p += k;
		n -= k;
		if (n == 0)
			return 0;
		if (long_chunk(s, e) == -1)
			return -1;
	}
}

/*
 * Whether more input follows a lone dot that ended the bytes read so far.
 * A terminal: no (the dot ends the message, as it always did).  Else wait
 * up to DOT_WAIT_MS for more bytes or the end of input, so that a caller
 * that writes "." and keeps its end of the pipe open is not waited for.
 * 1: a read may return more (or the end, 0 bytes), 0: end at the dot.
 */
static int
input_may_follow(int fd)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	int		n;

	if (isatty(fd))
		return 0;
	while ((n = poll(&pfd, 1, DOT_WAIT_MS)) == -1 && errno == EINTR)
		;
	return n == 1;
}

static int
lone_dot(const struct spooler *s)
{
	return s->o->dot_ends && s->partial == P_NONE && s->linelen == 1 &&
	    s->line[0] == '.';
}

/*
 * Split input into lines at CRLF, LF or a bare CR.  Without -i a line
 * "." ends the input only when nothing follows it: a dot inside the
 * input is content, as in msmtp, so nothing after it is lost.
 */
static int
read_input(int fd, struct spooler *s, struct err *e)
{
	char	 buf[IOBUF];
	ssize_t	 n, i, j;
	int	 cr = 0, dot = 0;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return err_sys(e, ERR_IO, "cannot read the message");
		if (n == 0)
			break;
		if (dot) {
			/* More came after the dot: it was content. */
			dot = 0;
			if (add_bytes(s, ".", 1, e) == -1 ||
			    input_line(s, e) == -1)
				return -1;
		}
		for (i = 0; i < n; i = j) {
			if (cr && buf[i] == '\n') {
				cr = 0;
				j = i + 1;
				continue;
			}
			cr = 0;
			/* The run up to the next line end goes in one copy. */
			for (j = i; j < n && buf[j] != '\r' && buf[j] != '\n'; j++)
				;
			if (add_bytes(s, buf + i, (size_t)(j - i), e) == -1)
				return -1;
			if (j == n)
				break;
			cr = buf[j++] == '\r';
			if (lone_dot(s) && cr && j + 1 == n && buf[j] == '\n') {
				cr = 0;
				j++;
			}
			if (lone_dot(s) && j == n) {
				/* The dot ends what was read: wait and see. */
				s->linelen = 0;
				if (!input_may_follow(fd))
					return 0;
				dot = 1;
				break;
			}
			if (input_line(s, e) == -1)
				return -1;
			if (s->o->headers_only && s->in_body)
				return 0;
		}
	}
	if (dot || lone_dot(s))
		return 0;	/* the last line is a lone dot: the end mark */
	if ((s->linelen > 0 || s->partial != P_NONE) && input_line(s, e) == -1)
		return -1;
	return 0;
}

/* Quoted-printable (RFC 2045 6.7), a byte at a time. */
struct qp {
	int	col;		/* on the output line */
	int	wsp;		/* a space or tab held back, or -1 */
};

static int
qp_token(struct spooler *s, struct qp *q, const char *t, int n,
    struct err *e)
{
	if (q->col + n > QP_LINE - 1) {
		if (spool_put(s, "=\r\n", 3, e) == -1)
			return -1;
		q->col = 0;
	}
	q->col += n;
	return spool_put(s, t, (size_t)n, e);
}

static int
qp_hex(struct spooler *s, struct qp *q, unsigned char c, struct err *e)
{
	static const char	hex[] = "0123456789ABCDEF";
	char			t[3] = { '=', hex[c >> 4], hex[c & 15] };

	return qp_token(s, q, t, 3, e);
}

/* The body holds CRLF line ends only: CR is dropped, LF ends a line. */
static int
qp_byte(struct spooler *s, struct qp *q, unsigned char c, struct err *e)
{
	char	lit = (char)c;
	int	w = q->wsp;

	if (c == '\r')
		return 0;
	q->wsp = -1;
	if (c == '\n') {
		/* White space at a line end would be lost: encode it. */
		if (w != -1 && qp_hex(s, q, (unsigned char)w, e) == -1)
			return -1;
		q->col = 0;
		return spool_put(s, "\r\n", 2, e);
	}
	if (w != -1) {
		lit = (char)w;
		if (qp_token(s, q, &lit, 1, e) == -1)
			return -1;
		lit = (char)c;
	}
	if (c == ' ' || c == '\t') {
		q->wsp = c;
		return 0;
	}
	if (c == '=' || c < 32 || c > 126)
		return qp_hex(s, q, c, e);
	return qp_token(s, q, &lit, 1, e);
}

/* Move bytes [off + len, end) of fd to off. */
static int
cut_range(int fd, off_t off, size_t len, off_t end, struct err *e)
{
	char	 buf[IOBUF];
	off_t	 from = off + (off_t)len;
	ssize_t	 n;

	while (from < end) {
		n = pread(fd, buf, (size_t)(end - from) < sizeof(buf) ?
		    (size_t)(end - from) : sizeof(buf), from);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0 || pwrite(fd, buf, (size_t)n, off) != n)
			return err_sys(e, ERR_TEMP, "cannot write the spool file");
		from += n;
		off += n;
	}
	return 0;
}

/*
 * The end of a re-encoded message: the header section without its
 * Content-Transfer-Encoding, the MIME fields it lacks, and the raw body
 * as quoted-printable.
 */
static int
finish_qp(struct spooler *s, struct err *e)
{
	struct obuf	*r = s->raw;
	struct qp	 q = { 0, -1 };
	struct buf	 h = { 0 };
	char		 buf[IOBUF];
	off_t		 off = 0;
	ssize_t		 n, i;
	int		 fd = s->m->fd, rv;

	if (obuf_flush(r, e) == -1)
		return -1;
	if (s->n_cte == 1) {
		if (cut_range(fd, s->cte_off, s->cte_len, s->sp.total, e) == -1)
			return -1;
		s->sp.total -= (off_t)s->cte_len;
		if (ftruncate(fd, s->sp.total) == -1 ||
		    lseek(fd, s->sp.total, SEEK_SET) == -1)
			return err_sys(e, ERR_TEMP, "cannot write the spool "
			    "file");
	}
	if (!s->has_mimever)
		buf_adds(&h, "MIME-Version: 1.0\r\n");
	if (s->n_ctype == 0)
		buf_addf(&h, "Content-Type: text/plain; charset=%s\r\n",
		    s->m->eightbit ? "utf-8" : "us-ascii");
	buf_adds(&h, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	rv = spool_put(s, h.p, h.len, e);
	buf_free(&h);
	while (rv == 0 && off < r->total) {
		n = pread(r->fd, buf, sizeof(buf), off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_sys(e, ERR_TEMP, "cannot read the spool file");
		for (i = 0; i < n && rv == 0; i++)
			rv = qp_byte(s, &q, (unsigned char)buf[i], e);
		off += n;
	}
	if (rv == 0 && q.wsp != -1)
		rv = qp_hex(s, &q, (unsigned char)q.wsp, e);
	s->m->eightbit = 0;
	return rv;
}

int
msg_tmpfile(const char *dir, struct err *e)
{
	char	*path;
	int	 fd;

	if (dir == NULL && ((dir = getenv("TMPDIR")) == NULL || *dir == '\0'))
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd != -1)
		return fd;
	path = xasprintf("%s/outbox.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd != -1)
		unlink(path);
	free(path);
	if (fd == -1)
		return err_sys(e, ERR_TEMP, "cannot create a spool file in %s",
		    dir);
	return fd;
}

int
msg_spool(int fd, const struct msg_opts *o, struct msg *m, struct err *e)
{
	struct spooler	*s;
	int		 rv;

	memset(m, 0, sizeof(*m));
	/* fd 0 is the caller's stdin, never a spool: a zeroed opts is safe. */
	if (o->spool_fd > 0)
		m->fd = fcntl(o->spool_fd, F_DUPFD_CLOEXEC, 0);
	else
		m->fd = msg_tmpfile(o->spool_dir, e);
	if (m->fd == -1)
		return o->spool_fd > 0 ? err_sys(e, ERR_OS, "dup") : -1;
	s = xcalloc(1, sizeof(*s));
	s->o = o;
	s->m = m;
	s->sp.fd = m->fd;
	s->first = 1;
	rv = read_input(fd, s, e);
	if (rv == 0 && !s->in_body && (field_done(s, e) == -1 ||
	    add_headers(s, e) == -1))
		rv = -1;
	if (rv == 0 && s->raw != NULL)
		rv = finish_qp(s, e);
	if (rv == 0)
		rv = obuf_flush(&s->sp, e);
	m->size = s->sp.total;
	if (rv == 0 && o->read_rcpts) {
		struct addrlist *src = s->resent ? &s->resent_rcpts : &s->plain;
		size_t i;

		for (i = 0; i < src->n; i++)
			if (!addrlist_has(&m->rcpts, src->v[i]))
				addrlist_add(&m->rcpts, src->v[i]);
	}
	if (s->resent_from != NULL) {
		free(m->from_addr);
		m->from_addr = s->resent_from;
		s->resent_from = NULL;
	}
	m->nlines = s->lineno;
	addrlist_free(&s->plain);
	addrlist_free(&s->resent_rcpts);
	free(s->resent_from);
	buf_free(&s->field);
	if (s->raw != NULL) {
		close(s->raw->fd);
		free(s->raw);
	}
	free(s);
	return rv;
}

static int
rewind_spool(struct msg *m, struct err *e)
{
	if (lseek(m->fd, 0, SEEK_SET) == -1)
		return err_sys(e, ERR_IO, "spool file");
	return 0;
}

int
msg_write_raw(struct msg *m, msg_writer w, void *ctx, struct err *e)
{
	char	 buf[IOBUF];
	ssize_t	 n;

	if (rewind_spool(m, e) == -1)
		return -1;
	while ((n = read(m->fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return err_sys(e, ERR_IO, "cannot read the spool file");
		if (w(ctx, buf, (size_t)n, e) == -1)
			return -1;
	}
	return 0;
}

int
msg_write_dotted(struct msg *m, msg_writer w, void *ctx, struct err *e)
{
	char	 buf[IOBUF];
	ssize_t	 n, i, start;
	int	 bol = 1;

	if (rewind_spool(m, e) == -1)
		return -1;
	while ((n = read(m->fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return err_sys(e, ERR_IO, "cannot read the spool file");
		for (i = start = 0; i < n; i++) {
			if (bol && buf[i] == '.') {
				if (w(ctx, buf + start, (size_t)(i - start), e)
				    == -1 || w(ctx, ".", 1, e) == -1)
					return -1;
				start = i;
			}
			bol = buf[i] == '\n';
		}
		if (w(ctx, buf + start, (size_t)(n - start), e) == -1)
			return -1;
	}
	return w(ctx, ".\r\n", 3, e);
}

void
msg_free(struct msg *m)
{
	if (m->fd > 0)
		close(m->fd);
	m->fd = -1;
	free(m->msgid);
	free(m->from_addr);
	addrlist_free(&m->rcpts);
}

/* The most of a spooled header that msg_subject reads. */
#define SUBJECT_SCAN	(64 * 1024)

int
msg_subject(int fd, char *out, size_t len)
{
	char		*buf = xmalloc(SUBJECT_SCAN + 1), *p, *end, *eol;
	struct buf	 v = { 0 };
	ssize_t		 n = pread(fd, buf, SUBJECT_SCAN, 0);
	int		 found = 0;

	out[0] = '\0';
	if (n <= 0) {
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	end = buf + n;
	for (p = buf; p < end && *p != '\r' && *p != '\n'; p = eol) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		else
			eol++;
		if (found && (*p == ' ' || *p == '\t'))
			buf_add(&v, p, (size_t)(eol - p));
		else if (found)
			break;
		else if (strncasecmp(p, "Subject:", 8) == 0) {
			found = 1;
			buf_add(&v, p + 8, (size_t)(eol - p - 8));
		}
	}
	if (found) {
		char	*q = v.p, *w = v.p;

		/* Unfold: line ends and runs of white space become one space. */
		for (; q < v.p + v.len; q++) {
			int ws = *q == ' ' || *q == '\t' || *q == '\r' ||
			    *q == '\n';

			if (ws && (w == v.p || w[-1] == ' '))
				continue;
			*w++ = ws ? ' ' : *q;
		}
		while (w > v.p && w[-1] == ' ')
			w--;
		sanitize(out, len, v.p, (size_t)(w - v.p));
	}
	buf_free(&v);
	free(buf);
	return found ? 0 : -1;
}

const char *
msg_reshaped(const struct msg *m, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s",
	    m->qp_line ? "quoted-printable" : m->fold_line ? "folded" : "",
	    (m->qp_line || m->fold_line) && m->hdr_fold_line ? "+" : "",
	    m->hdr_fold_line ? "header-folded" : "");
	return buf[0] ? buf : NULL;
}

const char *
msg_reshaped_text(const struct msg *m, char *buf, size_t len)
{
	int	n = 0;

	buf[0] = '\0';
	if (m->hdr_fold_line)
		n = snprintf(buf, len, "header line %d is longer than %d "
		    "bytes: folded at white space", m->hdr_fold_line, MAXLINE);
	if (n < 0 || (size_t)n >= len)
		return buf;
	if (m->qp_line)
		snprintf(buf + n, len - (size_t)n, "%sline %d is longer than "
		    "%d bytes: the body is sent as quoted-printable",
		    n ? "; " : "", m->qp_line, MAXLINE);
	else if (m->fold_line)
		snprintf(buf + n, len - (size_t)n, "%sline %d%s is longer "
		    "than %d bytes and the message is MIME: folded, as "
		    "Postfix does (CRLF and a space after each %d bytes)",
		    n ? "; " : "", m->fold_line, m->nfolded > 1 ?
		    " and others" : "", MAXLINE, MAXLINE);
	return buf[0] ? buf : NULL;
}
