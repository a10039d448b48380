#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "conn.h"
#include "json.h"
#include "oauth.h"

#define RESPONSE_MAX	65536
#define HEADERS_MAX	100

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
	char		*end;
	long		 port = 443;

	if (strncasecmp(u, "https://", 8) != 0)
		return err_set(e, ERR_CONFIG, "the OAuth endpoint must be an "
		    "https:// URL, not '%.200s'", u);
	h = u + 8;
	slash = strchr(h, '/');
	hl = slash ? (size_t)(slash - h) : strlen(h);
	if ((colon = memchr(h, ':', hl)) != NULL) {
		port = strtol(colon + 1, &end, 10);
		if (end != h + hl || end == colon + 1)
			port = -1;
		hl = (size_t)(colon - h);
	}
	if (hl == 0 || hl >= sizeof(out->host) || port <= 0 || port > 65535 ||
	    memchr(h, '@', hl) != NULL || strpbrk(u, " \t\r\n") != NULL)
		return err_set(e, ERR_CONFIG, "bad host or port in the OAuth "
		    "endpoint '%.200s'", u);
	memcpy(out->host, h, hl);
	out->host[hl] = '\0';
	out->port = (int)port;
	if (snprintf(out->path, sizeof(out->path), "%s", slash ? slash : "/") >=
	    (int)sizeof(out->path))
		return err_set(e, ERR_CONFIG, "the OAuth endpoint's URL is too "
		    "long");
	return 0;
}

void
oauth_form_add(struct buf *b, const char *k, const char *v)
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
	if (rv == -1 || conn_flush(c, e) == -1)
		return -1;
	while ((n = conn_read(c, chunk, sizeof(chunk), e)) > 0) {
		if (resp->len + (size_t)n > RESPONSE_MAX) {
			explicit_bzero(chunk, sizeof(chunk));
			return err_set(e, ERR_PROTO, "the answer is larger "
			    "than %d bytes", RESPONSE_MAX);
		}
		buf_add(resp, chunk, (size_t)n);
	}
	explicit_bzero(chunk, sizeof(chunk));
	return n == -1 ? -1 : 0;
}

/* The end of the line that starts at p (its CR), or NULL. */
static const char *
line_end(const char *p, const char *end)
{
	const char *q = p;

	while (q + 1 < end && !(q[0] == '\r' && q[1] == '\n'))
		q++;
	return q + 1 < end ? q : NULL;
}

static int
dechunk(const char *p, const char *end, struct buf *body, struct err *e)
{
	const char	*le;
	char		*x;
	unsigned long	 n;

	for (;;) {
		if ((le = line_end(p, end)) == NULL || !isxdigit((unsigned
		    char)*p))
			return err_set(e, ERR_PROTO, "bad chunked encoding");
		n = strtoul(p, &x, 16);
		if (x > le || (x != le && *x != ';') ||
		    n > (unsigned long)(end - le))
			return err_set(e, ERR_PROTO, "bad chunked encoding");
		p = le + 2;
		if (n == 0)
			return 0;
		if ((size_t)(end - p) < n + 2 || p[n] != '\r' || p[n + 1] != '\n')
			return err_set(e, ERR_PROTO, "bad chunked encoding");
		buf_add(body, p, n);
		p += n + 2;
	}
}

/* A header "Name: value": is it name?  *val gets the trimmed value. */
static int
header_is(const char *p, const char *le, const char *name, const char **val,
    size_t *vlen)
{
	size_t	n = strlen(name);

	if ((size_t)(le - p) <= n || strncasecmp(p, name, n) != 0 ||
	    p[n] != ':')
		return 0;
	p += n + 1;
	while (p < le && (*p == ' ' || *p == '\t'))
		p++;
	while (le > p && (le[-1] == ' ' || le[-1] == '\t'))
		le--;
	*val = p;
	*vlen = (size_t)(le - p);
	return 1;
}

