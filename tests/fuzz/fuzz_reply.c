/*
 * libFuzzer target: the input as one server reply line through
 * reply_parse_line(), then cut at NUL bytes into EHLO keyword lines for
 * caps_parse_line(), all folded into one struct caps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fail(const char *why)
{
	fprintf(stderr, "fuzz_reply: %s\n", why);
	abort();
}

static void
check_reply(const char *line, size_t len)
{
	struct err	 e;
	const char	*text;
	int		 code, last;

	memset(&e, 0, sizeof(e));
	if (reply_parse_line(line, len, &code, &last, &text, &e) == -1) {
		if (e.cls != ERR_PROTO)
			fail("error class is not ERR_PROTO");
		return;
	}
	if (code < 200 || code > 599)
		fail("code out of range");
	if (last != (len == 3 || line[3] == ' '))
		fail("wrong last-line flag");
	if (*text != '\0' && (text != line + 4 || len <= 4))
		fail("text outside the line");
	if (memchr(line, '\0', len) != NULL)
		fail("a line with a NUL byte was accepted");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct caps	 c;
	char		*copy, *p, *end;

	/* As conn_getline hands it over: NUL-terminated, length apart. */
	copy = xmalloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	check_reply(copy, size);

	memset(&c, 0, sizeof(c));
	for (p = copy, end = copy + size; p <= end; p += strlen(p) + 1) {
		caps_parse_line(&c, p);
		if (memchr(c.auth, '\0', sizeof(c.auth)) == NULL)
			fail("caps.auth is not terminated");
		if (c.auth[0] != '\0' && !(c.flags & CAP_AUTH))
			fail("AUTH list without CAP_AUTH");
	}
	free(copy);
	return 0;
}
