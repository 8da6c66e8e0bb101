/*
 * server.c: berthd's HTTP(S) front.
 *
 * evhttp on the daemon's event_base, with libevent's OpenSSL bufferevents
 * when a certificate and key are given (TLS 1.2 or later).  It enforces the
 * request limits (body size, header size, a deadline per request, an idle
 * timeout per kept-alive connection), answers every HTTP-level error itself
 * as a CloudError (evhttp's own HTML error pages never leave), pauses its
 * listener when descriptors run out, authenticates bearer tokens and scopes
 * them to subscriptions, answers /healthz and /metrics itself, hands
 * /metadata/ and /adfs/ (the Azure CLI's metadata and token endpoints, open
 * to all) to server_arm.c, the WebSocket upgrade of an exec session's path
 * to server_ws.c, and every request under /subscriptions/,
 * /providers/ and /berth/ to the API, and writes one structured access-log
 * line per request to stderr.  This file
 * opens and closes the server and checks each request before handing it
 * on; server-internal.h lists the files that do the rest.
 *
 * It must never log a token or a query string (either may hold secrets),
 * never compare tokens in variable time, never block the loop or buffer an
 * unbounded amount of a request, and never touch a request after its
 * connection has gone: a reply the API sends late to a closed connection is
 * dropped quietly.
 *
 * A captured reply (bd_reply_capture_new()) is bound to no connection: a
 * handler running on berthd's worker thread (worker.c) sends through it,
 * and the loop later forwards what it recorded to the real reply.  The
 * capture side must never touch the server's shared state (metrics, the
 * pending list, libevent objects): it is the one part of the server that
 * runs off the loop (server_reply.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#include "server-internal.h"
#include "query.h"
#include "resource.h"
#include "lib/random.h"

/* ---- requests ------------------------------------------------------------------------------ */

static bd_method_t bd_method_of(enum evhttp_cmd_type cmd, const char **name)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: *name = "GET"; return BD_GET;
    case EVHTTP_REQ_PUT: *name = "PUT"; return BD_PUT;
    case EVHTTP_REQ_POST: *name = "POST"; return BD_POST;
    case EVHTTP_REQ_PATCH: *name = "PATCH"; return BD_PATCH;
    case EVHTTP_REQ_DELETE: *name = "DELETE"; return BD_DELETE;
    case EVHTTP_REQ_HEAD: *name = "HEAD"; return BD_HEAD;
    case EVHTTP_REQ_OPTIONS: *name = "OPTIONS"; return BD_OTHER;
    case EVHTTP_REQ_TRACE: *name = "TRACE"; return BD_OTHER;
    case EVHTTP_REQ_CONNECT: *name = "CONNECT"; return BD_OTHER;
    default: *name = "OTHER"; return BD_OTHER;
    }
}

/* Whether berthd serves the method at all (the others get 405). */
static bool bd_method_served(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
    case EVHTTP_REQ_PUT:
    case EVHTTP_REQ_POST:
    case EVHTTP_REQ_PATCH:
    case EVHTTP_REQ_DELETE:
    case EVHTTP_REQ_HEAD:
    case EVHTTP_REQ_OPTIONS:
        return true;
    default:
        return false;
    }
}

static bool bd_has_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static char *bd_base_url(bd_server_t *srv, struct evhttp_request *req)
{
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    const char *scheme = srv->ssl != NULL ? "https" : "http";
    char *out = NULL;
    if (host != NULL && host[0] != '\0' && bd_header_value_ok(host) &&
        strcspn(host, " /\\\"<>") == strlen(host)) {
        if (asprintf(&out, "%s://%s", scheme, host) < 0)
            out = NULL;
    } else {
        const char *a = srv->cfg->listen_addr;
        bool v6 = strchr(a, ':') != NULL;
        if (asprintf(&out, "%s://%s%s%s:%u", scheme, v6 ? "[" : "", a, v6 ? "]" : "",
                     (unsigned)srv->cfg->listen_port) < 0)
            out = NULL;
    }
    return out;
}

