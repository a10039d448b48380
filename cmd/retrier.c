/*
 * The background retrier: when a run leaves mail in the queue, a small
 * process of the user's own waits until the first entry is due, runs a
 * flush (outbox -q for what is due, a program of its own), and goes on
 * until the queue is empty.  One per user: the live one holds a lock on
 * the queue's retrier.pid, and a later run that finds it held wakes it
 * instead of starting another.  It shares the lock discipline of -q (each
 * flush is an ordinary outbox -q), so a kill at any step loses nothing.
 */
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "front.h"
#include "../src/queue.h"
#include "../src/util.h"

#define LOCK_NAME	"retrier.pid"
#define SLEEP_MAX	3600	/* look at the queue at least hourly */
#define STUCK_ROUNDS	10	/* flushes in a row that changed nothing */

int
front_background_ok(const struct run *r)
{
	const char	*v = getenv("OUTBOX_NO_RETRIER");

	if (v != NULL && *v != '\0' && strcmp(v, "0") != 0)
		return 0;
	return !r->o->dry_run;
}

/* Background work allowed, and this is not the retrier's own flush. */
static int
retrier_wanted(const struct run *r)
{
	return front_background_ok(r) && getenv("OUTBOX_RETRIER") == NULL;
}

static int
open_lock(const struct queue *q)
{
	return openat(q->dfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
}

/* Tell the live retrier to look at the queue now. */
static void
wake(int fd)
{
	char	buf[32];
	ssize_t	n = pread(fd, buf, sizeof(buf) - 1, 0);
	long	pid;

	if (n <= 0)
		return;
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	if (pid > 1 && pid != (long)getpid())
		kill((pid_t)pid, SIGUSR1);
}

/*
 * Nothing of the caller's: no terminal, no descriptors but ready (kept
 * as descriptor 3), the least share of the machine.
 */
static void
become_background(int ready)
{
	if (ready != 3 && dup2(ready, 3) == -1)
		_exit(1);
	stdio_to_null();
	closefrom(4);
	setpriority(PRIO_PROCESS, 0, 19);
	/* I/O class idle (IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT). */
	syscall(SYS_ioprio_set, 1, 0, 3 << 13);
	if (chdir("/") == -1)
		_exit(1);
}

/* One flush of what is due, as outbox -q would do it, run to its end. */
static void
flush_once(const char *conffile)
{
	char	*argv[5];
	int	 argc = 0, status;
	pid_t	 pid;

	argv[argc++] = "outbox";
	argv[argc++] = "-q1s";		/* only what is due */
	if (conffile != NULL) {
		argv[argc++] = "-C";
		argv[argc++] = (char *)conffile;
	}
	argv[argc] = NULL;
	if ((pid = fork()) == -1)
		return;
	if (pid == 0) {
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	/* A crash test's kill is for the first flush only. */
	unsetenv("OUTBOX_TEST_CRASH");
}

/* Sleep for up to secs, or until woken. */
static void
nap(long long secs)
{
	struct timespec	ts;
	sigset_t	set;

	if (secs <= 0)
		return;
	ts.tv_sec = secs > SLEEP_MAX ? SLEEP_MAX : (time_t)secs;
	ts.tv_nsec = 0;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigtimedwait(&set, NULL, &ts);
}

/* The retrier's life: sleep until the first entry is due, flush, repeat. */
static void
retrier_loop(struct queue *q, const char *conffile)
{
	long long	earliest, last = -1, wait_stuck = 1;
	int		stuck = 0;
	size_t		n;

	while ((n = queue_waiting(q, &earliest)) > 0) {
		long long now = queue_now();

		if (earliest > now) {
			nap(earliest - now);
			if (queue_now() < earliest)	/* woken early: look again */
				continue;
		}
		flush_once(conffile);
		if (queue_waiting(q, &earliest) == 0)
			break;
		/* Due still (locked by another run, or kept as it was): pause. */
		if (earliest <= queue_now()) {
			stuck = earliest == last ? stuck + 1 : 0;
			if (stuck >= STUCK_ROUNDS)
				break;
			nap(wait_stuck);
			wait_stuck = wait_stuck < 60 ? wait_stuck * 2 : 60;
		} else
			wait_stuck = 1;
		last = earliest;
	}
}

/*
 * The grandchild: take the lock or leave, tell the parent through ready
 * which it was, then wait and flush.
 */
static void
retrier_main(const char *dir, const char *conffile, int ready)
{
	struct queue	q;
	struct err	e;
	sigset_t	set;
	char		pid[32];
	int		fd;

	become_background(ready);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	setenv("OUTBOX_RETRIER", "1", 1);
	if (queue_open(&q, dir, &e) == -1)
		_exit(0);
	if ((fd = open_lock(&q)) == -1 || flock(fd, LOCK_EX | LOCK_NB) == -1)
		_exit(0);
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, strlen(pid), 0) < 0)
		_exit(0);
	if (write(3, "1", 1) != 1)
		_exit(0);
	close(3);
	retrier_loop(&q, conffile);
	/* Say no one waits before the lock goes with the process. */
	if (ftruncate(fd, 0) == -1)
		_exit(0);
	_exit(0);
}

/*
 * Start the retrier, detached (double fork, new session), and wait until
 * it holds the lock, or has left because another one does.
 */
static void
spawn(const char *dir, const char *conffile)
{
	struct pollfd	pfd;
	pid_t		pid;
	int		status, p[2];
	char		c;

	fflush(NULL);
	if (pipe2(p, O_CLOEXEC) == -1)
		return;
	if ((pid = fork()) == 0) {
		close(p[0]);
		setsid();
		if (fork() == 0)
			retrier_main(dir, conffile, p[1]);
		_exit(0);
	}
	close(p[1]);
	if (pid != -1) {
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		pfd.fd = p[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 2000) == 1 && read(p[0], &c, 1) == -1)
			c = 0;
	}
	close(p[0]);
}

void
retrier_ensure(const struct run *r)
{
	struct queue	 q;
	struct err	 e;
	long long	 earliest;
	char		*conf = NULL;
	int		 fd;

	if (!retrier_wanted(r) || open_queue(&q, &e) == -1)
		return;
	if ((fd = open_lock(&q)) == -1) {
		queue_close(&q);
		return;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1)
		wake(fd);		/* one is alive: it looks again */
	else if (queue_waiting(&q, &earliest) > 0) {
		close(fd);		/* the retrier takes it for itself */
		fd = -1;
		if (r->o->conffile != NULL &&
		    (conf = realpath(r->o->conffile, NULL)) == NULL)
			conf = xstrdup(r->o->conffile);
		spawn(q.dir, conf);
		free(conf);
	}
	if (fd != -1)
		close(fd);
	queue_close(&q);
}
