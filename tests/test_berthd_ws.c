/*
 * test_berthd_ws.c: berthd's exec sessions over WebSocket, end to end: a
 * real redis-server (tests/redis-harness.c), berthd (tests/berthd-harness.c)
 * and a berth-agent with the simulator plugin (tests/agent-harness.c); the
 * test is the client, speaking RFC 6455 with wslay over a plain TCP socket
 * (its frames masked, as a client's must be), the way `az container exec`
 * opens a session.
 *
 * Covers: the handshake (101 and its Sec-WebSocket-Accept; a bad key 400,
 * another version 426), the password as the first message, the output and
 * the exit status in the close frame (1000 "exit status N"), words split
 * as a shell splits them (unclosed quotes a 400), the connection closed by
 * berthd; interactive sessions on the sim's shell (berth.exec.v1's
 * channels: a terminal's size, a resize, a line read from stdin, the exit
 * status; no terminal without terminalSize, end of input; keystrokes as
 * the Azure CLI sends them, before the session opened; a client that
 * leaves, whose session's lists the agent drops; an agent killed
 * mid-session, heard as silence: 4503); a session serves once (4404);
 * three wrong passwords close it; a message over the limit (1009);
 * /healthz answering while ten sessions are open; with tokens, another
 * subscription's token finds no session, the right one and none at all
 * (the Azure CLI's way) open it, a bad one gets 401; attach: the
 * container's log lines arrive, and the stream ends (1000) when the group
 * stops.
 *
 * It must never wait without a bound, and stops every process it starts.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <wslay/wslay.h>

#include "agent-harness.h"
#include "berthd-harness.h"
#include "redis-harness.h"

#define SUB "0000-sub-ws"
#define APIV "2023-05-01"
#define WAIT_MS 15000
#define TOK_A "tok-alpha-0123456789"
#define TOK_B "tok-beta-0123456789"
#define TOK_OP "tok-operator-0123456789" /* '*': the hosts' routes */

static int cell_counter;

typedef struct fixture {
    char cell[32];
    test_agent_t agent;
    bool agent_running;
    test_berthd_t d;
    bool d_running;
    char tokens[64];                /* the tokens file, or ""               */
    const char *token;              /* what the test's requests carry       */
} fixture_t;

/* ---- HTTP helpers ------------------------------------------------------------------------- */

static char *gpath(const char *name, const char *suffix)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/rg/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s%s?api-version=" APIV,
                 name, suffix ? suffix : "") < 0)
        abort();
    return p;
}

static test_http_t http(fixture_t *f, const char *method, const char *path, const char *body)
{
    return test_http_send(&f->d, method, path, body, f->token);
}

/* PUTs group `name` (one container "app") and waits until it runs. */
static void group_running(fixture_t *f, const char *name)
{
    char *p = gpath(name, NULL);
    const char *doc =
        "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", \"containers\": "
        "[{\"name\": \"app\", \"properties\": {\"image\": \"busybox:latest\", \"resources\": "
        "{\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}";
    test_http_t h = http(f, "PUT", p, doc);
    if (h.status != 201)
        fprintf(stderr, "PUT %s: %ld %s\n", name, h.status, h.body);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    bool running = false;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (!running && test_now_ms() < end) {
        h = http(f, "GET", p, NULL);
        json_t *c = json_array_get(
            json_object_get(json_object_get(h.json, "properties"), "containers"), 0);
        const char *st = json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(c, "properties"), "instanceView"),
                            "currentState"),
            "state"));
        running = h.status == 200 && st != NULL && strcmp(st, "Running") == 0;
        test_http_free(&h);
        if (!running)
            test_sleep_ms(100);
    }
    free(p);
    assert_true(running);
}

/* POST .../exec with `body` in group `name`: fills the session's path
 * (/berth/exec/<id>) and password. */
static void new_session_body(fixture_t *f, const char *name, const char *body, char path[128],
                             char pw[64])
{
    char *p = gpath(name, "/containers/app/exec");
    test_http_t h = http(f, "POST", p, body);
    if (h.status != 200)
        fprintf(stderr, "exec: %ld %s\n", h.status, h.body);
    assert_int_equal(h.status, 200);
    const char *uri = json_string_value(json_object_get(h.json, "webSocketUri"));
    const char *password = json_string_value(json_object_get(h.json, "password"));
    assert_non_null(uri);
    assert_non_null(password);
    assert_int_equal(strncmp(uri, "ws://", 5), 0);
    assert_non_null(strstr(uri, "/berth/exec/"));
    snprintf(path, 128, "%s", strstr(uri, "/berth/exec/"));
    snprintf(pw, 64, "%s", password);
    test_http_free(&h);
    free(p);
}

