#ifndef OUTBOX_TOKCACHE_H
#define OUTBOX_TOKCACHE_H

#include "err.h"

/*
 * The OAuth access-token cache: one file per account holding
 * "EXPIRY TOKEN\n", mode 0600, replaced whole by rename.  A file or folder
 * that does not belong to the user, or that others may write (or read),
 * is not trusted: it is ignored and the caller is told why.  A lock file
 * beside it serialises refreshes between processes.
 */

/*
 * The cached token when it has at least a minute left: returns 1 with
 * *token (free with secret_free), 0 when there is none.  When the file
 * was ignored because of its owner or mode, *why says so (ERR_CONFIG);
 * else why->cls is ERR_NONE.
 */
int	 tokcache_get(const char *path, char **token, struct err *why);
/* Keep token for expires_in seconds (-1: an hour).  Errors: ERR_IO. */
int	 tokcache_put(const char *path, const char *token, long expires_in,
	    struct err *);
void	 tokcache_forget(const char *path);
/*
 * Whether a cache file (absent, or there) and its folder may be trusted:
 * they belong to the user and others can neither write them nor, for the
 * file, read them.  -1 with why (ERR_CONFIG, naming the cache as name)
 * when not.
 */
int	 cache_trusted(const char *path, const char *name, struct err *why);
/*
 * Take the account's refresh lock (PATH.lock), waiting at most
 * timeout_ms.  Returns the lock's descriptor.  Errors: ERR_TEMP when
 * another process holds it that long, ERR_IO when it cannot be made.
 */
int	 tokcache_lock(const char *path, int timeout_ms, struct err *);
void	 tokcache_unlock(int fd);

#endif
