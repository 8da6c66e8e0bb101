/*
 * ws.c: `berthctl container exec`'s WebSocket session: the client side of
 * berthd's exec sessions (RFC 6455).  libcurl opens the connection
 * (CURLOPT_CONNECT_ONLY, set up as http.c sets up every other request:
 * timeouts, the CA file, --insecure), the upgrade is written and checked
 * here, and wslay frames what follows, the bytes going through
 * curl_easy_send() and curl_easy_recv().
 *
 * The session: the password is the first message; then stdin's bytes go
 * out (with the subprotocol berth.exec.v1 as channel 0, its end as channel
 * 1 and a terminal's resizes as channel 2; without it, when berthd does not
 * echo the subprotocol, as plain binary messages), the output comes back
 * as frames written raw to stdout, and the close frame says how it ended:
 * 1000 "exit status N" gives berthctl's exit status N.  When stdin is a
 * terminal it is raw for the session.
 *
 * It must never leave the terminal raw (every way out restores it, SIGTERM
 * and SIGHUP included), never print or keep the password (its buffers are
 * wiped), never send the bearer token anywhere but the endpoint's origin,
 * never wait on the network without a bound before the session opens
 * (--timeout), and never spin: the session waits in poll() with a
 * timeout.  Nothing here frames bytes by hand: wslay does; the answer to
 * the upgrade is read by wsanswer.c (fuzzed by tests/fuzz/fuzz_wsanswer.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#include "berthctl.h"
#include "lib/curl.h"
#include "lib/random.h"
#include "wsanswer.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_CONNECT_TIMEOUT_MS 10000L
#define WS_HEAD_MAX 16384               /* the 101's status line and headers */
#define WS_ERROR_BODY_MAX 65536         /* a refused upgrade's body kept     */
#define WS_MSG_MAX (16u << 20)          /* one message from berthd           */
#define WS_INPUT_CHUNK 16384            /* stdin read at a time              */
#define WS_QUEUE_MAX (1u << 20)         /* stdin queued but not yet sent     */
#define WS_POLL_MS 1000                 /* poll()'s bound: never spin        */
#define WS_CLOSE_WAIT_MS 5000           /* our close's way out, at the end   */

/* The channels of berth.exec.v1 (the first byte of each message). */
enum { CH_STDIN = 0, CH_EOF = 1, CH_RESIZE = 2 };

/* One session's connection and what came over it. */
typedef struct ws_conn {
    CURL *curl;
    curl_socket_t fd;
    unsigned char *pending;         /* read past the 101's headers           */
    size_t npending, pos;
    bool broken;                    /* the connection failed or closed       */
    bool output_failed;             /* stdout refused the output             */
    bool close_received;
    uint16_t close_code;
    char reason[128];
    char *held;                     /* a "berthd: " text frame, kept until we
                                       know whether an error close follows  */
    size_t nheld;
} ws_conn_t;

/* ---- small helpers ------------------------------------------------------------------- */

/* Waits until fd is ready for `events` or the deadline; false at the deadline. */
static bool wait_fd(curl_socket_t fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - berth__clock_monotonic_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, left > WS_POLL_MS ? WS_POLL_MS : (int)left);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

/* Writes all of data to fd (stdout, stderr); false when it cannot. */
static bool write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd w = {fd, POLLOUT, 0};
            if (poll(&w, 1, WS_POLL_MS) < 0 && errno != EINTR)
                return false;
        } else if (n < 0 && errno != EINTR) {
            return false;
        }
    }
    return true;
}

/* The length of the scheme-and-authority part of an http(s) URL
 * ("https://host:port"), or 0. */
static size_t origin_length(const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return 0;
    p += 3;
    return (size_t)(p - url) + strcspn(p, "/?#");
}

/* ---- the handshake ------------------------------------------------------------------- */

