#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dsn.h"
#include "message.h"
#include "util.h"

/* Is the recipient in this notice? */
static int
listed(const struct rcpt *r, enum dsn_kind kind)
{
	return kind == DSN_FAILED ? r->fresh : rcpt_todo(r);
}

/* A reply's own enhanced status code (RFC 3463) at the start of text. */
static int
enhanced(const char *t, char *out, size_t len)
{
	size_t	n = 0;
	int	part;

	if ((t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.')
		return 0;
	for (part = 0, n = 2; part < 2; part++) {
		size_t start = n;

		while (isdigit((unsigned char)t[n]) && n - start < 3)
			n++;
		if (n == start || (part == 0 && t[n] != '.'))
			return 0;
		if (part == 0)
			n++;
	}
	if (t[n] != '\0' && t[n] != ' ')
		return 0;
	snprintf(out, len, "%.*s", (int)n, t);
	return 1;
}

void
dsn_status(const struct rcpt *r, enum dsn_kind kind, char *out, size_t len)
{
	const char	*t = r->text;
	const char	*p;

	/* A transaction's error reads "STEP: CODE TEXT". */
	if (r->code > 0 && (p = strstr(t, ": ")) != NULL &&
	    atoi(p + 2) == r->code && strchr(p + 2, ' ') != NULL)
		t = strchr(p + 2, ' ') + 1;
	if (r->code > 0 && enhanced(t, out, len) &&
	    (out[0] == '5') == (kind == DSN_FAILED))
		return;
	if (r->code == 0)	/* given up in the queue, not by the server */
		snprintf(out, len, "%s", kind == DSN_FAILED ? "4.4.7" :
		    "4.0.0");
	else
		snprintf(out, len, "%c.0.0", kind == DSN_FAILED &&
		    r->code >= 500 ? '5' : '4');
}

/* What the server said of the recipient, with the step it said it in. */
static void
what_happened(struct buf *b, const struct rcpt *r)
{
	const char	*p = strstr(r->text, ": ");

	if (r->code == 0)
		buf_addf(b, "%s", r->text);
	else if (p != NULL && atoi(p + 2) == r->code)
		buf_addf(b, "the server answered %s", r->text);
	else
		buf_addf(b, "the server answered %s: %d %s", r->replied ?
		    "the end of the data" : "RCPT TO", r->code, r->text);
}

static void
rfc_date(long long t, char *buf, size_t len)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

static void
human_part(struct buf *b, const struct qentry *qe, const struct dsn_info *di)
{
	size_t	i;

	buf_addf(b, "This is outbox, the mail submission program on %s.\r\n"
	    "\r\n", di->reporter);
	if (di->kind == DSN_FAILED)
		buf_adds(b, "Your message could not be delivered to the "
		    "recipients below, and\r\noutbox has stopped trying. "
		    "Its header is attached.\r\n\r\n");
	else
		buf_adds(b, "Your message has not been delivered yet to the "
		    "recipients below.\r\noutbox is still trying; you do "
		    "not need to do anything.\r\n\r\n");
	for (i = 0; i < qe->env.nrcpt; i++) {
		const struct rcpt *r = &qe->env.rcpt[i];

		if (!listed(r, di->kind))
			continue;
		buf_addf(b, "<%s> (via %s): ", r->addr, di->server);
		what_happened(b, r);
		buf_adds(b, "\r\n");
	}
	if (di->kind == DSN_DELAYED && di->until > 0) {
		char until[64];

		rfc_date(di->until, until, sizeof(until));
		buf_addf(b, "\r\nIt will be tried until %s.\r\n", until);
	}
}

static void
status_part(struct buf *b, const struct qentry *qe, const struct dsn_info *di)
{
	char	date[64], status[16];
	size_t	i;

	buf_addf(b, "Reporting-MTA: dns; %s\r\n", di->reporter);
	buf_addf(b, "X-Outbox-Queue-ID: %s\r\n", qe->id);
	if (qe->env.envid != NULL)
		buf_addf(b, "Original-Envelope-Id: %s\r\n", qe->env.envid);
	rfc_date(qe->queued, date, sizeof(date));
	buf_addf(b, "Arrival-Date: %s\r\n", date);
	for (i = 0; i < qe->env.nrcpt; i++) {
		const struct rcpt *r = &qe->env.rcpt[i];

		if (!listed(r, di->kind))
			continue;
		dsn_status(r, di->kind, status, sizeof(status));
		buf_addf(b, "\r\nFinal-Recipient: rfc822; %s\r\n", r->addr);
		buf_addf(b, "Action: %s\r\nStatus: %s\r\n", di->kind ==
		    DSN_FAILED ? "failed" : "delayed", status);
		buf_addf(b, "Remote-MTA: dns; %s\r\n", di->server);
		if (r->code > 0)
			buf_addf(b, "Diagnostic-Code: smtp; %d %s\r\n",
			    r->code, r->text);
		if (di->kind == DSN_DELAYED && di->until > 0) {
			rfc_date(di->until, date, sizeof(date));
			buf_addf(b, "Will-Retry-Until: %s\r\n", date);
		}
	}
}

static void scan8(const char *, size_t, int *);

static int
flush_buf(int out, struct buf *b, int *eightbit, struct err *e)
{
	scan8(b->p, b->len, eightbit);
	if (write_all(out, b->p, b->len) == -1)
		return err_sys(e, ERR_TEMP, "writing a delivery notice");
	buf_reset(b);
	return 0;
}

/* The most of a header that a notice quotes. */
#define HEADER_MAX	(256 * 1024)

static void
scan8(const char *p, size_t len, int *eightbit)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			*eightbit = 1;
}

/*
 * Copy the message (or only its header: up to the first empty line)
 * from msgfd, ending what is copied with a line end.
 */
static int
copy_original(int out, int msgfd, int full, int *eightbit, struct err *e)
{
	char		 chunk[8192], last = '\n';
	struct buf	 b = { 0 };
	off_t		 off = 0;
	ssize_t		 n;
	char		*end;
	int		 rv = 0;

	while ((n = pread(msgfd, chunk, sizeof(chunk), off)) > 0) {
		off += n;
		if (full) {
			scan8(chunk, (size_t)n, eightbit);
			if (write_all(out, chunk, (size_t)n) == -1)
				break;
			last = chunk[n - 1];
			continue;
		}
		buf_add(&b, chunk, (size_t)n);
		if ((end = memmem(b.p, b.len, "\r\n\r\n", 4)) != NULL) {
			b.len = (size_t)(end - b.p) + 2;
			break;
		}
		if (b.len > HEADER_MAX)
			break;
	}
	if (n == -1)
		rv = err_sys(e, ERR_TEMP, "reading a queued message");
	else if (n > 0 && full)
		rv = err_sys(e, ERR_TEMP, "writing a delivery notice");
	if (rv == 0 && b.len > 0) {
		scan8(b.p, b.len, eightbit);
		last = b.p[b.len - 1];
		if (write_all(out, b.p, b.len) == -1)
			rv = err_sys(e, ERR_TEMP, "writing a delivery notice");
	}
	if (rv == 0 && last != '\n' && write_all(out, "\r\n", 2) == -1)
		rv = err_sys(e, ERR_TEMP, "writing a delivery notice");
	buf_free(&b);
	return rv;
}

int
dsn_write(int out, const struct qentry *qe, int msgfd,
    const struct dsn_info *di, int *eightbit, struct err *e)
{
	struct buf	 b = { 0 };
	char		 date[64], boundary[128], *msgid;
	int		 rv;

	*eightbit = 0;
	snprintf(boundary, sizeof(boundary), "=_outbox-dsn-%s-%lld", qe->id,
	    (long long)time(NULL));
	msg_date(date, sizeof(date));
	msgid = msg_make_msgid(di->reporter);
	buf_addf(&b, "From: Mail Delivery System <%s>\r\n", qe->env.sender);
	buf_addf(&b, "To: <%s>\r\n", qe->env.sender);
	buf_addf(&b, "Subject: %s\r\n", di->kind == DSN_FAILED ?
	    "Undelivered Mail Returned to Sender" :
	    "Delayed Mail (still being retried)");
	buf_addf(&b, "Date: %s\r\nMessage-ID: %s\r\n", date, msgid);
	if (qe->msgid != NULL)
		buf_addf(&b, "In-Reply-To: %s\r\nReferences: %s\r\n",
		    qe->msgid, qe->msgid);
	buf_adds(&b, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	buf_addf(&b, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n",
	    boundary);
	buf_adds(&b, "This is a MIME-encapsulated message.\r\n\r\n");
	buf_addf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Description: Notification\r\n\r\n", boundary);
	human_part(&b, qe, di);
	buf_addf(&b, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n"
	    "Content-Description: Delivery report\r\n\r\n", boundary);
	status_part(&b, qe, di);
	buf_addf(&b, "\r\n--%s\r\nContent-Type: %s\r\n\r\n", boundary,
	    di->full ? "message/rfc822" : "text/rfc822-headers");
	free(msgid);
	rv = flush_buf(out, &b, eightbit, e);
	if (rv == 0)
		rv = copy_original(out, msgfd, di->full, eightbit, e);
	if (rv == 0) {
		buf_addf(&b, "\r\n--%s--\r\n", boundary);
		rv = flush_buf(out, &b, eightbit, e);
	}
	buf_free(&b);
	return rv;
}