/* POST .../exec of `command` under a 24x80 terminal, as az sends it. */
static void new_session(fixture_t *f, const char *name, const char *command, char path[128],
                        char pw[64])
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"command\": \"%s\", \"terminalSize\": {\"rows\": 24, \"cols\": 80}}",
             command);
    new_session_body(f, name, body, path, pw);
}

/* ---- a WebSocket client ------------------------------------------------------------------- */

typedef struct ws_client {
    int fd;
    wslay_event_context_ptr ctx;
    int64_t deadline;               /* test_now_ms() bound of every wait    */
    char text[65536];               /* the data messages, concatenated      */
    size_t len;
    int messages;
    bool close_received;
    int close_code;
    char reason[128];
    bool eof;                       /* berthd closed the TCP connection     */
    bool channels;                  /* berthd took berth.exec.v1            */
} ws_client_t;

/* Waits (bounded by c->deadline) until fd is readable (or writable). */
static bool ws_wait(ws_client_t *c, short events)
{
    int64_t left = c->deadline - test_now_ms();
    if (left <= 0)
        return false;
    struct pollfd p = {c->fd, events, 0};
    return poll(&p, 1, (int)left) > 0;
}

static ssize_t cl_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    (void)flags;
    ws_client_t *c = user;
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    c->eof = true;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t cl_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)flags;
    ws_client_t *c = user;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK
                                   ? WSLAY_ERR_WOULDBLOCK
                                   : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static int cl_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx, (void)user;
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

static void cl_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    (void)ctx;
    ws_client_t *c = user;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        c->close_received = true;
        c->close_code = arg->status_code;
        size_t n = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
        if (n >= sizeof c->reason)
            n = sizeof c->reason - 1;
        memcpy(c->reason, arg->msg_length > 2 ? (const char *)arg->msg + 2 : "", n);
        c->reason[n] = '\0';
        return;
    }
    if (wslay_is_ctrl_frame(arg->opcode))
        return;
    c->messages++;
    size_t n = arg->msg_length;
    if (n > sizeof c->text - 1 - c->len)
        n = sizeof c->text - 1 - c->len;
    memcpy(c->text + c->len, arg->msg, n);
    c->len += n;
    c->text[c->len] = '\0';
}

/* Opens a WebSocket on `path` (with a bearer token when `token`; `key`
 * and `version` as sent).  Returns the handshake's HTTP status (101: the
 * client is ready), 0 when no answer came. */
static long ws_open_full(fixture_t *f, const char *path, const char *token, const char *key,
                         const char *version, const char *protocol, ws_client_t *c)
{
    memset(c, 0, sizeof *c);
    c->deadline = test_now_ms() + test_deadline_ms(WAIT_MS);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->d.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[1024], auth[128] = "", proto[128] = "";
    if (token != NULL)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    if (protocol != NULL)
        snprintf(proto, sizeof proto, "Sec-WebSocket-Protocol: %s\r\n", protocol);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: %s\r\n%s%s\r\n",
                     path, f->d.port, key, version, auth, proto);
    assert_int_equal(send(c->fd, req, (size_t)n, MSG_NOSIGNAL), n);
    /* The head, a byte at a time: what follows it is the frames'. */
    char head[4096];
    size_t len = 0;
    while (len < sizeof head - 1 && (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0)) {
        if (!ws_wait(c, POLLIN) || recv(c->fd, head + len, 1, 0) != 1)
            break;
        len++;
    }
    head[len] = '\0';
    long status = strncmp(head, "HTTP/1.1 ", 9) == 0 ? atol(head + 9) : 0;
    if (status != 101) {
        close(c->fd);
        c->fd = -1;
        return status;
    }
    /* RFC 6455's own example key and its answer. */
    if (strcmp(key, "dGhlIHNhbXBsZSBub25jZQ==") == 0)
        assert_non_null(strcasestr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_non_null(strcasestr(head, "Upgrade: websocket\r\n"));
    c->channels = strcasestr(head, "Sec-WebSocket-Protocol: berth.exec.v1\r\n") != NULL;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    static const struct wslay_event_callbacks cb = {.recv_callback = cl_recv,
                                                    .send_callback = cl_send,
                                                    .genmask_callback = cl_genmask,
                                                    .on_msg_recv_callback = cl_msg};
    assert_int_equal(wslay_event_context_client_init(&c->ctx, &cb, c), 0);
    return status;
}