/* Sends all of data before the deadline; false (why in `why`) otherwise. */
static bool send_all(ws_conn_t *w, const char *data, size_t len, int64_t deadline_ms,
                     char *why, size_t cap)
{
    while (len > 0) {
        size_t n = 0;
        CURLcode cc = curl_easy_send(w->curl, data, len, &n);
        if (cc == CURLE_OK) {
            data += n;
            len -= n;
        } else if (cc != CURLE_AGAIN) {
            snprintf(why, cap, "%s", curl_easy_strerror(cc));
            return false;
        } else if (!wait_fd(w->fd, POLLOUT, deadline_ms)) {
            snprintf(why, cap, "timed out");
            return false;
        }
    }
    return true;
}

/* Reads into buf (at most cap bytes, *len held already) until it holds
 * `want` bytes (0: until the end of the headers, "\r\n\r\n"), the peer
 * closes (*eof) or the deadline.  Returns false at the deadline or on an
 * error (why says it). */
static bool read_some(ws_conn_t *w, char *buf, size_t cap, size_t *len, size_t want,
                      int64_t deadline_ms, bool *eof, char *why, size_t why_cap)
{
    *eof = false;
    while (*len < cap && (want > 0 ? *len < want : memmem(buf, *len, "\r\n\r\n", 4) == NULL)) {
        size_t n = 0;
        CURLcode cc = curl_easy_recv(w->curl, buf + *len, cap - *len, &n);
        if (cc == CURLE_OK && n == 0) {
            *eof = true;
            return true;
        }
        if (cc == CURLE_OK) {
            *len += n;
        } else if (cc != CURLE_AGAIN) {
            snprintf(why, why_cap, "%s", curl_easy_strerror(cc));
            return false;
        } else if (!wait_fd(w->fd, POLLIN, deadline_ms)) {
            snprintf(why, why_cap, "timed out");
            return false;
        }
    }
    return true;
}

/* A refused upgrade: reads its body (bounded) and reports it as any
 * failed exchange.  Returns BERTHCTL_EXIT_HTTP. */
static int handshake_refused(ws_conn_t *w, long status, char *buf, size_t len, size_t head_len,
                             int64_t deadline_ms)
{
    berthctl_response_t r = {.status = status};
    size_t vlen = 0;
    const char *cl = berthctl_ws_header_find(buf, buf + head_len - 2, "Content-Length", &vlen);
    long want = 0;
    char num[24];
    if (cl != NULL && vlen < sizeof num) {
        memcpy(num, cl, vlen);
        num[vlen] = '\0';
        if (!berthctl_parse_long(num, 0, WS_ERROR_BODY_MAX, &want))
            want = 0;
    }
    size_t blen = len - head_len;
    char *body = malloc(WS_ERROR_BODY_MAX + 1);
    if (body != NULL) {
        memcpy(body, buf + head_len, blen < WS_ERROR_BODY_MAX ? blen : WS_ERROR_BODY_MAX);
        if (blen > WS_ERROR_BODY_MAX)
            blen = WS_ERROR_BODY_MAX;
        bool eof;
        char why[64];
        if (want > 0)
            (void)read_some(w, body, WS_ERROR_BODY_MAX, &blen, (size_t)want, deadline_ms, &eof,
                            why, sizeof why);
        if (want > 0 && blen > (size_t)want)
            blen = (size_t)want;
        body[blen] = '\0';
        r.body = body;
        r.len = blen;
        r.json = json_loadb(body, blen, 0, NULL);
    }
    int rc = berthctl_http_error("exec", &r);
    berthctl_response_free(&r);
    return rc;
}

/* Opens the session's connection and upgrades it.  On success returns
 * BERTHCTL_EXIT_OK with w ready and *v1 telling whether berthd speaks
 * berth.exec.v1; otherwise prints why and returns the exit status. */
