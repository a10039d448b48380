#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oauth.h"
#include "util.h"

#define RESPONSE_MAX	65536

struct url {
	char	host[256];
	int	port;
	char	path[1024];
};

static int
parse_url(const char *u, struct url *out, struct err *e)
{
	const char	*h, *slash, *colon;
	size_t		 hl;

	if (strncmp(u, "https://", 8) != 0)
		return err_set(e, ERR_CONFIG, "oauth_token_url must be an "
		    "https:// URL, not '%s'", u);
	h = u + 8;
	slash = strchr(h, '/');
	hl = slash ? (size_t)(slash - h) : strlen(h);
	colon = memchr(h, ':', hl);
	out->port = colon ? atoi(colon + 1) : 443;
	if (colon)
		hl = (size_t)(colon - h);
	if (hl == 0 || hl >= sizeof(out->host) || out->port <= 0 ||
	    out->port > 65535)
		return err_set(e, ERR_CONFIG, "oauth_token_url: bad host or "
		    "port in '%s'", u);
	memcpy(out->host, h, hl);
	out->host[hl] = '\0';
	snprintf(out->path, sizeof(out->path), "%s", slash ? slash : "/");
	return 0;
}

/* application/x-www-form-urlencoded */
static void
form_add(struct buf *b, const char *k, const char *v)
{
	if (b->len > 0)
		buf_addc(b, '&');
	buf_adds(b, k);
	buf_addc(b, '=');
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			buf_addc(b, (char)c);
		else
			buf_addf(b, "%%%02X", c);
	}
}

/*
 * The string value of "key" in a flat JSON object, unescaped for the
 * simple escapes; NULL when absent.  Tokens hold no exotic characters.
 */
static char *
json_string(const char *body, const char *key)
{
	struct buf	 v = { 0 };
	char		 pat[64];
	const char	*p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if ((p = strstr(body, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	while (isspace((unsigned char)*p))
		p++;
	if (*p++ != ':')
		return NULL;
	while (isspace((unsigned char)*p))
		p++;
	if (*p++ != '"')
		return NULL;
	for (; *p && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		buf_addc(&v, *p);
	}
	if (*p != '"') {
		buf_wipe(&v);
		return NULL;
	}
	return v.p ? v.p : xstrdup("");
}

static long
json_number(const char *body, const char *key)
{
	char		 pat[64];
	const char	*p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if ((p = strstr(body, pat)) == NULL)
		return -1;
	p += strlen(pat);
	while (isspace((unsigned char)*p) || *p == ':' || *p == '"')
		p++;
	return isdigit((unsigned char)*p) ? strtol(p, NULL, 10) : -1;
}

static int
exchange(struct conn *c, const struct url *u, const struct buf *form,
    struct buf *resp, struct err *e)
{
	struct buf	req = { 0 };
	char		chunk[4096];
	ssize_t		n;
	int		rv;

	buf_addf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: outbox\r\n"
	    "Accept: application/json\r\nContent-Type: "
	    "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", u->path, u->host, form->len);
	buf_add(&req, form->p, form->len);
	rv = conn_write(c, req.p, req.len, e);
	buf_wipe(&req);
	if (rv == -1)
		return -1;
	while ((n = conn_read(c, chunk, sizeof(chunk), e)) > 0) {
		if (resp->len + (size_t)n > RESPONSE_MAX)
			return err_set(e, ERR_PROTO, "the token endpoint's "
			    "answer is too large");
		buf_add(resp, chunk, (size_t)n);
	}
	explicit_bzero(chunk, sizeof(chunk));
	return n == -1 ? -1 : 0;
}

/* Status line and body of the HTTP answer; the body may be chunked. */
static int
read_answer(const struct buf *resp, int *status, const char **body,
    struct err *e)
{
	const char	*p = resp->p ? resp->p : "";

	if (sscanf(p, "HTTP/1.%*c %d", status) != 1)
		return err_set(e, ERR_PROTO, "the token endpoint did not answer "
		    "in HTTP");
	if ((*body = strstr(p, "\r\n\r\n")) == NULL)
		return err_set(e, ERR_PROTO, "the token endpoint's answer has "
		    "no body");
	*body += 4;
	return 0;
}

static int
interpret(int status, const char *body, char **token, long *expires,
    struct err *e)
{
	char	*err, *desc, clean[200];

	if (status >= 500)
		return err_set(e, ERR_TEMP, "the token endpoint answered HTTP "
		    "%d", status);
	if (status != 200) {
		err = json_string(body, "error");
		desc = json_string(body, "error_description");
		sanitize(clean, sizeof(clean), desc ? desc : err ? err : "",
		    strlen(desc ? desc : err ? err : ""));
		err_set(e, ERR_AUTH, "the token endpoint refused the refresh "
		    "token: HTTP %d %s%s%s", status, err ? err : "",
		    desc ? ": " : "", desc ? clean : "");
		free(err);
		free(desc);
		return -1;
	}
	if ((*token = json_string(body, "access_token")) == NULL ||
	    **token == '\0' || has_ctl(*token)) {
		secret_free(*token);
		*token = NULL;
		return err_set(e, ERR_PROTO, "the token endpoint's answer has "
		    "no access_token");
	}
	*expires = json_number(body, "expires_in");
	return 0;
}

int
oauth_refresh(const struct oauth_params *p, char **token, long *expires,
    struct err *e)
{
	struct conn_params	 cp;
	struct tls_params	 tls = p->tls;
	struct conn		*c = NULL;
	struct buf		 form = { 0 }, resp = { 0 };
	const char		*body;
	struct url		 u;
	int			 status, rv = -1;

	*token = NULL;
	if (parse_url(p->url, &u, e) == -1)
		return -1;
	cp.host = u.host;
	cp.port = u.port;
	cp.source_ip = NULL;
	cp.timeout_ms = p->timeout_ms;
	cp.session_ms = 0;
	tls.hostname = u.host;
	tls.cache_file = NULL;
	form_add(&form, "grant_type", "refresh_token");
	form_add(&form, "refresh_token", p->refresh_token);
	form_add(&form, "client_id", p->client_id);
	if (p->client_secret != NULL)
		form_add(&form, "client_secret", p->client_secret);
	if (conn_open(&c, &cp, e) == 0 && conn_starttls(c, &tls, e) == 0 &&
	    exchange(c, &u, &form, &resp, e) == 0 &&
	    read_answer(&resp, &status, &body, e) == 0)
		rv = interpret(status, body, token, expires, e);
	if (rv == -1)
		err_prefix(e, "%s", u.host);
	conn_close(c);
	buf_wipe(&form);
	buf_wipe(&resp);
	return rv;
}