int
oauth_http_parse(const char *r, size_t len, int *status, struct buf *body,
    char *location, size_t loclen, struct err *e)
{
	const char	*p = r, *end = r + len, *le, *v;
	size_t		 vl;
	long		 clen = -1;
	int		 chunked = 0, nh = 0;

	if (loclen > 0)
		location[0] = '\0';
	if ((le = line_end(p, end)) == NULL || le - p < 12 ||
	    strncmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[7]) ||
	    p[8] != ' ' || !isdigit((unsigned char)p[9]) ||
	    !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]) ||
	    (le - p > 12 && p[12] != ' '))
		return err_set(e, ERR_PROTO, "the answer is not HTTP");
	*status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (*status < 100)
		return err_set(e, ERR_PROTO, "the answer is not HTTP");
	for (p = le + 2; ; p = le + 2) {
		if ((le = line_end(p, end)) == NULL || ++nh > HEADERS_MAX)
			return err_set(e, ERR_PROTO, "the answer's headers are "
			    "cut short or too many");
		if (le == p)
			break;
		if (header_is(p, le, "Content-Length", &v, &vl)) {
			if (vl == 0 || vl > 9 || strspn(v, "0123456789") < vl)
				return err_set(e, ERR_PROTO, "bad "
				    "Content-Length");
			clen = strtol(v, NULL, 10);
		} else if (header_is(p, le, "Transfer-Encoding", &v, &vl))
			chunked = vl == 7 && strncasecmp(v, "chunked", 7) == 0;
		else if (header_is(p, le, "Location", &v, &vl) && loclen > 0)
			sanitize(location, loclen, v, vl);
	}
	p = le + 2;
	if (chunked)
		return dechunk(p, end, body, e);
	if (clen >= 0) {
		if (clen > end - p)
			return err_set(e, ERR_PROTO, "the answer is cut short");
		end = p + clen;
	}
	buf_add(body, p, (size_t)(end - p));
	return 0;
}

/* POST the form; the JSON answer in j. */
static int
post(const struct oauth_client *cl, const char *url, const struct buf *form,
    int *status, struct json *j, struct err *e)
{
	struct conn_params	 cp;
	struct tls_params	 tls;
	struct conn		*c = NULL;
	struct buf		 resp = { 0 }, body = { 0 };
	char			 loc[200];
	struct url		 u;
	int			 rv = -1;

	memset(j, 0, sizeof(*j));
	if (parse_url(url, &u, e) == -1)
		return -1;
	memset(&cp, 0, sizeof(cp));
	cp.host = u.host;
	cp.port = u.port;
	cp.proxy_host = cl->proxy_host;
	cp.proxy_port = cl->proxy_port;
	cp.timeout_ms = cl->timeout_ms;
	cp.session_ms = cl->timeout_ms;
	memset(&tls, 0, sizeof(tls));
	tls.hostname = u.host;
	tls.certcheck = 1;
	tls.trust_file = cl->trust_file;
	if (conn_open(&c, &cp, e) == 0 && conn_starttls(c, &tls, e) == 0 &&
	    exchange(c, &u, form, &resp, e) == 0 &&
	    oauth_http_parse(resp.p ? resp.p : "", resp.len, status, &body,
	    loc, sizeof(loc), e) == 0) {
		if (*status >= 300 && *status < 400)
			err_set(e, ERR_PROTO, "HTTP %d: a redirect%s%s, which "
			    "outbox does not follow; give the endpoint's own "
			    "URL", *status, loc[0] ? " to " : "", loc);
		else if (*status >= 500)
			err_set(e, ERR_TEMP, "HTTP %d", *status);
		else if (json_parse(body.p ? body.p : "", body.len, j) == -1)
			err_set(e, ERR_PROTO, "HTTP %d with an answer that is "
			    "not a JSON object", *status);
		else
			rv = 0;
	}
	if (rv == -1)
		err_prefix(e, "%s", u.host);
	conn_close(c);
	buf_wipe(&resp);
	buf_wipe(&body);
	return rv;
}

static void
form_client(struct buf *f, const struct oauth_client *cl)
{
	oauth_form_add(f, "client_id", cl->client_id);
	if (cl->client_secret != NULL)
		oauth_form_add(f, "client_secret", cl->client_secret);
}

/* The endpoint's refusal (RFC 6749 section 5.2) as an error. */
static int
refusal(int status, const struct json *j, struct oauth_tokens *t,
    const char *host, struct err *e)
{
	const char	*code = json_str(j, "error");
	const char	*desc = json_str(j, "error_description");
	char		 cdesc[200];
	enum err_class	 cls = ERR_AUTH;

	sanitize(t->error, sizeof(t->error), code ? code : "",
	    code ? strlen(code) : 0);
	sanitize(cdesc, sizeof(cdesc), desc ? desc : "",
	    desc ? strlen(desc) : 0);
	if (strcmp(t->error, "invalid_grant") == 0 ||
	    strcmp(t->error, "expired_token") == 0 ||
	    strcmp(t->error, "temporarily_unavailable") == 0)
		cls = ERR_TEMP;
	else if (strcmp(t->error, "invalid_client") == 0 ||
	    strcmp(t->error, "unauthorized_client") == 0 ||
	    strcmp(t->error, "invalid_scope") == 0 ||
	    strcmp(t->error, "unsupported_grant_type") == 0)
		cls = ERR_CONFIG;
	return err_set(e, cls, "%s: the token endpoint refused: HTTP %d "
	    "%s%s%s", host, status, t->error[0] ? t->error : "(no error code)",
	    cdesc[0] ? ": " : "", cdesc);
}