static long ws_open_with(fixture_t *f, const char *path, const char *token, const char *key,
                         const char *version, ws_client_t *c)
{
    return ws_open_full(f, path, token, key, version, NULL, c);
}

static long ws_open(fixture_t *f, const char *path, const char *token, ws_client_t *c)
{
    return ws_open_with(f, path, token, "dGhlIHNhbXBsZSBub25jZQ==", "13", c);
}

static void ws_send(ws_client_t *c, uint8_t opcode, const void *data, size_t len)
{
    struct wslay_event_msg m = {opcode, data, len};
    assert_int_equal(wslay_event_queue_msg(c->ctx, &m), 0);
    while (wslay_event_want_write(c->ctx) && ws_wait(c, POLLOUT))
        if (wslay_event_send(c->ctx) != 0)
            break;
}

/* Reads until berthd's close frame came and berthd closed the connection
 * (or the deadline passed); answers the close frame as a client does. */
static void ws_finish(ws_client_t *c)
{
    while (!c->eof && ws_wait(c, POLLIN)) {
        if (wslay_event_want_read(c->ctx)) {
            wslay_event_recv(c->ctx);
        } else {
            /* Both close frames went: only berthd's end of the TCP
             * connection is left to come. */
            char b[256];
            ssize_t n = recv(c->fd, b, sizeof b, 0);
            c->eof = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
        }
        while (wslay_event_want_write(c->ctx))
            if (wslay_event_send(c->ctx) != 0)
                break;
    }
    if (!c->close_received)
        fprintf(stderr, "session: close %d \"%s\", %s, %d message(s): %s\n", c->close_code,
                c->reason, c->eof ? "berthd closed the connection" : "the wait ran out",
                c->messages, c->text);
}

/* Reads until the data received holds `needle` (or berthd closed, or the
 * deadline passed).  Returns whether it does. */
static bool ws_read_until(ws_client_t *c, const char *needle)
{
    while (strstr(c->text, needle) == NULL && !c->close_received && !c->eof &&
           ws_wait(c, POLLIN)) {
        if (wslay_event_recv(c->ctx) != 0)
            break;
        while (wslay_event_want_write(c->ctx))
            if (wslay_event_send(c->ctx) != 0)
                break;
    }
    if (strstr(c->text, needle) == NULL)
        fprintf(stderr, "no \"%s\" in the output: %s\n", needle, c->text);
    return strstr(c->text, needle) != NULL;
}

/* Sends on one of berth.exec.v1's channels (0 input, 1 end of input,
 * 2 terminal size). */
static void ws_say(ws_client_t *c, uint8_t channel, const char *text)
{
    char m[256];
    m[0] = (char)channel;
    size_t n = strlen(text);
    memcpy(m + 1, text, n);
    ws_send(c, WSLAY_BINARY_FRAME, m, n + 1);
}

static void ws_free(ws_client_t *c)
{
    if (c->ctx != NULL)
        wslay_event_context_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    c->ctx = NULL;
    c->fd = -1;
}

