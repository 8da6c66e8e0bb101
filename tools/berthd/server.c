/*
 * server.c: berthd's HTTP(S) front.
 *
 * evhttp on the daemon's event_base, with libevent's OpenSSL bufferevents
 * when a certificate and key are given (TLS 1.2 or later).  It enforces the
 * request limits (body size, header size, a deadline per request, an idle
 * timeout per kept-alive connection), answers every HTTP-level error itself
 * as a CloudError (evhttp's own HTML error pages never leave), pauses its
 * listener when descriptors run out, authenticates bearer tokens and scopes
 * them to subscriptions, answers /healthz and /metrics itself, hands every
 * request under /subscriptions/, /providers/ and /berth/ to the API, and
 * writes one structured access-log line per request to stderr.
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
 * pending list, libevent objects): it is the one part of this file that
 * runs off the loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "berthd.h"
#include "resource.h"
#include "lib/clock.h"
#include "lib/random.h"

#define BD_TOKENS_MAX 1024          /* entries in a tokens file             */
#define BD_TOKEN_LINE_MAX 8192      /* bytes in one line of it              */
#define BD_TOKEN_SUBS_MAX 256       /* subscriptions one token may name     */
#define BD_HEADERS_MAX (64 * 1024)  /* bytes of a request's head (431 above) */
/* evhttp's own head limit, above ours: ours answers first (431), evhttp's
 * would answer a plain 400. */
#define BD_EVHTTP_HEADERS_MAX (BD_HEADERS_MAX + 4096)
#define BD_ACCEPT_PAUSE_MIN_MS 100  /* the listener's pause after accept()  */
#define BD_ACCEPT_PAUSE_MAX_MS 2000 /* fails, doubling while it keeps failing */
#define BD_REFUSE_MAX 64            /* waiting connections refused per failure */
#define BD_COUNTERS_MAX 512         /* route x method x status series       */
#define BD_ROUTES_MAX 128           /* histogram series                     */
#define BD_ROUTE_NAME_MAX 64

static const double bd_buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,   1,    2.5,   5,    10};
#define BD_NBUCKETS (sizeof bd_buckets / sizeof bd_buckets[0])

typedef struct bd_token {
    unsigned char digest[32];       /* SHA-256 of the token                 */
    bool any;                       /* '*' among its subscriptions          */
    size_t nsubs;
    char **subs;
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
    /* Set for a captured reply (bd_reply_capture_new()), which belongs to
     * no server or connection (srv, req, conn: NULL). */
    struct bd_capture *capture;
};

/* What was sent through a captured reply, for bd_reply_forward(). */
typedef struct bd_capture {
    bool sent;
    int status;
    bool has_body;                  /* an evbuffer was given (maybe empty)  */
    char *body;                     /* len bytes, NUL-terminated; or NULL   */
    size_t len;
    char *content_type;             /* NULL: none                           */
    char **headers;                 /* name, value, ..., NULL; or NULL      */
} bd_capture_t;

/* ---- logging --------------------------------------------------------------------------- */

/* THE LOG'S WRITES.  While a server is open, lines gather in a buffer
 * (locked: the worker thread logs too) that the loop writes to stderr once
 * per turn (an event made active by the first line of a turn), so that a
 * busy berthd makes one write for many lines instead of one each, and a
 * line never waits longer than the callbacks of its turn.  Without a
 * server (start-up, shut-down) each line is written at once. */
static struct {
    pthread_mutex_t mu;
    struct evbuffer *buf;           /* NULL: no server; under mu            */
    struct event *flush;
    bool due;                       /* flush is active; under mu            */
} logq = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Writes what the log buffer holds to stderr (a blocking descriptor). */
static void bd_log_drain(struct evbuffer *buf)
{
    while (evbuffer_get_length(buf) > 0)
        if (evbuffer_write(buf, STDERR_FILENO) < 0 && errno != EINTR) {
            evbuffer_drain(buf, evbuffer_get_length(buf));  /* stderr is gone */
            break;
        }
}

static void bd_log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    pthread_mutex_lock(&logq.mu);
    logq.due = false;
    if (logq.buf != NULL)
        bd_log_drain(logq.buf);
    pthread_mutex_unlock(&logq.mu);
}