static const char *
url_host(const char *url, char *buf, size_t len)
{
	struct url	u;
	struct err	e;

	if (parse_url(url, &u, &e) == -1)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%s", u.host);
	return buf;
}

/* Token request: the form is wiped here. */
static int
token_request(const struct oauth_client *cl, const char *url, struct buf *f,
    struct oauth_tokens *t, struct err *e)
{
	struct json	 j;
	const char	*at, *rt;
	char		 host[256];
	int		 status, rv;

	memset(t, 0, sizeof(*t));
	t->expires_in = -1;
	rv = post(cl, url, f, &status, &j, e);
	buf_wipe(f);
	if (rv == -1)
		return -1;
	url_host(url, host, sizeof(host));
	if (status != 200) {
		refusal(status, &j, t, host, e);
		json_free(&j);
		return -1;
	}
	at = json_str(&j, "access_token");
	rt = json_str(&j, "refresh_token");
	if (at == NULL || *at == '\0' || has_ctl(at) || strchr(at, ' ') ||
	    (rt != NULL && (*rt == '\0' || has_ctl(rt)))) {
		json_free(&j);
		return err_set(e, ERR_PROTO, "%s: the token endpoint's answer "
		    "has no usable access_token", host);
	}
	t->access = xstrdup(at);
	t->refresh = rt != NULL ? xstrdup(rt) : NULL;
	t->expires_in = json_num(&j, "expires_in", -1);
	json_free(&j);
	return 0;
}

int
oauth_refresh(const struct oauth_client *cl, const char *url,
    const char *refresh, struct oauth_tokens *t, struct err *e)
{
	struct buf	f = { 0 };

	oauth_form_add(&f, "grant_type", "refresh_token");
	oauth_form_add(&f, "refresh_token", refresh);
	form_client(&f, cl);
	return token_request(cl, url, &f, t, e);
}

int
oauth_client_credentials(const struct oauth_client *cl, const char *url,
    const char *scope, struct oauth_tokens *t, struct err *e)
{
	struct buf	f = { 0 };

	oauth_form_add(&f, "grant_type", "client_credentials");
	form_client(&f, cl);
	if (scope != NULL)
		oauth_form_add(&f, "scope", scope);
	return token_request(cl, url, &f, t, e);
}

int
oauth_code_exchange(const struct oauth_client *cl, const char *url,
    const char *code, const char *verifier, const char *redirect,
    struct oauth_tokens *t, struct err *e)
{
	struct buf	f = { 0 };

	oauth_form_add(&f, "grant_type", "authorization_code");
	oauth_form_add(&f, "code", code);
	oauth_form_add(&f, "redirect_uri", redirect);
	oauth_form_add(&f, "code_verifier", verifier);
	form_client(&f, cl);
	return token_request(cl, url, &f, t, e);
}

static char *
dup_clean(const char *s)
{
	return s != NULL && *s != '\0' && !has_ctl(s) ? xstrdup(s) : NULL;
}

