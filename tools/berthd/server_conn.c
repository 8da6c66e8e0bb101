/*
 * server_conn.c: berthd's connections: each one's bufferevent, the
 * deadline of each request (its head and body), the limit on its head, and
 * the CloudError pages that replace evhttp's own error pages.
 *
 * It must never buffer an unbounded amount of a request (a discarded head
 * or body is drained as it comes), never let evhttp's HTML error pages
 * leave, never block the loop, and never touch a connection after evhttp
 * freed it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include "server-internal.h"
#include "lib/random.h"

/* ---- connections ------------------------------------------------------------------------- */

/*
 * libevent 2.1's evhttp has no hook on a new connection, on a request that
 * is still arriving or on the error pages it writes itself, and its one
 * timeout is reset by every byte (a client sending a byte a second would
 * hold a connection for ever).  So the server makes each connection's
 * bufferevent itself (bd_bevcb) and watches its two buffers, always before
 * evhttp looks at them:
 *
 *  - the input callback (bd_conn_input_cb) sees a request's bytes as they
 *    arrive: the first byte of a request on a kept-alive connection starts
 *    its deadline (the first request's runs from accept), and the request's
 *    head is counted to its blank line, so that a head over BD_HEADERS_MAX
 *    is discarded to its end, unparsed, and answered 431;
 *  - the deadline (bd_conn_timer_cb, header_timeout_s) closes a connection
 *    that sent nothing, and fails a request that has not all arrived through
 *    the bufferevent's event callback, the way evhttp learns of its own
 *    read errors, so that evhttp answers it with an error page;
 *  - the output callback (bd_conn_output_cb) sees every response evhttp
 *    writes without us (its pages for a malformed request, a bad
 *    Content-Length, a body over the limit, and the failures above) and
 *    replaces it, before a byte of it leaves, with a CloudError of the same
 *    status (or 408, 431); evhttp then closes the connection as it would
 *    have.
 *
 * This leans on what evhttp 2.1 (and 2.2) do: the bufferevent's callback
 * argument is its evhttp_connection, a response starts with its status line
 * written in one piece, and evbuffer callbacks run at once, the newest
 * first.  A connection is known (a bd_conn_t) from just after accept until
 * evhttp frees it and calls bd_conn_closecb; one that could not be known
 * (out of memory) is only ever answered 503.  Nothing here blocks, and a
 * discarded head or body is drained as it comes, never kept.
 */

/* (Re)arms the connection's one timer. */
static void bd_conn_arm(bd_conn_t *c, uint32_t seconds)
{
    struct timeval tv = {(time_t)seconds, 0};
    evtimer_add(c->timer, &tv);
}

/* A request starts arriving: its deadline runs from now. */
static void bd_conn_begin(bd_conn_t *c)
{
    c->state = BD_CONN_READING;
    clock_gettime(CLOCK_MONOTONIC, &c->started);
    c->request_bytes = 0;
    bd_head_start(&c->head);
    c->answer = 0;
    bd_conn_arm(c, c->srv->cfg->header_timeout_s);
}

/* Counts `n` bytes of the request from offset `from` of `in` and, until the
 * head's blank line, scans them for it (bd_head_scan()). */
static void bd_conn_scan(bd_conn_t *c, struct evbuffer *in, size_t from, size_t n)
{
    c->request_bytes += n;
    struct evbuffer_ptr pos;
    if (c->head.done || evbuffer_ptr_set(in, &pos, from, EVBUFFER_PTR_SET) != 0)
        return;
    char chunk[1024];
    while (n > 0 && !c->head.done) {
        size_t want = n < sizeof chunk ? n : sizeof chunk;
        ev_ssize_t got = evbuffer_copyout_from(in, &pos, chunk, want);
        if (got <= 0)
            return;
        bd_head_scan(&c->head, chunk, (size_t)got);
        n -= (size_t)got;
        if (evbuffer_ptr_set(in, &pos, (size_t)got, EVBUFFER_PTR_ADD) != 0)
            return;
    }
}

