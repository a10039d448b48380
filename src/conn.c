#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "conn.h"
#include "socks.h"
#include "util.h"

#define RBUFSZ		16384
#define WBUFSZ		65536

/* TLS 1.2 is the floor (RFC 8996), whatever tls_priorities says. */
#define DEFAULT_PRIORITIES	"NORMAL"
#define PRIORITY_FLOOR		":-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1:-VERS-DTLS-ALL"

struct conn {
	int				 fd;
	int				 tcp;		/* not a Unix socket */
	int				 timeout_ms;
	int				 final_ms;	/* waiting for the data's reply */
	int				 timed_out;	/* the last read did */
	long long			 session_end;	/* 0: none */
	int				 waits;
	int				 last_was_write;
	int				 tls_up;	/* handshake done */
	gnutls_session_t		 tls;
	gnutls_certificate_credentials_t cred;
	char				*cache_file;	/* resumption */
	char				*policy;	/* what the session was
							   checked against */
	/* Checking the certificate, during the handshake only: */
	const struct tls_params		*tp;
	unsigned int			 vstatus;	/* GnuTLS's verdict */
	struct err			 verr;		/* trust not loaded */
	char				 rbuf[RBUFSZ];
	size_t				 rpos, rlen;
	char				*wbuf;
	size_t				 wlen;
};

static int
set_timeouts(int fd, int ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		return -1;
	return 0;
}

