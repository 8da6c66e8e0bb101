/*
 * wsproto.h: what berthd reads from a WebSocket exec client, as pure
 * functions: the handshake's header tokens and key, the password message
 * turned into the exec route's body, and the later messages split into
 * the session's channels (berth.exec.v1) and terminal sizes.  server_ws.c
 * calls them on the bytes wslay framed; tests/fuzz/fuzz_ws.c drives them
 * the same way without a socket.  No I/O, no event loop, no state: safe
 * from any thread, and never a pointer kept past the call.
 */
#ifndef BERTHD_WSPROTO_H
#define BERTHD_WSPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BD_WS_PROTOCOL "berth.exec.v1"  /* the subprotocol with channels   */
#define BD_WS_MSG_MAX (64 * 1024)       /* a client's message; larger: 1009 */
#define BD_WS_PASSWORD_MAX 256          /* longer: sent as "" (a wrong one) */
#define BD_WS_TERM_MAX 1000             /* a terminal's rows and columns    */

/* The session's channels: a message's first byte under BD_WS_PROTOCOL. */
enum {
    BD_WS_INPUT = 0,                /* bytes for the process's stdin        */
    BD_WS_EOF = 1,                  /* end of input                         */
    BD_WS_RESIZE = 2                /* the terminal's new size, "ROWS COLS" */
};

/* Whether the comma-separated header value `v` (NULL: none) holds `token`
 * as one of its elements, compared without case, blanks around it
 * ignored. */
bool bd_ws_has_token(const char *v, const char *token);

/* Sec-WebSocket-Accept for Sec-WebSocket-Key `key`: base64(SHA-1(key +
 * RFC 6455's GUID)), 28 characters and a NUL in out.  Returns false (out
 * untouched) when key is not the base64 of 16 bytes. */
bool bd_ws_accept_key(const char *key, char out[32]);

/* The exec route's body for the password message msg[len]:
 * {"password": msg}, compact; a message that is not UTF-8, holds a NUL
 * byte or is longer than BD_WS_PASSWORD_MAX bytes is sent as "" (a wrong
 * password: it counts as a try).  Returns a malloc'ed NUL-terminated string, or NULL when memory ran
 * out. */
char *bd_ws_password_body(const uint8_t *msg, size_t len);

/* Splits a message after the password: with `channels` (BD_WS_PROTOCOL
 * negotiated) its first byte is the channel and the rest its bytes;
 * without, all of it is input.  Stores the channel in *kind and the bytes
 * (inside msg) in *bytes, *n.  Returns false for a message that says
 * nothing: empty input, an empty message or an unknown channel under
 * BD_WS_PROTOCOL. */
bool bd_ws_split(bool channels, const uint8_t *msg, size_t len, uint8_t *kind,
                 const uint8_t **bytes, size_t *n);

/* Reads a BD_WS_RESIZE message's bytes, "ROWS COLS" (decimal, only the
 * first 23 bytes looked at), into *rows and *cols, each at most
 * BD_WS_TERM_MAX.  Returns false (outputs untouched) when they are not
 * that. */
bool bd_ws_resize_parse(const uint8_t *bytes, size_t len, uint16_t *rows, uint16_t *cols);

#endif /* BERTHD_WSPROTO_H */