/* After a scan: a head over the limit is drained before evhttp parses a
 * byte of it, and once its end went by too, answered (from the timer: the
 * answer must not start inside the bufferevent's read). */
static void bd_conn_check_head(bd_conn_t *c, struct evbuffer *in)
{
    if (c->state == BD_CONN_READING && c->head.bytes > BD_HEADERS_MAX)
        c->state = BD_CONN_OVERSIZED;
    if (c->state != BD_CONN_OVERSIZED)
        return;
    evbuffer_drain(in, evbuffer_get_length(in));
    if (c->head.done) {
        struct timeval now = {0, 0};
        evtimer_add(c->timer, &now);
    }
}

/* Starts the next request when bytes of it already wait in the input (a
 * pipelining client, or bytes that came before adoption). */
static void bd_conn_begin_pending(bd_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t pending = evbuffer_get_length(in);
    if (pending == 0)
        return;
    if (c->state != BD_CONN_READING)
        bd_conn_begin(c);
    bd_conn_scan(c, in, 0, pending);
    bd_conn_check_head(c, in);
}

/* The input buffer's callback: runs as bytes arrive (and as evhttp or we
 * take them), before evhttp parses them.  Starts, counts and bounds the
 * request they belong to; drops what comes while an answer goes out. */
static void bd_conn_input_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    bd_conn_t *c = arg;
    size_t len = evbuffer_get_length(in);
    size_t n = info->n_added < len ? info->n_added : len;
    if (n == 0)
        return;
    switch (c->state) {
    case BD_CONN_IDLE:
        bd_conn_begin(c);
        /* fall through */
    case BD_CONN_READING:
    case BD_CONN_OVERSIZED:
        bd_conn_scan(c, in, len - n, n);
        bd_conn_check_head(c, in);
        break;
    case BD_CONN_CLOSING:
        /* evhttp reads on while its answer goes out (to notice a close);
         * what it reads is never looked at. */
        evbuffer_drain(in, len);
        break;
    case BD_CONN_SERVING:
        /* The next request, pipelined: scanned once the reply is out. */
        break;
    case BD_CONN_UPGRADED:
        break;
    }
}

/* Takes the last `n` bytes off `out` (evbuffer drains only from the front). */
static void bd_evbuffer_drop_tail(struct evbuffer *out, size_t n)
{
    size_t len = evbuffer_get_length(out);
    struct evbuffer *keep = n < len ? evbuffer_new() : NULL;
    if (keep != NULL)
        evbuffer_remove_buffer(out, keep, len - n);
    evbuffer_drain(out, evbuffer_get_length(out));
    if (keep != NULL) {
        evbuffer_add_buffer(out, keep);
        evbuffer_free(keep);
    }
}

/* Writes a CloudError answer with `status` to `out` (HTTP/`version`, then
 * the connection closes) and logs it like any request. */
