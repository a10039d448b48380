/*
 * libFuzzer target: the input as a token endpoint's whole HTTP answer
 * through oauth_http_parse(), its body (when there is one) and the raw
 * input through json_parse(), and the members read back as oauth.c and
 * sasl.c read them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "oauth.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fail(const char *why)
{
	fprintf(stderr, "fuzz_oauth: %s\n", why);
	abort();
}

static void
check_json(const char *p, size_t len)
{
	static const char *const keys[] = { "access_token", "refresh_token",
	    "error", "error_description", "device_code", "status", "scope",
	    NULL };
	struct json	 j;
	const char	*v;
	size_t		 i;

	if (json_parse(p, len, &j) == -1) {
		if (j.n != 0 || j.m != NULL)
			fail("a failed parse left members");
		return;
	}
	for (i = 0; keys[i] != NULL; i++)
		if ((v = json_str(&j, keys[i])) != NULL &&
		    strlen(v) > len)
			fail("a string longer than the input");
	(void)json_num(&j, "expires_in", -1);
	for (i = 0; i < j.n; i++)
		if (j.m[i].key == NULL)
			fail("a member without a key");
	json_free(&j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf	 body = { 0 };
	struct err	 e;
	char		 loc[200];
	int		 status;

	memset(&e, 0, sizeof(e));
	if (oauth_http_parse((const char *)data, size, &status, &body, loc,
	    sizeof(loc), &e) == 0) {
		if (status < 100 || status > 999)
			fail("status out of range");
		if (body.len > size)
			fail("body longer than the answer");
		if (memchr(loc, '\0', sizeof(loc)) == NULL)
			fail("location not terminated");
		check_json(body.p ? body.p : "", body.len);
	} else if (e.cls != ERR_PROTO)
		fail("error class is not ERR_PROTO");
	buf_free(&body);
	check_json((const char *)data, size);
	return 0;
}