static int
bind_source(int fd, const char *source_ip, int family)
{
	struct addrinfo	 hints, *res;
	int		 rv;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
	if (getaddrinfo(source_ip, NULL, &hints, &res) != 0)
		return -1;
	rv = bind(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return rv;
}

/* Connect with a deadline; the socket is left blocking. */
/*
 * Acknowledge at once what arrives while we wait: a server that writes a
 * reply in two pieces (a TLS ticket, then the reply) would otherwise sit
 * out our delayed ACK behind its Nagle algorithm, 40 ms each time.
 * Linux clears the flag as it goes, so it is set before every wait.
 */
static void
quickack(int fd)
{
#ifdef TCP_QUICKACK
	int	one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#else
	(void)fd;
#endif
}

#define HE_DELAY_MS	250	/* RFC 8305's connection attempt delay */
#define HE_MAX		16	/* attempts in flight at most */

/* Start a non-blocking connect; -1 when it failed at once (errno set). */
static int
connect_start(const struct addrinfo *ai, const struct conn_params *p)
{
	int	fd, saved;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, ai->ai_protocol);
	if (fd == -1)
		return -1;
	if ((p->source_ip == NULL ||
	    bind_source(fd, p->source_ip, ai->ai_family) == 0) &&
	    (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
	    errno == EINPROGRESS))
		return fd;
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* The winner: blocking again, no Nagle, the timeouts set. */
static int
connect_done(int fd, const struct conn_params *p)
{
	int	one = 1;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	/* No Nagle: every flight goes out at once, there is no stall. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (p->timeout_ms > 0)
		set_timeouts(fd, p->timeout_ms);
	return fd;
}

/* The addresses, families interleaved (RFC 8305 section 4). */
static size_t
interleave(struct addrinfo *res, struct addrinfo **out, size_t max)
{
	struct addrinfo	*ai, *fam[2][HE_MAX];
	size_t		 nf[2] = { 0, 0 }, i, n = 0;
	int		 first = res ? res->ai_family : AF_INET6;

	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int k = ai->ai_family != first;

		if (nf[k] < HE_MAX)
			fam[k][nf[k]++] = ai;
	}
	for (i = 0; n < max && (i < nf[0] || i < nf[1]); i++) {
		if (i < nf[0] && n < max)
			out[n++] = fam[0][i];
		if (i < nf[1] && n < max)
			out[n++] = fam[1][i];
	}
	return n;
}

/*
 * Happy Eyeballs: try the addresses in turn, starting the next one 250 ms
 * after the last if that has not connected yet; the first to connect
 * wins.  An address family that does not work costs 250 ms, not a
 * timeout.  Returns the socket, or -1 with errno from the last failure.
 */
static int
connect_race(struct addrinfo *res, const struct conn_params *p)
{
	struct addrinfo	*ais[HE_MAX];
	struct pollfd	 pfd[HE_MAX];
	size_t		 nai = interleave(res, ais, HE_MAX), next = 0, n = 0, i;
	long long	 deadline = p->timeout_ms > 0 ?
	    now_ms() + p->timeout_ms : 0, start_next = 0;
	int		 saved = ETIMEDOUT, fd = -1, soerr;
	socklen_t	 len;

	while (fd == -1 && (next < nai || n > 0)) {
		long long now = now_ms(), wait = -1;

		if (next < nai && (n == 0 || now >= start_next)) {
			if ((pfd[n].fd = connect_start(ais[next++], p)) == -1) {
				saved = errno;
				continue;
			}
			pfd[n++].events = POLLOUT;
			start_next = now + HE_DELAY_MS;
		}
		if (deadline && now >= deadline)
			break;
		if (next < nai)
			wait = start_next - now;
		if (deadline && (wait < 0 || deadline - now < wait))
			wait = deadline - now;
		if (poll(pfd, n, (int)wait) == -1 && errno != EINTR)
			break;
		for (i = 0; i < n && fd == -1;) {
			if (pfd[i].revents == 0) {
				i++;
				continue;
			}
			len = sizeof(soerr);
			soerr = 0;
			getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
			if (soerr == 0)
				fd = pfd[i].fd;
			else {
				saved = soerr;
				close(pfd[i].fd);
				start_next = 0;	/* a failure: the next one now */
			}
			pfd[i] = pfd[--n];	/* done with this attempt */
		}
	}
	for (i = 0; i < n; i++)
		close(pfd[i].fd);
	if (fd == -1) {
		errno = saved;
		return -1;
	}
	return connect_done(fd, p);
}

/*
 * A TCP connection to host:port (what names the connection in errors:
 * "" or "the SOCKS5 proxy ").  Returns the socket, or -1.
 */
static int
open_tcp(const char *name, int portnum, const char *what,
    const struct conn_params *p, struct err *e)
{
	struct addrinfo	 hints, *res;
	char		 port[16], hostbuf[256];
	const char	*host = name;
	int		 rv, fd, saved = 0;

	/* Accept [::1] as an IPv6 literal. */
	if (host[0] == '[' && strlen(host) < sizeof(hostbuf) &&
	    host[strlen(host) - 1] == ']') {
		snprintf(hostbuf, sizeof(hostbuf), "%.*s",
		    (int)strlen(host) - 2, host + 1);
		host = hostbuf;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/*
	 * No AI_ADDRCONFIG: it drops IPv4 on a host whose only IPv4 address
	 * is loopback, and a family that does not work fails fast below.
	 */
	snprintf(port, sizeof(port), "%d", portnum);
	rv = getaddrinfo(host, port, &hints, &res);
	if (rv == EAI_AGAIN)
		return err_set(e, ERR_TEMP, "cannot resolve %s%s: %s (try "
		    "again later)", what, name, gai_strerror(rv));
	if (rv != 0)
		return err_set(e, ERR_HOST, "cannot resolve %s%s: %s", what,
		    name, rv == EAI_SYSTEM ? strerror(errno) : gai_strerror(rv));
	if ((fd = connect_race(res, p)) == -1)
		saved = errno;
	freeaddrinfo(res);
	if (fd == -1)
		return err_set(e, ERR_TEMP, "cannot connect to %s%s:%d: %s",
		    what, name, portnum, strerror(saved));
	return fd;
}

/* A connection to the Unix socket p->socket_path; the socket, or -1. */
static int
open_unix(const struct conn_params *p, struct err *e)
{
	struct sockaddr_un	sun;
	size_t			n = strlen(p->socket_path);
	int			fd, rv, saved;

	memset(&sun, 0, sizeof(sun));
	if (n >= sizeof(sun.sun_path))
		return err_set(e, ERR_CONFIG, "socket %s: the path is longer "
		    "than %zu bytes", p->socket_path, sizeof(sun.sun_path) - 1);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, p->socket_path, n);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return err_sys(e, ERR_OS, "socket");
	/* A full backlog blocks connect(); SO_SNDTIMEO bounds that. */
	if (p->timeout_ms > 0)
		set_timeouts(fd, p->timeout_ms);
	do {
		rv = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	} while (rv == -1 && errno == EINTR);
	if (rv == -1) {
		saved = errno;
		close(fd);
		return err_set(e, ERR_TEMP, "cannot connect to socket %s: %s",
		    p->socket_path, strerror(saved));
	}
	return fd;
}

/*
 * Read n bytes, fewer only at the end of the stream, by the deadline (0:
 * none).  Returns the count, or -1 with errno.  Never reads past n: what
 * follows is the server's.
 */
static ssize_t
read_exact(int fd, unsigned char *buf, size_t n, long long deadline)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	size_t		got = 0;
	ssize_t		r;
	long long	left;

	while (got < n) {
		left = deadline ? deadline - now_ms() : -1;
		if (deadline && left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		quickack(fd);
		r = poll(&pfd, 1, (int)left);
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (r > 0)
			r = recv(fd, buf + got, n - got, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Send one SOCKS message and read the proxy's answer, up to *len bytes. */
static int
socks_step(int fd, const unsigned char *msg, size_t mlen, unsigned char *in,
    size_t *len, long long deadline, struct err *e)
{
	ssize_t	n;

	/* A proxy that hangs up at once may reset: the same, for the user. */
	if (send(fd, msg, mlen, MSG_NOSIGNAL) != (ssize_t)mlen &&
	    errno != ECONNRESET && errno != EPIPE)
		return err_sys(e, ERR_TEMP, "cannot write to it");
	if ((n = read_exact(fd, in, *len, deadline)) == -1 &&
	    errno != ECONNRESET && errno != EPIPE)
		return err_set(e, ERR_TEMP, "no answer: %s", errno ==
		    ETIMEDOUT ? "timed out" : strerror(errno));
	if (n <= 0)
		return err_set(e, ERR_TEMP, "it closed the connection without "
		    "an answer");
	*len = (size_t)n;
	return 0;
}

/*
 * RFC 1928 on fd, connected to the proxy: no authentication, then
 * CONNECT to p->host:p->port.  Two round trips; the proxy resolves the
 * name.  The whole exchange has one timeout, and the session's bounds it
 * too.
 */
static int
socks_connect(int fd, const struct conn_params *p, struct err *e)
{
	unsigned char	 hello[SOCKS5_HELLO_LEN], req[SOCKS5_MSG_MAX];
	unsigned char	 in[SOCKS5_MSG_MAX];
	size_t		 reqlen, len = SOCKS5_CHOICE_LEN, need;
	int		 ms = p->timeout_ms;
	long long	 deadline;
	ssize_t		 n;
	int		 rv;

	if (p->session_ms > 0 && (ms <= 0 || p->session_ms < ms))
		ms = p->session_ms;
	deadline = ms > 0 ? now_ms() + ms : 0;
	if (socks5_request(req, &reqlen, p->host, p->port, e) == -1)
		return -1;
	socks5_hello(hello);
	if (socks_step(fd, hello, sizeof(hello), in, &len, deadline, e) == -1 ||
	    socks5_choice(in, len, e) == -1)
		return -1;
	len = 2;	/* the version and the reply code, first */
	if (socks_step(fd, req, reqlen, in, &len, deadline, e) == -1)
		return -1;
	while ((rv = socks5_reply(in, len, &need, e)) == 1) {
		n = read_exact(fd, in + len, need - len, deadline);
		if (n == -1)
			return err_set(e, ERR_TEMP, "reading its reply: %s",
			    errno == ETIMEDOUT ? "timed out" : strerror(errno));
		if ((size_t)n < need - len)
			return err_set(e, ERR_TEMP, "it closed the connection "
			    "in the middle of its reply");
		len += (size_t)n;
	}
	return rv;
}

/* host:port through the SOCKS5 proxy; the socket, or -1. */
static int
open_proxied(const struct conn_params *p, struct err *e)
{
	int	fd;

	if ((fd = open_tcp(p->proxy_host, p->proxy_port, "the SOCKS5 proxy ",
	    p, e)) == -1)
		return -1;
	if (socks_connect(fd, p, e) == -1) {
		close(fd);
		err_prefix(e, "SOCKS5 proxy %s:%d", p->proxy_host,
		    p->proxy_port);
		return -1;
	}
	return fd;
}

int
conn_open(struct conn **out, const struct conn_params *p, struct err *e)
{
	struct conn	*c;
	int		 fd;

	if (p->socket_path != NULL)
		fd = open_unix(p, e);
	else if (p->proxy_host != NULL)
		fd = open_proxied(p, e);
	else
		fd = open_tcp(p->host, p->port, "", p, e);
	if (fd == -1)
		return -1;
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->tcp = p->socket_path == NULL;
	c->timeout_ms = p->timeout_ms;
	c->session_end = p->session_ms > 0 ? now_ms() + p->session_ms : 0;
	/*
	 * Round trips waited for: the TCP handshake (and the proxy's two),
	 * then the greeting.
	 */
	c->waits = p->socket_path == NULL && p->proxy_host != NULL ? 3 : 1;
	c->last_was_write = 1;
	c->wbuf = xmalloc(WBUFSZ);
	*out = c;
	return 0;
}

/*
 * The trusted certificates, loaded when the server's certificate is to be
 * checked: the system store costs more than the rest of a submission, and
 * a resumed session has no certificate to check.
 */
static int
load_trust(struct conn *c, const struct tls_params *t, struct err *e)
{
	int	rv;

	if (t->trust_file == NULL || strcmp(t->trust_file, "system") == 0)
		rv = gnutls_certificate_set_x509_system_trust(c->cred);
	else
		rv = gnutls_certificate_set_x509_trust_file(c->cred,
		    t->trust_file, GNUTLS_X509_FMT_PEM);
	if (rv <= 0)
		return err_set(e, ERR_CONFIG, "cannot load trusted "
		    "certificates from %s: %s", t->trust_file ?
		    t->trust_file : "the system store", rv == 0 ?
		    "no certificates found" : gnutls_strerror(rv));
	/* After the CAs: GnuTLS keeps only CRLs that one of them signed. */
	if (t->crl_file != NULL && (rv =
	    gnutls_certificate_set_x509_crl_file(c->cred, t->crl_file,
	    GNUTLS_X509_FMT_PEM)) < 0)
		return err_set(e, ERR_CONFIG, "cannot load CRL file "
		    "%s: %s", t->crl_file, gnutls_strerror(rv));
	return 0;
}

/*
 * GnuTLS calls this when the server's certificate has arrived: load the
 * trust, then check the chain, the name (RFC 6125, as RFC 7817 asks) and
 * the serverAuth key purpose, as gnutls_session_set_verify_cert2() would.
 */
static int
verify_peer(gnutls_session_t tls)
{
	struct conn		*c = gnutls_session_get_ptr(tls);
	gnutls_typed_vdata_st	 vd[2];

	c->vstatus = 0;
	if (load_trust(c, c->tp, &c->verr) == -1)
		return -1;
	memset(vd, 0, sizeof(vd));
	vd[0].type = GNUTLS_DT_DNS_HOSTNAME;
	vd[0].data = (unsigned char *)(uintptr_t)c->tp->hostname;
	/* GnuTLS checks the key purpose only when asked. */
	vd[1].type = GNUTLS_DT_KEY_PURPOSE_OID;
	vd[1].data = (unsigned char *)(uintptr_t)GNUTLS_KP_TLS_WWW_SERVER;
	if (gnutls_certificate_verify_peers(tls, vd, 2, &c->vstatus) < 0)
		c->vstatus |= GNUTLS_CERT_INVALID;
	return c->vstatus != 0 ? -1 : 0;
}

static int
load_client_cert(struct conn *c, const struct tls_params *t, struct err *e)
{
	int	rv;

	if (t->cert_file != NULL && (rv =
	    gnutls_certificate_set_x509_key_file(c->cred, t->cert_file,
	    t->key_file, GNUTLS_X509_FMT_PEM)) < 0)
		return err_set(e, ERR_CONFIG, "cannot load client certificate "
		    "%s / key %s: %s", t->cert_file, t->key_file,
		    gnutls_strerror(rv));
	return 0;
}

static int
is_ip_literal(const char *h)
{
	unsigned char	buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, h, buf) == 1 ||
	    inet_pton(AF_INET6, h, buf) == 1 || h[0] == '[';
}

static void
hex_colon(const unsigned char *d, size_t n, char *out, size_t cap)
{
	size_t	i, o = 0;

	for (i = 0; i < n && o + 4 <= cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%02X", i ? ":" : "",
		    d[i]);
	out[o] = '\0';
}

/* sha256// of the SubjectPublicKeyInfo, as HPKP pins it. */
static int
spki_pin(const gnutls_datum_t *der, char *out, size_t cap)
{
	gnutls_x509_crt_t	 crt;
	gnutls_pubkey_t		 pub;
	gnutls_datum_t		 spki = { NULL, 0 }, b64 = { NULL, 0 };
	gnutls_datum_t		 hash;
	unsigned char		 digest[32];
	int			 rv = -1;

	if (gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_pubkey_init(&pub) < 0) {
		gnutls_x509_crt_deinit(crt);
		return -1;
	}
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_pubkey_import_x509(pub, crt, 0) >= 0 &&
	    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki) >= 0 &&
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size,
	    digest) >= 0) {
		hash.data = digest;
		hash.size = sizeof(digest);
		if (gnutls_base64_encode2(&hash, &b64) >= 0) {
			snprintf(out, cap, "sha256//%.*s", (int)b64.size,
			    b64.data);
			rv = 0;
		}
	}
	gnutls_free(spki.data);
	gnutls_free(b64.data);
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crt_deinit(crt);
	return rv;
}

