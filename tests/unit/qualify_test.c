/* addr_qualify: cron's bare names get a domain; nothing else changes. */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "unit.h"

static void
check(const char *in, const char *want)
{
	char	*got = addr_qualify(in, "example.org");

	if ((want == NULL) != (got == NULL) ||
	    (want != NULL && strcmp(got, want) != 0)) {
		fprintf(stderr, "addr_qualify('%s'): '%s', not '%s'\n", in,
		    got ? got : "(null)", want ? want : "(null)");
		unit_failures++;
	}
	free(got);
}

int
main(void)
{
	check(" root (Cron Daemon)", " root@example.org (Cron Daemon)");
	check(" root", " root@example.org");
	check(" Cron Daemon <root>", " Cron Daemon <root@example.org>");
	check(" \"(Cron Daemon)\" <root>", " \"(Cron Daemon)\" <root@example.org>");
	check(" a, b@x.example, c (C), D <d>",
	    " a@example.org, b@x.example, c@example.org (C), D <d@example.org>");
	check(" team: a, b@x.example;, e", " team: a@example.org, b@x.example;, e@example.org");
	check(" \"john doe\"", " \"john doe\"@example.org");
	check(" root\r\n (folded comment)", " root@example.org\r\n (folded comment)");
	check(" bob@example.net (Bob, B)", NULL);
	check(" Bob <bob@example.net>", NULL);
	check(" \"a@b\" <c@d>", NULL);
	check(" undisclosed-recipients:;", NULL);
	check(" <>", NULL);
	check("", NULL);
	check(" (only a comment)", NULL);
	check(" \"unterminated", NULL);
	check(" a, \"unterminated\r\n", " a@example.org, \"unterminated\r\n");
	check(" a, [unterminated\r\n", " a@example.org, [unterminated\r\n");
	check(" (unterminated", NULL);
	check(" <b >x, < \"q r\" >", " <b@example.org >x, < \"q r\"@example.org >");
	check(" <(comment)>", NULL);
	check(" 1@[:A]", NULL);
	UNIT_DONE("qualify");
}
