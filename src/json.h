#ifndef OUTBOX_JSON_H
#define OUTBOX_JSON_H

#include <stddef.h>

/*
 * The members of one JSON object (RFC 8259), as a token endpoint or a
 * SASL bearer error sends it.  Strict: the whole input must be one
 * object with nothing but white space after it; nesting is bounded.
 * Strings are unescaped (\uXXXX to UTF-8); a string holding a NUL is
 * refused.  Only the top level's members are kept.
 */
struct json_member {
	char	*key;
	char	*str;		/* a string value, else NULL */
	int	 is_num;	/* a number; num holds it, clamped */
	long	 num;
};

struct json {
	struct json_member	*m;
	size_t			 n;
};

/* Returns 0, or -1 when the input is not one well-formed object. */
int	 json_parse(const char *, size_t, struct json *);
/* The string value of key, or NULL (absent or not a string). */
const char *json_str(const struct json *, const char *key);
/* The number value of key, or def. */
long	 json_num(const struct json *, const char *key, long def);
/* Free, wiping the strings (they may be tokens). */
void	 json_free(struct json *);

#endif