static int
check_fingerprint(struct conn *c, const char *want, struct err *e)
{
	const gnutls_datum_t	*chain;
	unsigned int		 n;
	unsigned char		 digest[32];
	size_t			 dlen = sizeof(digest);
	char			 got[100];

	chain = gnutls_certificate_get_peers(c->tls, &n);
	if (chain == NULL || n == 0)
		return err_set(e, ERR_PROTO, "the server sent no certificate");
	if (strncmp(want, "sha256//", 8) == 0) {
		if (spki_pin(&chain[0], got, sizeof(got)) == -1)
			return err_set(e, ERR_PROTO, "cannot read the server's "
			    "public key");
	} else {
		gnutls_fingerprint(strlen(want) == 95 ? GNUTLS_DIG_SHA256 :
		    GNUTLS_DIG_SHA1, &chain[0], digest, &dlen);
		hex_colon(digest, dlen, got, sizeof(got));
	}
	if (strcasecmp(got, want) != 0)
		return err_set(e, ERR_PROTO, "TLS certificate refused: its "
		    "fingerprint %s does not match tls_fingerprint", got);
	return 0;
}

static int
handshake_error(struct conn *c, int rv, const char *host, struct err *e)
{
	gnutls_datum_t	out;
	unsigned int	status;

	if (c->verr.cls != ERR_NONE) {
		*e = c->verr;
		return -1;
	}
	if ((rv != GNUTLS_E_CERTIFICATE_ERROR &&
	    rv != GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) || c->vstatus == 0)
		return err_set(e, rv == GNUTLS_E_PULL_ERROR ||
		    rv == GNUTLS_E_PUSH_ERROR || rv == GNUTLS_E_PREMATURE_TERMINATION ||
		    rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_TIMEDOUT ? ERR_TEMP :
		    ERR_PROTO, "TLS handshake failed: %s%s", gnutls_strerror(rv),
		    rv == GNUTLS_E_UNEXPECTED_PACKET_LENGTH ||
		    rv == GNUTLS_E_UNEXPECTED_PACKET ? " (the server speaks "
		    "plaintext first: this port wants STARTTLS; set "
		    "'tls_starttls on', or use port 465 for implicit TLS)" : "");
	status = c->vstatus;
	if (status & GNUTLS_CERT_UNEXPECTED_OWNER)
		return err_set(e, ERR_PROTO, "TLS certificate refused: it is "
		    "not valid for the name %s (set tls_host_override if the "
		    "server is known under another name)", host);
	if (status & GNUTLS_CERT_EXPIRED)
		return err_set(e, ERR_PROTO, "TLS certificate refused: it has "
		    "expired");
	if (status & GNUTLS_CERT_NOT_ACTIVATED)
		return err_set(e, ERR_PROTO, "TLS certificate refused: it is "
		    "not valid yet");
	if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
		return err_set(e, ERR_PROTO, "TLS certificate refused: its key "
		    "purpose is not a TLS server's (serverAuth)");
	if (gnutls_certificate_verification_status_print(status,
	    GNUTLS_CRT_X509, &out, 0) < 0)
		return err_set(e, ERR_PROTO, "TLS certificate refused");
	err_set(e, ERR_PROTO, "TLS certificate refused: %.*s (set "
	    "tls_trust_file to the issuing CA, or pin it with tls_fingerprint)",
	    (int)out.size, out.data);
	gnutls_free(out.data);
	return -1;
}