static void bd_conn_answer(bd_conn_t *c, struct evbuffer *out, const char *version, int status)
{
    bd_server_t *srv = c->srv;
    const char *code, *reason;
    char msg[256];
    switch (status) {
    case 400:
        code = "BadRequest";
        reason = "Bad Request";
        snprintf(msg, sizeof msg, "The request is malformed: its request line, a header or its "
                                  "Content-Length cannot be read.");
        break;
    case 408:
        code = "RequestTimeout";
        reason = "Request Timeout";
        snprintf(msg, sizeof msg, "The request did not arrive in full within %u s.",
                 (unsigned)srv->cfg->header_timeout_s);
        break;
    case 413:
        code = "RequestEntityTooLarge";
        reason = "Payload Too Large";
        snprintf(msg, sizeof msg, "The request body is larger than %zu bytes.",
                 srv->cfg->body_max);
        break;
    case 417:
        code = "ExpectationFailed";
        reason = "Expectation Failed";
        snprintf(msg, sizeof msg, "The Expect header asks for something other than "
                                  "100-continue.");
        break;
    case 431:
        code = "RequestHeaderFieldsTooLarge";
        reason = "Request Header Fields Too Large";
        snprintf(msg, sizeof msg, "The request line and headers are larger than %d bytes.",
                 BD_HEADERS_MAX);
        break;
    case 503:
        code = "ServiceUnavailable";
        reason = "Service Unavailable";
        snprintf(msg, sizeof msg, "berthd cannot take the request now.");
        break;
    default:
        code = status >= 500 ? "InternalServerError" : "BadRequest";
        reason = status >= 500 ? "Internal Server Error" : "Bad Request";
        snprintf(msg, sizeof msg, "The request failed (HTTP %d).", status);
        break;
    }
    berth_error_t err;
    berth_error_set(&err, BERTH_EINVAL, code, "", "%s", msg);
    char *body = NULL;
    if (berth_error_to_json(&err, &body) != 0)
        body = NULL;
    size_t blen = body != NULL ? strlen(body) : 0;
    /* Without random bytes the answer goes out without a request id. */
    char rid[40];
    if (berth__random_uuid(rid) != 0)
        bd_log("error", "no request id for an error page: getrandom: %s", strerror(errno));
    evbuffer_add_printf(out,
                        "HTTP/%s %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n%s%s%s\r\n",
                        version, status, reason, blen, rid[0] != '\0' ? "x-ms-request-id: " : "",
                        rid, rid[0] != '\0' ? "\r\n" : "");
    if (body != NULL)
        evbuffer_add(out, body, blen);
    berth_free(body);

    char *addr = NULL, remote[80];
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(c->evcon, &addr, &port);
    snprintf(remote, sizeof remote, "%s:%u", addr != NULL ? addr : "?", port);
    double secs = bd_elapsed(&c->started);
    bd_metrics_record(srv, code, "-", status, secs);
    bd_access_log(status, secs, "-", "", code, remote, rid, true);
}

/* Catches a response evhttp writes by itself and puts a CloudError in its
 * place; once one went out, drops whatever else evhttp adds. */
static void bd_conn_output_cb(struct evbuffer *out, const struct evbuffer_cb_info *info,
                              void *arg)
{
    bd_conn_t *c = arg;
    size_t len = evbuffer_get_length(out);
    size_t n = info->n_added < len ? info->n_added : len;
    if (n == 0 || c->own_output)
        return;
    /* A socket bufferevent keeps its output's start frozen between its own
     * writes (after the first): thawed while we look and rewrite, then
     * frozen again as it was.  (Copying a byte out fails only then.) */
    char probe;
    bool frozen = evbuffer_copyout(out, &probe, 1) < 0;
    if (frozen)
        evbuffer_unfreeze(out, 1);
    int status = 0;
    char version[4] = "1.1";
    if (c->state != BD_CONN_CLOSING) {
        /* "HTTP/1.1 400 Bad Request\r\n", in one piece. */
        char line[16] = "";
        struct evbuffer_ptr at;
        if (evbuffer_ptr_set(out, &at, len - n, EVBUFFER_PTR_SET) == 0)
            evbuffer_copyout_from(out, &at, line, n < sizeof line - 1 ? n : sizeof line - 1);
        if (strncmp(line, "HTTP/1.", 7) == 0 && line[8] == ' ' && line[9] >= '1' &&
            line[9] <= '5' && line[10] >= '0' && line[10] <= '9' && line[11] >= '0' &&
            line[11] <= '9') {
            status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
            version[2] = line[7];
        }
    }
    /* 100 Continue goes out as it is; so would anything that is not a
     * response's start (evhttp writes nothing else). */
    if (c->state == BD_CONN_CLOSING || (status != 0 && status != 100)) {
        c->own_output = true;
        bd_evbuffer_drop_tail(out, n);
        if (c->state != BD_CONN_CLOSING) {
            c->state = BD_CONN_CLOSING;
            bd_conn_arm(c, c->srv->cfg->header_timeout_s);
            bd_conn_answer(c, out, version, c->answer != 0 ? c->answer : status);
        }
        c->own_output = false;
    }
    if (frozen)
        evbuffer_freeze(out, 1);
}

