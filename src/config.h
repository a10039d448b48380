#ifndef OUTBOX_CONFIG_H
#define OUTBOX_CONFIG_H

#include "err.h"

/*
 * The configuration: msmtprc syntax, one table row per command.  Values are
 * kept as validated strings with the place they came from, so that -P can
 * say "port = 587 (~/.config/outbox/config:12)".
 */
enum cfkey {
	CF_HOST, CF_PORT, CF_SOURCE_IP, CF_PROXY_HOST, CF_PROXY_PORT,
	CF_SOCKET, CF_TIMEOUT, CF_SESSION_TIMEOUT, CF_PROTOCOL, CF_DOMAIN,
	CF_AUTH, CF_USER, CF_PASSWORD, CF_PASSWORDEVAL, CF_NTLMDOMAIN,
	CF_TLS, CF_TLS_STARTTLS, CF_TLS_TRUST_FILE, CF_TLS_CRL_FILE,
	CF_TLS_FINGERPRINT, CF_TLS_KEY_FILE, CF_TLS_CERT_FILE,
	CF_TLS_CERTCHECK, CF_TLS_MIN_DH_PRIME_BITS, CF_TLS_PRIORITIES,
	CF_TLS_HOST_OVERRIDE,
	CF_FROM, CF_FROM_FULL_NAME, CF_AUTO_FROM, CF_MAILDOMAIN,
	CF_ALLOW_FROM_OVERRIDE, CF_DSN_NOTIFY, CF_DSN_RETURN,
	CF_SET_FROM_HEADER, CF_SET_DATE_HEADER, CF_SET_MSGID_HEADER,
	CF_REMOVE_BCC_HEADERS, CF_SET_TO_HEADER,
	CF_LOGFILE, CF_LOGFILE_TIME_FORMAT, CF_SYSLOG, CF_ALIASES,
	CF_QUEUE, CF_QUEUE_LIFETIME, CF_QUEUE_RETRY, CF_QUEUE_RETRY_MAX,
	CF_QUEUE_WARN, CF_ALL_OR_NOTHING, CF_DESKTOP_NOTIFY, CF_LINGER,
	CF_OAUTH_TOKEN_URL, CF_OAUTH_CLIENT_ID, CF_OAUTH_CLIENT_SECRET,
	CF_OAUTH_TLS_TRUST_FILE, CF_OAUTH_PROVIDER, CF_OAUTH_TENANT,
	CF_OAUTH_AUTH_URL, CF_OAUTH_DEVICE_URL, CF_OAUTH_SCOPE, CF_OAUTH_FLOW,
	CF_NKEYS
};

/* Where a value came from: a file and line, the command line, or a default. */
struct origin {
	const char	*file;		/* NULL: not set */
	int		 line;		/* 0: not from a file */
};

struct account {
	char		*name;
	struct origin	 decl;
	char		*val[CF_NKEYS];
	long		 num[CF_NKEYS];	/* the value typed, when it is set */
	struct origin	 org[CF_NKEYS];
};

/* The typed values of the commands that choose among words. */
enum cf_auto { CF_AUTO_AUTO, CF_AUTO_ON, CF_AUTO_OFF };	/* set_*_header */
enum cf_queue { CF_QUEUE_OFF, CF_QUEUE_ON, CF_QUEUE_ALWAYS };	/* queue */
enum cf_protocol { CF_PROTO_SMTP, CF_PROTO_LMTP };		/* protocol */
enum cf_set_to { CF_TO_OFF, CF_TO_ON, CF_TO_UNDISCLOSED };	/* set_to_header */

struct config {
	struct account	**acct;
	size_t		  nacct;
	struct account	 *defaults;	/* what the defaults sections set */
	char		**files;	/* every file read, for origins */
	size_t		  nfiles;
	const char	 *userfile;	/* the user file used, or NULL */
	/*
	 * When set, each error is handed here ("FILE:LINE: message") and
	 * parsing goes on, so that all of them are seen; the load still
	 * fails at the end.
	 */
	void		(*on_error)(void *, const struct err *);
	void		 *on_error_ctx;
	int		  nerrors;
};

extern const struct origin ORIGIN_CMDLINE;
extern const struct origin ORIGIN_DEFAULT;

/*
 * Read the system file and then the user's file (path, or the usual places
 * when NULL).  Errors: ERR_CONFIG with "FILE:LINE: message", or naming a
 * file that cannot be read.
 */
int	 config_load(struct config *, const char *path, struct err *);
/* An empty config (config_load expects one). */
void	 config_init(struct config *);
/* Parse one file into cfg (used by config_load and by tests/fuzzers). */
int	 config_parse_file(struct config *, const char *path, int system,
	    struct err *);
void	 config_free(struct config *);
/* Overwrite the secrets the accounts hold (a holder keeps none). */
void	 config_wipe_secrets(struct config *);

/* The account called name, or NULL. */
struct account *config_find(const struct config *, const char *name);
/* The first account whose from matches addr (wildcards, +detail), or NULL. */
struct account *config_find_by_from(const struct config *, const char *addr);
/* An empty account (for runs with no config file and --host). */
struct account *account_new(const char *name);
void	 account_free(struct account *);

/*
 * Set a value as the config command would.  An empty argument unsets a
 * file name or an optional value.  Errors: ERR_CONFIG on a bad value.
 */
int	 account_set(struct account *, const char *cmd, const char *val,
	    const struct origin *, struct err *);
/*
 * Fill in defaults and check the account can be used: a host is given,
 * values agree with each other.  Errors: ERR_CONFIG naming the account.
 */
int	 account_resolve(struct account *, struct err *);

/*
 * A value as given (NULL: not set); whether it is set and not off; as a
 * number (a count, seconds, a port; 0 when not set or off); as one of
 * the cf_* enums above.  Values are typed once, when they are set.
 */
const char	*acct_str(const struct account *, enum cfkey);
int		 acct_on(const struct account *, enum cfkey);
int		 acct_int(const struct account *, enum cfkey);
int		 acct_enum(const struct account *, enum cfkey);
/*
 * A duration (queue_retry, queue_retry_max, queue_warn, queue_lifetime) in
 * seconds; -1 when it is off or not set.  Durations are checked when the
 * config is read and kept as written with their unit ("30s", "5m", "4h",
 * "5d"; a bare queue_lifetime is days and becomes "5d"), so -P shows them
 * as the user wrote them.
 */
long long	 acct_seconds(const struct account *, enum cfkey);
const char	*cfkey_name(enum cfkey);
/* Describe where a value came from, e.g. "config:12" or "default". */
void		 origin_str(const struct origin *, char *, size_t);

/* Is this host name or address the local machine's loopback? */
int		 host_is_loopback(const char *);

#endif
