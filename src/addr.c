#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "util.h"

void
addrlist_add(struct addrlist *l, const char *a)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = xstrdup(a);
}

int
addrlist_has(const struct addrlist *l, const char *a)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], a) == 0)
			return 1;
	return 0;
}

void
addrlist_free(struct addrlist *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int
addr_is_utf8(const char *a)
{
	for (; *a; a++)
		if ((unsigned char)*a >= 0x80)
			return 1;
	return 0;
}

#define ADDR_MAX	254	/* RFC 5321 4.5.3.1.3, less the brackets */

/*
 * Is a[0..n) an address that can go between angle brackets in MAIL or
 * RCPT as it is?  Quoted strings may hold spaces and escaped pairs;
 * outside them no space, quote pair, bracket or separator; nowhere a
 * control character, '<' or '>'.  So no text can close the path early
 * and smuggle parameters after it.
 */
static int
valid_path(const char *a, size_t n)
{
	size_t	i;
	int	q = 0;

	if (n == 0 || n > ADDR_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c < 0x20 || c == 0x7f || c == '<' || c == '>')
			return 0;
		/* A domain literal, user@[192.0.2.1] or [IPv6:...], ends it. */
		if (!q && c == '[' && i > 0 && a[i - 1] == '@') {
			if (a[n - 1] != ']' || n - i < 3)
				return 0;
			for (i++; i < n - 1; i++)
				if (!isalnum((unsigned char)a[i]) &&
				    a[i] != ':' && a[i] != '.')
					return 0;
			return 1;
		}
		if (q && c == '\\') {
			if (++i == n || (unsigned char)a[i] < 0x20 ||
			    a[i] == 0x7f || a[i] == '<' || a[i] == '>')
				return 0;
		} else if (c == '"')
			q = !q;
		else if (!q && (isspace(c) || c == '\\' || c == '(' ||
		    c == ')' || c == ',' || c == ';' || c == ':' || c == '['))
			return 0;
	}
	return !q;
}

/*
 * Finish one address: the part in angle brackets when there was one, else
 * the text seen (comments already dropped).  A source route
 * ("@a,@b:user@x") is removed; it holds no quotes.
 */
static int
finish(struct addrlist *l, struct buf *text, struct buf *angle, int had_angle,
    struct err *e)
{
	const char	*a;
	size_t		 start, end, route;
	int		 rv = 0;

	a = had_angle ? (angle->p ? angle->p : "") : (text->p ? text->p : "");
	start = 0;
	end = strlen(a);
	while (start < end && isspace((unsigned char)a[start]))
		start++;
	while (end > start && isspace((unsigned char)a[end - 1]))
		end--;
	if (start == end) {
		if (had_angle)
			rv = err_set(e, ERR_ADDR, "empty address <>");
		goto out;
	}
	if (a[start] == '@') {
		route = start + strcspn(a + start, ":\"");
		if (route >= end || a[route] != ':' || route + 1 == end) {
			rv = err_set(e, ERR_ADDR, "invalid source route in '%.*s'",
			    (int)(end - start) > 200 ? 200 : (int)(end - start),
			    a + start);
			goto out;
		}
		start = route + 1;
	}
	if (!valid_path(a + start, end - start)) {
		rv = err_set(e, ERR_ADDR, "invalid address '%.*s'",
		    (int)(end - start) > 200 ? 200 : (int)(end - start),
		    a + start);
		goto out;
	}
	{
		char *addr = xstrndup(a + start, end - start);

		addrlist_add(l, addr);
		free(addr);
	}
out:
	buf_reset(text);
	buf_reset(angle);
	return rv;
}