/* The connection's timer: the request's deadline passed (408, or a silent
 * close when nothing came), an oversized head ended (431), or an answer or
 * the failure raised for it took too long (close).  May free c. */
static void bd_conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_conn_t *c = arg;
    switch (c->state) {
    case BD_CONN_READING:
    case BD_CONN_OVERSIZED:
        if (c->answer != 0 || c->request_bytes == 0) {
            /* Nothing came since accept (not even a whole TLS handshake):
             * nobody to answer; or the failure raised below brought no
             * answer within its bound.  Frees c (bd_conn_closecb). */
            evhttp_connection_free(c->evcon);
            return;
        }
        c->answer = c->state == BD_CONN_OVERSIZED ? 431 : 408;
        break;
    case BD_CONN_CLOSING:
        /* The answer did not leave in time. */
        evhttp_connection_free(c->evcon);
        return;
    default:
        return;
    }
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    bd_conn_arm(c, c->srv->cfg->header_timeout_s);
    /* evhttp takes this for a failed read like any other and answers the
     * request with its 400 page, which bd_conn_output_cb replaces with
     * c->answer (the connection is CLOSING from then on).  c may be gone
     * when this returns. */
    bufferevent_trigger_event(c->bev, BEV_EVENT_READING, 0);
}

/* Forgets c: its callbacks, its timer and its index entry.  The bufferevent
 * is evhttp's and must still exist. */
static void bd_conn_free(bd_conn_t *c)
{
    bd_server_t *srv = c->srv;
    if (c->input_cb != NULL)
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
    if (c->output_cb != NULL)
        evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->output_cb);
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->fd >= 0 && (size_t)c->fd < srv->conn_by_fd_cap && srv->conn_by_fd[c->fd] == c)
        srv->conn_by_fd[c->fd] = NULL;
    free(c);
}

/* evhttp is freeing the connection.  A reply still pending on it is marked
 * closed; when libevent detached its request from the connection, the
 * request is ours to free, otherwise libevent frees it with the
 * connection. */
static void bd_conn_closecb(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    bd_conn_t *c = arg;
    if (c->ws != NULL)
        bd_ws_conn_gone(c->ws);
    c->ws = NULL;
    bd_reply_t *r = c->reply;
    if (r != NULL) {
        r->closed = true;
        r->evcon = NULL;
        r->conn = NULL;
        if (r->req != NULL && evhttp_request_get_connection(r->req) != NULL)
            r->req = NULL;
    }
    bd_conn_free(c);
}

/* Enters c in the descriptor index.  Returns 0 or -1 (out of memory). */
static int bd_conn_index(bd_server_t *srv, bd_conn_t *c)
{
    size_t fd = (size_t)c->fd;
    if (fd >= srv->conn_by_fd_cap) {
        size_t cap = srv->conn_by_fd_cap != 0 ? srv->conn_by_fd_cap : 64;
        while (cap <= fd)
            cap *= 2;
        bd_conn_t **t = realloc(srv->conn_by_fd, cap * sizeof *t);
        if (t == NULL)
            return -1;
        memset(t + srv->conn_by_fd_cap, 0, (cap - srv->conn_by_fd_cap) * sizeof *t);
        srv->conn_by_fd = t;
        srv->conn_by_fd_cap = cap;
    }
    /* A descriptor is reused only after its connection's close callback
     * cleared its entry. */
    srv->conn_by_fd[fd] = c;
    return 0;
}

/* The connection of a request evhttp hands us, or NULL when it is not
 * known. */
bd_conn_t *bd_conn_of(bd_server_t *srv, struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    if (fd < 0 || (size_t)fd >= srv->conn_by_fd_cap)
        return NULL;
    bd_conn_t *c = srv->conn_by_fd[fd];
    return c != NULL && c->evcon == evcon ? c : NULL;
}

/* Finds the evhttp_connection evhttp wrapped around c->bev and starts
 * watching it; a connection that cannot be watched is closed.  Drops the
 * reference bd_bevcb took. */
