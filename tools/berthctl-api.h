/*
 * berthctl-api.h: berthctl's client of berthd, Berth's daemon serving the
 * ACI REST API (api-version 2023-05-01) over HTTP(S).
 *
 * `berthctl container create|show|list|delete|logs|exec|restart|stop|start`
 * and `berthctl host list` work in the spirit of `az container`; berthctl.c
 * hands those verbs to berthctl_api_main().
 */
#ifndef BERTHCTL_API_H
#define BERTHCTL_API_H

/* Exit statuses of the API commands. */
#define BERTHCTL_API_EXIT_OK 0       /* done (create: the group Succeeded)      */
#define BERTHCTL_API_EXIT_FAILED 1   /* create: the group Failed or the wait timed out;
                                      * also internal failures (out of memory) */
#define BERTHCTL_API_EXIT_USAGE 2    /* bad arguments or an unusable input file */
#define BERTHCTL_API_EXIT_HTTP 3     /* no answer, or an HTTP / CloudError error */

/* Shared with berthctl.c: prints "berthctl: <message>" and the hint to
 * --help on stderr and returns the usage exit status (2); reports running
 * out of memory and returns the internal-failure status (1). */
int berthctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int berthctl_out_of_memory(void);

/* The usage text of the API commands (appended to berthctl's --help). */
extern const char berthctl_api_usage[];

/* Runs `berthctl container VERB ...` or `berthctl host VERB ...`: argv[0]
 * is the program, argv[1] "container" or "host", argv[2] the verb, the rest
 * its options.  Talks to the endpoint (--endpoint, $BERTH_ENDPOINT or
 * http://127.0.0.1:8080), prints results on stdout and progress and errors
 * on stderr, and never prints a secret (secure environment values,
 * passwords, keys: they show as "<redacted>").  Every network wait is
 * bounded by --timeout.  Returns the process exit status: one of the
 * BERTHCTL_API_EXIT_* values, or for `container exec` the exit code of the
 * command that ran in the container. */
int berthctl_api_main(int argc, char **argv);

/* ---- for the other commands that talk to berthd (berthctl-ngroup.c, -pool.c) ------- */

#include <stdbool.h>

#include <jansson.h>

/* How to reach berthd: what --endpoint, --token, --cacert and --insecure
 * say.  Strings are borrowed. */
typedef struct berthctl_endpoint {
    const char *url;                /* "http(s)://HOST:PORT"                */
    const char *token;              /* bearer token, or NULL                */
    const char *cacert;             /* a CA to trust (PEM), or NULL         */
    bool insecure;                  /* skip TLS checks                      */
} berthctl_endpoint_t;

/* One exchange with berthd: METHOD url + `path` (from the '/', query
 * included) with the JSON `body` (NULL: none), bounded by timeout_s
 * seconds; the caller has called curl_global_init().  On a 2xx answer
 * stores the status in *status and the body parsed (NULL when it is not
 * JSON; json_decref() it) in *json and returns BERTHCTL_API_EXIT_OK.
 * Otherwise prints on stderr why `what` failed (no answer, or the status
 * and the CloudError's code, message, target and details), stores the
 * status (0: no answer) and NULL, and returns BERTHCTL_API_EXIT_HTTP
 * (BERTHCTL_API_EXIT_FAILED for want of memory). */
int berthctl_api_request(const berthctl_endpoint_t *ep, const char *method, const char *path,
                         const char *body, double timeout_s, const char *what, long *status,
                         json_t **json);

/* Prints `doc` on stdout, indented, every secret replaced by
 * "<redacted>" (doc is changed).  Returns BERTHCTL_API_EXIT_OK or
 * BERTHCTL_API_EXIT_FAILED. */
int berthctl_api_print_json(json_t *doc);

/* `berthctl ngroup create|show|list|scale|update|delete ...`
 * (berthctl-ngroup.c): argv[1] is "ngroup".  Returns the exit status,
 * one of the BERTHCTL_API_EXIT_* values. */
int berthctl_ngroup_main(int argc, char **argv);

/* Its usage text (appended to berthctl's --help). */
extern const char berthctl_ngroup_usage[];

/* `berthctl pool create|show|list|delete ...` (berthctl-pool.c): argv[1]
 * is "pool".  Returns the exit status, one of the BERTHCTL_API_EXIT_*
 * values. */
int berthctl_pool_main(int argc, char **argv);

/* Its usage text (appended to berthctl's --help). */
extern const char berthctl_pool_usage[];

#endif /* BERTHCTL_API_H */
