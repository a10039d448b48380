#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "linger.h"
#include "util.h"

#define LINE_MAX_LEN	4096	/* one line of the dialogue */
#define REQUEST_MAX	(1 << 20)	/* a whole request */
#define STEP_MS		5000	/* the holder's wait for each client step */
#define RCPTS_MAX	10000

/* ------------------------------------------------------------ line I/O */

struct lio {
	int	 fd;
	int	 passed;	/* a descriptor that came with the data, or -1 */
	char	 buf[8192];
	size_t	 len;
};

static void
lio_init(struct lio *l, int fd)
{
	l->fd = fd;
	l->passed = -1;
	l->len = 0;
}

/* Read more, keeping the first descriptor passed with it; 0 at EOF. */
static ssize_t
lio_fill(struct lio *l, int timeout_ms)
{
	char		 cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	struct pollfd	 pfd = { l->fd, POLLIN, 0 };
	ssize_t		 n;
	int		 rv;

	while ((rv = poll(&pfd, 1, timeout_ms)) == -1 && errno == EINTR)
		;
	if (rv <= 0)
		return -1;
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = l->buf + l->len;
	iov.iov_len = sizeof(l->buf) - l->len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	while ((n = recvmsg(l->fd, &mh, MSG_CMSG_CLOEXEC)) == -1 &&
	    errno == EINTR)
		;
	if (n < 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t	k, nfd;
		int	fds[4];

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfd > 4)
			nfd = 4;
		memcpy(fds, CMSG_DATA(cm), nfd * sizeof(int));
		for (k = 0; k < nfd; k++) {
			if (l->passed == -1)
				l->passed = fds[k];
			else
				close(fds[k]);
		}
	}
	l->len += (size_t)n;
	return n;
}

/* One line, without its LF: 1; 0 at EOF; -1 on timeout or a bad line. */
static int
lio_line(struct lio *l, char *out, size_t cap, int timeout_ms)
{
	char	*nl;
	size_t	 n;

	while ((nl = memchr(l->buf, '\n', l->len)) == NULL) {
		ssize_t r;

		if (l->len >= sizeof(l->buf))
			return -1;
		if ((r = lio_fill(l, timeout_ms)) <= 0)
			return r == 0 ? 0 : -1;
	}
	n = (size_t)(nl - l->buf);
	if (n >= cap)
		return -1;
	memcpy(out, l->buf, n);
	out[n] = '\0';
	l->len -= n + 1;
	memmove(l->buf, nl + 1, l->len);
	return 1;
}

static int
send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A line's text: one line, whatever the value held. */
static void
add_text(struct buf *b, const char *key, const char *v)
{
	char	clean[LINE_MAX_LEN / 2];

	sanitize(clean, sizeof(clean), v != NULL ? v : "", v != NULL ?
	    strlen(v) : 0);
	buf_addf(b, "%s %s\n", key, clean);
}

/* ------------------------------------------------------------ the path */

int
linger_path(const char *key, char *path, size_t len)
{
	const char	*rt = getenv("XDG_RUNTIME_DIR");
	unsigned char	 h[32];
	char		 dir[400];
	struct stat	 st;
	int		 i, n;

	if (rt == NULL || rt[0] != '/')
		return -1;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/outbox", rt) >= sizeof(dir))
		return -1;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -1;
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != getuid() || (st.st_mode & 077) != 0)
		return -1;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, key, strlen(key), h) != 0)
		return -1;
	n = snprintf(path, len, "%s/s-", dir);
	for (i = 0; i < 12 && n > 0 && (size_t)n + 3 < len; i++)
		n += snprintf(path + n, len - (size_t)n, "%02x", h[i]);
	/* sun_path holds 108 bytes. */
	return i == 12 && strlen(path) < sizeof(((struct sockaddr_un *)0)->
	    sun_path) ? 0 : -1;
}

static int
unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -1;
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* Is the peer on fd this user? */
static int
peer_is_us(int fd)
{
	struct ucred	cred;
	socklen_t	len = sizeof(cred);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	    cred.uid == getuid();
}