/*
 * What a saved session was checked against.  A session is resumed only
 * under the same policy: one made with tls_certcheck off, another trust
 * file or another pin was never checked the way this run would check it.
 */
static char *
tls_policy(const struct tls_params *t)
{
	return xasprintf("outbox-tls-session 1 certcheck=%d trust=%s crl=%s "
	    "fingerprint=%s host=%s cert=%s priorities=%s", t->certcheck,
	    t->trust_file ? t->trust_file : "system",
	    t->crl_file ? t->crl_file : "", t->fingerprint ? t->fingerprint :
	    "", t->hostname, t->cert_file ? t->cert_file : "",
	    t->priorities ? t->priorities : "");
}

/* Offer the session saved last time, if any (TLS 1.3 resumption). */
static void
cache_load(struct conn *c, const struct tls_params *t)
{
	unsigned char	 buf[8192], *nl;
	size_t		 plen;
	ssize_t		 n;
	int		 fd;

	c->cache_file = xstrdup(t->cache_file);
	c->policy = tls_policy(t);
	plen = strlen(c->policy);
	if ((fd = open(c->cache_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || (size_t)n == sizeof(buf) ||
	    (nl = memchr(buf, '\n', (size_t)n)) == NULL ||
	    (size_t)(nl - buf) != plen || memcmp(buf, c->policy, plen) != 0)
		goto done;
	if ((size_t)n > plen + 1)
		gnutls_session_set_data(c->tls, nl + 1, (size_t)n - plen - 1);
done:
	explicit_bzero(buf, sizeof(buf));
}

/* Keep the session for next time: written whole, readable by us only. */
static void
cache_save(struct conn *c)
{
	gnutls_datum_t	 d = { NULL, 0 };
	char		*tmp;
	int		 fd;

	if (gnutls_session_get_data2(c->tls, &d) < 0 || d.size == 0)
		return;
	tmp = xasprintf("%s.%d", c->cache_file, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd != -1 && write_all(fd, c->policy, strlen(c->policy)) == 0 &&
	    write_all(fd, "\n", 1) == 0 && write_all(fd, d.data, d.size) == 0 &&
	    close(fd) == 0)
		rename(tmp, c->cache_file);
	else {
		if (fd != -1)
			close(fd);
		unlink(tmp);
	}
	free(tmp);
	gnutls_free(d.data);
}

int
conn_starttls(struct conn *c, const struct tls_params *t, struct err *e)
{
	const char	*errpos = NULL;
	char		*prio;
	int		 rv;

	if (c->rlen > c->rpos)
		return err_set(e, ERR_PROTO, "the server sent data before the "
		    "TLS handshake (possible STARTTLS injection attack)");
	if ((rv = gnutls_certificate_allocate_credentials(&c->cred)) < 0 ||
	    (rv = gnutls_init(&c->tls, GNUTLS_CLIENT)) < 0)
		return err_set(e, ERR_SOFTWARE, "TLS: %s", gnutls_strerror(rv));
	if (load_client_cert(c, t, e) == -1)
		return -1;
	prio = xasprintf("%s%s", t->priorities ? t->priorities :
	    DEFAULT_PRIORITIES, PRIORITY_FLOOR);
	rv = gnutls_priority_set_direct(c->tls, prio, &errpos);
	if (rv < 0) {
		err_set(e, ERR_CONFIG, "tls_priorities: invalid at '%.100s': "
		    "%s (outbox uses TLS 1.2 or later only)",
		    errpos ? errpos : prio, gnutls_strerror(rv));
		free(prio);
		return -1;
	}
	free(prio);
	/* msmtp's tls_min_dh_prime_bits; TLS 1.3 and ECDHE never use it. */
	if (t->min_dh_bits > 0)
		gnutls_dh_set_prime_bits(c->tls, (unsigned)t->min_dh_bits);
	gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->cred);
	if (!is_ip_literal(t->hostname))
		gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, t->hostname,
		    strlen(t->hostname));
	if (t->certcheck && t->fingerprint == NULL) {
		c->tp = t;
		gnutls_session_set_ptr(c->tls, c);
		gnutls_session_set_verify_function(c->tls, verify_peer);
	}
	gnutls_transport_set_int(c->tls, c->fd);
	if (t->cache_file != NULL)
		cache_load(c, t);
	if (c->timeout_ms > 0) {
		gnutls_handshake_set_timeout(c->tls, (unsigned)c->timeout_ms);
		gnutls_record_set_timeout(c->tls, (unsigned)c->timeout_ms);
	}
	do {
		if (c->tcp)
			quickack(c->fd);
		rv = gnutls_handshake(c->tls);
	} while (rv < 0 && gnutls_error_is_fatal(rv) == 0);
	c->tp = NULL;
	/* TLS 1.3 is one round trip; 1.2 two (one when resumed). */
	c->waits += gnutls_protocol_get_version(c->tls) == GNUTLS_TLS1_3 ||
	    gnutls_session_is_resumed(c->tls) ? 1 : 2;
	if (rv < 0)
		return handshake_error(c, rv, t->hostname, e);
	c->tls_up = 1;
	if (t->fingerprint != NULL && check_fingerprint(c, t->fingerprint, e))
		return -1;
	return 0;
}