static int ws_open(berthctl_client_t *c, const char *uri, ws_conn_t *w, bool *v1)
{
    *v1 = false;
    berthctl_string_t u = {0};
    if (strncmp(uri, "wss://", 6) == 0)
        berthctl_string_printf(&u, "https://%s", uri + 6);
    else if (strncmp(uri, "ws://", 5) == 0)
        berthctl_string_printf(&u, "http://%s", uri + 5);
    else {
        fprintf(stderr, "berthctl: exec: the webSocketUri is not a ws:// or wss:// URL\n");
        return BERTHCTL_EXIT_HTTP;
    }
    char *url = berthctl_string_take(&u);
    if (url == NULL)
        return berthctl_out_of_memory();
    const char *authority = strstr(url, "://") + 3;
    size_t alen = strcspn(authority, "/?#");
    const char *path = authority + alen;
    if (alen == 0 || strpbrk(url, " \t\r\n") != NULL || *path == '#') {
        fprintf(stderr, "berthctl: exec: the webSocketUri is not a valid URL\n");
        free(url);
        return BERTHCTL_EXIT_HTTP;
    }

    int64_t deadline = c->deadline_ms;
    int64_t left = deadline - berth__clock_monotonic_ms();
    if (left <= 0) {
        fprintf(stderr, "berthctl: exec: timed out (--timeout %g s)\n", c->timeout_s);
        free(url);
        return BERTHCTL_EXIT_HTTP;
    }
    char why[CURL_ERROR_SIZE] = "";
    CURL *h = c->curl;
    curl_easy_reset(h);
    berth__curl_options_t how = {
        .timeout_ms = (long)left + 1,
        .connect_timeout_ms = left < WS_CONNECT_TIMEOUT_MS ? (long)left + 1 : WS_CONNECT_TIMEOUT_MS,
        .cacert = c->ep.cacert,
        .insecure = c->ep.insecure,
    };
    berth__curl_setup(h, &how);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    /* Through a proxy the upgrade must travel in a tunnel. */
    curl_easy_setopt(h, CURLOPT_HTTPPROXYTUNNEL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, why);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    CURLcode cc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    w->curl = h;
    if (cc == CURLE_OK)
        cc = curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &w->fd);
    if (cc != CURLE_OK || w->fd == CURL_SOCKET_BAD) {
        fprintf(stderr, "berthctl: exec: no answer: ");
        berthctl_put_clean(stderr, why[0] != '\0' ? why : curl_easy_strerror(cc), 300);
        fputc('\n', stderr);
        free(url);
        return BERTHCTL_EXIT_HTTP;
    }

    /* The upgrade, with a fresh key and the expected answer to it. */
    unsigned char nonce[16];
    char key[32], accept[32];
    unsigned char sha[SHA_DIGEST_LENGTH];
    char keyed[96];
    if (berth__random_bytes(nonce, sizeof nonce) != 0) {
        fprintf(stderr, "berthctl: exec: no random bytes from the kernel\n");
        free(url);
        return BERTHCTL_EXIT_FAILED;
    }
    EVP_EncodeBlock((unsigned char *)key, nonce, (int)sizeof nonce);
    snprintf(keyed, sizeof keyed, "%s%s", key, WS_GUID);
    SHA1((const unsigned char *)keyed, strlen(keyed), sha);
    EVP_EncodeBlock((unsigned char *)accept, sha, (int)sizeof sha);

    /* The token goes only where berthctl's other requests go. */
    size_t eo = origin_length(c->base);
    bool same_origin = eo > 0 && eo == origin_length(url) && strncasecmp(url, c->base, eo) == 0;
    berthctl_string_t b = {0};
    berthctl_string_printf(&b,
                           "GET %s%s HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: berthctl\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Protocol: " BERTHCTL_WS_SUBPROTOCOL "\r\n",
                           *path == '/' ? "" : "/", path, (int)alen, authority, key);
    if (c->ep.token != NULL && same_origin)
        berthctl_string_printf(&b, "Authorization: Bearer %s\r\n", c->ep.token);
    berthctl_string_printf(&b, "\r\n");
    free(url);
    char *req = berthctl_string_take(&b);
    if (req == NULL)
        return berthctl_out_of_memory();
    bool sent = send_all(w, req, strlen(req), deadline, why, sizeof why);
    berthctl_wipe(req);
    free(req);
    if (!sent) {
        fprintf(stderr, "berthctl: exec: the WebSocket upgrade could not be sent: %s\n", why);
        return BERTHCTL_EXIT_HTTP;
    }

    char *buf = malloc(WS_HEAD_MAX);
    if (buf == NULL)
        return berthctl_out_of_memory();
    size_t len = 0;
    bool eof;
    if (!read_some(w, buf, WS_HEAD_MAX, &len, 0, deadline, &eof, why, sizeof why)) {
        fprintf(stderr, "berthctl: exec: no answer to the WebSocket upgrade: %s%s\n", why,
                strcmp(why, "timed out") == 0 ? " (--timeout)" : "");
        free(buf);
        return BERTHCTL_EXIT_HTTP;
    }
    berthctl_ws_answer_t ans;
    if (!berthctl_ws_answer_read(buf, len, accept, &ans)) {
        fprintf(stderr, "berthctl: exec: %s\n",
                memmem(buf, len, "\r\n\r\n", 4) == NULL && eof
                    ? "the connection closed during the WebSocket upgrade"
                    : "the answer to the WebSocket upgrade is not HTTP");
        free(buf);
        return BERTHCTL_EXIT_HTTP;
    }
    size_t head_len = ans.head_len;
    if (ans.status != 101) {
        int rc = handshake_refused(w, ans.status, buf, len, head_len, deadline);
        free(buf);
        return rc;
    }
    if (ans.bad != NULL) {
        fprintf(stderr, "berthctl: exec: the WebSocket upgrade was answered with %s\n",
                ans.bad);
        free(buf);
        return BERTHCTL_EXIT_HTTP;
    }
    *v1 = ans.v1;
    /* What came after the headers is the start of the frames. */
    w->npending = len - head_len;
    w->pos = 0;
    memmove(buf, buf + head_len, w->npending);
    w->pending = (unsigned char *)buf;
    return BERTHCTL_EXIT_OK;
}

