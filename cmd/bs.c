#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "front.h"
#include "../src/addr.h"
#include "../src/message.h"
#include "../src/util.h"

/*
 * sendmail -bs: the caller speaks SMTP on our standard input and output,
 * as Alpine and Symfony do.  Each message is relayed through the account
 * when its data is complete, and the reply to the data says how that
 * went.  No TLS and no AUTH here: the caller is a local program.
 */
#define BS_LINE_MAX	1000	/* RFC 5321 4.5.3.1.4 */
#define BS_RCPTS_MAX	1000

struct bs {
	struct run	*r;
	char		 in[8192];
	size_t		 len, pos;
	int		 eof;
	int		 greeted;
	char		*from;		/* NULL: no MAIL yet */
	char		**rcpts;
	int		 nrcpts;
};

static void
reply(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
	fflush(stdout);
}

/*
 * The start of a data line too long for the buffer, written to fd as it
 * comes, its dot-stuffing undone; the message reader makes it fit.
 */
static int
spill_part(int fd, const char *p, size_t n, int first)
{
	if (first && n > 0 && p[0] == '.') {
		p++;
		n--;
	}
	return write_all(fd, p, n);
}

/*
 * One line without its line end; 0 at EOF, -1 when too long (skipped).
 * With spill >= 0 (the data), a long line is not skipped: its start goes
 * to spill and 2 is returned, with the rest in line; -2 when spill cannot
 * be written.  *crlf says whether it ended in CR LF rather than a bare LF.
 */
static int
bs_getline(struct bs *b, char *line, size_t cap, size_t *outlen, int *crlf,
    int spill)
{
	size_t	n = 0;
	int	toolong = 0, spilled = 0;
	char	last = '\0';
	ssize_t	got;

	for (;;) {
		while (b->pos < b->len) {
			char c = b->in[b->pos++];

			if (c == '\n') {
				*crlf = last == '\r';
				if (*crlf && n > 0 && line[n - 1] == '\r')
					n--;
				line[n] = '\0';
				*outlen = n;
				return spilled ? 2 : toolong ? -1 : 1;
			}
			last = c;
			if (n + 1 < cap) {
				line[n++] = c;
			} else if (spill >= 0) {
				/* A CR spilled before its LF still ends the line. */
				if (spill_part(spill, line, n, !spilled) == -1)
					return -2;
				spilled = 1;
				n = 0;
				line[n++] = c;
			} else
				toolong = 1;
		}
		if (b->eof)
			return 0;
		do {
			got = read(STDIN_FILENO, b->in, sizeof(b->in));
		} while (got == -1 && errno == EINTR);
		if (got <= 0) {
			b->eof = 1;
			if (n == 0)
				return 0;
			continue;
		}
		b->len = (size_t)got;
		b->pos = 0;
	}
}

static void
reset(struct bs *b)
{
	int	i;

	free(b->from);
	b->from = NULL;
	for (i = 0; i < b->nrcpts; i++)
		free(b->rcpts[i]);
	free(b->rcpts);
	b->rcpts = NULL;
	b->nrcpts = 0;
}

/*
 * The data, unstuffed, into a file for the spooler; 1 on a clean end.
 * Only CR LF . CR LF ends it: a bare LF (or CR) ends a line of the copy
 * that is relayed, never the data, so that what a careless caller pipes
 * in cannot start a second transaction (SMTP smuggling).
 */
static int
read_data(struct bs *b, int fd)
{
	char	line[BS_LINE_MAX + 2];
	size_t	len;
	int	rv, crlf, prevcrlf = 1, dot;

	for (;;) {
		rv = bs_getline(b, line, sizeof(line), &len, &crlf, fd);
		if (rv == 0)
			return 0;		/* EOF inside the data */
		if (rv == -2)
			return -2;
		dot = prevcrlf && crlf;
		prevcrlf = crlf;
		if (rv == 2) {
			/* The rest of a long line: its start is written. */
			if (write_all(fd, line, len) == -1 ||
			    write_all(fd, "\n", 1) == -1)
				return -2;
			continue;
		}
		if (len == 1 && line[0] == '.' && dot)
			return 1;
		if (line[0] == '.' && len > 1 &&
		    write_all(fd, line + 1, len - 1) == -1)
			return -2;
		if ((line[0] != '.' || len == 1) &&
		    write_all(fd, line, len) == -1)
			return -2;
		if (write_all(fd, "\n", 1) == -1)
			return -2;
	}
}

/*
 * The reply to the data, by the class of what sending it came to: the
 * caller may try again later after a 4xx; a 5xx is final.
 */
static const struct {
	enum err_class	 cls;
	const char	*code;
} data_replies[] = {
	{ ERR_DATA,	"554 5.6.0" },
	{ ERR_ADDR,	"550 5.1.1" },
	{ ERR_PERM,	"554 5.0.0" },
	{ ERR_AUTH,	"454 4.7.0" },
};