/*
 * GnuTLS answers E_AGAIN after a record that carried no data (a KeyUpdate,
 * a session ticket): read again, but only until the deadline, or a server
 * that drips such records holds the client for ever.
 */
static ssize_t
conn_recv(struct conn *c, void *buf, size_t len, long long deadline)
{
	ssize_t		n;
	long long	left;

	if (c->tls == NULL) {
		do {
			n = recv(c->fd, buf, len, 0);
		} while (n == -1 && errno == EINTR);
		return n;
	}
	for (;;) {
		if (deadline) {
			if ((left = deadline - now_ms()) <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			gnutls_record_set_timeout(c->tls, (unsigned)left);
		} else
			gnutls_record_set_timeout(c->tls, 0);
		n = gnutls_record_recv(c->tls, buf, len);
		if (n != GNUTLS_E_INTERRUPTED && n != GNUTLS_E_AGAIN &&
		    n != GNUTLS_E_REHANDSHAKE)
			break;
	}
	if (n == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;
	if (n == GNUTLS_E_TIMEDOUT) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (n < 0) {
		errno = EPROTO;
		return -1;
	}
	return n;
}

static int
fill(struct conn *c, long long deadline, struct err *e)
{
	struct pollfd	pfd;
	ssize_t		n;
	long long	left;

	if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	if (c->last_was_write) {
		c->waits++;
		c->last_was_write = 0;
	}
	/*
	 * Each line has its deadline, and the session as a whole; the reply
	 * to the data only its own.
	 */
	if (c->session_end && !c->final_ms &&
	    (!deadline || c->session_end < deadline))
		deadline = c->session_end;
	if (c->tls == NULL || gnutls_record_check_pending(c->tls) == 0) {
		left = deadline ? deadline - now_ms() : -1;
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		if (c->tcp)
			quickack(c->fd);
		c->timed_out = (deadline && left <= 0) ||
		    poll(&pfd, 1, (int)left) == 0;
		if (c->timed_out)
			return err_set(e, ERR_TEMP, "timed out waiting for the "
			    "server%s", deadline == c->session_end ?
			    " (session_timeout)" : "");
	}
	n = conn_recv(c, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen,
	    deadline);
	if (n == 0) {
		err_set(e, ERR_TEMP, "the server closed the connection");
		return -2;	/* the end of the stream */
	}
	if (n < 0) {
		c->timed_out = errno == EAGAIN || errno == ETIMEDOUT;
		return err_set(e, ERR_TEMP, "reading from the server: %s",
		    c->timed_out ? "timed out" : strerror(errno));
	}
	c->rlen += (size_t)n;
	return 0;
}

int
conn_timed_out(const struct conn *c)
{
	return c->timed_out;
}

void
conn_final_wait(struct conn *c, int ms)
{
	c->final_ms = ms;
}

int
conn_getline(struct conn *c, char *buf, size_t cap, size_t *len,
    struct err *e)
{
	int		 wait = c->final_ms ? c->final_ms : c->timeout_ms;
	long long	 deadline = wait ? now_ms() + wait : 0;
	char		*nl;
	size_t		 n;

	if (conn_flush(c, e) == -1)
		return -1;
	for (;;) {
		nl = memchr(c->rbuf + c->rpos, '\n', c->rlen - c->rpos);
		if (nl != NULL)
			break;
		if (c->rlen - c->rpos >= cap || c->rlen - c->rpos >= RBUFSZ)
			return err_set(e, ERR_PROTO, "the server sent a line "
			    "longer than %zu bytes", cap - 1);
		if (fill(c, deadline, e) < 0)
			return -1;
	}
	n = (size_t)(nl - (c->rbuf + c->rpos));
	if (n > 0 && nl[-1] == '\r')
		n--;
	if (n >= cap)
		return err_set(e, ERR_PROTO, "the server sent a line longer "
		    "than %zu bytes", cap - 1);
	memcpy(buf, c->rbuf + c->rpos, n);
	buf[n] = '\0';
	*len = n;
	c->rpos = (size_t)(nl - c->rbuf) + 1;
	return 0;
}

ssize_t
conn_read(struct conn *c, void *buf, size_t len, struct err *e)
{
	long long	deadline = c->timeout_ms ? now_ms() + c->timeout_ms : 0;
	size_t		n;

	if (conn_flush(c, e) == -1)
		return -1;
	if (c->rlen == c->rpos) {
		c->rpos = c->rlen = 0;
		switch (fill(c, deadline, e)) {
		case -2:
			return 0;
		case -1:
			return -1;
		}
	}
	n = c->rlen - c->rpos < len ? c->rlen - c->rpos : len;
	memcpy(buf, c->rbuf + c->rpos, n);
	c->rpos += n;
	return (ssize_t)n;
}

size_t
conn_pending(const struct conn *c)
{
	return c->rlen - c->rpos;
}

int
conn_unread(struct conn *c)
{
	struct pollfd	pfd;
	ssize_t		n;

	if (c->rlen > c->rpos ||
	    (c->tls != NULL && gnutls_record_check_pending(c->tls) > 0))
		return 1;
	pfd.fd = c->fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 0) != 1)
		return 0;
	c->rpos = c->rlen = 0;
	/* Readable: data, a record without any, or the end. */
	n = conn_recv(c, c->rbuf, sizeof(c->rbuf), now_ms() + 10);
	if (n > 0) {
		c->rlen = (size_t)n;
		return 1;
	}
	return n < 0 && (errno == ETIMEDOUT || errno == EAGAIN) ? 0 : -1;
}