/* ---- wslay's callbacks --------------------------------------------------------------- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user)
{
    (void)flags;
    ws_conn_t *w = user;
    if (w->pos < w->npending) {
        size_t n = w->npending - w->pos < len ? w->npending - w->pos : len;
        memcpy(buf, w->pending + w->pos, n);
        w->pos += n;
        return (ssize_t)n;
    }
    size_t n = 0;
    CURLcode cc = curl_easy_recv(w->curl, buf, len, &n);
    if (cc == CURLE_OK && n > 0)
        return (ssize_t)n;
    if (cc == CURLE_AGAIN) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    w->broken = true;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user)
{
    (void)flags;
    ws_conn_t *w = user;
    size_t n = 0;
    CURLcode cc = curl_easy_send(w->curl, data, len, &n);
    if (cc == CURLE_OK)
        return (ssize_t)n;
    if (cc == CURLE_AGAIN) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    w->broken = true;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx, (void)user;
    return berth__random_bytes(buf, len) == 0 ? 0 : -1;
}

/* Writes a held text frame to stdout: it was output after all. */
static void flush_held(ws_conn_t *w)
{
    if (w->held != NULL && !write_all(STDOUT_FILENO, w->held, w->nheld))
        w->output_failed = true;
    free(w->held);
    w->held = NULL;
    w->nheld = 0;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user)
{
    (void)ctx;
    ws_conn_t *w = user;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        w->close_received = true;
        w->close_code = arg->status_code;
        size_t n = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
        if (n >= sizeof w->reason)
            n = sizeof w->reason - 1;
        memcpy(w->reason, arg->msg_length > 2 ? (const char *)arg->msg + 2 : "", n);
        w->reason[n] = '\0';
        return;
    }
    if (wslay_is_ctrl_frame(arg->opcode) || w->close_received)
        return;
    flush_held(w);
    /* berthd's failure is a text frame "berthd: <message>\r\n" before an
     * error close: such a frame waits to see what follows it. */
    if (arg->opcode == WSLAY_TEXT_FRAME && arg->msg_length >= 8 &&
        memcmp(arg->msg, "berthd: ", 8) == 0 && (w->held = malloc(arg->msg_length)) != NULL) {
        memcpy(w->held, arg->msg, arg->msg_length);
        w->nheld = arg->msg_length;
        return;
    }
    if (!w->output_failed && !write_all(STDOUT_FILENO, arg->msg, arg->msg_length))
        w->output_failed = true;
}

