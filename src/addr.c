#include <ctype.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * Finish one address: the part in angle brackets when there was one, else
 * the text seen (comments already dropped).  Source routes are removed.
 */
static int
finish(struct addrlist *l, struct buf *text, struct buf *angle, int had_angle,
    struct err *e)
{
	const char	*a;
	char		*colon, *addr;
	size_t		 i, start, end;
	int		 q;

	a = had_angle ? (angle->p ? angle->p : "") : (text->p ? text->p : "");
	start = 0;
	end = strlen(a);
	while (start < end && isspace((unsigned char)a[start]))
		start++;
	while (end > start && isspace((unsigned char)a[end - 1]))
		end--;
	if (start == end) {
		buf_reset(text);
		buf_reset(angle);
		return had_angle ? err_set(e, ERR_ADDR, "empty address <>") : 0;
	}
	if (a[start] == '@' && (colon = memchr(a + start, ':', end - start)))
		start = (size_t)(colon - a) + 1;
	for (i = start, q = 0; i < end; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c == '"')
			q = !q;
		if (c < 0x20 || c == 0x7f || (!q && (c == '<' || c == '>' ||
		    isspace(c))))
			return err_set(e, ERR_ADDR, "invalid address '%.*s'",
			    (int)(end - start) > 200 ? 200 : (int)(end - start),
			    a + start);
	}
	addr = xstrndup(a + start, end - start);
	addrlist_add(l, addr);
	free(addr);
	buf_reset(text);
	buf_reset(angle);
	return 0;
}

int
addr_parse_list(struct addrlist *l, const char *s, struct err *e)
{
	struct buf	 text = { 0 }, angle = { 0 };
	int		 depth = 0, quoted = 0, in_angle = 0, had_angle = 0;
	int		 rv = 0;

	for (; *s != '\0' && rv == 0; s++) {
		char c = *s;

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