static int
send_raw(struct conn *c, const char *p, size_t len, struct err *e)
{
	ssize_t	n;

	while (len > 0) {
		if (c->tls != NULL) {
			n = gnutls_record_send(c->tls, p, len);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				return err_set(e, ERR_TEMP, "writing to the "
				    "server: timed out");
			if (n < 0)
				return err_set(e, ERR_TEMP, "writing to the "
				    "server: %s", gnutls_strerror((int)n));
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1)
				return err_sys(e, ERR_TEMP, "writing to the "
				    "server");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
conn_write(struct conn *c, const void *data, size_t len, struct err *e)
{
	const char	*p = data;
	size_t		 n;

	while (len > 0) {
		if (c->wlen == WBUFSZ && conn_flush(c, e) == -1)
			return -1;
		n = WBUFSZ - c->wlen;
		if (n > len)
			n = len;
		memcpy(c->wbuf + c->wlen, p, n);
		c->wlen += n;
		p += n;
		len -= n;
	}
	return 0;
}

int
conn_flush(struct conn *c, struct err *e)
{
	int	rv;

	if (c->wlen == 0)
		return 0;
	rv = send_raw(c, c->wbuf, c->wlen, e);
	/* An AUTH line may have been in it. */
	explicit_bzero(c->wbuf, c->wlen);
	c->wlen = 0;
	c->last_was_write = 1;
	return rv;
}

int
conn_is_tls(const struct conn *c)
{
	return c->tls_up;
}

static void
cert_info(const struct conn *c, struct tls_info *ti)
{
	const gnutls_datum_t	*chain;
	gnutls_x509_crt_t	 crt;
	gnutls_datum_t		 dn;
	unsigned int		 n;
	unsigned char		 digest[32];
	size_t			 dlen = sizeof(digest);

	chain = gnutls_certificate_get_peers(c->tls, &n);
	if (chain == NULL || n == 0 || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) >= 0) {
		if (gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
			sanitize(ti->subject, sizeof(ti->subject),
			    (char *)dn.data, dn.size);
			gnutls_free(dn.data);
		}
		if (gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0) >= 0) {
			sanitize(ti->issuer, sizeof(ti->issuer),
			    (char *)dn.data, dn.size);
			gnutls_free(dn.data);
		}
		ti->not_before = gnutls_x509_crt_get_activation_time(crt);
		ti->not_after = gnutls_x509_crt_get_expiration_time(crt);
	}
	gnutls_x509_crt_deinit(crt);
	if (gnutls_fingerprint(GNUTLS_DIG_SHA256, &chain[0], digest, &dlen) >= 0)
		hex_colon(digest, dlen, ti->sha256, sizeof(ti->sha256));
	spki_pin(&chain[0], ti->spki, sizeof(ti->spki));
}

