/* A few lines of test harness for the C unit tests (make unit). */
#ifndef OUTBOX_UNIT_H
#define OUTBOX_UNIT_H

#include <stdio.h>

static int unit_failures;

#define CHECK(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #c);					\
		unit_failures++;					\
	}								\
} while (0)

#define CHECK_EQ(a, b) do {						\
	long long a_ = (a), b_ = (b);					\
	if (a_ != b_) {							\
		fprintf(stderr, "%s:%d: %s is %lld, not %lld\n",	\
		    __FILE__, __LINE__, #a, a_, b_);			\
		unit_failures++;					\
	}								\
} while (0)

#define UNIT_DONE(name) do {						\
	if (unit_failures != 0)						\
		fprintf(stderr, "%s: %d checks failed\n", name,		\
		    unit_failures);					\
	else								\
		printf("%s: ok\n", name);				\
	return unit_failures != 0;					\
} while (0)

#endif
