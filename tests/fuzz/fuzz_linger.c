/*
 * libFuzzer target: the input as the lines a shared session's holder
 * sends back (src/linger.h), each fed to linger_result_line() as
 * linger_send() does, against an envelope of three recipients; and the
 * same input as a client's request, fed to linger_request_line() as the
 * holder does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linger.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fail(const char *why)
{
	fprintf(stderr, "fuzz_linger: %s\n", why);
	abort();
}

/* The input as a request: every value one line, at most what was sent. */
static void
request(const uint8_t *data, size_t size)
{
	struct envelope	 env;
	struct msg	 m;
	char		 line[4096];
	size_t		 i = 0, k;
	int		 got = 0;

	memset(&env, 0, sizeof(env));
	memset(&m, 0, sizeof(m));
	m.fd = -1;
	while (i < size && got == 0) {
		for (k = 0; i < size && data[i] != '\n' && k + 1 < sizeof(line);
		    i++)
			line[k++] = (char)data[i];
		line[k] = '\0';
		i++;
		got = linger_request_line(line, &env, &m);
	}
	for (k = 0; k < env.nrcpt; k++)
		if (env.rcpt[k].addr == NULL ||
		    strlen(env.rcpt[k].addr) >= sizeof(line))
			fail("a recipient longer than its line");
	env_free(&env);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope		env;
	struct smtp_result	res;
	struct err		e = { ERR_NONE, "" };
	char			line[4096];
	size_t			i = 0, k;
	int			rv = -1, got = 0;

	memset(&env, 0, sizeof(env));
	memset(&res, 0, sizeof(res));
	env.sender = xstrdup("a@example.org");
	env_add_rcpt(&env, "b@example.org");
	env_add_rcpt(&env, "c@example.org");
	env_add_rcpt(&env, "d@example.org");
	while (i < size && got == 0) {
		for (k = 0; i < size && data[i] != '\n' && k + 1 < sizeof(line);
		    i++)
			line[k++] = (char)data[i];
		line[k] = '\0';
		i++;
		got = linger_result_line(line, &env, &res, &e, &rv);
	}
	if (rv != 0 && rv != -1)
		fail("a result that is neither 0 nor -1");
	if (memchr(e.msg, '\0', sizeof(e.msg)) == NULL ||
	    memchr(res.final, '\0', sizeof(res.final)) == NULL ||
	    memchr(res.mech, '\0', sizeof(res.mech)) == NULL)
		fail("an unterminated string");
	for (k = 0; k < env.nrcpt; k++)
		if (env.rcpt[k].code < 0 || env.rcpt[k].code > 999 ||
		    strpbrk(env.rcpt[k].text, "\r\n") != NULL)
			fail("a recipient's reply out of bounds");
	env_free(&env);
	request(data, size);
	return 0;
}