static void bd_conn_adopt(bd_conn_t *c)
{
    bd_server_t *srv = c->srv;
    struct bufferevent *bev = c->bev;
    void *arg = NULL;
    bufferevent_getcb(bev, NULL, NULL, NULL, &arg);
    struct evhttp_connection *evcon = arg;
    if (evcon == NULL || evhttp_connection_get_bufferevent(evcon) != bev) {
        /* evhttp dropped it already (freeing a bufferevent clears its
         * callbacks; our reference kept it readable). */
        free(c);
        bufferevent_decref(bev);
        return;
    }
    c->evcon = evcon;
    c->fd = bufferevent_getfd(bev);
    c->timer = evtimer_new(srv->base, bd_conn_timer_cb, c);
    c->input_cb = evbuffer_add_cb(bufferevent_get_input(bev), bd_conn_input_cb, c);
    c->output_cb = evbuffer_add_cb(bufferevent_get_output(bev), bd_conn_output_cb, c);
    if (c->refuse || c->fd < 0 || c->timer == NULL || c->input_cb == NULL ||
        c->output_cb == NULL || bd_conn_index(srv, c) != 0) {
        bd_conn_free(c);
        evhttp_connection_free(evcon);
        bufferevent_decref(bev);
        return;
    }
    evhttp_connection_set_closecb(evcon, bd_conn_closecb, c);
    bd_conn_begin(c); /* the first request's deadline runs from accept */
    bd_conn_begin_pending(c);
    bufferevent_decref(bev);
}

/* Adopts every connection accepted since the last turn (srv->adopting). */
void bd_adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_server_t *srv = arg;
    while (srv->adopting != NULL) {
        bd_conn_t *c = srv->adopting;
        srv->adopting = c->next;
        c->next = NULL;
        bd_conn_adopt(c);
    }
}

/* evhttp's bufferevent factory, called once per accepted connection before
 * evhttp wraps the bufferevent (TLS or plain, its descriptor set by evhttp)
 * in its evhttp_connection.  The connection is adopted (bd_adopt_cb) later
 * in the same turn of the loop, before any of its I/O.  A NULL return would
 * make evhttp use a plain bufferevent of its own. */
struct bufferevent *bd_bevcb(struct event_base *base, void *arg)
{
    bd_server_t *srv = arg;
    bd_accept_succeeded(srv);
    struct bufferevent *bev = NULL;
    bool refuse = false;
    if (srv->ssl != NULL) {
        bev = bd_tls_bev(srv, base);
        refuse = bev == NULL; /* a plain one stands in, to be closed */
    }
    if (bev == NULL)
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        return NULL;
    bd_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return bev; /* not known: bd_request_cb answers it 503 */
    c->srv = srv;
    c->bev = bev;
    c->fd = -1;
    c->refuse = refuse;
    /* Held until adoption: should evhttp drop the connection first, the
     * bufferevent outlives it and shows it (no callbacks left). */
    bufferevent_incref(bev);
    c->next = srv->adopting;
    srv->adopting = c;
    event_active(srv->adopt_ev, EV_TIMEOUT, 0);
    return bev;
}

/* Contract: server-internal.h. */
void bd_conn_takeover(bd_conn_t *c, bd_ws_t *ws)
{
    if (c->input_cb != NULL)
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
    if (c->output_cb != NULL)
        evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->output_cb);
    c->input_cb = NULL;
    c->output_cb = NULL;
    evtimer_del(c->timer);
    c->state = BD_CONN_UPGRADED;
    c->ws = ws;
}

/* The request on c is complete and handed to us: its deadline stops. */
void bd_conn_serving(bd_conn_t *c)
{
    c->state = BD_CONN_SERVING;
    c->answer = 0;
    evtimer_del(c->timer);
}

/* Our reply to the request on c was handed to evhttp: the connection is
 * kept alive (evhttp's idle timeout) until the next request's first byte. */
void bd_conn_replied(bd_conn_t *c)
{
    c->own_output = false;
    c->reply = NULL;
    if (c->state == BD_CONN_SERVING) {
        c->state = BD_CONN_IDLE;
        bd_conn_begin_pending(c);
    }
}