static void bd_request_cb(struct evhttp_request *req, void *arg)
{
    bd_server_t *srv = arg;
    /* A connection we could not watch (memory ran out at accept) is served
     * nothing but this.  evhttp_send_error's page on a watched connection
     * becomes a CloudError (bd_conn_output_cb). */
    bd_conn_t *conn = bd_conn_of(srv, evhttp_request_get_connection(req));
    if (conn == NULL) {
        evhttp_send_error(req, 503, "out of memory");
        return;
    }
    bd_conn_serving(conn);
    bd_reply_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        evhttp_send_error(req, 503, "out of memory");
        return;
    }
    r->srv = srv;
    r->req = req;
    r->conn = conn;
    conn->reply = r;
    r->evcon = evhttp_request_get_connection(req);
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    /* Without random bytes there is no request id: refused below. */
    int random_errno = berth__random_uuid(r->request_id) != 0 ? errno : 0;
    snprintf(r->route, sizeof r->route, "unknown");
    const char *mname = NULL;
    bd_method_t method = bd_method_of(evhttp_request_get_command(req), &mname);
    snprintf(r->method, sizeof r->method, "%s", mname);
    if (r->evcon != NULL) {
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(r->evcon, &addr, &port);
        snprintf(r->remote, sizeof r->remote, "%s:%u", addr != NULL ? addr : "?", port);
    }
    r->next = srv->pending;
    if (srv->pending != NULL)
        srv->pending->prev = r;
    srv->pending = r;

    struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
    const char *cid = evhttp_find_header(ih, "x-ms-client-request-id");
    if (cid != NULL && bd_header_value_ok(cid))
        r->client_request_id = strdup(cid);

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw_path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *raw_query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    /* A path that begins "//" (the Azure CLI asks for "//metadata/endpoints"
     * when its endpoint ends in '/') is parsed by evhttp as an authority:
     * take path and query from the request line, and the leading slashes as
     * one. */
    const char *target = evhttp_request_get_uri(req);
    char *target_path = NULL;
    if (target != NULL && target[0] == '/' && target[1] == '/') {
        size_t tlen = strcspn(target, "?#");
        target_path = strndup(target + strspn(target, "/") - 1, tlen - strspn(target, "/") + 1);
        raw_path = target_path;
        raw_query = target[tlen] == '?' ? target + tlen + 1 : NULL;
    }
    size_t plen = 0;
    r->path = evhttp_uridecode(raw_path != NULL && raw_path[0] != '\0' ? raw_path : "/", 0, &plen);
    r->query = raw_query != NULL ? strndup(raw_query, strcspn(raw_query, "#")) : strdup("");
    /* A slash or backslash encoded inside a segment would become a
     * separator once decoded (refused below). */
    bool encoded_separator = raw_path != NULL && (strcasestr(raw_path, "%2f") != NULL ||
                                                  strcasestr(raw_path, "%5c") != NULL);
    free(target_path);
    if (r->path == NULL || r->query == NULL) {
        bd_reply_error(r, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    if (random_errno != 0) {
        bd_log("error", "no request id: getrandom: %s", strerror(random_errno));
        bd_reply_error(r, 500, "InternalServerError", "",
                       "berthd has no random bytes for a request id (getrandom: %s).",
                       strerror(random_errno));
        return;
    }
    if (!bd_method_served(evhttp_request_get_command(req))) {
        /* evhttp reads no body for TRACE or a method it does not know, so
         * what may follow the head is no request: the connection closes. */
        static const char *const allow[] = {
            "Allow", "GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS", "Connection", "close", NULL};
        bd_reply_route(r, "MethodNotAllowed");
        berth_error_t err;
        berth_error_set(&err, BERTH_EINVAL, "MethodNotAllowed", "",
                        "The method is not allowed: berthd serves GET, HEAD, PUT, POST, PATCH, "
                        "DELETE and OPTIONS.");
        char *s = NULL;
        json_t *body = berth_error_to_json(&err, &s) == 0 ? json_loads(s, 0, NULL) : NULL;
        berth_free(s);
        bd_reply_send(r, 405, body, allow);
        return;
    }
    if (strlen(r->path) != plen) {
        bd_reply_route(r, "BadRequest");
        bd_reply_error(r, 400, "InvalidRequestUri", "", "The request path holds a NUL byte.");
        return;
    }
    /* No name holds an encoded separator, so refuse it whole. */
    if (encoded_separator) {
        bd_reply_route(r, "BadRequest");
        bd_reply_error(r, 400, "InvalidRequestUri", "",
                       "The request path holds an encoded '/' or '\\' (%%2F, %%5C): no "
                       "segment of a resource path may contain one.");
        return;
    }

    if (strcmp(r->path, "/healthz") == 0 && (method == BD_GET || method == BD_HEAD)) {
        bd_reply_route(r, "healthz");
        char why[256] = "";
        if (srv->api != NULL && bd_api_healthy(srv->api, why, sizeof why)) {
            bd_reply_send(r, 200, json_pack("{s:s}", "status", "ok"), NULL);
        } else {
            bd_reply_send(r, 503,
                          json_pack("{s:s, s:s}", "status", "unavailable", "reason",
                                    srv->api == NULL ? "starting" : why),
                          NULL);
        }
        return;
    }
    if (strcmp(r->path, "/metrics") == 0 && (method == BD_GET || method == BD_HEAD)) {
        bd_reply_route(r, "metrics");
        struct evbuffer *out = evbuffer_new();
        if (out == NULL) {
            bd_reply_error(r, 503, "ServiceUnavailable", "", "out of memory");
            return;
        }
        bd_metrics_render(srv, out);
        if (srv->api != NULL)
            bd_api_metrics(srv->api, out);
        bd_reply_finish(r, 200, out, "text/plain; version=0.0.4; charset=utf-8", NULL);
        return;
    }
    /* An exec session's WebSocket (server_ws.c): the connection leaves
     * evhttp once the handshake is answered. */
    if (method == BD_GET && bd_ws_wanted(req, r->path)) {
        bd_ws_upgrade(srv, req, r, conn);
        return;
    }
    /* The ARM metadata and the authority (server_arm.c) need no token. */
    bool open_route = bd_arm_open_path(r->path);
    if (!open_route && !bd_has_prefix(r->path, "/subscriptions") &&
        !bd_has_prefix(r->path, "/providers") && !bd_has_prefix(r->path, "/berth")) {
        bd_reply_route(r, "NotFound");
        bd_reply_error(r, 404, "NotFound", "", "The requested path was not found.");
        return;
    }

    bd_request_t breq = {0};
    breq.method = method;
    breq.path = r->path;
    breq.query = r->query;
    breq.client_request_id = r->client_request_id;
    if (!open_route && bd_authorize(srv, req, r, &breq) != 0)
        return;
    /* A parameter given twice is refused whole: no route picks a value. */
    char dup[64];
    int dq = bd_query_duplicate(r->query, dup, sizeof dup);
    if (dq != 0) {
        bd_reply_route(r, "BadRequest");
        if (dq < 0)
            bd_reply_error(r, 503, "ServiceUnavailable", "", "out of memory");
        else
            bd_reply_error(r, 400, "DuplicateQueryParameter", dup,
                           "The query parameter '%s' is given more than once; give each "
                           "parameter once.", dup);
        return;
    }

    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = in != NULL ? evbuffer_get_length(in) : 0;
    r->body = malloc(blen + 1);
    r->base_url = bd_base_url(srv, req);
    if (r->body == NULL || r->base_url == NULL) {
        bd_reply_error(r, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    if (blen > 0)
        evbuffer_copyout(in, r->body, blen);
    r->body[blen] = '\0';
    breq.body = r->body;
    breq.body_len = blen;
    breq.base_url = r->base_url;
    if (open_route) {
        bd_arm_handle(srv, &breq, r);
        return;
    }
    if (srv->api == NULL) {
        bd_reply_error(r, 503, "ServiceUnavailable", "", "berthd is starting");
        return;
    }
    bd_api_handle(srv->api, &breq, r);
}

/* ---- the server ---------------------------------------------------------------------------- */

/* Contract: berthd.h. */
int bd_server_open(const bd_config_t *cfg, struct event_base *base, bd_server_t **out,
                   char *why, size_t cap)
{
    *out = NULL;
    bd_server_t *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        snprintf(why, cap, "out of memory");
        return 1;
    }
    srv->cfg = cfg;
    srv->base = base;
    srv->reserve_fd = -1;
    srv->accept_pause_ms = BD_ACCEPT_PAUSE_MIN_MS;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    srv->start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    if (cfg->tokens_file != NULL && bd_tokens_load(srv, cfg->tokens_file, why, cap) != 0) {
        bd_server_close(srv);
        return 2;
    }
    if ((cfg->tls_cert != NULL || cfg->tls_key != NULL) && bd_tls_load(srv, why, cap) != 0) {
        bd_server_close(srv);
        return 2;
    }
    srv->http = evhttp_new(base);
    srv->adopt_ev = event_new(base, -1, 0, bd_adopt_cb, srv);
    srv->owns_log = bd_log_buffer_open(base);
    srv->accept_timer = evtimer_new(base, bd_accept_resume_cb, srv);
    if (srv->http == NULL || srv->adopt_ev == NULL || srv->accept_timer == NULL) {
        snprintf(why, cap, "evhttp_new failed");
        bd_server_close(srv);
        return 1;
    }
    evhttp_set_bevcb(srv->http, bd_bevcb, srv);
    /* Every method reaches bd_request_cb, unknown ones too (evhttp parses
     * them as its internal EVHTTP_REQ_UNKNOWN_, 1 << 15): evhttp would
     * refuse the others itself with a 501 page; berthd answers them 405. */
    evhttp_set_allowed_methods(srv->http, 0xffff);
    /* evhttp enforces the body limit (its 413 page becomes a CloudError in
     * bd_conn_output_cb).  An oversized body is read to its end and dropped
     * (bounded by the request's deadline) before the 413 goes out: closing
     * while the client still sends would reset the connection and lose the
     * answer. */
    evhttp_set_max_body_size(srv->http, (ev_ssize_t)cfg->body_max);
    evhttp_set_flags(srv->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_max_headers_size(srv->http, BD_EVHTTP_HEADERS_MAX);
    /* evhttp's own timeout, reset by every byte, is the idle timeout once a
     * reply went out (bd_reply_finish).  Before, the first request's
     * deadline (from accept) bounds the connection, and evhttp's is only a
     * backstop a second later: were they equal, evhttp's could close a
     * connection silently just before the deadline answers 408. */
    struct timeval tv = {(time_t)cfg->header_timeout_s + 1, 0};
    evhttp_set_timeout_tv(srv->http, &tv);
    evhttp_set_gencb(srv->http, bd_request_cb, srv);
    *out = srv;
    return 0;
}

/* Contract: berthd.h. */
void bd_server_close(bd_server_t *srv)
{
    if (srv == NULL)
        return;
    bd_server_stop_accepting(srv);
    /* Replies still pending: their requests go with their connections
     * when evhttp is freed; forget them first. */
    size_t guard = 0;
    while (srv->pending != NULL && guard++ < 1000000) {
        bd_reply_t *r = srv->pending;
        bd_reply_unlink(r);
        if (r->conn != NULL)
            r->conn->reply = NULL;
        if (r->req != NULL && evhttp_request_get_connection(r->req) == NULL)
            evhttp_request_free(r->req);
        bd_reply_free(r);
    }
    /* Frees every connection; each one's close callback frees its bd_conn. */
    if (srv->http != NULL)
        evhttp_free(srv->http);
    while (srv->adopting != NULL) {
        bd_conn_t *c = srv->adopting;
        srv->adopting = c->next;
        bufferevent_decref(c->bev);
        free(c);
    }
    if (srv->adopt_ev != NULL)
        event_free(srv->adopt_ev);
    if (srv->accept_timer != NULL)
        event_free(srv->accept_timer);
    if (srv->owns_log)
        bd_log_buffer_close();
    free(srv->conn_by_fd);
    if (srv->reserve_fd >= 0)
        close(srv->reserve_fd);
    if (srv->ssl != NULL)
        SSL_CTX_free(srv->ssl);
    if (srv->tokens != NULL) {
        for (size_t i = 0; i < srv->ntokens; i++)
            explicit_bzero(srv->tokens[i].digest, sizeof srv->tokens[i].digest);
        bd_tokens_free(srv->tokens, srv->ntokens);
    }
    free(srv);
}