int
addr_parse_list(struct addrlist *l, const char *s, struct err *e)
{
	struct buf	 text = { 0 }, angle = { 0 };
	int		 depth = 0, quoted = 0, in_angle = 0, had_angle = 0;
	int		 literal = 0, rv = 0;

	for (; *s != '\0' && rv == 0; s++) {
		char c = *s;

		/* A domain literal: [IPv6:::1] holds colons that are not groups. */
		if (literal || (c == '[' && depth == 0 && !quoted)) {
			literal = c != ']';
			buf_addc(in_angle ? &angle : &text, c);
			continue;
		}
		if (quoted) {
			buf_addc(in_angle ? &angle : &text, c);
			if (c == '\\' && s[1] != '\0')
				buf_addc(in_angle ? &angle : &text, *++s);
			else if (c == '"')
				quoted = 0;
			continue;
		}
		if (depth > 0) {
			if (c == '\\' && s[1] != '\0')
				s++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		switch (c) {
		case '(':
			depth = 1;
			buf_addc(&text, ' ');
			continue;
		case '"':
			quoted = 1;
			break;
		case '<':
			if (in_angle)
				rv = err_set(e, ERR_ADDR, "nested '<' in "
				    "address");
			in_angle = had_angle = 1;
			buf_reset(&angle);
			continue;
		case '>':
			if (!in_angle)
				rv = err_set(e, ERR_ADDR, "'>' without '<' in "
				    "address");
			in_angle = 0;
			continue;
		case ':':
			if (in_angle)
				break;
			/* A group's display name: drop it. */
			buf_reset(&text);
			continue;
		case ';':
		case ',':
			if (in_angle)
				break;
			rv = finish(l, &text, &angle, had_angle, e);
			had_angle = 0;
			continue;
		}
		buf_addc(in_angle ? &angle : &text, c);
	}
	if (rv == 0 && (quoted || depth > 0 || in_angle))
		rv = err_set(e, ERR_ADDR, "unterminated %s in address list",
		    quoted ? "quoted string" : depth ? "comment" : "'<'");
	if (rv == 0)
		rv = finish(l, &text, &angle, had_angle, e);
	buf_free(&text);
	buf_free(&angle);
	return rv;
}

char *
addr_path(const char *arg, const char *key)
{
	const char	*lt, *gt, *p;
	size_t		 n = strlen(key), route;

	if (strncasecmp(arg, key, n) != 0)
		return NULL;
	arg += n;
	while (*arg == ' ')
		arg++;
	if (*arg != '<' || (gt = strchr(arg, '>')) == NULL)
		return NULL;
	lt = arg;
	p = lt + 1;
	if (p == gt)
		return xstrdup("");
	if (*p == '@') {
		route = strcspn(p, ":\">");
		if (p[route] != ':')
			return NULL;
		p += route + 1;
	}
	if (!valid_path(p, (size_t)(gt - p)))
		return NULL;
	return xstrndup(p, (size_t)(gt - p));
}

/* Where the mailbox being scanned needs its domain, if it does. */
struct qualifier {
	size_t	ins;		/* insert here; NOWHERE: not needed */
	size_t	angle_end;	/* after the last byte of <...>'s address */
	int	has_at, in_angle, has_angle;
};

#define NOWHERE	((size_t)-1)

static void
qualifier_reset(struct qualifier *q)
{
	q->ins = q->angle_end = NOWHERE;
	q->has_at = q->in_angle = q->has_angle = 0;
}

/*
 * Skip a quoted string or a comment that starts at v[i]; returns where it
 * ends, or the end of v when it does not.
 */
static size_t
skip_quoted(const char *v, size_t i)
{
	char	open = v[i], close = open == '(' ? ')' : '"';
	int	depth = 1;

	for (i++; v[i] != '\0'; i++) {
		if (v[i] == '\\' && v[i + 1] != '\0')
			i++;
		else if (open == '(' && v[i] == '(')
			depth++;
		else if (v[i] == close && --depth == 0)
			return i;
	}
	return i;
}

char *
addr_qualify(const char *v, const char *domain)
{
	struct buf		out = { 0 };
	struct qualifier	q;
	size_t			i, done = 0;

	qualifier_reset(&q);
	for (i = 0;; i++) {
		char c = v[i];

		if (c == '\0' || (!q.in_angle && (c == ',' || c == ';'))) {
			if (!q.has_at && q.ins != NOWHERE) {
				buf_add(&out, v + done, q.ins - done);
				buf_addf(&out, "@%s", domain);
				done = q.ins;
			}
			qualifier_reset(&q);
			if (c == '\0')
				break;
			continue;
		}
		if (c == '"' || c == '(' || c == '[') {
			/* A domain literal runs to ']', as the parser reads it. */
			if (c == '[')
				i = strchr(v + i, ']') ? (size_t)(strchr(v + i,
				    ']') - v) : strlen(v);
			else
				i = skip_quoted(v, i);
			if (v[i] == '\0') {
				/* Unterminated: this one is left alone. */
				q.has_at = 1;
				i--;
				continue;
			}
			if (c != '(' && q.in_angle)
				q.angle_end = i + 1;
			else if (c != '(' && !q.has_angle)
				q.ins = i + 1;
			continue;
		}
		if (c == ':' && !q.in_angle && !q.has_at) {
			/* A group's name ends here (an address's domain
			   literal may hold a colon too). */
			qualifier_reset(&q);
		} else if (c == '<' && !q.in_angle) {
			q.in_angle = q.has_angle = 1;
			q.ins = NOWHERE;
		} else if (c == '>' && q.in_angle) {
			q.in_angle = 0;
			q.ins = q.angle_end;
		} else if (c == '@') {
			q.has_at = 1;
		} else if (!isspace((unsigned char)c) && q.in_angle) {
			q.angle_end = i + 1;
		} else if (!isspace((unsigned char)c) && !q.has_angle) {
			q.ins = i + 1;
		}
	}
	if (out.p == NULL)
		return NULL;
	buf_adds(&out, v + done);
	return out.p;
}
