#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

#define DEPTH_MAX	16

struct scan {
	const char	*p;
	const char	*end;
};

static int value(struct scan *, int depth, struct json_member *);

static void
skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	    *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
hex4(const char *p, unsigned *out)
{
	unsigned	v = 0;
	int		i;

	for (i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void
put_utf8(struct buf *b, unsigned cp)
{
	if (cp < 0x80)
		buf_addc(b, (char)cp);
	else if (cp < 0x800) {
		buf_addc(b, (char)(0xc0 | cp >> 6));
		buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_addc(b, (char)(0xe0 | cp >> 12));
		buf_addc(b, (char)(0x80 | (cp >> 6 & 0x3f)));
		buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		buf_addc(b, (char)(0xf0 | cp >> 18));
		buf_addc(b, (char)(0x80 | (cp >> 12 & 0x3f)));
		buf_addc(b, (char)(0x80 | (cp >> 6 & 0x3f)));
		buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	}
}

/* \uXXXX, with a surrogate pair; s->p is after the 'u'. */
static int
unicode_escape(struct scan *s, struct buf *b)
{
	unsigned	cp, lo;

	if (s->end - s->p < 4 || hex4(s->p, &cp) == -1)
		return -1;
	s->p += 4;
	if (cp >= 0xd800 && cp < 0xdc00) {
		if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
		    hex4(s->p + 2, &lo) == -1 || lo < 0xdc00 || lo > 0xdfff)
			return -1;
		s->p += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	} else if (cp >= 0xdc00 && cp < 0xe000)
		return -1;
	if (cp == 0)
		return -1;
	put_utf8(b, cp);
	return 0;
}

static int
escape(struct scan *s, struct buf *b)
{
	static const char	from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char		*k;

	if (s->p >= s->end)
		return -1;
	if (*s->p == 'u') {
		s->p++;
		return unicode_escape(s, b);
	}
	if ((k = strchr(from, *s->p)) == NULL || *s->p == '\0')
		return -1;
	buf_addc(b, to[k - from]);
	s->p++;
	return 0;
}

/* A string; s->p is at the opening quote.  out NULL: only skip it. */
static int
string(struct scan *s, char **out)
{
	struct buf	b = { 0 };

	s->p++;
	while (s->p < s->end && *s->p != '"') {
		unsigned char c = (unsigned char)*s->p;

		if (c < 0x20)
			goto bad;
		if (c == '\\') {
			s->p++;
			if (escape(s, &b) == -1)
				goto bad;
			continue;
		}
		buf_addc(&b, (char)c);
		s->p++;
	}
	if (s->p >= s->end)
		goto bad;
	s->p++;
	if (out != NULL)
		*out = b.p != NULL ? b.p : xstrdup("");
	else
		buf_wipe(&b);
	return 0;
bad:
	buf_wipe(&b);
	return -1;
}

static int
number(struct scan *s, struct json_member *m)
{
	const char	*start = s->p;
	long		 v = 0;
	int		 neg = 0, digits = 0;

	if (s->p < s->end && *s->p == '-') {
		neg = 1;
		s->p++;
	}
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		if (v < LONG_MAX / 10)
			v = v * 10 + (*s->p - '0');
		s->p++;
		digits++;
	}
	if (digits == 0 || (digits > 1 && start[neg] == '0'))
		return -1;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		for (digits = 0; s->p < s->end && *s->p >= '0' &&
		    *s->p <= '9'; digits++)
			s->p++;
		if (digits == 0)
			return -1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		for (digits = 0; s->p < s->end && *s->p >= '0' &&
		    *s->p <= '9'; digits++)
			s->p++;
		if (digits == 0)
			return -1;
	}
	if (m != NULL) {
		m->is_num = 1;
		m->num = neg ? -v : v;
	}
	return 0;
}

static int
literal(struct scan *s, const char *word)
{
	size_t	n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* An object's members or an array's values; s->p is at the bracket. */
static int
members(struct scan *s, int depth, struct json *top)
{
	char			 close = *s->p == '{' ? '}' : ']';
	struct json_member	 m;
	int			 first = 1;

	if (depth > DEPTH_MAX)
		return -1;
	s->p++;
	for (;;) {
		skip_ws(s);
		if (s->p < s->end && *s->p == close && first) {
			s->p++;
			return 0;
		}
		memset(&m, 0, sizeof(m));
		if (close == '}') {
			if (s->p >= s->end || *s->p != '"' ||
			    string(s, top ? &m.key : NULL) == -1)
				return -1;
			skip_ws(s);
			if (s->p >= s->end || *s->p++ != ':')
				goto bad;
			skip_ws(s);
		}
		if (value(s, depth, top && close == '}' ? &m : NULL) == -1)
			goto bad;
		if (top != NULL && m.key != NULL) {
			top->m = xrealloc(top->m, (top->n + 1) * sizeof(m));
			top->m[top->n++] = m;
		}
		skip_ws(s);
		first = 0;
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return 0;
		}
		return -1;
	bad:
		free(m.key);
		secret_free(m.str);
		return -1;
	}
}

static int
value(struct scan *s, int depth, struct json_member *m)
{
	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '"':
		return string(s, m ? &m->str : NULL);
	case '{':
	case '[':
		return members(s, depth + 1, NULL);
	case 't':
		return literal(s, "true");
	case 'f':
		return literal(s, "false");
	case 'n':
		return literal(s, "null");
	default:
		return number(s, m);
	}
}

int
json_parse(const char *p, size_t len, struct json *j)
{
	struct scan	s = { p, p + len };

	memset(j, 0, sizeof(*j));
	skip_ws(&s);
	if (s.p >= s.end || *s.p != '{' || members(&s, 0, j) == -1)
		goto bad;
	skip_ws(&s);
	if (s.p != s.end)
		goto bad;
	return 0;
bad:
	json_free(j);
	return -1;
}

static const struct json_member *
find(const struct json *j, const char *key)
{
	size_t	i;

	/* The last one wins, as in most parsers. */
	for (i = j->n; i > 0; i--)
		if (strcmp(j->m[i - 1].key, key) == 0)
			return &j->m[i - 1];
	return NULL;
}

const char *
json_str(const struct json *j, const char *key)
{
	const struct json_member *m = find(j, key);

	return m != NULL ? m->str : NULL;
}

long
json_num(const struct json *j, const char *key, long def)
{
	const struct json_member *m = find(j, key);

	if (m == NULL)
		return def;
	/* Some endpoints send expires_in as a string. */
	if (m->str != NULL && *m->str >= '0' && *m->str <= '9' &&
	    strlen(m->str) < 10)
		return strtol(m->str, NULL, 10);
	return m->is_num ? m->num : def;
}

void
json_free(struct json *j)
{
	size_t	i;

	for (i = 0; i < j->n; i++) {
		free(j->m[i].key);
		secret_free(j->m[i].str);
	}
	free(j->m);
	memset(j, 0, sizeof(*j));
}