/* Writes `obj` (taken) as one line on stderr, with time first. */
static void bd_log_json(json_t *obj)
{
    if (obj == NULL)
        return;
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(obj);
    if (line == NULL)
        return;
    pthread_mutex_lock(&logq.mu);
    if (logq.buf != NULL && evbuffer_add_printf(logq.buf, "%s\n", line) > 0) {
        if (!logq.due) {
            logq.due = true;
            event_active(logq.flush, EV_TIMEOUT, 1);
        }
    } else {
        fprintf(stderr, "%s\n", line);
    }
    pthread_mutex_unlock(&logq.mu);
    free(line);
}

void bd_log(const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char t[40];
    berth__clock_format_iso8601(berth__clock_wall_ms(), t, sizeof t);
    bd_log_json(json_pack("{s:s, s:s, s:s}", "time", t, "level", level, "msg", msg));
}

/* ---- tokens ---------------------------------------------------------------------------- */

static void bd_tokens_free(bd_token_t *tokens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < tokens[i].nsubs; j++)
            free(tokens[i].subs[j]);
        free(tokens[i].subs);
    }
    free(tokens);
}

/* SHA-256, fetched from the provider once (an implicit fetch per digest
 * costs more than the digest of a token). */
static EVP_MD *sha256_md;

static void bd_sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void bd_sha256(const char *s, size_t len, unsigned char out[32])
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, bd_sha256_fetch);
    unsigned int n = 32;
    if (EVP_Digest(s, len, out, &n, sha256_md != NULL ? sha256_md : EVP_sha256(), NULL) != 1)
        memset(out, 0, 32);
}

static bool bd_sub_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '*';
}

/* Parses one "TOKEN SUB[,SUB...]" line into *t.  Returns 0 or -1 with why. */
static int bd_token_parse(char *line, bd_token_t *t, char *why, size_t cap)
{
    char *save = NULL;
    char *tok = strtok_r(line, " \t", &save);
    char *subs = strtok_r(NULL, " \t", &save);
    char *extra = strtok_r(NULL, " \t", &save);
    if (tok == NULL || subs == NULL) {
        snprintf(why, cap, "expected \"TOKEN SUB[,SUB...]\"");
        return -1;
    }
    if (extra != NULL && extra[0] != '#') {
        snprintf(why, cap, "unexpected text after the subscriptions");
        return -1;
    }
    if (strlen(tok) < 8) {
        snprintf(why, cap, "token shorter than 8 characters");
        return -1;
    }
    for (const char *p = tok; *p != '\0'; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
            snprintf(why, cap, "token holds a character that is not printable ASCII");
            return -1;
        }
    bd_sha256(tok, strlen(tok), t->digest);
    explicit_bzero(tok, strlen(tok));
    t->subs = calloc(BD_TOKEN_SUBS_MAX, sizeof *t->subs);
    if (t->subs == NULL) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    char *s2 = NULL;
    for (char *sub = strtok_r(subs, ",", &s2); sub != NULL; sub = strtok_r(NULL, ",", &s2)) {
        if (sub[0] == '\0')
            continue;
        for (const char *p = sub; *p != '\0'; p++)
            if (!bd_sub_char_ok(*p) || (*p == '*' && strcmp(sub, "*") != 0)) {
                snprintf(why, cap, "bad subscription \"%.64s\"", sub);
                return -1;
            }
        if (strcmp(sub, "*") == 0) {
            t->any = true;
            continue;
        }
        if (t->nsubs >= BD_TOKEN_SUBS_MAX) {
            snprintf(why, cap, "more than %d subscriptions", BD_TOKEN_SUBS_MAX);
            return -1;
        }
        t->subs[t->nsubs] = strdup(sub);
        if (t->subs[t->nsubs] == NULL) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
        t->nsubs++;
    }
    if (!t->any && t->nsubs == 0) {
        snprintf(why, cap, "no subscriptions");
        return -1;
    }
    return 0;
}