/* ---- the terminal and signals --------------------------------------------------------- */

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (signal_pipe[1] >= 0)
        (void)write(signal_pipe[1], &b, 1);
    errno = saved;
}

/* What the session changed in the process, to put back. */
typedef struct ws_process {
    bool tty;                       /* stdin is a terminal                  */
    bool raw;                       /* and it is raw now                    */
    struct termios saved;
    struct sigaction old[5];
} ws_process_t;

static const int caught[5] = {SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGPIPE};

/* Installs the handlers (a terminal session only: nothing to restore
 * otherwise) and makes stdin raw.  Returns false when the signal pipe
 * cannot be made. */
static bool process_enter(ws_process_t *p)
{
    if (!p->tty)
        return true;
    if (pipe2(signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        return false;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < 5; i++) {
        struct sigaction use = sa;
        /* A closed stdout shows as EPIPE, not a death in raw mode. */
        if (caught[i] == SIGPIPE)
            use.sa_handler = SIG_IGN;
        sigaction(caught[i], &use, &p->old[i]);
    }
    if (tcgetattr(STDIN_FILENO, &p->saved) == 0) {
        struct termios t = p->saved;
        cfmakeraw(&t);
        p->raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    }
    return true;
}

/* Puts the terminal and the handlers back. */
static void process_leave(ws_process_t *p)
{
    if (!p->tty)
        return;
    if (p->raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &p->saved);
    p->raw = false;
    for (size_t i = 0; i < 5; i++)
        sigaction(caught[i], &p->old[i], NULL);
    for (size_t i = 0; i < 2; i++) {
        if (signal_pipe[i] >= 0)
            close(signal_pipe[i]);
        signal_pipe[i] = -1;
    }
}

/* Contract (berthctl.h). */
bool berthctl_terminal_size(int *rows, int *cols)
{
    struct winsize ws;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0)
        return false;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return true;
}

/* ---- the session ------------------------------------------------------------------- */

/* Queues one message; false when wslay refused it (out of memory). */
static bool queue(wslay_event_context_ptr ctx, uint8_t opcode, const void *data, size_t len)
{
    struct wslay_event_msg m = {opcode, data, len};
    return wslay_event_queue_msg(ctx, &m) == 0;
}

/* Queues stdin's bytes (channel 0 under berth.exec.v1). */
static bool queue_input(wslay_event_context_ptr ctx, bool v1, const char *data, size_t len)
{
    if (!v1)
        return queue(ctx, WSLAY_BINARY_FRAME, data, len);
    char msg[WS_INPUT_CHUNK + 1];
    msg[0] = CH_STDIN;
    memcpy(msg + 1, data, len);
    return queue(ctx, WSLAY_BINARY_FRAME, msg, len + 1);
}

/* Queues the terminal's size (channel 2), when berthd understands it. */
static bool queue_resize(wslay_event_context_ptr ctx, bool v1)
{
    int rows, cols;
    if (!v1 || !berthctl_terminal_size(&rows, &cols))
        return true;
    char msg[32];
    int n = snprintf(msg, sizeof msg, "%c%d %d", CH_RESIZE, rows, cols);
    return queue(ctx, WSLAY_BINARY_FRAME, msg, (size_t)n);
}

/* How a session ended, for the report printed once the terminal is back. */
typedef enum ws_end {
    END_CLOSED,                     /* berthd's close frame came            */
    END_DROPPED,                    /* the connection went without one      */
    END_OUTPUT,                     /* stdout refused the output            */
    END_SIGNAL,                     /* SIGTERM or SIGHUP                    */
    END_NOMEM
} ws_end_t;

/* Runs the session until berthd closes it, the connection drops or a
 * signal ends it; *sig is that signal. */
