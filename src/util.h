#ifndef OUTBOX_UTIL_H
#define OUTBOX_UTIL_H

#include <stddef.h>
#include <stdarg.h>

/* Allocation that cannot fail: out of memory aborts with a message. */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated. */
struct buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};
void	 buf_add(struct buf *, const void *, size_t);
void	 buf_addc(struct buf *, char);
void	 buf_adds(struct buf *, const char *);
void	 buf_addf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 buf_reset(struct buf *);
/* Overwrite with zeros, then free: for buffers that held a secret. */
void	 buf_wipe(struct buf *);
void	 buf_free(struct buf *);

/*
 * Copy src into dst (size cap), replacing with '?' what a terminal could act
 * on: control bytes, C1 controls and bytes that are not well-formed UTF-8.
 */
void	 sanitize(char *dst, size_t cap, const char *src, size_t len);

/* Wipe and free a secret string; NULL is fine. */
void	 secret_free(char *);

/* Non-zero when s holds a byte below 0x20 (other than none allowed) or 0x7f. */
int	 has_ctl(const char *s);

/* Monotonic clock in milliseconds. */
long long now_ms(void);
/*
 * A test hook: OUTBOX_TEST_CRASH=NAME[:N] kills the process (SIGKILL, as
 * a crash or power cut would) the N-th time (default first) it passes the
 * point NAME.  The suites use it to stop outbox after each protocol step
 * and file operation.  Without the variable it costs one getenv.
 */
void	 crash_point(const char *name);

/* Write all of buf to fd, retrying on EINTR and short writes; -1 on error. */
int	 write_all(int fd, const void *buf, size_t len);

/*
 * Run cmd with /bin/sh -c, its stdin /dev/null (never the message), its
 * stderr ours.  Collect at most max bytes of its output until it ends or
 * timeout_s pass.  Returns 0 with its wait status in *status, -1 when it
 * cannot be started, -2 when it timed out (it is killed).
 */
int	 run_capture(const char *cmd, int timeout_s, size_t max, struct buf *,
	    int *status);

/*
 * Would /bin/sh parse cmd?  sh -n reads it without running it.  1 yes, 0 a
 * syntax error, -1 sh cannot be run.
 */
int	 sh_syntax_ok(const char *cmd);

/* Standard input, output and error on /dev/null: for work left behind. */
void	 stdio_to_null(void);

#endif
