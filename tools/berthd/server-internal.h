/*
 * server-internal.h: how the parts of berthd's HTTP(S) front share the
 * server's state.
 *
 *   server.c          opening and closing the server; each request's
 *                     checks and its hand-over to the API
 *   server_accept.c   the listener: binding, the back-off when accept()
 *                     fails, the reserve descriptor
 *   server_conn.c     each connection: its bufferevent, the request's
 *                     deadline and head limit, the CloudError pages that
 *                     replace evhttp's own
 *   server_tls.c      the TLS context and each connection's TLS bufferevent
 *   server_auth.c     the tokens file and bearer-token authorization
 *   server_arm.c      what the Azure CLI asks around the API: the ARM
 *                     metadata, the ADFS-style authority, subscriptions
 *                     and resource groups
 *   server_reply.c    replies: sending, captured replies and forwarding
 *   server_metrics.c  the HTTP metrics (/metrics)
 *   server_log.c      the structured log (bd_log()) and access-log lines
 *   server_ws.c       WebSocket exec sessions: the upgrade of a request for
 *                     /berth/exec/<id>, the connection taken over from
 *                     evhttp, its frames (wslay)
 *
 * Not for the rest of berthd, which meets the server through berthd.h.
 * Everything declared here runs on the loop's thread and must never block
 * it, except bd_log()'s buffer (locked) and the capture side of replies.
 */
#ifndef BERTHD_SERVER_INTERNAL_H
#define BERTHD_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "berthd.h"
#include "httphead.h"

#define BD_HEADERS_MAX (64 * 1024)  /* bytes of a request's head (431 above) */
/* evhttp's own head limit, above ours: ours answers first (431), evhttp's
 * would answer a plain 400. */
#define BD_EVHTTP_HEADERS_MAX (BD_HEADERS_MAX + 4096)
#define BD_ACCEPT_PAUSE_MIN_MS 100  /* the listener's pause after accept()  */
#define BD_ACCEPT_PAUSE_MAX_MS 2000 /* fails, doubling while it keeps failing */
#define BD_COUNTERS_MAX 512         /* route x method x status series       */
#define BD_ROUTES_MAX 128           /* histogram series                     */
#define BD_ROUTE_NAME_MAX 64
#define BD_NBUCKETS 12              /* request duration buckets (server_metrics.c) */

typedef struct bd_token {
    unsigned char digest[32];       /* SHA-256 of the token                 */
    bool any;                       /* '*' among its subscriptions: the
                                     * operator scope                       */
    size_t nsubs;
    char **subs;
    /* A client (a third field, "TOKEN SUBS CLIENT_ID"): the token is also
     * CLIENT_ID's OAuth client secret (server_arm.c's token endpoint), and
     * mint_key signs the access tokens issued to it.  NULL: no client. */
    char *client_id;
    unsigned char mint_key[32];     /* SHA-256 of a label and the secret    */
} bd_token_t;

typedef struct bd_counter {
    char route[BD_ROUTE_NAME_MAX];
    char method[8];
    int status;
    uint64_t count;
} bd_counter_t;

typedef struct bd_conn bd_conn_t;

typedef struct bd_histogram {
    char route[BD_ROUTE_NAME_MAX];
    uint64_t buckets[BD_NBUCKETS];
    uint64_t count;
    double sum;
} bd_histogram_t;

struct bd_server {
    const bd_config_t *cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *listener;
    SSL_CTX *ssl;
    bool owns_log;                  /* the log's buffer and flush are its (logq) */
    bd_api_t *api;
    bd_token_t *tokens;             /* NULL: no authentication              */
    size_t ntokens;
    struct bd_reply *pending;       /* replies not sent yet (a list)        */
    bd_counter_t counters[BD_COUNTERS_MAX];
    size_t ncounters;
    bd_histogram_t histograms[BD_ROUTES_MAX];
    size_t nhistograms;
    double start_time;              /* seconds since the epoch              */
    /* Connections (see "connections" below). */
    struct event *adopt_ev;         /* adopts the connections accepted this turn */
    bd_conn_t *adopting;            /* accepted, not adopted yet (a list)   */
    bd_conn_t **conn_by_fd;         /* adopted connections by descriptor    */
    size_t conn_by_fd_cap;
    /* Accepting (see "accepting" below). */
    int reserve_fd;                 /* /dev/null, spent when accept() runs
                                     * out of descriptors; -1: none         */
    struct event *accept_timer;     /* ends the listener's pause            */
    long accept_pause_ms;           /* the next pause                       */
    bool accept_failing;            /* this run of failures is logged       */
    unsigned long refused;          /* waiting connections refused in it    */
    struct bd_server *next_listening; /* in bd_listening                    */
};