static int bd_tokens_load(bd_server_t *srv, const char *file, char *why, size_t cap)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        snprintf(why, cap, "--tokens %s: %s", file, strerror(errno));
        return -1;
    }
    bd_token_t *tokens = calloc(BD_TOKENS_MAX, sizeof *tokens);
    if (tokens == NULL) {
        fclose(f);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    size_t n = 0;
    int lineno = 0, rc = 0;
    char *line = malloc(BD_TOKEN_LINE_MAX);
    if (line == NULL) {
        rc = -1;
        snprintf(why, cap, "out of memory");
    }
    while (rc == 0 && fgets(line, BD_TOKEN_LINE_MAX, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len == BD_TOKEN_LINE_MAX - 1 && line[len - 1] != '\n') {
            snprintf(why, cap, "--tokens %s line %d: longer than %d bytes", file, lineno,
                     BD_TOKEN_LINE_MAX - 2);
            rc = -1;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if (n >= BD_TOKENS_MAX) {
            snprintf(why, cap, "--tokens %s line %d: more than %d tokens", file, lineno,
                     BD_TOKENS_MAX);
            rc = -1;
            break;
        }
        char w[256];
        if (bd_token_parse(p, &tokens[n], w, sizeof w) != 0) {
            snprintf(why, cap, "--tokens %s line %d: %s", file, lineno, w);
            n++;
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (CRYPTO_memcmp(tokens[i].digest, tokens[n].digest, 32) == 0) {
                snprintf(why, cap, "--tokens %s line %d: a token listed twice", file, lineno);
                rc = -1;
            }
        n++;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(why, cap, "--tokens %s: read error", file);
        rc = -1;
    }
    if (rc == 0 && n == 0) {
        snprintf(why, cap, "--tokens %s: no tokens", file);
        rc = -1;
    }
    if (line != NULL) {
        explicit_bzero(line, BD_TOKEN_LINE_MAX);
        free(line);
    }
    fclose(f);
    if (rc != 0) {
        bd_tokens_free(tokens, n);
        return -1;
    }
    srv->tokens = tokens;
    srv->ntokens = n;
    return 0;
}

/* The token whose SHA-256 matches `presented`'s, comparing against every
 * token (no early exit), or NULL. */
static const bd_token_t *bd_token_find(const bd_server_t *srv, const char *presented)
{
    unsigned char d[32];
    bd_sha256(presented, strlen(presented), d);
    const bd_token_t *found = NULL;
    for (size_t i = 0; i < srv->ntokens; i++) {
        int eq = CRYPTO_memcmp(d, srv->tokens[i].digest, 32) == 0;
        if (eq)
            found = &srv->tokens[i];
    }
    return found;
}

/* ---- TLS ------------------------------------------------------------------------------- */

static void bd_ssl_error(char *why, size_t cap, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(why, cap, "%s %s: %s", what, file, buf[0] != '\0' ? buf : "unusable");
    ERR_clear_error();
}

static int bd_tls_load(bd_server_t *srv, char *why, size_t cap)
{
    const bd_config_t *cfg = srv->cfg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        bd_ssl_error(why, cap, "TLS", "context");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        bd_ssl_error(why, cap, "--tls-cert", cfg->tls_cert);
        SSL_CTX_free(ctx);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        bd_ssl_error(why, cap, "--tls-key", cfg->tls_key);
        SSL_CTX_free(ctx);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        bd_ssl_error(why, cap, "--tls-key (does not match --tls-cert)", cfg->tls_key);
        SSL_CTX_free(ctx);
        return -1;
    }
    srv->ssl = ctx;
    return 0;
}

/* A TLS server bufferevent for a new connection (its descriptor set later
 * by evhttp), or NULL. */
static struct bufferevent *bd_tls_bev(bd_server_t *srv, struct event_base *base)
{
    SSL *ssl = SSL_new(srv->ssl);
    if (ssl == NULL) {
        ERR_clear_error();
        return NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void bd_metrics_record(bd_server_t *srv, const char *route, const char *method,
                              int status, double seconds)
{
    bd_counter_t *c = NULL;
    for (size_t i = 0; i < srv->ncounters && c == NULL; i++)
        if (srv->counters[i].status == status && strcmp(srv->counters[i].route, route) == 0 &&
            strcmp(srv->counters[i].method, method) == 0)
            c = &srv->counters[i];
    if (c == NULL && srv->ncounters < BD_COUNTERS_MAX) {
        c = &srv->counters[srv->ncounters++];
        snprintf(c->route, sizeof c->route, "%s", route);
        snprintf(c->method, sizeof c->method, "%s", method);
        c->status = status;
    }
    if (c != NULL)
        c->count++;

    bd_histogram_t *h = NULL;
    for (size_t i = 0; i < srv->nhistograms && h == NULL; i++)
        if (strcmp(srv->histograms[i].route, route) == 0)
            h = &srv->histograms[i];
    if (h == NULL && srv->nhistograms < BD_ROUTES_MAX) {
        h = &srv->histograms[srv->nhistograms++];
        snprintf(h->route, sizeof h->route, "%s", route);
    }
    if (h != NULL) {
        for (size_t b = 0; b < BD_NBUCKETS; b++)
            if (seconds <= bd_buckets[b])
                h->buckets[b]++;
        h->count++;
        h->sum += seconds;
    }
}

/* Appends `v` as a Prometheus label value (escaping \, " and newlines). */
static void bd_label(struct evbuffer *out, const char *v)
{
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            evbuffer_add_printf(out, "\\%c", *p);
        else if (*p == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, p, 1);
    }
}

static void bd_metrics_render(bd_server_t *srv, struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP berthd_up Whether berthd is running.\n"
                             "# TYPE berthd_up gauge\nberthd_up 1\n");
    evbuffer_add_printf(out,
                        "# HELP berthd_process_start_time_seconds Start time of berthd since "
                        "the Unix epoch in seconds.\n"
                        "# TYPE berthd_process_start_time_seconds gauge\n"
                        "berthd_process_start_time_seconds %.3f\n",
                        srv->start_time);
    evbuffer_add_printf(out, "# HELP berthd_http_requests_total HTTP requests answered.\n"
                             "# TYPE berthd_http_requests_total counter\n");
    for (size_t i = 0; i < srv->ncounters; i++) {
        const bd_counter_t *c = &srv->counters[i];
        evbuffer_add_printf(out, "berthd_http_requests_total{route=\"");
        bd_label(out, c->route);
        evbuffer_add_printf(out, "\",method=\"%s\",status=\"%d\"} %llu\n", c->method, c->status,
                            (unsigned long long)c->count);
    }
    evbuffer_add_printf(out,
                        "# HELP berthd_http_request_duration_seconds Time from a request's "
                        "arrival to its reply.\n"
                        "# TYPE berthd_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < srv->nhistograms; i++) {
        const bd_histogram_t *h = &srv->histograms[i];
        for (size_t b = 0; b < BD_NBUCKETS; b++) {
            evbuffer_add_printf(out, "berthd_http_request_duration_seconds_bucket{route=\"");
            bd_label(out, h->route);
            evbuffer_add_printf(out, "\",le=\"%g\"} %llu\n", bd_buckets[b],
                                (unsigned long long)h->buckets[b]);
        }
        evbuffer_add_printf(out, "berthd_http_request_duration_seconds_bucket{route=\"");
        bd_label(out, h->route);
        evbuffer_add_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
        evbuffer_add_printf(out, "berthd_http_request_duration_seconds_sum{route=\"");
        bd_label(out, h->route);
        evbuffer_add_printf(out, "\"} %.6f\n", h->sum);
        evbuffer_add_printf(out, "berthd_http_request_duration_seconds_count{route=\"");
        bd_label(out, h->route);
        evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)h->count);
    }
}

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

