/*
 * fuzz_ws.c: libFuzzer target for what a WebSocket exec client sends
 * berthd (tools/berthd/wsproto.c, framed by wslay as server_ws.c frames
 * it).
 *
 * The input: a flags byte, then, when flag WS_F_HEADER is set, a header
 * value up to a newline, then the bytes the client sends after the
 * upgrade.  The header value goes through bd_ws_has_token() (the tokens
 * server_ws.c looks for) and bd_ws_accept_key().  The bytes go into a
 * wslay server context set up as server_ws.c sets it (the message limit
 * BD_WS_MSG_MAX), read WS_F_CHUNK-sized pieces at a time so that frames
 * arrive split; what wslay answers (pongs, close frames) is sent into a
 * sink.  The first data message is the password (bd_ws_password_body()),
 * every later one is split into channels (bd_ws_split(), with
 * BD_WS_PROTOCOL negotiated when WS_F_CHANNELS is set) and a resize read
 * by bd_ws_resize_parse().
 *
 * Invariants: a message is at most BD_WS_MSG_MAX bytes; the password body
 * is {"password": the message, or ""}; a split keeps its bytes inside the
 * message and only channels 0 to 2; a size is at most BD_WS_TERM_MAX each
 * way; a token found is in the header value; an accept key is 28 base64
 * characters.
 */
#define _GNU_SOURCE
#include <string.h>

#include <jansson.h>
#include <wslay/wslay.h>

#include "fuzz.h"
#include "wsproto.h"

#define WS_F_CHANNELS 0x01u         /* berth.exec.v1 negotiated              */
#define WS_F_CHUNK 0x0eu            /* bits 1-3: read 2^n bytes at a time    */
#define WS_F_HEADER 0x10u           /* a header value line comes first       */
#define WS_ROUNDS_MAX 100000        /* recv/send rounds; each takes a byte   */

typedef struct client {
    const uint8_t *data;
    size_t size, at, chunk;
    bool channels;
    bool password_seen;
} client_t;

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    (void)flags;
    client_t *c = user;
    size_t n = c->size - c->at;
    if (n > len)
        n = len;
    if (n > c->chunk)
        n = c->chunk;
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, c->data + c->at, n);
    c->at += n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)ctx, (void)data, (void)flags, (void)user;
    return (ssize_t)len;
}

/* The password message: its body is {"password": msg} or {"password": ""}. */
static void check_password(const uint8_t *msg, size_t len)
{
    char *body = bd_ws_password_body(msg, len);
    FUZZ_CHECK(body != NULL);
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr);
    FUZZ_CHECK(json_is_object(j) && json_object_size(j) == 1);
    json_t *p = json_object_get(j, "password");
    FUZZ_CHECK(json_is_string(p));
    size_t plen = json_string_length(p);
    FUZZ_CHECK(plen == 0 || (plen == len && len <= BD_WS_PASSWORD_MAX &&
                             memcmp(json_string_value(p), msg, len) == 0));
    json_decref(j);
    free(body);
}

/* A later message: its channel and bytes, and the size a resize says. */
static void check_input(const client_t *c, const uint8_t *msg, size_t len)
{
    uint8_t kind = 0xff;
    const uint8_t *bytes = NULL;
    size_t n = 0;
    bool says = bd_ws_split(c->channels, msg, len, &kind, &bytes, &n);
    if (!c->channels) {
        FUZZ_CHECK(says == (len > 0));
        if (says)
            FUZZ_CHECK(kind == BD_WS_INPUT && bytes == msg && n == len);
        return;
    }
    FUZZ_CHECK(says == (len > 0 && msg[0] <= BD_WS_RESIZE && (msg[0] != BD_WS_INPUT || len > 1)));
    if (!says)
        return;
    FUZZ_CHECK(kind == msg[0] && bytes == msg + 1 && n == len - 1);
    if (kind == BD_WS_RESIZE) {
        uint16_t rows = 0xffff, cols = 0xffff;
        if (bd_ws_resize_parse(bytes, n, &rows, &cols))
            FUZZ_CHECK(rows <= BD_WS_TERM_MAX && cols <= BD_WS_TERM_MAX);
        else
            FUZZ_CHECK(rows == 0xffff && cols == 0xffff);
    }
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    (void)ctx;
    client_t *c = user;
    if (wslay_is_ctrl_frame(arg->opcode))
        return;
    FUZZ_CHECK(arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME);
    FUZZ_CHECK(arg->msg_length <= BD_WS_MSG_MAX);
    if (!c->password_seen) {
        c->password_seen = true;
        check_password(arg->msg, arg->msg_length);
    } else {
        check_input(c, arg->msg, arg->msg_length);
    }
}

/* The header value `v` through the handshake's readers. */
static void check_header(const char *v)
{
    static const char *const tokens[] = {"websocket", "upgrade", BD_WS_PROTOCOL};
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++)
        if (bd_ws_has_token(v, tokens[i]))
            FUZZ_CHECK(strcasestr(v, tokens[i]) != NULL);
    char accept[32];
    memset(accept, 'x', sizeof accept);
    if (bd_ws_accept_key(v, accept)) {
        FUZZ_CHECK(strlen(v) == 24 && strnlen(accept, sizeof accept) == 28);
        FUZZ_CHECK(strspn(accept, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789+/=") == 28 &&
                   accept[27] == '=');
    } else {
        FUZZ_CHECK(accept[0] == 'x');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned flags = data[0];
    data++;
    size--;
    if (flags & WS_F_HEADER) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
        char *v = malloc(hlen + 1);
        FUZZ_CHECK(v != NULL);
        memcpy(v, data, hlen);
        v[hlen] = '\0';
        check_header(v);
        free(v);
        data += nl != NULL ? hlen + 1 : hlen;
        size -= nl != NULL ? hlen + 1 : hlen;
    }

    client_t c = {.data = data,
                  .size = size,
                  .chunk = (size_t)1 << ((flags & WS_F_CHUNK) >> 1) * 2,
                  .channels = (flags & WS_F_CHANNELS) != 0};
    static const struct wslay_event_callbacks callbacks = {
        .recv_callback = recv_cb, .send_callback = send_cb, .on_msg_recv_callback = on_msg};
    wslay_event_context_ptr ctx;
    FUZZ_CHECK(wslay_event_context_server_init(&ctx, &callbacks, &c) == 0);
    wslay_event_config_set_max_recv_msg_length(ctx, BD_WS_MSG_MAX);
    for (int round = 0; round < WS_ROUNDS_MAX && c.at < c.size && wslay_event_want_read(ctx);
         round++) {
        size_t before = c.at;
        if (wslay_event_recv(ctx) != 0 || wslay_event_send(ctx) != 0)
            break;
        FUZZ_CHECK(c.at > before || !wslay_event_want_read(ctx));
    }
    wslay_event_context_free(ctx);
    return 0;
}