int
linger_connect(const char *path)
{
	struct sockaddr_un	sa;
	struct stat		st;
	int			fd;

	if (lstat(path, &st) == -1 || !S_ISSOCK(st.st_mode) ||
	    st.st_uid != getuid() || unix_addr(path, &sa) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    !peer_is_us(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ------------------------------------------------------------ the client */

static int
has_newline(const char *v)
{
	return v != NULL && strpbrk(v, "\r\n") != NULL;
}

/* The request: envelope, size and 8bit, with the message's descriptor. */
static int
send_request(int fd, const struct envelope *env, const struct msg *m)
{
	char		 cbuf[CMSG_SPACE(sizeof(int))];
	struct buf	 b = { 0 };
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	size_t		 i;
	ssize_t		 n;
	int		 rv = -1;

	if (has_newline(env->sender) || has_newline(env->envid) ||
	    has_newline(env->notify) || has_newline(env->ret) ||
	    has_newline(env->body))
		return -1;
	buf_addf(&b, "outbox-linger 1\nsize %lld\n8bit %d\naon %d\n"
	    "smtputf8 %d\n", (long long)m->size, m->eightbit,
	    env->all_or_nothing, env->smtputf8);
	if (env->body != NULL)
		buf_addf(&b, "body %s\n", env->body);
	buf_addf(&b, "sender %s\n", env->sender);
	if (env->envid != NULL)
		buf_addf(&b, "envid %s\n", env->envid);
	if (env->notify != NULL)
		buf_addf(&b, "notify %s\n", env->notify);
	if (env->ret != NULL)
		buf_addf(&b, "ret %s\n", env->ret);
	for (i = 0; i < env->nrcpt; i++) {
		if (!rcpt_todo(&env->rcpt[i]))
			continue;
		if (has_newline(env->rcpt[i].addr))
			goto out;
		buf_addf(&b, "rcpt %s\n", env->rcpt[i].addr);
	}
	buf_adds(&b, "end\n");
	if (b.len > REQUEST_MAX)
		goto out;
	memset(&mh, 0, sizeof(mh));
	memset(cbuf, 0, sizeof(cbuf));
	iov.iov_base = b.p;
	iov.iov_len = b.len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &m->fd, sizeof(int));
	while ((n = sendmsg(fd, &mh, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	if (n > 0)
		rv = send_all(fd, b.p + n, b.len - (size_t)n);
out:
	buf_free(&b);
	return rv;
}

/* The i-th recipient still to do: the holder numbers those it was given. */
static struct rcpt *
todo_rcpt(struct envelope *env, long idx)
{
	size_t	i;
	long	n = 0;

	for (i = 0; i < env->nrcpt; i++)
		if (rcpt_todo(&env->rcpt[i]) && n++ == idx)
			return &env->rcpt[i];
	return NULL;
}

/* "KEY rest": rest, or NULL when the line is not KEY's. */
static const char *
value_of(const char *line, const char *key)
{
	size_t	n = strlen(key);

	if (strncmp(line, key, n) != 0 || (line[n] != ' ' && line[n] != '\0'))
		return NULL;
	return line[n] == ' ' ? line + n + 1 : line + n;
}

int
linger_result_line(const char *line, struct envelope *env,
    struct smtp_result *res, struct err *e, int *rv)
{
	const char	*v;
	long		 idx;
	int		 n, a, cls, delivered, stage, code, refused, tried;
	int		 replied;

	if (strcmp(line, "end") == 0)
		return 1;
	if ((v = value_of(line, "result")) != NULL) {
		if (sscanf(v, "%d %d %d %d %d %d", &a, &cls, &delivered, &stage,
		    &code, &refused) != 6 || (a != 0 && a != -1) || cls < 0 ||
		    cls > ERR_SOFTWARE || stage < STAGE_SESSION ||
		    stage > STAGE_DOT || code < 0 || code > 999)
			return -1;
		*rv = a;
		e->cls = (enum err_class)cls;
		res->delivered = delivered != 0;
		res->stage = (enum smtp_stage)stage;
		res->code = code;
		res->rcpts_refused = refused != 0;
	} else if ((v = value_of(line, "err")) != NULL)
		snprintf(e->msg, sizeof(e->msg), "%s", v);
	else if ((v = value_of(line, "final")) != NULL)
		snprintf(res->final, sizeof(res->final), "%s", v);
	else if ((v = value_of(line, "mech")) != NULL)
		snprintf(res->mech, sizeof(res->mech), "%s", v);
	else if ((v = value_of(line, "tlsv")) != NULL)
		snprintf(res->tls.version, sizeof(res->tls.version), "%s", v);
	else if ((v = value_of(line, "tlsc")) != NULL)
		snprintf(res->tls.cipher, sizeof(res->tls.cipher), "%s", v);
	else if ((v = value_of(line, "rcpt")) != NULL) {
		struct rcpt *r;

		if (sscanf(v, "%ld %d %d %d %n", &idx, &tried, &replied, &code,
		    &n) != 4 || idx < 0 || code < 0 || code > 999 ||
		    (r = todo_rcpt(env, idx)) == NULL)
			return -1;
		r->tried = tried != 0;
		r->replied = replied != 0;
		if (r->tried)
			rcpt_set_reply(r, code, v + n);
	} else
		return -1;
	return 0;
}

int
linger_send(int fd, struct envelope *env, struct msg *m, int timeout_ms,
    struct smtp_result *res, struct err *e)
{
	struct lio	l;
	char		line[LINE_MAX_LEN];
	int		rv = -1, got, data = 0, t;

	lio_init(&l, fd);
	if (send_request(fd, env, m) == -1)
		return 1;
	/* The holder may be busy with another message: wait, then go alone. */
	if (lio_line(&l, line, sizeof(line), timeout_ms) != 1 ||
	    strcmp(line, "ready") != 0 || send_all(fd, "go\n", 3) == -1)
		return 1;
	memset(res->final, 0, sizeof(res->final));
	e->cls = ERR_NONE;
	e->msg[0] = '\0';
	for (;;) {
		/* The holder's own timeouts bound its answer; this is a guard. */
		t = data ? 15 * 60 * 1000 : timeout_ms + 60 * 1000;
		if ((got = lio_line(&l, line, sizeof(line), t)) != 1)
			break;
		if (!data && strcmp(line, "data") == 0) {
			data = 1;
			continue;
		}
		if ((got = linger_result_line(line, env, res, e, &rv)) != 0)
			break;
	}
	if (got == 1 && rv == 0)
		return 0;
	/* Nothing of the message went out: it can go another way. */
	if (!data)
		return 1;
	if (got != 1) {
		res->stage = STAGE_DOT;
		res->delivered = 0;
		return err_set(e, ERR_TEMP, "the shared session ended after the "
		    "message data began (it may or may not have been "
		    "accepted)");
	}
	if (e->cls == ERR_NONE)
		e->cls = ERR_TEMP;
	return -1;
}

/* ------------------------------------------------------------ the holder */

struct holder {
	struct smtp_session	*s;
	struct smtp_result	 res;
	int			 cfd;
};

static void
said_data(void *arg)
{
	struct holder	*h = arg;

	if (h->cfd != -1)
		send_all(h->cfd, "data\n", 5);
	crash_point("linger-data");
}

int
linger_request_line(const char *line, struct envelope *env, struct msg *m)
{
	const char	*v;

	if (strcmp(line, "end") == 0)
		return 1;
	if (env->nrcpt >= RCPTS_MAX)
		return -1;
	if ((v = value_of(line, "size")) != NULL)
		m->size = (off_t)strtoll(v, NULL, 10);
	else if ((v = value_of(line, "8bit")) != NULL)
		m->eightbit = atoi(v) != 0;
	else if ((v = value_of(line, "aon")) != NULL)
		env->all_or_nothing = atoi(v) != 0;
	else if ((v = value_of(line, "smtputf8")) != NULL)
		env->smtputf8 = atoi(v) != 0;
	else if ((v = value_of(line, "body")) != NULL && env->body == NULL)
		env->body = xstrdup(v);
	else if ((v = value_of(line, "sender")) != NULL && env->sender == NULL)
		env->sender = xstrdup(v);
	else if ((v = value_of(line, "envid")) != NULL && env->envid == NULL)
		env->envid = xstrdup(v);
	else if ((v = value_of(line, "notify")) != NULL && env->notify == NULL)
		env->notify = xstrdup(v);
	else if ((v = value_of(line, "ret")) != NULL && env->ret == NULL)
		env->ret = xstrdup(v);
	else if ((v = value_of(line, "rcpt")) != NULL && *v != '\0')
		env_add_rcpt(env, v);
	else
		return -1;
	return 0;
}

/* Read a request into env and m; 0, or -1 when it is not one. */
static int
read_request(struct lio *l, struct envelope *env, struct msg *m)
{
	char		 line[LINE_MAX_LEN];
	size_t		 total = 0;
	int		 got, rv = -1;

	if (lio_line(l, line, sizeof(line), STEP_MS) != 1 ||
	    strcmp(line, "outbox-linger 1") != 0)
		return -1;
	while ((got = lio_line(l, line, sizeof(line), STEP_MS)) == 1) {
		total += strlen(line) + 1;
		if (total > REQUEST_MAX ||
		    (rv = linger_request_line(line, env, m)) != 0)
			break;
	}
	if (rv != 1 || env->sender == NULL || env->nrcpt == 0 ||
	    l->passed == -1 || m->size < 0)
		return -1;
	m->fd = l->passed;
	l->passed = -1;
	return 0;
}

static void
write_result(struct holder *h, int cfd, const struct envelope *env, int rv,
    const struct err *e)
{
	struct buf	b = { 0 };
	size_t		i;

	buf_addf(&b, "result %d %d %d %d %d %d\n", rv, (int)e->cls,
	    h->res.delivered, (int)h->res.stage, h->res.code,
	    h->res.rcpts_refused);
	if (rv == -1)
		add_text(&b, "err", e->msg);
	add_text(&b, "final", h->res.final);
	add_text(&b, "mech", h->res.mech);
	add_text(&b, "tlsv", h->res.tls.version);
	add_text(&b, "tlsc", h->res.tls.cipher);
	for (i = 0; i < env->nrcpt; i++) {
		const struct rcpt *r = &env->rcpt[i];

		buf_addf(&b, "rcpt %zu %d %d %d ", i, r->tried, r->replied,
		    r->code);
		add_text(&b, "", r->text);
	}
	buf_adds(&b, "end\n");
	send_all(cfd, b.p, b.len);
	buf_free(&b);
}

/* One message for one client; 1 if the session can carry another. */
static int
serve_one(struct holder *h, int cfd)
{
	struct envelope	env;
	struct msg	m;
	struct lio	l;
	struct err	e = { ERR_NONE, "" };
	char		line[64];
	int		rv, more = 1;

	memset(&env, 0, sizeof(env));
	memset(&m, 0, sizeof(m));
	m.fd = -1;
	lio_init(&l, cfd);
	if (read_request(&l, &env, &m) == 0 &&
	    send_all(cfd, "ready\n", 6) == 0 &&
	    lio_line(&l, line, sizeof(line), STEP_MS) == 1 &&
	    strcmp(line, "go") == 0) {
		crash_point("linger-go");
		h->cfd = cfd;
		rv = smtp_transaction(h->s, &env, &m, 0, &h->res, &e);
		h->cfd = -1;
		crash_point("linger-sent");
		write_result(h, cfd, &env, rv, &e);
		more = smtp_reusable(h->s);
	}
	if (l.passed != -1)
		close(l.passed);
	msg_free(&m);
	env_free(&env);
	return more;
}

/* Wait for clients until idle for idle_ms; then QUIT. */
static void
serve(struct holder *h, int lfd, int idle_ms)
{
	struct pollfd	pfd = { lfd, POLLIN, 0 };
	int		cfd, rv;

	for (;;) {
		while ((rv = poll(&pfd, 1, idle_ms)) == -1 && errno == EINTR)
			;
		if (rv <= 0)
			return;
		if ((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		if (!peer_is_us(cfd)) {
			close(cfd);
			continue;
		}
		rv = serve_one(h, cfd);
		close(cfd);
		if (!rv)
			return;
	}
}

/* Close every descriptor but those kept (at most two), ascending. */
static void
close_all_but(int a, int b)
{
	int	lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 3)
		close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0U, 0);
}

/*
 * What the sender's stack and freed heap still hold of the message goes:
 * the stack below us is overwritten, free heap pages are given back.
 */
static void __attribute__((noinline))
forget_the_past(void)
{
	char	pad[512 * 1024];

	explicit_bzero(pad, sizeof(pad));
	__asm__ volatile("" : : "r"(pad) : "memory");
	malloc_trim(0);
}

/* The holder: take the key's lock and socket, say so, serve, QUIT. */
static void
holder_main(struct smtp_session *s, const struct smtp_result *res0,
    const char *path, int idle_ms, int ready)
{
	struct sockaddr_un	sa;
	struct holder		h;
	char			lock[300];
	int			lfd, lockfd, sfd = smtp_fd(s);

	stdio_to_null();
	close_all_but(sfd, ready);
	forget_the_past();
	if (chdir("/") == -1)
		_exit(0);
	snprintf(lock, sizeof(lock), "%s.lock", path);
	lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lockfd == -1 || flock(lockfd, LOCK_EX | LOCK_NB) == -1)
		_exit(0);	/* another holds the key: the sender closes */
	unlink(path);
	if (unix_addr(path, &sa) == -1 ||
	    (lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(lfd, 16) == -1)
		_exit(0);
	if (write(ready, "1", 1) != 1)
		_exit(0);
	close(ready);
	memset(&h, 0, sizeof(h));
	h.s = s;
	h.res = *res0;
	h.cfd = -1;
	smtp_set_data_hook(s, said_data, &h);
	crash_point("linger-held");
	serve(&h, lfd, idle_ms);
	/* No new client from here on; then the session goes. */
	unlink(path);
	close(lfd);
	smtp_close(s, NULL);
	_exit(0);
}

int
linger_hand_off(struct smtp_session *s, const struct smtp_result *res,
    const char *path, int idle_ms, void (*scrub)(void *), void *arg)
{
	pid_t	pid;
	int	p[2], status;
	char	c = 0;

	if (smtp_fd(s) < 0 || pipe2(p, O_CLOEXEC) == -1)
		return 0;
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(p[0]);
		setsid();
		if (fork() == 0) {
			if (scrub != NULL)
				scrub(arg);
			holder_main(s, res, path, idle_ms, p[1]);
		}
		_exit(0);
	}
	close(p[1]);
	if (pid > 0) {
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		if (read(p[0], &c, 1) != 1)
			c = 0;
	}
	close(p[0]);
	return c == '1';
}