typedef enum bd_conn_state {
    BD_CONN_READING = 1,            /* a request arriving; its deadline runs */
    BD_CONN_OVERSIZED,              /* its head passed BD_HEADERS_MAX: being
                                     * discarded to its end, then 431       */
    BD_CONN_SERVING,                /* the request is with us or the API    */
    BD_CONN_IDLE,                   /* kept alive between requests: evhttp's
                                     * idle timeout                         */
    BD_CONN_CLOSING                 /* an error answer is going out; evhttp
                                     * closes the connection after it       */
} bd_conn_state_t;

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
    size_t head_bytes;              /* of its head, to the blank line       */
    bool head_done;                 /* its blank line was seen              */
    bool line_empty;                /* nothing but '\r' since the last '\n' */
    int answer;                     /* replaces evhttp's next page's status */
    bd_reply_t *reply;              /* the reply pending on it, or NULL     */
    bd_conn_t *next;                /* in srv->adopting                     */
};

static double bd_elapsed(const struct timespec *t0);
static void bd_metrics_record(bd_server_t *srv, const char *route, const char *method,
                              int status, double seconds);
static void bd_access_log(int status, double seconds, const char *method, const char *path,
                          const char *route, const char *remote, const char *request_id,
                          bool sent);

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
    c->head_bytes = 0;
    c->head_done = false;
    c->line_empty = true;
    c->answer = 0;
    bd_conn_arm(c, c->srv->cfg->header_timeout_s);
}

