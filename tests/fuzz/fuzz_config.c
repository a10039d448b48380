/*
 * libFuzzer target: the input as a configuration file.  It is written to a
 * memfd and read through /proc/self/fd/N by config_parse_file(); every
 * account is then resolved, and everything freed.  This is done twice:
 * stopping at the first error, and with cfg.on_error set, going on after
 * each error (as -P and the config check do).
 *
 * The "eval" command runs its argument with /bin/sh, which a fuzzer must
 * never do.  The command word is the first token of a line after white
 * space (isspace() in the C locale), so an input in which "eval" starts
 * the data or follows a white-space byte is skipped; "passwordeval" is
 * still fuzzed (it is only stored, never run, by the parser).
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	 memfd = -1;
static char	 path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char	 home[] = "/nonexistent/outbox-fuzz-home";

	(void)argc;
	(void)argv;
	setenv("OUTBOX_SYSCONF", "", 1);
	setenv("HOME", home, 1);
	unsetenv("XDG_CONFIG_HOME");
	if ((memfd = memfd_create("fuzz_config", MFD_CLOEXEC)) == -1) {
		perror("memfd_create");
		abort();
	}
	/* Private, so that a config with a password passes check_perms. */
	if (fchmod(memfd, 0600) == -1) {
		perror("fchmod");
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	return 0;
}

static int
may_eval(const uint8_t *d, size_t n)
{
	size_t	i;

	for (i = 0; i + 4 <= n; i++)
		if (memcmp(d + i, "eval", 4) == 0 &&
		    (i == 0 || isspace(d[i - 1])))
			return 1;
	return 0;
}

static void
on_error(void *ctx, const struct err *e)
{
	(void)ctx;
	if (e->cls != ERR_CONFIG || e->msg[0] == '\0') {
		fprintf(stderr, "fuzz_config: on_error: class %d: %s\n", e->cls,
		    e->msg);
		abort();
	}
}

static void
parse(int keep_going)
{
	struct config	 cfg;
	struct err	 e;
	size_t		 i;

	memset(&cfg, 0, sizeof(cfg));
	memset(&e, 0, sizeof(e));
	if (keep_going)
		cfg.on_error = on_error;
	if (config_parse_file(&cfg, path, 0, &e) == -1 &&
	    e.cls != ERR_CONFIG) {
		fprintf(stderr, "fuzz_config: error class %d: %s\n", e.cls,
		    e.msg);
		abort();
	}
	for (i = 0; i < cfg.nacct; i++) {
		memset(&e, 0, sizeof(e));
		if (account_resolve(cfg.acct[i], &e) == -1 &&
		    e.cls != ERR_CONFIG) {
			fprintf(stderr, "fuzz_config: resolve: class %d: %s\n",
			    e.cls, e.msg);
			abort();
		}
	}
	config_free(&cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (may_eval(data, size))
		return -1;	/* not added to the corpus */
	if (ftruncate(memfd, 0) == -1 || pwrite(memfd, data, size, 0) !=
	    (ssize_t)size) {
		perror("memfd");
		abort();
	}
	parse(0);
	parse(1);
	return 0;
}