/* A whole session: opens `path`, sends `password`, reads to the end. */
static void ws_session(fixture_t *f, const char *path, const char *token, const char *password,
                       ws_client_t *c)
{
    assert_int_equal(ws_open(f, path, token, c), 101);
    ws_send(c, WSLAY_TEXT_FRAME, password, strlen(password));
    ws_finish(c);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_ws_exec(void **state)
{
    fixture_t *f = *state;
    group_running(f, "ws");
    char path[128], pw[64];
    new_session(f, "ws", "echo hello world", path, pw);
    ws_client_t c;
    assert_int_equal(ws_open(f, path, NULL, &c), 101);
    ws_send(&c, WSLAY_TEXT_FRAME, pw, strlen(pw));
    /* Keystrokes, as the Azure CLI sends them: read and dropped. */
    ws_send(&c, WSLAY_BINARY_FRAME, "ls\r\x03", 4);
    ws_finish(&c);
    assert_true(c.close_received);
    assert_true(c.eof);
    assert_int_equal(c.close_code, 1000);
    assert_string_equal(c.reason, "exit status 0");
    assert_non_null(strstr(c.text, "hello world"));
    assert_true(c.messages >= 1);
    ws_free(&c);
    /* Single use. */
    ws_session(f, path, NULL, pw, &c);
    assert_int_equal(c.close_code, 4404);
    assert_string_equal(c.reason, "ExecSessionNotFound");
    assert_non_null(strstr(c.text, "berthd: "));
    assert_true(c.eof);
    ws_free(&c);
    /* A command's own exit status. */
    new_session(f, "ws", "exit 3", path, pw);
    ws_session(f, path, NULL, pw, &c);
    assert_int_equal(c.close_code, 1000);
    assert_string_equal(c.reason, "exit status 3");
    ws_free(&c);
    /* Words split as a shell splits them: quotes keep a word whole. */
    new_session(f, "ws", "sh -c 'exit 7'", path, pw);
    ws_session(f, path, NULL, pw, &c);
    assert_int_equal(c.close_code, 1000);
    assert_string_equal(c.reason, "exit status 7");
    ws_free(&c);
    char *xp = gpath("ws", "/containers/app/exec");
    test_http_t bad = http(f, "POST", xp, "{\"command\": \"sh -c 'exit 7\"}");
    assert_int_equal(bad.status, 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(bad.json, "error"),
                                                          "target")),
                        "command");
    test_http_free(&bad);
    free(xp);
    /* Handshakes berthd refuses, with the session untouched. */
    new_session(f, "ws", "echo again", path, pw);
    assert_int_equal(ws_open_with(f, path, NULL, "short", "13", &c), 400);
    assert_int_equal(ws_open_with(f, path, NULL, "dGhlIHNhbXBsZSBub25jZQ==", "8", &c), 426);
    assert_int_equal(ws_open(f, "/berth/exec/not-an-id", NULL, &c), 400);
    ws_session(f, path, NULL, pw, &c);
    assert_int_equal(c.close_code, 1000);
    assert_non_null(strstr(c.text, "again"));
    ws_free(&c);
    /* A message over the limit closes the socket (1009). */
    new_session(f, "ws", "echo big", path, pw);
    assert_int_equal(ws_open(f, path, NULL, &c), 101);
    char *big = malloc(100 * 1024);
    assert_non_null(big);
    memset(big, 'a', 100 * 1024);
    ws_send(&c, WSLAY_TEXT_FRAME, big, 100 * 1024);
    free(big);
    ws_finish(&c);
    assert_int_equal(c.close_code, 1009);
    assert_true(c.eof);
    ws_free(&c);
    /* The plain POST form still serves. */
    new_session(f, "ws", "echo plain", path, pw);
    char body[128];
    snprintf(body, sizeof body, "{\"password\": \"%s\"}", pw);
    test_http_t h = http(f, "POST", path, body);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_integer_value(json_object_get(h.json, "exitCode")), 0);
    test_http_free(&h);
}

/* An interactive shell under a terminal, on berth.exec.v1's channels:
 * its size, a resize, a line read from stdin, the exit status. */
static void test_ws_interactive(void **state)
{
    fixture_t *f = *state;
    group_running(f, "it");
    char path[128], pw[64];
    new_session_body(f, "it",
                     "{\"command\": \"/bin/sh\", \"terminalSize\": {\"rows\": 30, \"cols\": 100}}",
                     path, pw);
    ws_client_t c;
    assert_int_equal(ws_open_full(f, path, NULL, "dGhlIHNhbXBsZSBub25jZQ==", "13",
                                  "berth.exec.v1", &c),
                     101);
    assert_true(c.channels);
    ws_send(&c, WSLAY_TEXT_FRAME, pw, strlen(pw));
    ws_say(&c, 0, "stty size\n");
    assert_true(ws_read_until(&c, "30 100"));
    ws_say(&c, 2, "40 120");
    ws_say(&c, 0, "stty size\n");
    assert_true(ws_read_until(&c, "40 120"));
    ws_say(&c, 0, "read x; echo got $x\n");
    ws_say(&c, 0, "hello\n");
    assert_true(ws_read_until(&c, "got hello"));
    ws_say(&c, 0, "exit 3\n");
    ws_finish(&c);
    assert_int_equal(c.close_code, 1000);
    assert_string_equal(c.reason, "exit status 3");
    ws_free(&c);
}

