/* Queue durations: units, a bare queue_lifetime in days, acct_seconds. */
#include <string.h>

#include "config.h"
#include "unit.h"

static long long
seconds(const char *cmd, const char *val)
{
	struct account	*a = account_new("t");
	struct err	 e;
	long long	 s = -2;
	size_t		 i;
	static const enum cfkey keys[] = { CF_QUEUE_RETRY, CF_QUEUE_RETRY_MAX,
	    CF_QUEUE_WARN, CF_QUEUE_LIFETIME };
	static const char *names[] = { "queue_retry", "queue_retry_max",
	    "queue_warn", "queue_lifetime" };

	if (account_set(a, cmd, val, &ORIGIN_CMDLINE, &e) == 0)
		for (i = 0; i < 4; i++)
			if (strcmp(names[i], cmd) == 0)
				s = acct_seconds(a, keys[i]);
	account_free(a);
	return s;
}

static int
refused(const char *cmd, const char *val, const char *want)
{
	struct account	*a = account_new("t");
	struct err	 e;
	int		 rv;

	memset(&e, 0, sizeof(e));
	rv = account_set(a, cmd, val, &ORIGIN_CMDLINE, &e) == -1 &&
	    e.cls == ERR_CONFIG && strstr(e.msg, want) != NULL;
	if (!rv)
		fprintf(stderr, "%s %s: \"%s\"\n", cmd, val, e.msg);
	account_free(a);
	return rv;
}

int
main(void)
{
	struct account	*a;
	struct err	 e;

	CHECK_EQ(seconds("queue_retry", "30s"), 30);
	CHECK_EQ(seconds("queue_retry", "5m"), 300);
	CHECK_EQ(seconds("queue_retry", "4h"), 14400);
	CHECK_EQ(seconds("queue_retry", "5d"), 432000);
	CHECK_EQ(seconds("queue_retry", "7"), 7);	/* bare: seconds */
	CHECK_EQ(seconds("queue_retry_max", "1h"), 3600);
	CHECK_EQ(seconds("queue_warn", "90m"), 5400);
	CHECK_EQ(seconds("queue_warn", "off"), -1);
	CHECK_EQ(seconds("queue_lifetime", "5"), 432000);	/* bare: days */
	CHECK_EQ(seconds("queue_lifetime", "0"), 0);
	CHECK_EQ(seconds("queue_lifetime", "30s"), 30);
	CHECK_EQ(seconds("queue_lifetime", "999999999d"), 999999999LL * 86400);
	CHECK(refused("queue_retry", "5x", "expected a time such as 30s"));
	CHECK(refused("queue_retry", "", "invalid value '' for queue_retry"));
	CHECK(refused("queue_retry", "m", "invalid value 'm'"));
	CHECK(refused("queue_retry", "5mm", "invalid value '5mm'"));
	CHECK(refused("queue_retry", "-5m", "invalid value '-5m'"));
	CHECK(refused("queue_retry", "5 m", "invalid value '5 m'"));
	CHECK(refused("queue_retry", "1234567890s", "invalid value"));
	CHECK(refused("queue_retry", "0", "more than 0"));
	CHECK(refused("queue_retry_max", "0m", "more than 0"));
	CHECK(refused("queue_warn", "0s", "more than 0 (or off)"));
	CHECK(refused("queue_retry", "off", "invalid value 'off'"));
	CHECK(refused("queue_lifetime", "off", "a bare number is days"));
	CHECK(refused("queue_lifetime", "5w", "invalid value '5w'"));

	/* The defaults, and their written form for -P. */
	a = account_new("t");
	CHECK(account_set(a, "host", "h", &ORIGIN_CMDLINE, &e) == 0);
	CHECK(account_resolve(a, &e) == 0);
	CHECK_EQ(acct_seconds(a, CF_QUEUE_RETRY), 300);
	CHECK_EQ(acct_seconds(a, CF_QUEUE_RETRY_MAX), 14400);
	CHECK_EQ(acct_seconds(a, CF_QUEUE_WARN), 14400);
	CHECK_EQ(acct_seconds(a, CF_QUEUE_LIFETIME), 432000);
	CHECK(strcmp(acct_str(a, CF_QUEUE_LIFETIME), "5d") == 0);
	account_free(a);
	UNIT_DONE("duration");
}
