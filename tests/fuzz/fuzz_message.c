/*
 * libFuzzer target: msg_spool() on the input (after its first byte, which
 * picks the msg_opts), then msg_write_raw() and msg_write_dotted().
 *
 * Checked on the DATA stream (the SMTP smuggling invariant): only CRLF
 * line ends (no bare CR or LF), the last line is "." and no other line is
 * exactly ".", and undoing the dot-stuffing gives back the spool.  Checked
 * on the spool: its size, lines of at most 998 octets, no Bcc left when
 * Bcc removal is on, no To/Cc left with undisclosed recipients, one From
 * and one Date when they are forced, and no control characters in the
 * addresses and Message-ID that reach the envelope and the logs.  A body
 * re-encoded for a long line has lines of at most 76 octets and one
 * Content-Transfer-Encoding, quoted-printable.
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "message.h"
#include "util.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FROM_HDR	"A <a@b>"

static int		 infd = -1;
/*
 * The spool is an unlinked file (O_TMPFILE, or mkstemp and unlink), so
 * nothing is left behind even when libFuzzer ends with _Exit().
 */
static const char	*spool_dir = "/tmp";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*t = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	if (t != NULL && *t != '\0')
		spool_dir = t;
	if ((infd = memfd_create("fuzz_message", MFD_CLOEXEC)) == -1) {
		perror("memfd_create");
		abort();
	}
	return 0;
}

static void
fail(const char *why, const struct buf *b)
{
	fprintf(stderr, "fuzz_message: %s\n", why);
	if (b != NULL && b->p != NULL)
		fprintf(stderr, "stream (%zu bytes):\n%.*s\n", b->len,
		    (int)(b->len > 4000 ? 4000 : b->len), b->p);
	abort();
}

static int
collect(void *ctx, const void *p, size_t len, struct err *e)
{
	(void)e;
	buf_add(ctx, p, len);
	return 0;
}

/* Every CR is followed by LF and every LF preceded by CR. */
static void
check_crlf(const struct buf *b, const char *what)
{
	size_t	i;

	for (i = 0; i < b->len; i++) {
		if (b->p[i] == '\r' && (i + 1 == b->len || b->p[i + 1] != '\n'))
			fail(what, b);
		if (b->p[i] == '\n' && (i == 0 || b->p[i - 1] != '\r'))
			fail(what, b);
	}
}

/*
 * The dotted stream: ends with the line ".", no other line is ".", and
 * removing one leading dot from every other line gives the spool back.
 */
static void
check_dotted(const struct buf *d, const struct buf *raw)
{
	struct buf	 un = { 0 };
	size_t		 i, eol;

	check_crlf(d, "bare CR or LF in the DATA stream");
	if (raw->len == 0) {
		/* An empty message: the end mark right after 354. */
		if (d->len != 3 || memcmp(d->p, ".\r\n", 3) != 0)
			fail("empty message: stream is not \".\\r\\n\"", d);
		return;
	}
	if (d->len < 5 || memcmp(d->p + d->len - 5, "\r\n.\r\n", 5) != 0)
		fail("DATA stream does not end with CRLF.CRLF", d);
	for (i = 0; i < d->len - 3; i = eol + 2) {
		eol = (size_t)((char *)memmem(d->p + i, d->len - i, "\r\n", 2) -
		    d->p);
		if (eol == i + 1 && d->p[i] == '.')
			fail("a line \".\" before the end of the DATA stream", d);
		if (d->p[i] == '.')
			buf_add(&un, d->p + i + 1, eol + 2 - i - 1);
		else
			buf_add(&un, d->p + i, eol + 2 - i);
	}
	if (i != d->len - 3)
		fail("the end mark is not a line of its own", d);
	if (un.len != raw->len || memcmp(un.p, raw->p, un.len) != 0)
		fail("un-stuffed DATA stream differs from the spool", d);
	buf_free(&un);
}