/* Counts `n` bytes of the request from offset `from` of `in` and, until the
 * head's blank line, scans them for it.  A line holding nothing but '\r'
 * counts as blank: a head that evhttp would not end there stays within
 * evhttp's own (slightly larger) limit all the same. */
static void bd_conn_scan(bd_conn_t *c, struct evbuffer *in, size_t from, size_t n)
{
    c->request_bytes += n;
    struct evbuffer_ptr pos;
    if (c->head_done || evbuffer_ptr_set(in, &pos, from, EVBUFFER_PTR_SET) != 0)
        return;
    char chunk[1024];
    while (n > 0 && !c->head_done) {
        size_t want = n < sizeof chunk ? n : sizeof chunk;
        ev_ssize_t got = evbuffer_copyout_from(in, &pos, chunk, want);
        if (got <= 0)
            return;
        for (ev_ssize_t i = 0; i < got && !c->head_done; i++) {
            c->head_bytes++;
            if (chunk[i] == '\n') {
                c->head_done = c->line_empty;
                c->line_empty = true;
            } else if (chunk[i] != '\r') {
                c->line_empty = false;
            }
        }
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
    if (c->state == BD_CONN_READING && c->head_bytes > BD_HEADERS_MAX)
        c->state = BD_CONN_OVERSIZED;
    if (c->state != BD_CONN_OVERSIZED)
        return;
    evbuffer_drain(in, evbuffer_get_length(in));
    if (c->head_done) {
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
static bd_conn_t *bd_conn_of(bd_server_t *srv, struct evhttp_connection *evcon)
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
static void bd_adopt_cb(evutil_socket_t fd, short what, void *arg)
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

static void bd_accept_succeeded(bd_server_t *srv);

/* evhttp's bufferevent factory, called once per accepted connection before
 * evhttp wraps the bufferevent (TLS or plain, its descriptor set by evhttp)
 * in its evhttp_connection.  The connection is adopted (bd_adopt_cb) later
 * in the same turn of the loop, before any of its I/O.  A NULL return would
 * make evhttp use a plain bufferevent of its own. */
static struct bufferevent *bd_bevcb(struct event_base *base, void *arg)
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

/* The request on c is complete and handed to us: its deadline stops. */
static void bd_conn_serving(bd_conn_t *c)
{
    c->state = BD_CONN_SERVING;
    c->answer = 0;
    evtimer_del(c->timer);
}

/* Our reply to the request on c was handed to evhttp: the connection is
 * kept alive (evhttp's idle timeout) until the next request's first byte. */
static void bd_conn_replied(bd_conn_t *c)
{
    c->own_output = false;
    c->reply = NULL;
    if (c->state == BD_CONN_SERVING) {
        c->state = BD_CONN_IDLE;
        bd_conn_begin_pending(c);
    }
}

/* ---- accepting ------------------------------------------------------------------------------ */

/* Servers with a listener.  evconnlistener hands its error callback the
 * argument evhttp gave it (the evhttp), so the server is looked up here. */
static bd_server_t *bd_listening;

/* An accept() went through: the next failure starts a new run (logged
 * again) with the shortest pause. */
static void bd_accept_succeeded(bd_server_t *srv)
{
    if (srv->accept_failing)
        bd_log("info", "accepting connections again (%lu waiting connections were refused)",
               srv->refused);
    srv->accept_failing = false;
    srv->refused = 0;
    srv->accept_pause_ms = BD_ACCEPT_PAUSE_MIN_MS;
}

/* Out of descriptors: spends the reserve one to take waiting connections
 * off the listen queue and close them at once (a clean close, where the
 * client would otherwise hang until descriptors come back), then takes the
 * reserve again. */
static void bd_accept_refuse(bd_server_t *srv, evutil_socket_t listen_fd)
{
    if (srv->reserve_fd >= 0) {
        close(srv->reserve_fd);
        srv->reserve_fd = -1;
    }
    for (int i = 0; i < BD_REFUSE_MAX; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        close(fd);
        srv->refused++;
    }
    srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* accept() failed for another reason than a retriable one (evconnlistener
 * retries at once on the level-triggered listener otherwise: a spinning
 * loop).  Refuses what waits when descriptors ran out, pauses the listener
 * and logs once per run of failures. */
static void bd_accept_error_cb(struct evconnlistener *lev, void *arg)
{
    int e = errno;
    bd_server_t *srv = bd_listening;
    while (srv != NULL && srv->http != arg)
        srv = srv->next_listening;
    if (srv == NULL)
        return;
    bool exhausted = e == EMFILE || e == ENFILE;
    if (exhausted)
        bd_accept_refuse(srv, evconnlistener_get_fd(lev));
    evconnlistener_disable(lev);
    if (!srv->accept_failing) {
        srv->accept_failing = true;
        bd_log("error",
               "accept() failed: %s; %spausing the listener for %ld ms (doubling to %d ms while "
               "it fails)",
               strerror(e), exhausted ? "refusing waiting connections and " : "",
               srv->accept_pause_ms, BD_ACCEPT_PAUSE_MAX_MS);
    }
    struct timeval tv = {srv->accept_pause_ms / 1000, (srv->accept_pause_ms % 1000) * 1000};
    evtimer_add(srv->accept_timer, &tv);
    srv->accept_pause_ms = srv->accept_pause_ms * 2 > BD_ACCEPT_PAUSE_MAX_MS
                               ? BD_ACCEPT_PAUSE_MAX_MS
                               : srv->accept_pause_ms * 2;
}

/* The listener's pause is over: accept again (a failure pauses it anew,
 * for twice as long). */
static void bd_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_server_t *srv = arg;
    if (srv->listener != NULL)
        evconnlistener_enable(evhttp_bound_socket_get_listener(srv->listener));
}

/* ---- replies ---------------------------------------------------------------------------- */

static void bd_reply_unlink(bd_reply_t *r)
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

static void bd_reply_free(bd_reply_t *r)
{
    bd_capture_free(r->capture);
    free(r->path);
    free(r->query);
    free(r->body);
    free(r->base_url);
    free(r->client_request_id);
    free(r);
}

static double bd_elapsed(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Writes one access-log line (JSON) for an answer. */
static void bd_access_log(int status, double seconds, const char *method, const char *path,
                          const char *route, const char *remote, const char *request_id,
                          bool sent)
{
    char t[40];
    berth__clock_format_iso8601(berth__clock_wall_ms(), t, sizeof t);
    bd_log_json(json_pack("{s:s, s:s, s:s, s:s, s:i, s:f, s:s, s:s, s:s, s:b}", "time", t,
                          "level", status >= 500 ? "error" : "info", "method", method, "path",
                          path, "status", status, "duration_ms", seconds * 1000.0, "route",
                          route, "remote", remote, "request_id", request_id, "sent", sent));
}

/* Sends `buf` (taken) with `status` and headers, records metrics, logs the
 * line and frees r. */
static void bd_reply_finish(bd_reply_t *r, int status, struct evbuffer *buf,
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
        bd_capture_t blank = {.sent = true, .status = 500};
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
        bd_capture_record(reply->capture, status, bytes, len, has_body, content_type, headers);
        return;
    }
    struct evbuffer *buf = has_body ? evbuffer_new() : NULL;
    if (buf != NULL && len > 0)
        evbuffer_add(buf, bytes, len);
    bd_reply_finish(reply, status, buf, content_type, headers);
}

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

void bd_reply_send_text(bd_reply_t *reply, int status, const char *text, size_t len,
                        const char *content_type)
{
    bd_reply_output(reply, status, text, text != NULL ? len : 0, true,
                    content_type != NULL ? content_type : "text/plain; charset=utf-8", NULL);
}

void bd_reply_berth_error(bd_reply_t *reply, int status, const berth_error_t *err)
{
    char *s = NULL;
    if (berth_error_to_json(err, &s) != 0 || s == NULL) {
        bd_reply_send_text(reply, 500, "", 0, NULL);
        return;
    }
    bd_reply_send_text(reply, status, s, strlen(s), "application/json");
    berth_free(s);
}

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

/* Contract (berthd.h): frees a captured reply; accepts NULL. */
void bd_reply_capture_free(bd_reply_t *captured)
{
    if (captured != NULL && captured->capture != NULL)
        bd_reply_free(captured);
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
            bd_reply_output(real, c->status, c->body, c->len, c->has_body, c->content_type,
                            (const char *const *)c->headers);
        } else {
            bd_reply_error(real, 500, "InternalServerError", "",
                           "The request's handler sent no answer.");
        }
    }
    bd_reply_capture_free(captured);
}

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

/* Checks the bearer token and the path's subscription.  Returns 0 and fills
 * the authorization part of *out, or sends the 401/403 and returns -1. */
static int bd_authorize(bd_server_t *srv, struct evhttp_request *req, bd_reply_t *r,
                        bd_request_t *out)
{
    if (srv->tokens == NULL) {
        out->any_subscription = true;
        return 0;
    }
    static const char *const challenge[] = {"WWW-Authenticate", "Bearer", NULL};
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    bd_reply_route(r, "Unauthorized");
    const char *presented = bd_bearer_token(auth);
    if (presented == NULL) {
        berth_error_t err;
        berth_error_set(&err, BERTH_EINVAL, "AuthenticationFailed", "",
                        "Authentication failed. The 'Authorization' header is missing or is "
                        "not a bearer token.");
        char *s = NULL;
        if (berth_error_to_json(&err, &s) == 0) {
            bd_reply_send(r, 401, json_loads(s, 0, NULL), challenge);
            berth_free(s);
        } else {
            bd_reply_send(r, 401, NULL, challenge);
        }
        return -1;
    }
    const bd_token_t *t = bd_token_find(srv, presented);
    if (t == NULL) {
        berth_error_t err;
        berth_error_set(&err, BERTH_EINVAL, "InvalidAuthenticationToken", "",
                        "The access token is invalid.");
        char *s = NULL;
        if (berth_error_to_json(&err, &s) == 0) {
            bd_reply_send(r, 401, json_loads(s, 0, NULL), challenge);
            berth_free(s);
        } else {
            bd_reply_send(r, 401, NULL, challenge);
        }
        return -1;
    }
    out->any_subscription = t->any;
    out->subscriptions = (const char *const *)t->subs;
    out->nsubscriptions = t->nsubs;
    /* The subscription named by the path, if any. */
    const char *sub;
    size_t len;
    if (!t->any && bd_path_subscription(r->path, &sub, &len)) {
        bool ok = false;
        for (size_t i = 0; i < t->nsubs; i++)
            if (strlen(t->subs[i]) == len && strncasecmp(t->subs[i], sub, len) == 0)
                ok = true;
        if (!ok && len > 0) {
            bd_reply_route(r, "Forbidden");
            bd_reply_error(r, 403, "AuthorizationFailed", "",
                           "The client does not have authorization to perform the action "
                           "over scope '%.*s'.",
                           (int)(len > 128 ? 128 : len), sub);
            return -1;
        }
    }
    bd_reply_route(r, "unknown");
    return 0;
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
    size_t plen = 0;
    r->path = evhttp_uridecode(raw_path != NULL && raw_path[0] != '\0' ? raw_path : "/", 0, &plen);
    r->query = strdup(raw_query != NULL ? raw_query : "");
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
    /* A slash or backslash encoded inside a segment would become a
     * separator once decoded: no name holds one, so refuse it whole. */
    if (raw_path != NULL && (strcasestr(raw_path, "%2f") != NULL ||
                             strcasestr(raw_path, "%5c") != NULL)) {
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
    if (!bd_has_prefix(r->path, "/subscriptions") && !bd_has_prefix(r->path, "/providers") &&
        !bd_has_prefix(r->path, "/berth")) {
        bd_reply_route(r, "NotFound");
        bd_reply_error(r, 404, "NotFound", "", "The requested path was not found.");
        return;
    }

    bd_request_t breq = {0};
    breq.method = method;
    breq.path = r->path;
    breq.query = r->query;
    breq.client_request_id = r->client_request_id;
    if (bd_authorize(srv, req, r, &breq) != 0)
        return;

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
    if (srv->api == NULL) {
        bd_reply_error(r, 503, "ServiceUnavailable", "", "berthd is starting");
        return;
    }
    bd_api_handle(srv->api, &breq, r);
}

/* ---- the server ---------------------------------------------------------------------------- */

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
    pthread_mutex_lock(&logq.mu);
    if (logq.buf == NULL && (logq.flush = event_new(base, -1, 0, bd_log_flush_cb, NULL))) {
        if ((logq.buf = evbuffer_new()) != NULL) {
            srv->owns_log = true;
        } else {
            event_free(logq.flush);
            logq.flush = NULL;
        }
    }
    pthread_mutex_unlock(&logq.mu);
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

int bd_server_start(bd_server_t *srv, bd_api_t *api, char *why, size_t cap)
{
    srv->api = api;
    if (srv->reserve_fd < 0)
        srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (srv->reserve_fd < 0)
        bd_log("warn", "no reserve descriptor (/dev/null: %s): connections cannot be refused "
                       "cleanly when descriptors run out", strerror(errno));
    srv->listener =
        evhttp_bind_socket_with_handle(srv->http, srv->cfg->listen_addr, srv->cfg->listen_port);
    if (srv->listener == NULL) {
        int e = errno;
        snprintf(why, cap, "cannot listen on %s port %u: %s", srv->cfg->listen_addr,
                 (unsigned)srv->cfg->listen_port, e != 0 ? strerror(e) : "bind failed");
        return -1;
    }
    /* Replies leave in small writes (headers, then the body, through TLS
     * records): without TCP_NODELAY a keep-alive client's delayed ACK holds
     * each reply ~40 ms.  Linux passes the option on to accepted sockets. */
    int one = 1;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(srv->listener);
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        bd_log("warn", "TCP_NODELAY not set on the listener: %s", strerror(errno));
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(srv->listener),
                                bd_accept_error_cb);
    srv->next_listening = bd_listening;
    bd_listening = srv;
    bd_log("info", "listening on %s%s%s:%u (%s%s)",
           strchr(srv->cfg->listen_addr, ':') != NULL ? "[" : "", srv->cfg->listen_addr,
           strchr(srv->cfg->listen_addr, ':') != NULL ? "]" : "", (unsigned)srv->cfg->listen_port,
           srv->ssl != NULL ? "https" : "http", srv->tokens != NULL ? ", bearer tokens" : "");
    return 0;
}

void bd_server_stop_accepting(bd_server_t *srv)
{
    if (srv == NULL)
        return;
    for (bd_server_t **p = &bd_listening; *p != NULL; p = &(*p)->next_listening)
        if (*p == srv) {
            *p = srv->next_listening;
            break;
        }
    srv->next_listening = NULL;
    if (srv->accept_timer != NULL)
        evtimer_del(srv->accept_timer);
    if (srv->http != NULL && srv->listener != NULL) {
        evhttp_del_accept_socket(srv->http, srv->listener);
        srv->listener = NULL;
    }
}

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
    if (srv->owns_log) {
        pthread_mutex_lock(&logq.mu);
        bd_log_drain(logq.buf);
        evbuffer_free(logq.buf);
        logq.buf = NULL;
        event_free(logq.flush);
        logq.flush = NULL;
        logq.due = false;
        pthread_mutex_unlock(&logq.mu);
    }
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
