#ifndef OUTBOX_ALIASES_H
#define OUTBOX_ALIASES_H

#include "addr.h"
#include "err.h"

/*
 * An aliases file, as msmtp reads it: "name: address, address" per line,
 * '#' comments, and "default:" for local names not listed.  Only the
 * envelope is changed; the message's headers are left alone.
 */
struct aliases {
	char	**name;
	char	**value;
	size_t	  n;
};

/* Errors: ERR_CONFIG with "FILE:LINE: message". */
int	 aliases_load(struct aliases *, const char *path, struct err *);
/*
 * Replace each recipient without a domain by what it stands for,
 * recursively.  Errors: ERR_CONFIG for a loop or a bad address.
 */
int	 aliases_expand(const struct aliases *, struct addrlist *, struct err *);
void	 aliases_free(struct aliases *);

#endif