int
oauth_device_start(const struct oauth_client *cl, const char *url,
    const char *scope, struct oauth_device *d, struct err *e)
{
	struct buf		 f = { 0 };
	struct json		 j;
	struct oauth_tokens	 t;
	char			 host[256];
	int			 status, rv;

	memset(d, 0, sizeof(*d));
	form_client(&f, cl);
	if (scope != NULL)
		oauth_form_add(&f, "scope", scope);
	rv = post(cl, url, &f, &status, &j, e);
	buf_wipe(&f);
	if (rv == -1)
		return -1;
	url_host(url, host, sizeof(host));
	if (status != 200) {
		memset(&t, 0, sizeof(t));
		refusal(status, &j, &t, host, e);
		json_free(&j);
		return -1;
	}
	d->device_code = dup_clean(json_str(&j, "device_code"));
	d->user_code = dup_clean(json_str(&j, "user_code"));
	/* Google says verification_url. */
	d->verification_uri = dup_clean(json_str(&j, "verification_uri"));
	if (d->verification_uri == NULL)
		d->verification_uri = dup_clean(json_str(&j,
		    "verification_url"));
	d->verification_uri_complete = dup_clean(json_str(&j,
	    "verification_uri_complete"));
	d->interval = json_num(&j, "interval", 5);
	d->expires_in = json_num(&j, "expires_in", 900);
	json_free(&j);
	if (d->interval < 1 || d->interval > 600)
		d->interval = 5;
	if (d->expires_in < 1 || d->expires_in > 86400)
		d->expires_in = 900;
	if (d->device_code == NULL || d->user_code == NULL ||
	    d->verification_uri == NULL) {
		oauth_device_free(d);
		return err_set(e, ERR_PROTO, "%s: the device endpoint's answer "
		    "lacks device_code, user_code or verification_uri", host);
	}
	return 0;
}

int
oauth_device_poll(const struct oauth_client *cl, const char *url,
    const char *device_code, long *interval, struct oauth_tokens *t,
    struct err *e)
{
	struct buf	f = { 0 };

	oauth_form_add(&f, "grant_type",
	    "urn:ietf:params:oauth:grant-type:device_code");
	oauth_form_add(&f, "device_code", device_code);
	form_client(&f, cl);
	if (token_request(cl, url, &f, t, e) == 0)
		return 0;
	if (strcmp(t->error, "authorization_pending") == 0)
		return 1;
	if (strcmp(t->error, "slow_down") == 0) {
		*interval += 5;
		return 1;
	}
	if (strcmp(t->error, "expired_token") == 0)
		return err_set(e, ERR_TEMP, "the device code expired before "
		    "the sign-in was finished; run outbox --authorize again");
	if (strcmp(t->error, "access_denied") == 0)
		return err_set(e, ERR_AUTH, "the sign-in was refused "
		    "(access_denied)");
	return -1;
}

void
oauth_tokens_free(struct oauth_tokens *t)
{
	secret_free(t->access);
	secret_free(t->refresh);
	t->access = t->refresh = NULL;
}

void
oauth_device_free(struct oauth_device *d)
{
	secret_free(d->device_code);
	free(d->user_code);
	free(d->verification_uri);
	free(d->verification_uri_complete);
	memset(d, 0, sizeof(*d));
}

static void
b64url(const unsigned char *p, size_t n, char *out, size_t cap)
{
	static const char	a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t			i, o = 0;
	unsigned		v;

	for (i = 0; i + 2 < n && o + 4 < cap; i += 3) {
		v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
		out[o++] = a[v & 63];
	}
	if (n - i == 1 && o + 2 < cap) {
		v = (unsigned)p[i] << 16;
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
	} else if (n - i == 2 && o + 3 < cap) {
		v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
	}
	out[o] = '\0';
}

int
oauth_pkce(char verifier[64], char challenge[64], char state[32],
    struct err *e)
{
	unsigned char	rnd[32], st[16], dig[32];

	if (gnutls_rnd(GNUTLS_RND_KEY, rnd, sizeof(rnd)) < 0 ||
	    gnutls_rnd(GNUTLS_RND_NONCE, st, sizeof(st)) < 0)
		return err_set(e, ERR_SOFTWARE, "no random bytes for PKCE");
	b64url(rnd, sizeof(rnd), verifier, 64);
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, verifier, strlen(verifier),
	    dig) < 0)
		return err_set(e, ERR_SOFTWARE, "SHA-256 failed");
	b64url(dig, sizeof(dig), challenge, 64);
	b64url(st, sizeof(st), state, 32);
	explicit_bzero(rnd, sizeof(rnd));
	return 0;
}

char *
oauth_auth_url(const char *auth_url, const char *client_id,
    const char *redirect, const char *scope, const char *state,
    const char *challenge)
{
	struct buf	q = { 0 };
	char		*u;

	oauth_form_add(&q, "response_type", "code");
	oauth_form_add(&q, "client_id", client_id);
	oauth_form_add(&q, "redirect_uri", redirect);
	if (scope != NULL)
		oauth_form_add(&q, "scope", scope);
	oauth_form_add(&q, "state", state);
	oauth_form_add(&q, "code_challenge", challenge);
	oauth_form_add(&q, "code_challenge_method", "S256");
	u = xasprintf("%s%c%s", auth_url, strchr(auth_url, '?') ? '&' : '?',
	    q.p);
	buf_free(&q);
	return u;
}