void
conn_tls_info(const struct conn *c, struct tls_info *ti, int with_cert)
{
	char	*desc;

	memset(ti, 0, sizeof(*ti));
	if (!c->tls_up)
		return;
	snprintf(ti->version, sizeof(ti->version), "%s",
	    gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls)));
	if ((desc = gnutls_session_get_desc(c->tls)) != NULL) {
		snprintf(ti->cipher, sizeof(ti->cipher), "%s", desc);
		gnutls_free(desc);
	}
	ti->resumed = gnutls_session_is_resumed(c->tls);
	if (with_cert)
		cert_info(c, ti);
}

char *
conn_channel_binding(const struct conn *c, const char **name)
{
	gnutls_datum_t	cb, b64 = { NULL, 0 };
	int		tls13;
	char		*out;

	if (!c->tls_up)
		return NULL;
	tls13 = gnutls_protocol_get_version(c->tls) == GNUTLS_TLS1_3;
	if (gnutls_session_channel_binding(c->tls, tls13 ?
	    GNUTLS_CB_TLS_EXPORTER : GNUTLS_CB_TLS_UNIQUE, &cb) < 0)
		return NULL;
	*name = tls13 ? "tls-exporter" : "tls-unique";
	if (gnutls_base64_encode2(&cb, &b64) < 0) {
		gnutls_free(cb.data);
		return NULL;
	}
	out = xstrndup((char *)b64.data, b64.size);
	gnutls_free(cb.data);
	gnutls_free(b64.data);
	return out;
}

