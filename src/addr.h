#ifndef OUTBOX_ADDR_H
#define OUTBOX_ADDR_H

#include <stddef.h>

#include "err.h"

/* A list of bare addresses (addr-spec, no angle brackets). */
struct addrlist {
	char	**v;
	size_t	  n;
};

/*
 * Parse an RFC 5322 address list ("Bob <bob@x>, c@y (Carol), team: d@z;")
 * and append each address to the list.  Comments, display names, quoted
 * strings, groups and source routes are understood.  Errors: ERR_ADDR
 * naming the bad address.
 */
int	 addr_parse_list(struct addrlist *, const char *, struct err *);
/*
 * The path of an SMTP command's argument: "FROM:<addr> PARAMS" with key
 * "FROM:", or "TO:<addr>".  Returns the address (a source route dropped;
 * "" for <>), held to the same rules as addr_parse_list's, or NULL when
 * the argument is malformed.  Free with free().
 */
char	*addr_path(const char *arg, const char *key);
/* Append one address as is (no parsing). */
void	 addrlist_add(struct addrlist *, const char *);
/* Is addr already in the list?  (case-sensitive local part, as RFC 5321) */
int	 addrlist_has(const struct addrlist *, const char *);
void	 addrlist_free(struct addrlist *);
/*
 * An address list's text (a header field's value, folding included) with
 * "@domain" added to each address that has none, as cron writes them:
 * "root (Cron Daemon)", "Cron Daemon <root>".  Everything else is kept
 * byte for byte.  NULL when no address lacks a domain.  Free with free().
 */
char	*addr_qualify(const char *, const char *domain);
/* Does the address hold a byte >= 0x80 (needs SMTPUTF8)? */
int	 addr_is_utf8(const char *);

#endif
