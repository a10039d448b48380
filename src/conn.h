#ifndef OUTBOX_CONN_H
#define OUTBOX_CONN_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "err.h"

/*
 * A connection to the server: TCP (direct or through a SOCKS5 proxy) or a
 * Unix socket, optionally wrapped in TLS.  This is the only module that
 * knows about sockets and TLS; everything above it reads lines and
 * writes bytes.  Every wait is bounded by the timeout given at connect time.
 */
struct conn;

struct conn_params {
	const char	*host;
	int		 port;
	const char	*source_ip;	/* NULL: any */
	const char	*socket_path;	/* a Unix socket instead of host and
					   port (and proxy); NULL: TCP */
	const char	*proxy_host;	/* SOCKS5 proxy that reaches host
					   and port for us; NULL: none */
	int		 proxy_port;
	int		 timeout_ms;	/* per read or write; 0: none */
	int		 session_ms;	/* all the waiting for the server
					   together; 0: none */
};

struct tls_params {
	const char	*hostname;	/* SNI and certificate name check */
	int		 certcheck;	/* 0: accept any certificate */
	const char	*trust_file;	/* NULL or "system": the system store */
	const char	*crl_file;
	const char	*fingerprint;	/* hex SHA-256/SHA-1, or sha256//B64 */
	const char	*cert_file;	/* client certificate */
	const char	*key_file;
	const char	*priorities;	/* GnuTLS priority string */
	int		 min_dh_bits;	/* the least DH prime (TLS 1.2 DHE);
					   0: GnuTLS's default */
	const char	*cache_file;	/* session resumption data, or NULL;
					   only for this host and port */
};

struct tls_info {
	char	version[32];
	char	cipher[160];
	char	subject[256];
	char	issuer[256];
	time_t	not_before;
	time_t	not_after;
	char	sha256[100];	/* AB:CD:... */
	char	spki[64];	/* sha256//BASE64 */
	int	resumed;
};

/*
 * Connect to host:port, trying each address in turn (Happy Eyeballs).
 * With socket_path, connect to that Unix socket instead.  With
 * proxy_host, connect to the proxy that way and have it connect to
 * host:port (SOCKS5, the name resolved by the proxy); TLS then goes over
 * it as over a direct connection.  Errors: ERR_HOST for a name that does
 * not exist, ERR_TEMP for refused, unreachable or timed out (the proxy
 * too, and the proxy's failures that may pass), ERR_PERM for the proxy's
 * lasting refusals, ERR_PROTO for a proxy that does not speak SOCKS5,
 * ERR_CONFIG for a socket path or host name too long.
 */
int	 conn_open(struct conn **, const struct conn_params *, struct err *);
/*
 * Start TLS now (implicit TLS, or after the server's 220 to STARTTLS) and
 * verify the server.  Errors: ERR_TEMP for a broken handshake,
 * ERR_PROTO when the certificate is refused (the message says why),
 * ERR_CONFIG for unreadable trust, key or certificate files.
 */
int	 conn_starttls(struct conn *, const struct tls_params *, struct err *);
/*
 * Read one line without its CRLF into buf (NUL-terminated; *len excludes
 * it).  Errors: ERR_TEMP on timeout or a closed connection, ERR_PROTO when
 * the line does not fit.
 */
int	 conn_getline(struct conn *, char *buf, size_t cap, size_t *len,
	    struct err *);
/*
 * Read up to len bytes (what is buffered first).  Returns the count, 0 at
 * the end of the stream, -1 on error (ERR_TEMP).
 */
ssize_t	 conn_read(struct conn *, void *, size_t, struct err *);
/*
 * The wait for the reply to the data (RFC 5321 section 4.5.3.2.6 asks for
 * 10 minutes): with ms > 0 each line read waits up to ms, and
 * session_timeout does not count; 0 goes back to the usual limits.
 */
void	 conn_final_wait(struct conn *, int ms);
/* Did the last read fail because the server said nothing in time? */
int	 conn_timed_out(const struct conn *);
/* Bytes received but not yet read by conn_getline. */
size_t	 conn_pending(const struct conn *);
/*
 * Has the server sent data not read yet, received or still on the way in
 * the socket?  Looks without waiting; a TLS record without data (a ticket,
 * a KeyUpdate) does not count.  1 yes, 0 no, -1 the connection has ended
 * or failed.
 */
int	 conn_unread(struct conn *);
/* Queue bytes for sending; sent when the buffer fills or on conn_flush. */
int	 conn_write(struct conn *, const void *, size_t, struct err *);
int	 conn_flush(struct conn *, struct err *);
int	 conn_is_tls(const struct conn *);
/* Version and cipher; with_cert, the certificate's details too (dearer). */
void	 conn_tls_info(const struct conn *, struct tls_info *, int with_cert);
/*
 * Channel binding data for SASL -PLUS mechanisms, base64: tls-exporter
 * on TLS 1.3, tls-unique on TLS 1.2.  Returns NULL when there is none;
 * *name gets "tls-exporter" or "tls-unique".  Free with free().
 */
char	*conn_channel_binding(const struct conn *, const char **name);
/* Count of times outbox waited for the server (for -v and benchmarks). */
int	 conn_waits(const struct conn *);
void	 conn_close(struct conn *);
/* The socket, for a holder of a shared session to keep open. */
int	 conn_fd(const struct conn *);
/* Free without a word to the peer: a forked copy carries the session on. */
void	 conn_abandon(struct conn *);

/* Version of the TLS library, for --version. */
const char *conn_tls_version(void);

#endif