static int
field_is(const char *line, size_t len, const char *name)
{
	size_t	n = strlen(name);

	return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static void
check_spool(const struct buf *raw, const struct msg_opts *o,
    const struct msg *m)
{
	size_t	 i, eol, len, nfrom = 0, ndate = 0, ncte = 0;
	int	 hdr = 1;
	char	*nl;

	check_crlf(raw, "bare CR or LF in the spool");
	if (raw->len > 0 && (raw->len < 2 || raw->p[raw->len - 1] != '\n'))
		fail("the spool does not end with CRLF", raw);
	for (i = 0; i < raw->len; i = eol + 2) {
		nl = memmem(raw->p + i, raw->len - i, "\r\n", 2);
		eol = (size_t)(nl - raw->p);
		len = eol - i;
		if (len > 998)
			fail("a line of more than 998 octets in the spool", raw);
		if (len == 0 && hdr) {
			hdr = 0;
			continue;
		}
		/* Quoted-printable lines are at most 76 octets (RFC 2045). */
		if (!hdr && m->qp_line && len > 76)
			fail("a quoted-printable line over 76 octets", raw);
		if (!hdr)
			continue;
		if (field_is(raw->p + i, len, "Content-Transfer-Encoding")) {
			ncte++;
			if (m->qp_line && (len != 43 || memcmp(raw->p + i,
			    "Content-Transfer-Encoding: quoted-printable", 43)))
				fail("re-encoded, but not said so", raw);
		}
		if (o->remove_bcc && (field_is(raw->p + i, len, "Bcc") ||
		    field_is(raw->p + i, len, "Resent-Bcc")))
			fail("Bcc left in the header", raw);
		if (o->undisclosed && (field_is(raw->p + i, len, "Cc") ||
		    field_is(raw->p + i, len, "Bcc") ||
		    (field_is(raw->p + i, len, "To") && (len != 28 ||
		    memcmp(raw->p + i, "To: undisclosed-recipients:;", 28)))))
			fail("To/Cc/Bcc left with undisclosed recipients", raw);
		nfrom += field_is(raw->p + i, len, "From");
		ndate += field_is(raw->p + i, len, "Date");
	}
	if (o->set_from == HDR_ON && nfrom != 1)
		fail("set_from on: not exactly one From", raw);
	if (o->set_date == HDR_ON && ndate != 1)
		fail("set_date on: not exactly one Date", raw);
	if (m->qp_line && ncte != 1)
		fail("re-encoded: not exactly one Content-Transfer-Encoding", raw);
}

static void
check_str(const char *s, const char *what)
{
	if (s == NULL)
		return;
	if (has_ctl(s)) {
		fprintf(stderr, "fuzz_message: control character in %s: '%s'\n",
		    what, s);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_opts	 o;
	struct msg	 m;
	struct err	 e;
	struct buf	 raw = { 0 }, dotted = { 0 };
	unsigned int	 b = size > 0 ? data[0] : 0, mode = b >> 4;
	size_t		 i;

	if (size > 0) {
		data++;
		size--;
	}
	if (ftruncate(infd, 0) == -1 || pwrite(infd, data, size, 0) !=
	    (ssize_t)size || lseek(infd, 0, SEEK_SET) == -1) {
		perror("memfd");
		abort();
	}
	memset(&o, 0, sizeof(o));
	o.dot_ends = b & 1;
	o.read_rcpts = (b >> 1) & 1;
	o.remove_bcc = (b >> 2) & 1;
	o.undisclosed = (b >> 3) & 1;
	o.set_from = (enum hdrmode)(mode % 3);
	o.set_date = (enum hdrmode)(mode / 3 % 3);
	o.set_msgid = (enum hdrmode)(mode / 5 % 3);
	o.from_hdr = FROM_HDR;
	o.msgid_domain = "fuzz.example";
	o.qualify_domain = mode >= 8 ? "fuzz.example" : NULL;
	o.spool_dir = spool_dir;
	o.spool_fd = -1;

	memset(&e, 0, sizeof(e));
	if (msg_spool(infd, &o, &m, &e) == -1) {
		if (e.cls != ERR_DATA) {
			fprintf(stderr, "fuzz_message: error class %d: %s\n",
			    e.cls, e.msg);
			abort();
		}
		msg_free(&m);
		return 0;
	}
	if (msg_write_raw(&m, collect, &raw, &e) == -1 ||
	    msg_write_dotted(&m, collect, &dotted, &e) == -1) {
		fprintf(stderr, "fuzz_message: write: %s\n", e.msg);
		abort();
	}
	if ((off_t)raw.len != m.size)
		fail("msg.size is not the spool's size", &raw);
	check_spool(&raw, &o, &m);
	check_dotted(&dotted, &raw);
	for (i = 0; i < m.rcpts.n; i++)
		check_str(m.rcpts.v[i], "a -t recipient");
	check_str(m.from_addr, "the From address");
	if (m.msgid != NULL && strpbrk(m.msgid, "\r\n") != NULL)
		fail("CR or LF in the Message-ID", &raw);
	if (!o.read_rcpts && m.rcpts.n != 0)
		fail("recipients collected without -t", NULL);
	/* The Subject a desktop notice shows, read back from the spool. */
	{
		char	subj[160];
		size_t	k;

		msg_subject(m.fd, subj, sizeof(subj));
		for (k = 0; subj[k] != '\0'; k++)
			if ((unsigned char)subj[k] < 0x20 && subj[k] != '\t')
				fail("a control byte in the Subject", &raw);
		if (k >= sizeof(subj))
			fail("the Subject overran its buffer", &raw);
	}
	msg_free(&m);
	buf_free(&raw);
	buf_free(&dotted);
	return 0;
}