static ws_end_t session_run(wslay_event_context_ptr ctx, ws_conn_t *w, bool v1, bool tty,
                            int *sig)
{
    bool stdin_open = true;
    int64_t close_deadline = 0;
    char in[WS_INPUT_CHUNK];
    /* Frames read with the 101's headers (or held by TLS) come first. */
    if (wslay_event_recv(ctx) != 0)
        return w->close_received ? END_CLOSED : END_DROPPED;
    for (;;) {
        if (w->output_failed)
            return END_OUTPUT;
        if (!wslay_event_want_read(ctx) && !wslay_event_want_write(ctx))
            return w->close_received ? END_CLOSED : END_DROPPED;
        if (w->close_received && close_deadline == 0)
            close_deadline = berth__clock_monotonic_ms() + WS_CLOSE_WAIT_MS;
        if (close_deadline != 0 && berth__clock_monotonic_ms() >= close_deadline)
            return END_CLOSED;
        struct pollfd p[3];
        nfds_t np = 0;
        p[np++] = (struct pollfd){w->fd, POLLIN, 0};
        if (wslay_event_want_write(ctx))
            p[0].events |= POLLOUT;
        int sig_at = -1, in_at = -1;
        if (signal_pipe[0] >= 0) {
            sig_at = (int)np;
            p[np++] = (struct pollfd){signal_pipe[0], POLLIN, 0};
        }
        if (stdin_open && !w->close_received &&
            wslay_event_get_queued_msg_length(ctx) < WS_QUEUE_MAX) {
            in_at = (int)np;
            p[np++] = (struct pollfd){STDIN_FILENO, POLLIN, 0};
        }
        int n = poll(p, np, WS_POLL_MS);
        if (n < 0 && errno != EINTR)
            return END_DROPPED;
        if (n <= 0)
            continue;
        /* The signals first, whatever poll() said of their pipe: a handler
         * that ran as poll() returned wrote after it looked, and a resize
         * must go before the input typed after it. */
        if (sig_at >= 0) {
            unsigned char s;
            while (read(signal_pipe[0], &s, 1) == 1) {
                if (s == SIGTERM || s == SIGHUP) {
                    *sig = s;
                    return END_SIGNAL;
                }
                if (s == SIGWINCH && tty && !w->close_received && !queue_resize(ctx, v1))
                    return END_NOMEM;
                /* SIGINT: in raw mode Ctrl-C is a byte for the process;
                 * a SIGINT from elsewhere does not end the session. */
            }
        }
        if (in_at >= 0 && p[in_at].revents != 0) {
            ssize_t k = read(STDIN_FILENO, in, sizeof in);
            if (k > 0) {
                if (!queue_input(ctx, v1, in, (size_t)k))
                    return END_NOMEM;
            } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
                stdin_open = false;
                /* The end of input is said once, when it can be said. */
                if (v1 && !queue(ctx, WSLAY_BINARY_FRAME, (char[]){CH_EOF}, 1))
                    return END_NOMEM;
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (wslay_event_recv(ctx) != 0)
                return w->close_received ? END_CLOSED : END_DROPPED;
        }
        if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0)
            return w->close_received ? END_CLOSED : END_DROPPED;
    }
}

/* Prints a string from berthd on stderr, its control characters and
 * trailing line end left out. */
static void put_text(const char *s, size_t len)
{
    while (len > 0 && (s[len - 1] == '\r' || s[len - 1] == '\n'))
        len--;
    char *t = strndup(s, len);
    berthctl_put_clean(stderr, t != NULL ? t : "", 1000);
    free(t);
}

