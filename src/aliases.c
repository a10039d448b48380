#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aliases.h"
#include "util.h"

#define ALIAS_DEPTH	8

static int
add(struct aliases *al, const char *name, const char *value)
{
	al->name = xrealloc(al->name, (al->n + 1) * sizeof(char *));
	al->value = xrealloc(al->value, (al->n + 1) * sizeof(char *));
	al->name[al->n] = xstrdup(name);
	al->value[al->n] = xstrdup(value);
	al->n++;
	return 0;
}

int
aliases_load(struct aliases *al, const char *path, struct err *e)
{
	FILE	*fp;
	char	*line = NULL, *p, *colon;
	size_t	 cap = 0;
	ssize_t	 len;
	int	 lineno = 0, rv = 0;

	memset(al, 0, sizeof(*al));
	if ((fp = fopen(path, "re")) == NULL)
		return err_sys(e, ERR_CONFIG, "aliases %s", path);
	while (rv == 0 && (len = getline(&line, &cap, fp)) != -1) {
		lineno++;
		while (len > 0 && isspace((unsigned char)line[len - 1]))
			line[--len] = '\0';
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (*p == '\0' || *p == '#')
			continue;
		if ((colon = strchr(p, ':')) == NULL || colon == p) {
			rv = err_set(e, ERR_CONFIG, "%s:%d: expected 'name: "
			    "address, ...'", path, lineno);
			break;
		}
		*colon = '\0';
		if (has_ctl(p) || has_ctl(colon + 1))
			rv = err_set(e, ERR_CONFIG, "%s:%d: control characters",
			    path, lineno);
		else
			add(al, p, colon + 1);
	}
	free(line);
	fclose(fp);
	if (rv == -1)
		aliases_free(al);
	return rv;
}

static const char *
lookup(const struct aliases *al, const char *name)
{
	size_t	i;

	for (i = 0; i < al->n; i++)
		if (strcasecmp(al->name[i], name) == 0)
			return al->value[i];
	return NULL;
}

static int
expand_one(const struct aliases *al, const char *a, struct addrlist *out,
    int depth, struct err *e)
{
	struct addrlist	 l = { 0 };
	const char	*v;
	size_t		 i;
	int		 rv = 0;

	if (strchr(a, '@') != NULL) {
		if (!addrlist_has(out, a))
			addrlist_add(out, a);
		return 0;
	}
	if (depth > ALIAS_DEPTH)
		return err_set(e, ERR_CONFIG, "aliases: '%s' expands too deeply "
		    "(a loop?)", a);
	if ((v = lookup(al, a)) == NULL && (v = lookup(al, "default")) == NULL) {
		if (!addrlist_has(out, a))
			addrlist_add(out, a);
		return 0;
	}
	if (addr_parse_list(&l, v, e) == -1) {
		e->cls = ERR_CONFIG;
		err_prefix(e, "aliases: %s", a);
		return -1;
	}
	for (i = 0; i < l.n && rv == 0; i++)
		rv = expand_one(al, l.v[i], out, depth + 1, e);
	addrlist_free(&l);
	return rv;
}

int
aliases_expand(const struct aliases *al, struct addrlist *rcpts, struct err *e)
{
	struct addrlist	out = { 0 };
	size_t		i;

	for (i = 0; i < rcpts->n; i++) {
		if (expand_one(al, rcpts->v[i], &out, 0, e) == -1) {
			addrlist_free(&out);
			return -1;
		}
	}
	addrlist_free(rcpts);
	*rcpts = out;
	return 0;
}

void
aliases_free(struct aliases *al)
{
	size_t	i;

	for (i = 0; i < al->n; i++) {
		free(al->name[i]);
		free(al->value[i]);
	}
	free(al->name);
	free(al->value);
	memset(al, 0, sizeof(*al));
}
