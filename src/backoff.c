#include <sys/random.h>

#include <time.h>
#include <unistd.h>

#include "backoff.h"

long long
backoff_next(int attempts, long long base, long long cap, unsigned rnd)
{
	long long	d, span;

	if (base < 1)
		base = 1;
	if (cap < base)
		cap = base;
	d = base;
	while (--attempts > 0 && d < cap)
		d = d > cap / 2 ? cap : d * 2;
	if (d > cap)
		d = cap;
	span = d / 4;
	return d - span + (long long)(rnd % (unsigned long long)(span + 1));
}

unsigned
backoff_random(void)
{
	struct timespec	ts;
	unsigned	r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned)ts.tv_nsec ^ (unsigned)getpid() << 16;
}