static void
data_reply(int rv, const struct sendreq *req, const struct err *e)
{
	const char	*code = "451 4.3.0";	/* temporary, or local trouble */
	char		 msg[400];
	size_t		 i;

	if (rv == 0 && req->queued_id[0]) {
		reply("250 2.0.0 Ok: queued as %s", req->queued_id);
		return;
	}
	if (rv == 0 && e->cls == ERR_NONE) {
		reply("250 2.0.0 Ok: sent");
		return;
	}
	for (i = 0; i < sizeof(data_replies) / sizeof(data_replies[0]); i++)
		if (data_replies[i].cls == e->cls)
			code = data_replies[i].code;
	/* Refused recipients were told on stderr; the worst goes here. */
	sanitize(msg, sizeof(msg), *e->msg ? e->msg : req->refusal,
	    strlen(*e->msg ? e->msg : req->refusal));
	reply("%s %s", code, *msg ? msg : "some recipients were refused");
}

static void
do_data(struct bs *b)
{
	struct sendreq	req;
	struct err	e = { ERR_NONE, "" };
	int		fd, rv;

	if (b->from == NULL || b->nrcpts == 0) {
		reply("503 5.5.1 need MAIL and RCPT first");
		return;
	}
	if ((fd = msg_tmpfile(NULL, &e)) == -1) {
		reply("451 4.3.0 cannot create a temporary file");
		return;
	}
	reply("354 End data with <CR><LF>.<CR><LF>");
	rv = read_data(b, fd);
	if (rv == 0) {
		close(fd);
		reset(b);
		return;	/* the caller went away: nothing is sent */
	}
	if (rv < 0) {
		close(fd);
		reply("451 4.3.0 cannot write a temporary file");
		reset(b);
		return;
	}
	lseek(fd, 0, SEEK_SET);
	memset(&req, 0, sizeof(req));
	req.in = fd;
	req.from = b->from;
	req.rcpts = b->rcpts;
	req.nrcpts = b->nrcpts;
	req.envid = b->r->o->envid;
	req.fullname = b->r->o->fullname;
	req.body = b->r->o->body;
	req.smtputf8 = b->r->o->smtputf8;
	req.label = b->r->o->label;
	rv = send_message(b->r, &req, &e);
	close(fd);
	data_reply(rv, &req, &e);
	reset(b);
}

static void
do_mail(struct bs *b, const char *arg)
{
	if (b->from != NULL) {
		reply("503 5.5.1 MAIL already given");
		return;
	}
	if ((b->from = addr_path(arg, "FROM:")) == NULL) {
		reply("501 5.5.4 syntax: MAIL FROM:<address>");
		return;
	}
	reply("250 2.1.0 Ok");
}

static void
do_rcpt(struct bs *b, const char *arg)
{
	char	*a;

	if (b->from == NULL) {
		reply("503 5.5.1 need MAIL first");
		return;
	}
	if (b->nrcpts >= BS_RCPTS_MAX) {
		reply("452 4.5.3 too many recipients");
		return;
	}
	if ((a = addr_path(arg, "TO:")) == NULL || *a == '\0') {
		free(a);
		reply("501 5.5.4 syntax: RCPT TO:<address>");
		return;
	}
	b->rcpts = xrealloc(b->rcpts, (size_t)(b->nrcpts + 1) * sizeof(char *));
	b->rcpts[b->nrcpts++] = a;
	reply("250 2.1.5 Ok");
}

static void
do_ehlo(struct bs *b, int ehlo)
{
	reset(b);
	b->greeted = 1;
	if (!ehlo) {
		reply("250 %s", b->r->helo);
		return;
	}
	reply("250-%s", b->r->helo);
	reply("250-PIPELINING");
	reply("250-8BITMIME");
	reply("250 ENHANCEDSTATUSCODES");
}

/* Returns 0 after QUIT. */
static int
command(struct bs *b, char *line)
{
	char	*arg = line + strcspn(line, " ");

	if (*arg == ' ')
		*arg++ = '\0';
	if (strcasecmp(line, "EHLO") == 0 || strcasecmp(line, "HELO") == 0)
		do_ehlo(b, strcasecmp(line, "EHLO") == 0);
	else if (strcasecmp(line, "MAIL") == 0)
		do_mail(b, arg);
	else if (strcasecmp(line, "RCPT") == 0)
		do_rcpt(b, arg);
	else if (strcasecmp(line, "DATA") == 0)
		do_data(b);
	else if (strcasecmp(line, "RSET") == 0) {
		reset(b);
		reply("250 2.0.0 Ok");
	} else if (strcasecmp(line, "NOOP") == 0)
		reply("250 2.0.0 Ok");
	else if (strcasecmp(line, "VRFY") == 0)
		reply("252 2.1.5 cannot verify, but will try");
	else if (strcasecmp(line, "QUIT") == 0) {
		reply("221 2.0.0 Bye");
		return 0;
	} else
		reply("502 5.5.2 command not implemented");
	return 1;
}

int
mode_smtp(struct run *r, struct err *e)
{
	struct bs	b;
	char		line[BS_LINE_MAX + 2];
	size_t		len;
	int		rv, crlf;

	memset(&b, 0, sizeof(b));
	b.r = r;
	if (front_account(r, e) == -1) {
		reply("421 4.3.0 outbox: %s", e->msg);
		return -1;
	}
	reply("220 %s ESMTP outbox", r->helo);
	while ((rv = bs_getline(&b, line, sizeof(line), &len, &crlf, -1)) !=
	    0) {
		if (rv == -1) {
			reply("500 5.5.2 line too long");
			continue;
		}
		if (!command(&b, line))
			break;
	}
	reset(&b);
	return 0;
}