struct bd_reply {
    bd_server_t *srv;
    struct evhttp_request *req;     /* NULL once libevent freed it          */
    struct evhttp_connection *evcon;
    bd_conn_t *conn;                /* its connection; NULL once it went    */
    bool closed;                    /* the connection went away             */
    struct bd_reply *prev, *next;   /* in srv->pending                      */
    struct timespec started;
    char route[BD_ROUTE_NAME_MAX];
    char method[8];
    char request_id[40];
    char remote[80];
    /* What bd_request_t points into; kept until the reply is sent. */
    char *path;
    char *query;
    char *body;
    char *base_url;
    char *client_request_id;
    /* bd_reply_resource(): the key no CloudError may show, and what stands
     * for it in messages and targets. */
    char res_key[256];
    char res_name[128];
    char res_target[64];
    /* Set for a captured reply (bd_reply_capture_new()), which belongs to
     * no server or connection (srv, req, conn: NULL). */
    struct bd_capture *capture;
};


/* A connection, known from just after accept until evhttp frees it
 * (server_conn.c says how it is watched). */
typedef enum bd_conn_state {
    BD_CONN_READING = 1,            /* a request arriving; its deadline runs */
    BD_CONN_OVERSIZED,              /* its head passed BD_HEADERS_MAX: being
                                     * discarded to its end, then 431       */
    BD_CONN_SERVING,                /* the request is with us or the API    */
    BD_CONN_IDLE,                   /* kept alive between requests: evhttp's
                                     * idle timeout                         */
    BD_CONN_CLOSING,                /* an error answer is going out; evhttp
                                     * closes the connection after it       */
    BD_CONN_UPGRADED                /* a WebSocket's (server_ws.c): neither
                                     * evhttp nor this file reads or writes
                                     * it any more                          */
} bd_conn_state_t;

typedef struct bd_ws bd_ws_t;

struct bd_conn {
    bd_server_t *srv;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until adopted                  */
    evutil_socket_t fd;
    struct event *timer;            /* the deadline; when closing, its bound */
    struct evbuffer_cb_entry *input_cb;
    struct evbuffer_cb_entry *output_cb;
    bd_conn_state_t state;
    bool refuse;                    /* TLS could not be set up: close it    */
    bool own_output;                /* what is written now is ours          */
    struct timespec started;        /* the request's first byte, or accept  */
    size_t request_bytes;           /* of the current request so far        */
    bd_head_t head;                 /* its head, scanned to the blank line  */
    int answer;                     /* replaces evhttp's next page's status */
    bd_reply_t *reply;              /* the reply pending on it, or NULL     */
    bd_ws_t *ws;                    /* UPGRADED: its WebSocket session      */
    bd_conn_t *next;                /* in srv->adopting                     */
};

/* ---- the log (server_log.c) ------------------------------------------------------------- */

/* Makes the log's buffer on `base`: from now on bd_log() lines gather and
 * the loop writes them once per turn.  Returns true when this call made it
 * (the caller then owns it and calls bd_log_buffer_close()), false when
 * another server already has one or memory ran out (lines go out at once). */
bool bd_log_buffer_open(struct event_base *base);

/* Writes what the log's buffer holds and frees it: lines go out at once
 * again.  Only for the owner bd_log_buffer_open() named. */
void bd_log_buffer_close(void);

/* Writes one access-log line (JSON) for an answer.  Never pass a query
 * string or a token. */
void bd_access_log(int status, double seconds, const char *method, const char *path,
                   const char *route, const char *remote, const char *request_id, bool sent);

/* ---- metrics (server_metrics.c) ----------------------------------------------------------- */

/* Counts one answer (route, method, status) and its duration.  Series past
 * BD_COUNTERS_MAX or BD_ROUTES_MAX are not counted. */
void bd_metrics_record(bd_server_t *srv, const char *route, const char *method, int status,
                       double seconds);

/* Appends the server's metrics (Prometheus text) to out. */
void bd_metrics_render(bd_server_t *srv, struct evbuffer *out);

/* Seconds of the monotonic clock since t0. */
double bd_elapsed(const struct timespec *t0);

/* ---- tokens (server_auth.c) ------------------------------------------------------------- */

/* Reads the tokens file into srv->tokens.  Returns 0, or -1 with why[cap]
 * naming the file and line; the token text is wiped from memory. */
int bd_tokens_load(bd_server_t *srv, const char *file, char *why, size_t cap);

/* Issues an access token to OAuth client `client_id` whose secret is
 * `secret`: "berth1.<expiry>.<client_id>.<HMAC-SHA-256 hex>", valid for
 * BD_ACCESS_TOKEN_S seconds for the subscriptions of the tokens-file line
 * that names the client, in out[cap] (cap >= 256 + the id's length).
 * Stateless: every berthd reading the same tokens file accepts it, also
 * after a restart, until it expires.  Returns 0, or -1 (out empty) when no
 * line names that client with that secret; every client is compared,
 * secrets in constant time.  Never logs either argument. */
#define BD_ACCESS_TOKEN_S 3600
int bd_token_issue(const bd_server_t *srv, const char *client_id, const char *secret, char *out,
                   size_t cap);

