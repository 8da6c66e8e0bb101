/*
 * berthd-harness.h: berthd processes for the daemon's tests, and an HTTP
 * client (libcurl) to talk to them.
 *
 * A daemon listens on a free port of 127.0.0.1, dies with the test process
 * (PR_SET_PDEATHSIG) and writes its log to a file in /tmp; a test may give
 * it a lower descriptor limit, or start it without waiting for it to
 * listen.  Every wait is bounded.
 */
#ifndef BERTH_TEST_BERTHD_HARNESS_H
#define BERTH_TEST_BERTHD_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "test-time.h"

typedef struct test_berthd {
    pid_t pid;
    int port;
    bool tls;
    char base_url[64];              /* http(s)://127.0.0.1:PORT             */
    char log_path[256];
} test_berthd_t;

/* Starts `$top_builddir/tools/berthd/berthd --listen 127.0.0.1:PORT` with a free
 * PORT, plus the NULL-terminated `args` (e.g. "--redis", URL, "--cell",
 * NAME, "--tokens", FILE, "--tls-cert", F, "--tls-key", F) and
 * "--secrets-key" test_secrets_key() unless they name one, and waits (at
 * most 20 s, scaled by test_deadline_ms()) until GET /healthz answers 200;
 * a port taken before berthd could bind it is replaced by another, up to
 * five times.  `tls` says whether to speak HTTPS to it.  Returns 0 or -1
 * (the log printed). */
int test_berthd_start(test_berthd_t *d, bool tls, const char *const *args);

/* How test_berthd_start_with() starts the daemon.  All zero: plain HTTP,
 * the test's own descriptor limit, and a wait for /healthz. */
typedef struct test_berthd_options {
    bool tls;                       /* speak HTTPS to it                    */
    unsigned long nofile;           /* nonzero: its RLIMIT_NOFILE, soft and
                                     * hard (set in the child before exec,
                                     * so a $BERTH_TEST_BERTHD_WRAPPER gets
                                     * it too)                              */
    bool no_secrets_key;            /* start it without --secrets-key (by
                                     * default it gets test_secrets_key(),
                                     * agent-harness.h, unless `args` name
                                     * one)                                 */
    bool no_wait;                   /* return as soon as it runs, without
                                     * waiting for /healthz (nor retrying a
                                     * port taken meanwhile): for a daemon
                                     * that is not meant to listen yet      */
} test_berthd_options_t;

/* test_berthd_start() with `opts` (NULL: all zero).  Returns 0 or -1. */
int test_berthd_start_with(test_berthd_t *d, const test_berthd_options_t *opts,
                           const char *const *args);

/* Waits (at most `ms`, scaled by test_deadline_ms()) until GET /healthz
 * answers 200.  Returns 0, or -1 with the log's tail printed: when the
 * daemon exited (reaped; d->pid is 0 then) or the time ran out (it is left
 * running; stop it as usual). */
int test_berthd_wait_healthy(test_berthd_t *d, int ms);

/* SIGTERM, then waits (at most 15 s, then SIGKILL); returns the exit status
 * or -1. */
int test_berthd_stop(test_berthd_t *d);

/* SIGKILL and reap. */
void test_berthd_kill(test_berthd_t *d);

/* Prints the last `lines` lines of the daemon's log to stderr. */
void test_berthd_dump(const test_berthd_t *d, int lines);

/* One HTTP exchange.  headers_out holds the response headers as received
 * ("Name: value\r\n" lines). */
typedef struct test_http {
    long status;                    /* 0: no answer (connection failed)     */
    char *body;                     /* NUL-terminated, never NULL after a call */
    size_t body_len;
    char *headers;
    json_t *json;                   /* the body parsed, or NULL             */
} test_http_t;

/* Sends METHOD url-path (appended to d->base_url) with `body` (NULL: none)
 * and a bearer `token` (NULL: no Authorization header); extra headers are
 * "Name: value" strings, NULL-terminated (may be NULL).  TLS certificates
 * are not verified (the tests' certificates are self-signed).  Returns 0
 * when an answer came (look at status), -1 otherwise. */
int test_http(const test_berthd_t *d, const char *method, const char *path, const char *body,
              const char *token, const char *const *extra_headers, test_http_t *out);

/* test_http() without extra headers, its exchange returned (free it with
 * test_http_free()): status 0 and a line on stderr when no answer came. */
test_http_t test_http_send(const test_berthd_t *d, const char *method, const char *path,
                           const char *body, const char *token);

/* The value of response header `name` (case-insensitive) in a new string
 * (free()), or NULL. */
char *test_http_header(const test_http_t *h, const char *name);

/* The ARM path of container group `name` in resource group `rg` of
 * subscription `sub`, with "?api-version=APIV": a new string (free());
 * aborts when out of memory. */
char *test_group_path(const char *sub, const char *rg, const char *name, const char *apiv);

/* Frees what test_http() stored. */
void test_http_free(test_http_t *h);

/* A free TCP port on 127.0.0.1. */
int test_free_port(void);

#endif /* BERTH_TEST_BERTHD_HARNESS_H */