int
conn_waits(const struct conn *c)
{
	return c->waits;
}

void
conn_close(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->tls != NULL) {
		/* close_notify only on a session that got that far. */
		if (c->tls_up && c->cache_file != NULL)
			cache_save(c);
		if (c->tls_up)
			gnutls_bye(c->tls, GNUTLS_SHUT_WR);
		gnutls_deinit(c->tls);
	}
	if (c->cred != NULL)
		gnutls_certificate_free_credentials(c->cred);
	close(c->fd);
	free(c->cache_file);
	free(c->policy);
	explicit_bzero(c->wbuf, WBUFSZ);
	free(c->wbuf);
	free(c);
}

int
conn_fd(const struct conn *c)
{
	return c->fd;
}

void
conn_abandon(struct conn *c)
{
	if (c == NULL)
		return;
	/* Another process carries on with the session: nothing goes out. */
	if (c->tls != NULL)
		gnutls_deinit(c->tls);
	if (c->cred != NULL)
		gnutls_certificate_free_credentials(c->cred);
	close(c->fd);
	free(c->cache_file);
	free(c->policy);
	explicit_bzero(c->wbuf, WBUFSZ);
	free(c->wbuf);
	free(c);
}

const char *
conn_tls_version(void)
{
	return gnutls_check_version(NULL);
}