int
oauth_listen(int *fd, int *port, struct err *e)
{
	struct sockaddr_in	sa;
	socklen_t		len = sizeof(sa);

	if ((*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return err_sys(e, ERR_OS, "socket");
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(*fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(*fd, 4) == -1 ||
	    getsockname(*fd, (struct sockaddr *)&sa, &len) == -1) {
		close(*fd);
		return err_sys(e, ERR_OS, "cannot listen on 127.0.0.1");
	}
	*port = ntohs(sa.sin_port);
	return 0;
}

static int
hexval(int c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/* The percent-decoded value of key in a query string, or NULL. */
static char *
query_get(const char *q, const char *key)
{
	size_t		 kl = strlen(key);
	const char	*p;
	struct buf	 v = { 0 };

	for (p = q; p != NULL && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 :
	    NULL) {
		if (strncmp(p, key, kl) != 0 || p[kl] != '=')
			continue;
		for (p += kl + 1; *p && *p != '&' && *p != ' '; p++) {
			if (*p == '%' && isxdigit((unsigned char)p[1]) &&
			    isxdigit((unsigned char)p[2])) {
				buf_addc(&v, (char)(hexval((unsigned char)p[1]) *
				    16 + hexval((unsigned char)p[2])));
				p += 2;
			} else
				buf_addc(&v, *p == '+' ? ' ' : *p);
		}
		if (v.p == NULL || has_ctl(v.p)) {
			buf_wipe(&v);
			return NULL;
		}
		return v.p;
	}
	return NULL;
}

static void
http_answer(int c, int status, const char *text)
{
	char	*r;

	r = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n"
	    "%s", status, status == 200 ? "OK" : "Bad Request", strlen(text),
	    text);
	(void)write_all(c, r, strlen(r));
	free(r);
}

/* One request: 1 with the code, 0 not ours, -1 the provider's error. */
static int
redirect_one(int c, const char *state, long long until, char **code,
    struct err *e)
{
	char		 req[8192], *q, *st, *er;
	struct pollfd	 pfd = { c, POLLIN, 0 };
	size_t		 n = 0;
	ssize_t		 r;
	int		 rv = 0;

	while (n < sizeof(req) - 1 && memchr(req, '\n', n) == NULL) {
		if (poll(&pfd, 1, (int)(until - now_ms() > 0 ? until - now_ms() :
		    0)) <= 0 || (r = read(c, req + n, sizeof(req) - 1 - n)) <= 0)
			return 0;
		n += (size_t)r;
	}
	req[n] = '\0';
	if (strncmp(req, "GET /", 5) != 0 || (q = strchr(req, '?')) == NULL) {
		http_answer(c, 400, "outbox: not an authorization redirect\n");
		return 0;
	}
	q[strcspn(q, " \r\n")] = '\0';
	st = query_get(q + 1, "state");
	if (st == NULL || strcmp(st, state) != 0) {
		http_answer(c, 400, "outbox: wrong state; ignored\n");
		free(st);
		return 0;
	}
	free(st);
	if ((*code = query_get(q + 1, "code")) != NULL && **code != '\0') {
		http_answer(c, 200, "outbox: authorized. You may close this "
		    "window.\n");
		rv = 1;
	} else {
		char clean[100];

		secret_free(*code);
		*code = NULL;
		er = query_get(q + 1, "error");
		sanitize(clean, sizeof(clean), er ? er : "no code",
		    strlen(er ? er : "no code"));
		free(er);
		http_answer(c, 400, "outbox: the authorization failed.\n");
		rv = err_set(e, ERR_AUTH, "the provider sent back an error "
		    "instead of a code: %s", clean);
	}
	explicit_bzero(req, sizeof(req));
	return rv;
}

int
oauth_redirect_wait(int fd, const char *state, int timeout_ms, char **code,
    struct err *e)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	long long	 until = now_ms() + timeout_ms;
	int		 c, rv;

	*code = NULL;
	for (;;) {
		long long left = until - now_ms();

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return err_set(e, ERR_TEMP, "no authorization arrived "
			    "within %d s", timeout_ms / 1000);
		if ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		rv = redirect_one(c, state, now_ms() + 10000 < until ?
		    now_ms() + 10000 : until, code, e);
		close(c);
		if (rv != 0)
			return rv == 1 ? 0 : -1;
	}
}
