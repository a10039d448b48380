/* backoff_next: the doubling, the cap, and the jitter's bounds. */
#include <stdlib.h>

#include "backoff.h"
#include "unit.h"

/* The nominal delay: base doubling, capped. */
static long long
nominal(int n, long long base, long long cap)
{
	long long	d = base;

	while (--n > 0 && d < cap)
		d *= 2;
	return d < cap ? d : cap;
}

static void
check_bounds(long long base, long long cap)
{
	unsigned	rnd;
	int		n;

	for (n = 1; n <= 40; n++) {
		long long d = nominal(n, base, cap), lo = d - d / 4, v;

		for (rnd = 0; rnd < 2000; rnd += 7) {
			v = backoff_next(n, base, cap, rnd * 2654435761u);
			if (v < lo || v > d) {
				fprintf(stderr, "n=%d base=%lld cap=%lld: %lld "
				    "not in [%lld, %lld]\n", n, base, cap, v, lo,
				    d);
				unit_failures++;
				return;
			}
		}
	}
}

int
main(void)
{
	long long	v, lo = -1, hi = -1;
	unsigned	r;

	/* rnd 0 gives the low end, a large rnd can reach the nominal one. */
	CHECK_EQ(backoff_next(1, 300, 14400, 0), 225);
	CHECK_EQ(backoff_next(1, 300, 14400, 75), 300);
	CHECK_EQ(backoff_next(1, 300, 14400, 76), 225);
	CHECK_EQ(backoff_next(2, 300, 14400, 150), 600);
	CHECK_EQ(backoff_next(3, 300, 14400, 0), 900);
	/* 300 * 2^6 = 19200 (the 7th) is past the cap of 4 h. */
	CHECK_EQ(backoff_next(6, 300, 14400, 2400), 9600);
	CHECK_EQ(backoff_next(7, 300, 14400, 3600), 14400);
	CHECK_EQ(backoff_next(7, 300, 14400, 0), 10800);
	CHECK_EQ(backoff_next(1000000, 300, 14400, 0), 10800);
	/* Degenerate arguments. */
	CHECK_EQ(backoff_next(0, 300, 14400, 0), 225);
	CHECK_EQ(backoff_next(-5, 300, 14400, 0), 225);
	CHECK_EQ(backoff_next(1, 0, 0, 12345), 1);
	CHECK_EQ(backoff_next(5, 1, 1, 12345), 1);
	CHECK_EQ(backoff_next(3, 600, 60, 0), 450);	/* cap below base */
	CHECK_EQ(backoff_next(2, 1, 3600, 99), 2);	/* seconds in tests */
	CHECK_EQ(backoff_next(70, 1LL << 40, 1LL << 62, 0),
	    (1LL << 62) - (1LL << 60));			/* no overflow */
	check_bounds(300, 14400);
	check_bounds(1, 3600);
	check_bounds(7, 100);
	check_bounds(30, 30);
	/* The jitter is spread: both ends of the range are reached. */
	for (r = 0; r < 10000; r++) {
		v = backoff_next(4, 300, 14400, r);
		if (lo == -1 || v < lo)
			lo = v;
		if (v > hi)
			hi = v;
	}
	CHECK_EQ(lo, 1800);
	CHECK_EQ(hi, 2400);
	/* backoff_random varies. */
	r = backoff_random();
	for (v = 0; v < 8 && backoff_random() == r; v++)
		;
	CHECK(v < 8);
	UNIT_DONE("backoff");
}
