/*
 * server_reply.c: berthd's replies: the one door every answer leaves by
 * (headers, request ids, metrics, the access-log line), and captured
 * replies, which a handler on the worker thread sends through and the loop
 * later forwards.
 *
 * A reply is sent exactly once; a reply sent late to a closed connection
 * is dropped quietly.  The capture side must never touch the server's
 * shared state (metrics, the pending list, libevent objects): it is the
 * one part of the server that runs off the loop.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "server-internal.h"

/* What was sent through a captured reply, for bd_reply_forward(). */
typedef struct bd_capture {
    bool sent;
    int status;
    bool has_body;                  /* an evbuffer was given (maybe empty)  */
    char *body;                     /* len bytes, NUL-terminated; or NULL   */
    size_t len;
    char *content_type;             /* NULL: none                           */
    char **headers;                 /* name, value, ..., NULL; or NULL      */
    void (*notify)(void *);         /* bd_reply_capture_notify()            */
    void *notify_arg;
} bd_capture_t;

/* ---- replies ---------------------------------------------------------------------------- */

/* Contract: server-internal.h. */
void bd_reply_unlink(bd_reply_t *r)
{
    bd_server_t *srv = r->srv;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else if (srv->pending == r)
        srv->pending = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void bd_capture_free(bd_capture_t *c)
{
    if (c == NULL)
        return;
    free(c->body);
    free(c->content_type);
    for (size_t i = 0; c->headers != NULL && c->headers[i] != NULL; i++)
        free(c->headers[i]);
    free(c->headers);
    free(c);
}

/* Contract: server-internal.h. */
void bd_reply_free(bd_reply_t *r)
{
    bd_capture_free(r->capture);
    free(r->path);
    free(r->query);
    free(r->body);
    free(r->base_url);
    free(r->client_request_id);
    free(r);
}

/* Sends `buf` (taken) with `status` and headers, records metrics, logs the
 * line and frees r. */
void bd_reply_finish(bd_reply_t *r, int status, struct evbuffer *buf,
                     const char *content_type, const char *const *headers)
{
    bd_server_t *srv = r->srv;
    double secs = bd_elapsed(&r->started);
    bd_reply_unlink(r);
    if (r->closed || r->req == NULL) {
        if (r->req != NULL)
            evhttp_request_free(r->req);
        bd_log("warn", "%s %s: the client left before the %d reply", r->method,
               r->path != NULL ? r->path : "?", status);
    } else {
        /* Ask the request: a connection libevent dropped without telling
         * us is no longer reachable through it. */
        r->evcon = evhttp_request_get_connection(r->req);
        struct evkeyvalq *oh = evhttp_request_get_output_headers(r->req);
        evhttp_add_header(oh, "x-ms-request-id", r->request_id);
        if (r->client_request_id != NULL)
            evhttp_add_header(oh, "x-ms-client-request-id", r->client_request_id);
        if (content_type != NULL)
            evhttp_add_header(oh, "Content-Type", content_type);
        for (size_t i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL;
             i += 2)
            evhttp_add_header(oh, headers[i], headers[i + 1]);
        /* From now on the connection waits for its next request for the
         * idle timeout (evhttp's, reset by every byte); each request is
         * bounded by its own deadline (see "connections"). */
        if (r->evcon != NULL) {
            struct timeval tv = {(time_t)srv->cfg->idle_timeout_s, 0};
            evhttp_connection_set_timeout_tv(r->evcon, &tv);
        }
        if (r->conn != NULL)
            r->conn->own_output = true;
        evhttp_send_reply(r->req, status, NULL, buf);
        if (r->conn != NULL) {
            bd_conn_replied(r->conn);
            r->conn = NULL;
        }
    }
    if (buf != NULL)
        evbuffer_free(buf);
    bd_metrics_record(srv, r->route, r->method, status, secs);
    bd_access_log(status, secs, r->method, r->path != NULL ? r->path : "", r->route, r->remote,
                  r->request_id, !r->closed);
    bd_reply_free(r);
}

/* Contract: berthd.h. */
void bd_reply_route(bd_reply_t *reply, const char *route)
{
    if (reply != NULL && route != NULL)
        snprintf(reply->route, sizeof reply->route, "%s", route);
}

/* Records what a captured reply was sent (copies of it all).  Touches
 * nothing but the capture: it runs on the worker thread.  A handler sends
 * once; should one send twice, the first answer stands, as it would have
 * on a connection. */
static void bd_capture_record(bd_capture_t *c, int status, const char *bytes, size_t len,
                              bool has_body, const char *content_type, const char *const *headers)
{
    if (c->sent)
        return;
    c->sent = true;
    c->status = status;
    c->has_body = has_body;
    bool ok = true;
    if (has_body) {
        c->body = malloc(len + 1);
        if (c->body != NULL) {
            if (len > 0)
                memcpy(c->body, bytes, len);
            c->body[len] = '\0';
            c->len = len;
        }
        ok = c->body != NULL;
    }
    if (ok && content_type != NULL) {
        c->content_type = strdup(content_type);
        ok = c->content_type != NULL;
    }
    size_t n = 0;
    while (headers != NULL && headers[n] != NULL && headers[n + 1] != NULL)
        n += 2;
    if (ok && n > 0) {
        c->headers = calloc(n + 1, sizeof *c->headers);
        ok = c->headers != NULL;
        for (size_t i = 0; ok && i < n; i++) {
            c->headers[i] = strdup(headers[i]);
            ok = c->headers[i] != NULL;
        }
    }
    if (!ok) {
        /* Out of memory: what was recorded cannot be trusted; answer 500. */
        bd_capture_t blank = {.sent = true, .status = 500, .notify = c->notify,
                              .notify_arg = c->notify_arg};
        free(c->body);
        free(c->content_type);
        for (size_t i = 0; c->headers != NULL && c->headers[i] != NULL; i++)
            free(c->headers[i]);
        free(c->headers);
        *c = blank;
    }
}

/* The one door every answer leaves by: a captured reply records it; any
 * other goes out through bd_reply_finish (body: len bytes in a new
 * evbuffer when has_body, else no buffer at all). */
static void bd_reply_output(bd_reply_t *reply, int status, const char *bytes, size_t len,
                            bool has_body, const char *content_type, const char *const *headers)
{
    if (reply->capture != NULL) {
        bd_capture_t *c = reply->capture;
        bool first = !c->sent;
        bd_capture_record(c, status, bytes, len, has_body, content_type, headers);
        if (first && c->notify != NULL)
            c->notify(c->notify_arg);
        return;
    }
    struct evbuffer *buf = has_body ? evbuffer_new() : NULL;
    if (buf != NULL && len > 0)
        evbuffer_add(buf, bytes, len);
    bd_reply_finish(reply, status, buf, content_type, headers);
}

/* Contract: berthd.h. */
void bd_reply_send(bd_reply_t *reply, int status, json_t *body, const char *const *headers)
{
    char *s = NULL;
    if (body != NULL) {
        s = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (s == NULL) {
            bd_reply_send_text(reply, 500, "{\"error\":{\"code\":\"InternalServerError\","
                                           "\"message\":\"out of memory\"}}",
                               67, "application/json");
            return;
        }
    }
    /* An empty answer that may carry a body (a 202) is labelled JSON too:
     * evhttp would otherwise call it text/html. */
    bd_reply_output(reply, status, s, s != NULL ? strlen(s) : 0, s != NULL,
                    s != NULL || (status != 204 && status != 304) ? "application/json" : NULL,
                    headers);
    free(s);
}

/* Contract: berthd.h. */
void bd_reply_send_text(bd_reply_t *reply, int status, const char *text, size_t len,
                        const char *content_type)
{
    bd_reply_output(reply, status, text, text != NULL ? len : 0, true,
                    content_type != NULL ? content_type : "text/plain; charset=utf-8", NULL);
}

/* Contract: berthd.h. */
void bd_reply_resource(bd_reply_t *reply, const char *key, const char *name,
                       const char *target)
{
    if (reply == NULL)
        return;
    snprintf(reply->res_key, sizeof reply->res_key, "%s", key != NULL ? key : "");
    snprintf(reply->res_name, sizeof reply->res_name, "%s", name != NULL ? name : "");
    snprintf(reply->res_target, sizeof reply->res_target, "%s", target != NULL ? target : "");
}

/* Replaces every `key` in the string `text` by `name`, in place; `name`
 * is the key's last part, so the text only shrinks. */
static void unkey_text(char *text, const char *key, const char *name)
{
    size_t klen = strlen(key), nlen = strlen(name);
    if (klen == 0 || nlen > klen)
        return;
    char *at = text;
    while ((at = strstr(at, key)) != NULL) {
        memmove(at + nlen, at + klen, strlen(at + klen) + 1);
        memcpy(at, name, nlen);
        at += nlen;
    }
}

/* What the user sees of err: reply's resource key never shown. */
static void unkey_error(const bd_reply_t *reply, berth_error_t *err)
{
    if (reply->res_key[0] == '\0')
        return;
    unkey_text(err->message, reply->res_key, reply->res_name);
    if (strcmp(err->target, "key") == 0)
        snprintf(err->target, sizeof err->target, "%s", reply->res_target);
    for (size_t i = 0; i < err->ndetails && i < BERTH_ERROR_DETAILS_MAX; i++) {
        berth_error_detail_t *d = &err->details[i];
        unkey_text(d->message, reply->res_key, reply->res_name);
        if (strcmp(d->target, "key") == 0)
            snprintf(d->target, sizeof d->target, "%s", reply->res_target);
    }
}

/* Contract: berthd.h. */
void bd_reply_berth_error(bd_reply_t *reply, int status, const berth_error_t *err_in)
{
    char *s = NULL;
    berth_error_t shown = *err_in;
    const berth_error_t *err = &shown;
    unkey_error(reply, &shown);
    if (berth_error_to_json(err, &s) != 0 || s == NULL) {
        bd_reply_send_text(reply, 500, "", 0, NULL);
        return;
    }
    bd_reply_send_text(reply, status, s, strlen(s), "application/json");
    berth_free(s);
}

/* Contract: berthd.h. */
void bd_reply_error(bd_reply_t *reply, int status, const char *code, const char *target,
                    const char *fmt, ...)
{
    char msg[BERTH_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    berth_error_t err;
    berth_error_set(&err, BERTH_EINVAL, code, target != NULL ? target : "", "%s", msg);
    bd_reply_berth_error(reply, status, &err);
}

/* Contract: berthd.h. */
void bd_reply_store_failing(bd_reply_t *reply)
{
    bd_reply_error(reply, 500, "InternalServerError", "", "the resource store is failing");
}

/* ---- captured replies ------------------------------------------------------------------- */

/* Contract (berthd.h): a reply bound to no connection. */
bd_reply_t *bd_reply_capture_new(void)
{
    bd_reply_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->capture = calloc(1, sizeof *r->capture);
    if (r->capture == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

/* Contract: server-internal.h. */
void bd_reply_capture_notify(bd_reply_t *captured, void (*cb)(void *arg), void *arg)
{
    if (captured != NULL && captured->capture != NULL) {
        captured->capture->notify = cb;
        captured->capture->notify_arg = arg;
    }
}

/* Contract: server-internal.h. */
int bd_reply_captured(const bd_reply_t *captured, const char **body, size_t *len)
{
    const bd_capture_t *c = captured != NULL ? captured->capture : NULL;
    *body = c != NULL && c->sent ? c->body : NULL;
    *len = *body != NULL ? c->len : 0;
    return c != NULL && c->sent ? c->status : 0;
}

/* Contract (berthd.h): frees a captured reply; accepts NULL. */
void bd_reply_capture_free(bd_reply_t *captured)
{
    if (captured != NULL && captured->capture != NULL)
        bd_reply_free(captured);
}

/* A captured CloudError body as `real`'s user may see it (unkey_error()),
 * in a new string (free()), or NULL when it needs no change. */
static char *unkey_body(const bd_reply_t *real, const char *body, size_t len)
{
    if (real->res_key[0] == '\0' || body == NULL)
        return NULL;
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *e = json_object_get(doc, "error");
    char *out = NULL;
    if (json_is_object(e)) {
        json_t *list[1 + BERTH_ERROR_DETAILS_MAX];
        size_t n = 0, i;
        json_t *d;
        list[n++] = e;
        json_array_foreach(json_object_get(e, "details"), i, d)
        {
            if (n < sizeof list / sizeof list[0] && json_is_object(d))
                list[n++] = d;
        }
        bool changed = false;
        for (i = 0; i < n; i++) {
            const char *m = json_string_value(json_object_get(list[i], "message"));
            if (m != NULL && strstr(m, real->res_key) != NULL) {
                char *text = strdup(m);
                if (text != NULL) {
                    unkey_text(text, real->res_key, real->res_name);
                    json_object_set_new(list[i], "message", json_string(text));
                    free(text);
                    changed = true;
                }
            }
            const char *t = json_string_value(json_object_get(list[i], "target"));
            if (t != NULL && strcmp(t, "key") == 0) {
                json_object_set_new(list[i], "target", json_string(real->res_target));
                changed = true;
            }
        }
        if (changed)
            out = json_dumps(doc, JSON_COMPACT);
    }
    json_decref(doc);
    return out;
}

/* Contract (berthd.h): on the loop, sends what was captured through
 * `real` and frees the captured reply. */
void bd_reply_forward(bd_reply_t *captured, bd_reply_t *real)
{
    const bd_capture_t *c = captured != NULL ? captured->capture : NULL;
    if (real != NULL) {
        if (c != NULL && c->sent) {
            if (captured->route[0] != '\0')
                bd_reply_route(real, captured->route);
            char *shown = c->status >= 400 ? unkey_body(real, c->body, c->len) : NULL;
            bd_reply_output(real, c->status, shown != NULL ? shown : c->body,
                            shown != NULL ? strlen(shown) : c->len, c->has_body,
                            c->content_type, (const char *const *)c->headers);
            free(shown);
        } else {
            bd_reply_error(real, 500, "InternalServerError", "",
                           "The request's handler sent no answer.");
        }
    }
    bd_reply_capture_free(captured);
}
