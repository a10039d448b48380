#ifndef OUTBOX_BACKOFF_H
#define OUTBOX_BACKOFF_H

/*
 * When to try a queued message again: exponential backoff with random
 * jitter, so that many users whose mail failed in the same minute do not
 * all come back in the same second.
 *
 * The nominal delay after the n-th failed attempt is base * 2^(n-1),
 * capped at cap (n < 1 counts as 1; base < 1 as 1 s; a cap below base
 * as base).  The delay returned is drawn from the upper quarter below the
 * nominal one, [nominal - nominal/4, nominal], by rnd: never later than the
 * schedule and never past the cap, and at least 3/4 of base, so a short
 * queue_retry in tests stays short and the spread grows with the wait.
 * The same arguments always give the same result; pass backoff_random()
 * as rnd in real use.
 */
long long	 backoff_next(int attempts, long long base, long long cap,
		    unsigned rnd);

/* A random value for backoff_next (getrandom, or the clock and pid). */
unsigned	 backoff_random(void);

#endif
