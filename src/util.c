#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static void
oom(void)
{
	static const char msg[] = "outbox: out of memory\n";
	ssize_t		  n;

	n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	abort();
}

void *
xmalloc(size_t n)
{
	void	*p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		oom();
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*p;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) == -1)
		oom();
	va_end(ap);
	return p;
}

static void
buf_grow(struct buf *b, size_t need)
{
	size_t	 cap;
	char	*p;

	if (b->len + need + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < b->len + need + 1)
		cap *= 2;
	/* Grow by copying so a secret never lingers in a freed block. */
	p = xmalloc(cap);
	if (b->p != NULL) {
		memcpy(p, b->p, b->len);
		explicit_bzero(b->p, b->cap);
		free(b->p);
	}
	b->p = p;
	b->cap = cap;
}

void
buf_add(struct buf *b, const void *data, size_t len)
{
	buf_grow(b, len);
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	*p;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	buf_add(b, p, (size_t)n);
	free(p);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

void
buf_wipe(struct buf *b)
{
	if (b->p != NULL)
		explicit_bzero(b->p, b->cap);
	buf_free(b);
}

void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/*
 * The length of the well-formed UTF-8 sequence at s (at most n bytes) that
 * encodes a printable code point, or 0: C1 controls (U+0080-U+009F, which
 * some terminals obey like ESC), overlong forms, surrogates and stray bytes
 * are not printable.
 */
static size_t
utf8_printable(const unsigned char *s, size_t n)
{
	unsigned long	cp;
	size_t		len, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < 0xa0 || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

void
sanitize(char *dst, size_t cap, const char *src, size_t len)
{
	const unsigned char	*s = (const unsigned char *)src;
	size_t			 i = 0, o = 0, n;

	if (cap == 0)
		return;
	while (i < len && o + 1 < cap) {
		if (s[i] == '\t' || (s[i] >= 0x20 && s[i] < 0x7f)) {
			dst[o++] = (char)s[i++];
			continue;
		}
		n = s[i] < 0x80 ? 0 : utf8_printable(s + i, len - i);
		if (n == 0) {
			dst[o++] = '?';
			i++;
			continue;
		}
		if (o + n >= cap)
			break;
		memcpy(dst + o, s + i, n);
		o += n;
		i += n;
	}
	dst[o] = '\0';
}

void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

int
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

long long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
write_all(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
child(int out, const char *cmd)
{
	int	null = open("/dev/null", O_RDONLY);

	if (null != -1) {
		dup2(null, STDIN_FILENO);
		if (null != STDIN_FILENO)
			close(null);
	}
	dup2(out, STDOUT_FILENO);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

int
run_capture(const char *cmd, int timeout_s, size_t max, struct buf *b,
    int *status)
{
	long long	 deadline = now_ms() + (long long)timeout_s * 1000;
	struct pollfd	 pfd;
	char		 tmp[4096];
	ssize_t		 n;
	pid_t		 pid;
	int		 fds[2], rv = 0;

	if (pipe2(fds, O_CLOEXEC) == -1)
		return -1;
	fflush(NULL);
	if ((pid = fork()) == -1) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0)
		child(fds[1], cmd);
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	for (;;) {
		long long left = deadline - now_ms();
		int	  pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;

		if (pr == -1 && errno == EINTR)
			continue;
		/*
		 * Out of time.  The command keeps our process group: a
		 * terminal prompt (gpg) must stay in the foreground.
		 */
		if (pr <= 0) {
			rv = -2;
			kill(pid, SIGKILL);
			break;
		}
		n = read(fds[0], tmp, sizeof(tmp));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (b->len + (size_t)n <= max)
			buf_add(b, tmp, (size_t)n);
	}
	explicit_bzero(tmp, sizeof(tmp));
	close(fds[0]);
	while (waitpid(pid, status, 0) == -1 && errno == EINTR)
		;
	return rv;
}

void
crash_point(const char *name)
{
	static int	 passed;
	const char	*want = getenv("OUTBOX_TEST_CRASH"), *colon;
	size_t		 len;
	int		 nth = 1;

	if (want == NULL || *want == '\0')
		return;
	colon = strchr(want, ':');
	len = colon ? (size_t)(colon - want) : strlen(want);
	if (colon != NULL)
		nth = atoi(colon + 1);
	if (strlen(name) != len || strncmp(want, name, len) != 0)
		return;
	if (++passed >= nth)
		raise(SIGKILL);
}

int
sh_syntax_ok(const char *cmd)
{
	pid_t	pid;
	int	status, null;

	fflush(NULL);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if ((null = open("/dev/null", O_RDWR)) != -1) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		execl("/bin/sh", "sh", "-n", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
		return -1;
	return WEXITSTATUS(status) == 0;
}

void
stdio_to_null(void)
{
	int	null;

	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		return;
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	dup2(null, STDERR_FILENO);
	if (null > STDERR_FILENO)
		close(null);
}
