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
/* After a lone dot with no -i: how long to wait for more input. */
#define DOT_WAIT_MS	1000

/* Spool writer and header state while reading. */
struct spooler {
	const struct msg_opts	*o;
	struct msg		*m;
	char			 out[IOBUF];
	size_t			 outlen;
	char			 line[MAXLINE + 1];
	size_t			 linelen;
	int			 lineno;
	int			 in_body;
	int			 first;
	struct buf		 field;		/* current header field */
	size_t			 hdrbytes;
	int			 has_from, has_date, has_msgid, has_to;
	int			 resent;	/* saw Resent-To/Cc/Bcc */
	struct addrlist		 plain, resent_rcpts;
	char			*resent_from;
};

static int
spool_flush(struct spooler *s, struct err *e)
{
	if (s->outlen == 0)
		return 0;
	if (write_all(s->m->fd, s->out, s->outlen) == -1)
		return err_sys(e, ERR_TEMP, "cannot write the spool file");
	s->m->size += (off_t)s->outlen;
	s->outlen = 0;
	return 0;
}

static int
spool_put(struct spooler *s, const char *p, size_t len, struct err *e)
{
	size_t	n;

	while (len > 0) {
		if (s->outlen == sizeof(s->out) && spool_flush(s, e) == -1)
			return -1;
		n = sizeof(s->out) - s->outlen;
		if (n > len)
			n = len;
		memcpy(s->out + s->outlen, p, n);
		s->outlen += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int
spool_line(struct spooler *s, const char *p, size_t len, struct err *e)
{
	if (spool_put(s, p, len, e) == -1)
		return -1;
	return spool_put(s, "\r\n", 2, e);
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
		if (s->o->undisclosed)
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
	return spool_put(s, "\r\n", 2, e);
}

static int
header_line(struct spooler *s, const char *p, size_t len, struct err *e)
{
	if (len == 0)
		return end_headers(s, e);
	if ((p[0] == ' ' || p[0] == '\t') && s->field.len > 0) {
		buf_add(&s->field, p, len);
		buf_add(&s->field, "\r\n", 2);
	} else if (field_name_len(p, len) > 0) {
		if (field_done(s, e) == -1)
			return -1;
		buf_add(&s->field, p, len);
		buf_add(&s->field, "\r\n", 2);
	} else {
		/* Not a header: the body starts here, without a blank line. */
		if (end_headers(s, e) == -1)
			return -1;
		return spool_line(s, p, len, e);
	}
	s->hdrbytes += len + 2;
	if (s->hdrbytes > MAXHEADER)
		return err_set(e, ERR_DATA, "the header section is larger "
		    "than %d MB", MAXHEADER >> 20);
	return 0;
}

/* One complete input line, without its line end. */
static int
input_line(struct spooler *s, struct err *e)
{
	const char	*p = s->line;
	size_t		 len = s->linelen, i;

	s->lineno++;
	s->linelen = 0;
	if (s->first) {
		s->first = 0;
		/* An mbox "From " line is not part of the message. */
		if (len >= 5 && memcmp(p, "From ", 5) == 0)
			return 0;
	}
	if (memchr(p, '\0', len) != NULL)
		return err_set(e, ERR_DATA, "line %d of the message holds a "
		    "NUL byte", s->lineno);
	if (!s->in_body)
		return header_line(s, p, len, e);
	for (i = 0; i < len && !s->m->eightbit; i++)
		if ((unsigned char)p[i] >= 0x80)
			s->m->eightbit = 1;
	return spool_line(s, p, len, e);
}

static int
add_bytes(struct spooler *s, const char *p, size_t n, struct err *e)
{
	if (n > MAXLINE - s->linelen)
		return err_set(e, ERR_DATA, "line %d of the message is longer "
		    "than %d bytes (RFC 5322); encode it, e.g. as "
		    "quoted-printable", s->lineno + 1, MAXLINE);
	memcpy(s->line + s->linelen, p, n);
	s->linelen += n;
	return 0;
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
	return s->o->dot_ends && s->linelen == 1 && s->line[0] == '.';
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
		}
	}
	if (dot || lone_dot(s))
		return 0;	/* the last line is a lone dot: the end mark */
	if (s->linelen > 0 && input_line(s, e) == -1)
		return -1;
	return 0;
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
	s->first = 1;
	rv = read_input(fd, s, e);
	if (rv == 0 && !s->in_body && (field_done(s, e) == -1 ||
	    add_headers(s, e) == -1))
		rv = -1;
	if (rv == 0)
		rv = spool_flush(s, e);
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
