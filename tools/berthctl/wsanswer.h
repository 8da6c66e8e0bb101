/*
 * wsanswer.h: what `berthctl container exec` reads of berthd's answer to
 * its WebSocket upgrade, as pure functions: the status line, the headers
 * and whether they complete the upgrade (RFC 6455 section 4.1).  ws.c
 * calls them on the bytes it read; tests/fuzz/fuzz_wsanswer.c drives them
 * without a socket.  No I/O, no allocation, no pointer kept past a call.
 */
#ifndef BERTHCTL_WSANSWER_H
#define BERTHCTL_WSANSWER_H

#include <stdbool.h>
#include <stddef.h>

#define BERTHCTL_WS_SUBPROTOCOL "berth.exec.v1"

/* The answer's head, as berthctl_ws_answer_read() finds it. */
typedef struct berthctl_ws_answer {
    long status;                    /* the status line's code, 0 to 999     */
    size_t head_len;                /* the head's bytes, blank line included */
    bool v1;                        /* 101 and berth.exec.v1 echoed         */
    const char *bad;                /* 101 that does not complete the
                                     * upgrade: what is wrong (a static
                                     * string); NULL otherwise              */
} berthctl_ws_answer_t;

/* Reads the answer buf[len] (not NUL-terminated; what follows the head is
 * the start of the frames) to an upgrade whose expected
 * Sec-WebSocket-Accept is `accept` (NUL-terminated).  Returns false when
 * it is not an HTTP/1.x answer with a complete head and a three-digit
 * status; otherwise fills *out: for a 101, `bad` names the first missing or
 * wrong header (Upgrade, Connection, Sec-WebSocket-Accept, a subprotocol
 * not asked for) and `v1` tells whether BERTHCTL_WS_SUBPROTOCOL was
 * echoed. */
bool berthctl_ws_answer_read(const char *buf, size_t len, const char *accept,
                             berthctl_ws_answer_t *out);

/* The value of header `name` (any case) in a head: the status line first,
 * lines separated by "\r\n", ending at head_end.  Returns a pointer into
 * the head, blanks around the value left out, with its length in *vlen;
 * NULL when absent. */
const char *berthctl_ws_header_find(const char *head, const char *head_end, const char *name,
                                    size_t *vlen);

#endif /* BERTHCTL_WSANSWER_H */
