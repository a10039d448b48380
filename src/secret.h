#ifndef OUTBOX_SECRET_H
#define OUTBOX_SECRET_H

#include "err.h"

/*
 * Passwords.  This module alone handles secrets: it finds the password for
 * an account and hands it over in memory that the caller wipes with
 * secret_free().  libsecret (and GLib with it) is loaded only when the
 * keyring is actually asked.
 */
struct secret_query {
	const char	*account;
	const char	*host;
	int		 port;
	const char	*user;
	const char	*password;	/* the config's password, or NULL */
	const char	*passwordeval;	/* a command, or NULL */
	int		 eval_timeout;	/* seconds */
};

enum secret_source {
	SECRET_NONE, SECRET_CONFIG, SECRET_EVAL, SECRET_KEYRING, SECRET_PROMPT
};

/*
 * Find the password: config, then passwordeval, then the keyring, then a
 * prompt on the terminal.  Errors: ERR_TEMP when passwordeval fails or the
 * keyring cannot be reached (try again later); ERR_CONFIG when there is no
 * password anywhere (the message says where outbox looked).
 */
int	 secret_get(const struct secret_query *, char **pw,
	    enum secret_source *, struct err *);
/*
 * Store the password in the keyring under outbox's schema (host, port,
 * service smtp, user).  Errors: ERR_TEMP naming the keyring's trouble.
 */
int	 secret_store(const struct secret_query *, const char *pw,
	    struct err *);
/* Remove outbox's item: 0 removed, 1 there was none. */
int	 secret_forget(const struct secret_query *, struct err *);
/*
 * SCRAM's salted password, kept beside a keyring password: RFC 5802
 * (section 5.1) lets a client keep it for one salt and iteration count,
 * and it spares the PBKDF2 rounds.  One item per account (host, port,
 * user) and hash ("SCRAM-SHA-256" or "SCRAM-SHA-1"), for one salt
 * (base64) and count: a new one replaces it.  The item also holds a check of the password it was made from
 * (HMAC-SHA-256 keyed with the password), so that a key kept for another
 * password is never used: secret_scram_get drops it instead.
 *
 * secret_scram_get: 0 and the key (hex, NUL-terminated) in key, 1 when
 * none fits; -1 with ERR_TEMP when the keyring cannot be read.
 * secret_scram_put stores one (a salt longer than SECRET_SALT_MAX is not
 * kept); secret_scram_drop removes every key kept for the account.
 * Errors: ERR_TEMP naming the keyring's trouble.
 */
#define SECRET_SALT_MAX	256
#define SECRET_KEY_MAX	65	/* the longest key in hex, with its NUL */
struct secret_scram {
	const char	*hash;
	const char	*salt;
	unsigned long	 iter;
};
int	 secret_scram_get(const struct secret_query *, const char *pw,
	    const struct secret_scram *, char key[SECRET_KEY_MAX], struct err *);
int	 secret_scram_put(const struct secret_query *, const char *pw,
	    const struct secret_scram *, const char *key, struct err *);
int	 secret_scram_drop(const struct secret_query *, struct err *);
/*
 * Read a new password: from the terminal without echo when stdin is one,
 * else one line of stdin.  Errors: ERR_USAGE for an empty one.
 */
int	 secret_read_new(const struct secret_query *, char **pw, struct err *);
/* Which source secret_get would try first, without asking it; for -P. */
const char *secret_source_name(enum secret_source);
enum secret_source secret_planned(const struct secret_query *);

/*
 * Without a session bus address (cron, ssh, services), point
 * DBUS_SESSION_BUS_ADDRESS at the user's bus socket when it exists and is
 * theirs ($XDG_RUNTIME_DIR/bus, or /run/user/UID/bus).  1 if there is a
 * session bus to try.
 */
int	 session_bus_find(void);

#endif