/* Without terminalSize there is no terminal: input is not echoed, the
 * output is the process's own, and end of input ends `cat`. */
static void test_ws_no_tty(void **state)
{
    fixture_t *f = *state;
    group_running(f, "pipe");
    char path[128], pw[64];
    new_session_body(f, "pipe", "{\"command\": \"cat\"}", path, pw);
    ws_client_t c;
    assert_int_equal(ws_open_full(f, path, NULL, "dGhlIHNhbXBsZSBub25jZQ==", "13",
                                  "berth.exec.v1", &c),
                     101);
    ws_send(&c, WSLAY_TEXT_FRAME, pw, strlen(pw));
    ws_say(&c, 0, "abc\n");
    ws_say(&c, 0, "def");
    ws_say(&c, 1, "");
    ws_finish(&c);
    assert_int_equal(c.close_code, 1000);
    assert_string_equal(c.reason, "exit status 0");
    assert_string_equal(c.text, "abc\ndef");
    ws_free(&c);
    /* A terminal size out of bounds is refused, naming it. */
    char *p = gpath("pipe", "/containers/app/exec");
    test_http_t h = http(f, "POST", p,
                         "{\"command\": \"sh\", \"terminalSize\": {\"rows\": -1, \"cols\": 80}}");
    assert_int_equal(h.status, 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(h.json, "error"),
                                                          "target")),
                        "terminalSize");
    test_http_free(&h);
    free(p);
}

/* The Azure CLI's way: no subprotocol, keystrokes as binary frames, sent
 * at once after the password (before the session has opened). */
static void test_ws_keystrokes(void **state)
{
    fixture_t *f = *state;
    group_running(f, "keys");
    char path[128], pw[64];
    new_session(f, "keys", "sh", path, pw);
    ws_client_t c;
    assert_int_equal(ws_open(f, path, NULL, &c), 101);
    assert_false(c.channels);
    ws_send(&c, WSLAY_TEXT_FRAME, pw, strlen(pw));
    ws_send(&c, WSLAY_BINARY_FRAME, "echo h", 6);
    ws_send(&c, WSLAY_BINARY_FRAME, "i\n", 2);
    assert_true(ws_read_until(&c, "hi\r\n"));
    ws_send(&c, WSLAY_BINARY_FRAME, "exit 4\n", 7);
    ws_finish(&c);
    assert_int_equal(c.close_code, 1000);
    assert_string_equal(c.reason, "exit status 4");
    ws_free(&c);
}

/* A client that leaves mid-session: berthd goes on serving, and the
 * agent ends the process (its input list goes). */
static void test_ws_client_leaves(void **state)
{
    fixture_t *f = *state;
    group_running(f, "gone");
    char path[128], pw[64];
    new_session(f, "gone", "sh", path, pw);
    ws_client_t c;
    assert_int_equal(ws_open(f, path, NULL, &c), 101);
    ws_send(&c, WSLAY_TEXT_FRAME, pw, strlen(pw));
    ws_send(&c, WSLAY_BINARY_FRAME, "echo here\n", 10);
    assert_true(ws_read_until(&c, "here"));
    ws_free(&c);
    redisContext *r = berth_test_redis_connect(berth_test_redis_group);
    assert_non_null(r);
    bool gone = false;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (!gone && test_now_ms() < end) {
        redisReply *k = redisCommand(r, "KEYS berth:{%s}:reply:*", f->cell);
        gone = k != NULL && k->type == REDIS_REPLY_ARRAY && k->elements == 0;
        freeReplyObject(k);
        if (!gone)
            test_sleep_ms(100);
    }
    redisFree(r);
    assert_true(gone);
    new_session(f, "gone", "echo again", path, pw);
    ws_session(f, path, NULL, pw, &c);
    assert_int_equal(c.close_code, 1000);
    assert_non_null(strstr(c.text, "again"));
    ws_free(&c);
}

/* An agent killed mid-session: berthd hears its silence and ends the
 * session (4503 AgentUnavailable) instead of keeping the client forever. */