/* Frees tokens[0..n-1] and the array.  Accepts NULL with n 0. */
void bd_tokens_free(bd_token_t *tokens, size_t n);

/* Checks the bearer token and the path's subscription.  Returns 0 and fills
 * the authorization part of *out, or sends the 401/403 through r and
 * returns -1. */
int bd_authorize(bd_server_t *srv, struct evhttp_request *req, bd_reply_t *r,
                 bd_request_t *out);

/* ---- the Azure CLI's routes (server_arm.c) ------------------------------------------------ */

/* Whether `path` (percent-decoded) is under /metadata or /adfs: the routes
 * served without a bearer token, by bd_arm_handle(). */
bool bd_arm_open_path(const char *path);

/* Answers a request under /metadata or /adfs through `reply`, at once:
 * GET /metadata/endpoints, GET /adfs/.well-known/openid-configuration,
 * POST /adfs/oauth2/token (client credentials, bd_token_issue()). */
void bd_arm_handle(bd_server_t *srv, const bd_request_t *req, bd_reply_t *reply);

/* ---- TLS (server_tls.c) ------------------------------------------------------------------ */

/* Makes srv->ssl from cfg's certificate and key (TLS 1.2 or later).
 * Returns 0, or -1 with why[cap] naming the file. */
int bd_tls_load(bd_server_t *srv, char *why, size_t cap);

/* A TLS server bufferevent for a new connection (its descriptor set later
 * by evhttp), or NULL.  The bufferevent owns its SSL. */
struct bufferevent *bd_tls_bev(bd_server_t *srv, struct event_base *base);

/* ---- accepting (server_accept.c) ---------------------------------------------------------- */

/* An accept() went through: the next failure starts a new run (logged
 * again) with the shortest pause. */
void bd_accept_succeeded(bd_server_t *srv);

/* srv->accept_timer's callback (arg: the server): the listener's pause is
 * over, accept again. */
void bd_accept_resume_cb(evutil_socket_t fd, short what, void *arg);

/* ---- connections (server_conn.c) ---------------------------------------------------------- */

/* evhttp's bufferevent factory (evhttp_set_bevcb(), arg: the server),
 * called once per accepted connection; the connection is adopted by
 * bd_adopt_cb later in the same turn. */
struct bufferevent *bd_bevcb(struct event_base *base, void *arg);

/* srv->adopt_ev's callback (arg: the server): adopts every connection
 * accepted since the last turn. */
void bd_adopt_cb(evutil_socket_t fd, short what, void *arg);

/* The connection of a request evhttp hands us, or NULL when it is not
 * known. */
bd_conn_t *bd_conn_of(bd_server_t *srv, struct evhttp_connection *evcon);

/* The request on c is complete and handed to us: its deadline stops. */
void bd_conn_serving(bd_conn_t *c);

/* Our reply to the request on c was handed to evhttp: the connection is
 * kept alive (evhttp's idle timeout) until the next request's first byte. */
void bd_conn_replied(bd_conn_t *c);

/* Takes c over for the WebSocket session ws: its deadline, its head
 * limit and its error pages stop (its buffers are no longer watched), and
 * when evhttp frees the connection (bd_ws_close(), or the server closing)
 * bd_ws_conn_gone(ws) runs first.  The caller then owns the bufferevent's
 * callbacks and timeouts; evhttp keeps the connection, idle, until
 * freed. */
void bd_conn_takeover(bd_conn_t *c, bd_ws_t *ws);

/* ---- WebSocket sessions (server_ws.c) ------------------------------------------------- */

/* Whether req (a GET for `path`) asks to open a WebSocket on an exec
 * session's path (/berth/exec/<id>, an "Upgrade: websocket" header). */
bool bd_ws_wanted(struct evhttp_request *req, const char *path);

/* Answers the upgrade request req (r its reply, on connection c): a
 * CloudError through r when the handshake or the token is refused, else
 * 101 Switching Protocols and the connection becomes the session's. */
void bd_ws_upgrade(bd_server_t *srv, struct evhttp_request *req, bd_reply_t *r, bd_conn_t *c);

/* evhttp is freeing the connection of ws: the session forgets it, and is
 * freed at once or, when a run is still pending, once it ends. */
void bd_ws_conn_gone(bd_ws_t *ws);

/* ---- replies (server_reply.c) ------------------------------------------------------------ */


/* Takes r off srv->pending. */
void bd_reply_unlink(bd_reply_t *r);

/* Frees r and what it owns (its capture, its copies of the request); does
 * not touch its request or connection. */
void bd_reply_free(bd_reply_t *r);

/* Sends `buf` (taken; may be NULL) with `status`, content_type (NULL:
 * none) and headers (name, value, ..., NULL; may be NULL), records
 * metrics, logs the line and frees r.  A reply whose client left is only
 * logged and freed. */
void bd_reply_finish(bd_reply_t *r, int status, struct evbuffer *buf, const char *content_type,
                     const char *const *headers);

#endif /* BERTHD_SERVER_INTERNAL_H */