/* The exit status of a session that ended, with its report on stderr. */
static int session_status(ws_conn_t *w, ws_end_t end)
{
    switch (end) {
    case END_NOMEM:
        return berthctl_out_of_memory();
    case END_OUTPUT:
        fprintf(stderr, "berthctl: exec: cannot write the output to stdout\n");
        return BERTHCTL_EXIT_FAILED;
    case END_DROPPED:
        flush_held(w);
        fprintf(stderr, "berthctl: exec: the connection to berthd was lost before the "
                        "session ended\n");
        return BERTHCTL_EXIT_FAILED;
    case END_SIGNAL:
    case END_CLOSED:
        break;
    }
    long code = 0;
    if (w->close_code >= 4000) {
        fprintf(stderr, "berthctl: exec failed: the session was closed with %u", w->close_code);
        if (w->close_code < 5000)
            fprintf(stderr, " (HTTP %u)", w->close_code - 4000);
        fputc('\n', stderr);
        if (w->reason[0] != '\0') {
            fputs("  code     ", stderr);
            berthctl_put_clean(stderr, w->reason, sizeof w->reason);
            fputc('\n', stderr);
        }
        if (w->held != NULL) {
            fputs("  message  ", stderr);
            put_text(w->held + 8, w->nheld - 8);
            fputc('\n', stderr);
        }
        return BERTHCTL_EXIT_FAILED;
    }
    flush_held(w);
    if (w->close_code == WSLAY_CODE_NORMAL_CLOSURE &&
        strncmp(w->reason, "exit status ", 12) == 0 &&
        berthctl_parse_long(w->reason + 12, -(1L << 30), 1L << 30, &code))
        return code < 0 || code > 255 ? 255 : (int)code;
    fprintf(stderr, "berthctl: exec: the session ended without an exit status (close %u",
            w->close_code);
    if (w->reason[0] != '\0') {
        fputs(" \"", stderr);
        berthctl_put_clean(stderr, w->reason, sizeof w->reason);
        fputc('"', stderr);
    }
    fputs(")\n", stderr);
    return BERTHCTL_EXIT_FAILED;
}

/* Contract (berthctl.h). */
int berthctl_ws_exec(berthctl_client_t *c, const char *uri, const char *password, bool tty)
{
    ws_conn_t w = {.fd = CURL_SOCKET_BAD};
    bool v1 = false;
    int rc = ws_open(c, uri, &w, &v1);
    if (rc != BERTHCTL_EXIT_OK) {
        free(w.pending);
        return rc;
    }
    static const struct wslay_event_callbacks callbacks = {
        .recv_callback = ws_recv_cb,
        .send_callback = ws_send_cb,
        .genmask_callback = ws_genmask_cb,
        .on_msg_recv_callback = ws_msg_cb,
    };
    wslay_event_context_ptr ctx = NULL;
    if (wslay_event_context_client_init(&ctx, &callbacks, &w) != 0) {
        free(w.pending);
        return berthctl_out_of_memory();
    }
    wslay_event_config_set_max_recv_msg_length(ctx, WS_MSG_MAX);
    /* wslay copies the message: the password is wiped by the caller. */
    if (!queue(ctx, WSLAY_TEXT_FRAME, password, strlen(password))) {
        wslay_event_context_free(ctx);
        free(w.pending);
        return berthctl_out_of_memory();
    }
    ws_process_t proc = {.tty = tty};
    if (!process_enter(&proc)) {
        wslay_event_context_free(ctx);
        free(w.pending);
        fprintf(stderr, "berthctl: exec: cannot watch for signals: %s\n", strerror(errno));
        return BERTHCTL_EXIT_FAILED;
    }
    int sig = 0;
    ws_end_t end = session_run(ctx, &w, v1, tty, &sig);
    if (end == END_SIGNAL) {
        /* Goodbye to berthd, without waiting for it. */
        wslay_event_queue_close(ctx, WSLAY_CODE_GOING_AWAY, (const uint8_t *)"berthctl ended",
                                14);
        (void)wslay_event_send(ctx);
    }
    process_leave(&proc);
    wslay_event_context_free(ctx);
    free(w.pending);
    if (end == END_SIGNAL) {
        free(w.held);
        /* Die of the signal, as without a session, the terminal back. */
        fflush(stdout);
        signal(sig, SIG_DFL);
        raise(sig);
        return BERTHCTL_EXIT_FAILED;
    }
    rc = session_status(&w, end);
    free(w.held);
    return rc;
}