static void test_ws_agent_killed(void **state)
{
    fixture_t *f = *state;
    group_running(f, "dead");
    char path[128], pw[64];
    new_session(f, "dead", "sh", path, pw);
    ws_client_t c;
    assert_int_equal(ws_open(f, path, NULL, &c), 101);
    ws_send(&c, WSLAY_TEXT_FRAME, pw, strlen(pw));
    ws_send(&c, WSLAY_BINARY_FRAME, "echo alive\n", 11);
    assert_true(ws_read_until(&c, "alive"));
    test_agent_kill(&f->agent);
    f->agent_running = false;
    /* The silence bound (30 s) and a tick: the client's deadline is
     * longer. */
    c.deadline = test_now_ms() + test_deadline_ms(60000);
    ws_finish(&c);
    if (c.close_code != 4503)
        test_berthd_dump(&f->d, 60);
    assert_int_equal(c.close_code, 4503);
    assert_string_equal(c.reason, "AgentUnavailable");
    ws_free(&c);
    test_http_t h = http(f, "GET", "/healthz", NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
}

static void test_ws_wrong_password(void **state)
{
    fixture_t *f = *state;
    group_running(f, "pw");
    char path[128], pw[64];
    new_session(f, "pw", "echo x", path, pw);
    ws_client_t c;
    for (int i = 0; i < 3; i++) {
        ws_session(f, path, NULL, "00000000000000000000000000000000", &c);
        assert_int_equal(c.close_code, 4403);
        assert_string_equal(c.reason, "ExecPasswordMismatch");
        assert_true(c.eof);
        ws_free(&c);
    }
    /* The third closed it: the right password now finds none. */
    ws_session(f, path, NULL, pw, &c);
    assert_int_equal(c.close_code, 4404);
    assert_string_equal(c.reason, "ExecSessionNotFound");
    ws_free(&c);
}

static void test_ws_healthz_while_open(void **state)
{
    fixture_t *f = *state;
    group_running(f, "many");
    enum { N = 10 };
    char path[N][128], pw[N][64];
    ws_client_t *c = calloc(N, sizeof *c);
    assert_non_null(c);
    for (int i = 0; i < N; i++) {
        new_session(f, "many", "echo many", path[i], pw[i]);
        assert_int_equal(ws_open(f, path[i], NULL, &c[i]), 101);
    }
    test_http_t h = http(f, "GET", "/healthz", NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    for (int i = 0; i < N; i++) {
        /* Each session's own bound, from its password on: they run one
         * after the other, each ending its link (a second or two). */
        c[i].deadline = test_now_ms() + test_deadline_ms(WAIT_MS);
        ws_send(&c[i], WSLAY_TEXT_FRAME, pw[i], strlen(pw[i]));
        ws_finish(&c[i]);
        assert_int_equal(c[i].close_code, 1000);
        assert_non_null(strstr(c[i].text, "many"));
        ws_free(&c[i]);
    }
    free(c);
}

static void test_ws_tokens(void **state)
{
    fixture_t *f = *state;
    group_running(f, "tok");
    char path[128], pw[64];
    ws_client_t c;
    /* Another subscription's token finds no session, and leaves it be. */
    new_session(f, "tok", "echo tok", path, pw);
    ws_session(f, path, TOK_B, pw, &c);
    assert_int_equal(c.close_code, 4404);
    assert_string_equal(c.reason, "ExecSessionNotFound");
    ws_free(&c);
    ws_session(f, path, TOK_A, pw, &c);
    assert_int_equal(c.close_code, 1000);
    assert_non_null(strstr(c.text, "tok"));
    ws_free(&c);
    /* No token (the Azure CLI sends none): the password alone. */
    new_session(f, "tok", "echo bare", path, pw);
    ws_session(f, path, NULL, pw, &c);
    assert_int_equal(c.close_code, 1000);
    assert_non_null(strstr(c.text, "bare"));
    ws_free(&c);
    /* A token that is not one: 401 before any upgrade. */
    new_session(f, "tok", "echo bad", path, pw);
    assert_int_equal(ws_open(f, path, "tok-nobody-000000000", &c), 401);
}

static void test_ws_attach(void **state)
{
    fixture_t *f = *state;
    group_running(f, "att");
    char *p = gpath("att", "/containers/app/attach");
    test_http_t h = http(f, "POST", p, NULL);
    if (h.status != 200)
        fprintf(stderr, "attach: %ld %s\n", h.status, h.body);
    assert_int_equal(h.status, 200);
    char path[128], pw[64];
    snprintf(path, sizeof path, "%s",
             strstr(json_string_value(json_object_get(h.json, "webSocketUri")), "/berth/exec/"));
    snprintf(pw, sizeof pw, "%s", json_string_value(json_object_get(h.json, "password")));
    test_http_free(&h);
    free(p);
    ws_client_t c;
    assert_int_equal(ws_open(f, path, NULL, &c), 101);
    ws_send(&c, WSLAY_TEXT_FRAME, pw, strlen(pw));
    /* The container's log lines (the sim writes "started"). */
    assert_true(ws_read_until(&c, "started"));
    assert_false(c.close_received);
    /* The group stops: the stream ends. */
    p = gpath("att", "/stop");
    h = http(f, "POST", p, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    free(p);
    ws_finish(&c);
    assert_int_equal(c.close_code, 1000);
    assert_string_equal(c.reason, "the container group stopped");
    assert_true(c.eof);
    ws_free(&c);
    /* A stopped group cannot be attached to. */
    p = gpath("att", "/containers/app/attach");
    h = http(f, "POST", p, NULL);
    assert_int_equal(h.status, 409);
    test_http_free(&h);
    free(p);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int setup_with(void **state, bool tokens)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->cell, sizeof f->cell, "ws-%d-%d", (int)getpid() % 10000, ++cell_counter);
    if (tokens) {
        snprintf(f->tokens, sizeof f->tokens, "/tmp/berthd-ws-tokens-XXXXXX");
        int fd = mkstemp(f->tokens);
        const char *line = TOK_A " " SUB "\n" TOK_B " other\n" TOK_OP " *\n";
        if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
            if (fd >= 0)
                close(fd);
            free(f);
            return -1;
        }
        close(fd);
        f->token = TOK_A;
    }
    const char *args[] = {"--redis", berth_test_redis_group->url, "--cell", f->cell,
                          tokens ? "--tokens" : NULL, f->tokens, NULL};
    const char *agent_args[] = {"--cores", "8", "--memory-mib", "65536", "--tick-ms", "50",
                                "--heartbeat-ms", "200", "--ttl-ms", "10000", NULL};
    if (test_berthd_start(&f->d, false, args) == 0)
        f->d_running = true;
    if (f->d_running &&
        test_agent_start(&f->agent, berth_test_redis_group->url, f->cell, "sim-1", "sim",
                         "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 50}",
                         agent_args) == 0)
        f->agent_running = true;
    /* Wait until berthd's cell lists the host (an operator's route). */
    bool host = false;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (f->agent_running && !host && test_now_ms() < end) {
        test_http_t h = test_http_send(&f->d, "GET", "/berth/hosts", NULL, tokens ? TOK_OP : NULL);
        host = json_array_size(json_object_get(h.json, "value")) >= 1;
        test_http_free(&h);
        if (!host)
            test_sleep_ms(50);
    }
    if (!host) {
        if (f->d_running) {
            test_berthd_dump(&f->d, 30);
            test_berthd_kill(&f->d);
        }
        if (f->agent_running) {
            test_agent_dump(&f->agent, 20);
            test_agent_kill(&f->agent);
        }
        if (f->tokens[0] != '\0')
            unlink(f->tokens);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, false);
}

static int setup_tokens(void **state)
{
    return setup_with(state, true);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = 0;
    if (f->d_running) {
        int st = test_berthd_stop(&f->d);
        if (st != 0) {
            fprintf(stderr, "berthd exited with %d\n", st);
            test_berthd_dump(&f->d, 40);
            rc = -1;
        } else {
            unlink(f->d.log_path);
        }
    }
    if (f->agent_running) {
        test_agent_stop(&f->agent);
        unlink(f->agent.log_path);
    }
    if (f->tokens[0] != '\0')
        unlink(f->tokens);
    free(f);
    return rc;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ws_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_interactive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_no_tty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_keystrokes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_client_leaves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_agent_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_wrong_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_healthz_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_tokens, setup_tokens, teardown),
        cmocka_unit_test_setup_teardown(test_ws_attach, setup, teardown),
    };
    return cmocka_run_group_tests(tests, berth_test_redis_group_setup,
                                  berth_test_redis_group_teardown);
}
