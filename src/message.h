#ifndef OUTBOX_MESSAGE_H
#define OUTBOX_MESSAGE_H

#include <sys/types.h>

#include "addr.h"
#include "err.h"

/*
 * The message: read once from the caller into an unlinked spool file in
 * its final form (CRLF line ends, Bcc removed, missing headers added, not
 * dot-stuffed), so memory does not grow with its size, its exact length is
 * known for BDAT, and the same bytes can be sent again.
 */
enum hdrmode { HDR_AUTO, HDR_ON, HDR_OFF };

struct msg_opts {
	int		 dot_ends;	/* no -i: a line "." ends the input */
	int		 read_rcpts;	/* -t */
	int		 remove_bcc;
	int		 undisclosed;	/* replace To/Cc with a group */
	int		 set_to;	/* replace To/Cc/Bcc with a To of all
					   recipients: cmd_rcpts and, with
					   -t, the header's */
	const struct addrlist *cmd_rcpts;	/* NULL: none */
	enum hdrmode	 set_from;
	enum hdrmode	 set_date;
	enum hdrmode	 set_msgid;
	const char	*from_hdr;	/* From: value to add, e.g. "A <a@x>" */
	const char	*msgid_domain;
	const char	*qualify_domain; /* added to header addresses that
					    have no domain; NULL: none */
	const char	*spool_dir;	/* NULL: $TMPDIR or /tmp */
	int		 spool_fd;	/* write here (a queue file); <= 0: make one */
	int		 headers_only;	/* stop at the end of the header */
};

struct msg {
	int		 fd;		/* spool, positioned anywhere */
	off_t		 size;		/* bytes in the spool */
	int		 eightbit;	/* a byte >= 0x80 */
	int		 nlines;
	/* Lines over 998 bytes, made to fit (0: none): */
	int		 qp_line;	/* the first; the body is now
					   quoted-printable */
	int		 fold_line;	/* the first body line folded */
	int		 nfolded;	/* body lines folded */
	int		 hdr_fold_line;	/* the first header line folded */
	char		*msgid;		/* Message-ID found or added */
	char		*from_addr;	/* address in (Resent-)From:, if any */
	struct addrlist	 rcpts;		/* with -t: the header recipients */
};

/*
 * Read the message from fd into the spool.  A body line over 998 bytes
 * makes the body quoted-printable when the message is not MIME or is one
 * text part in 7bit or 8bit, and is folded (CRLF SPACE after 998 bytes,
 * as Postfix does) otherwise; a header line over 998 bytes is folded at
 * white space.  Errors: ERR_DATA for a NUL byte or a bad address header
 * (-t), ERR_IO when the input cannot be read, ERR_TEMP when the spool
 * cannot be written.
 */
int	 msg_spool(int fd, const struct msg_opts *, struct msg *, struct err *);

/* Where msg_write sends bytes; returns -1 with e set on failure. */
typedef int (*msg_writer)(void *ctx, const void *, size_t, struct err *);

/* Send the spool as it is (for BDAT). */
int	 msg_write_raw(struct msg *, msg_writer, void *, struct err *);
/* Send the spool dot-stuffed and followed by ".\r\n" (for DATA). */
int	 msg_write_dotted(struct msg *, msg_writer, void *, struct err *);
void	 msg_free(struct msg *);

/* The date now, as the Date field has it (RFC 5322). */
void	 msg_date(char *, size_t);
/* A new Message-ID, <...@domain>, allocated. */
char	*msg_make_msgid(const char *domain);

/*
 * The Subject of a spooled message (read from fd's start), unfolded and
 * sanitised, cut to len; -1 with "" when it has none.
 */
int	 msg_subject(int fd, char *, size_t len);
/*
 * What was done to lines over 998 bytes, for -v and the log: e.g.
 * "quoted-printable" or "folded+header-folded"; NULL when nothing was.
 */
const char *msg_reshaped(const struct msg *, char *, size_t);
/* The same, as a sentence for -v; NULL when nothing was done. */
const char *msg_reshaped_text(const struct msg *, char *, size_t);

/* An unlinked temporary file in dir ($TMPDIR or /tmp when NULL). */
int	 msg_tmpfile(const char *dir, struct err *);

#endif
