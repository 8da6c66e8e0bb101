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
#include <stddef.h>

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

/* Parses a decimal integer from lo to hi (strtol's syntax: leading blanks
 * and a sign allowed, nothing after the digits) into *out.  Returns false,
 * *out untouched, when s is not one. */
bool berthctl_parse_long(const char *s, long lo, long hi, long *out);

/* What every command on one of berthd's ARM resource routes (ngroup,
 * pool) reads from its command line: the endpoint, --subscription, -g/-n,
 * --file/--location, --output, --timeout and --no-wait.  Strings are
 * borrowed (from argv, the environment or the caller's constants). */
typedef struct berthctl_common {
    const char *command;            /* "pool": names the command in errors  */
    const char *verb;               /* "create", ...                        */
    const char *resource_type;      /* "Microsoft.ContainerInstance/nGroups" */
    const char *api_version;        /* its api-version                      */
    berthctl_endpoint_t ep;
    const char *subscription, *rg, *name, *file, *location;
    bool json, no_wait;
    double timeout_s;
    double deadline;                /* monotonic seconds, from berthctl_common_finish() */
} berthctl_common_t;

/* Results of berthctl_common_option() besides the usage exit status. */
#define BERTHCTL_COMMON_TAKEN 0     /* a common option, consumed            */
#define BERTHCTL_COMMON_HELP (-1)   /* --help or -h                         */
#define BERTHCTL_COMMON_OTHER (-2)  /* an option with a value, not common   */

/* Fills *c with the defaults: $BERTH_ENDPOINT or http://127.0.0.1:8080,
 * $BERTH_TOKEN, $BERTH_SUBSCRIPTION or the all-zero subscription, table
 * output, a 300 s timeout, nothing else given. */
void berthctl_common_init(berthctl_common_t *c, const char *command, const char *verb,
                          const char *resource_type, const char *api_version);

/* Reads the option at argv[*i].  Returns BERTHCTL_COMMON_TAKEN when it is
 * a common one (*i left on its value, if any), BERTHCTL_COMMON_HELP for
 * --help or -h, or BERTHCTL_COMMON_OTHER when it is another option: then
 * *i is moved onto its value, which *value points to, and the caller
 * handles argv[*i - 1] (or reports it unknown).  An option without a value
 * and a bad --output or --timeout print the usage error and return
 * BERTHCTL_API_EXIT_USAGE. */
int berthctl_common_option(berthctl_common_t *c, int argc, char **argv, int *i,
                           const char **value);

/* After the options: checks that -g was given and, for every verb but
 * list, -n, and starts the --timeout clock.  Returns 0 or
 * BERTHCTL_API_EXIT_USAGE (the error printed). */
int berthctl_common_finish(berthctl_common_t *c);

/* Reads the template --file names: *doc is the document (json_decref() it;
 * NULL when it is not a JSON object) and *location the --location, else
 * the document's, else "westeurope" (borrowed from c or *doc).  Returns 0,
 * or BERTHCTL_API_EXIT_USAGE (the error printed) when the file is not an
 * object with a "properties" object. */
int berthctl_common_load_template(const berthctl_common_t *c, json_t **doc,
                                  const char **location);

/* One exchange on the resource route: METHOD on the resource `name` (NULL:
 * the resource group's collection) with the JSON `body` (NULL: none),
 * bounded by what is left of the deadline.  As berthctl_api_request();
 * `status` may be NULL. */
int berthctl_common_request(const berthctl_common_t *c, const char *method, const char *name,
                            json_t *body, const char *what, long *status, json_t **out);

/* Prints a table of `doc` (one resource, or a collection's page with its
 * "value" array) on stdout. */
typedef void berthctl_table_cb(json_t *doc);

/* Prints `doc` on stdout: as berthctl_api_print_json() with --output json
 * (doc is changed: secrets redacted), else through table(doc).  Returns
 * BERTHCTL_API_EXIT_OK or BERTHCTL_API_EXIT_FAILED. */
int berthctl_common_print(const berthctl_common_t *c, json_t *doc, berthctl_table_cb *table);

/* `COMMAND show` and `COMMAND list`: GETs the resource `name` (NULL: the
 * resource group's collection; `what` names the exchange in errors) and
 * prints it as berthctl_common_print() does.  Returns the exit status. */
int berthctl_common_show(const berthctl_common_t *c, const char *name, const char *what,
                         berthctl_table_cb *table);

/* Writes into line (cap bytes) where the resource `doc` stands, and
 * returns true when it is where the wait wants it. */
typedef bool berthctl_wait_progress_cb(const berthctl_common_t *c, json_t *doc, char *line,
                                       size_t cap);

/* Prints on stderr why the wait gave up, doc being the resource as last
 * seen. */
typedef void berthctl_wait_timeout_cb(const berthctl_common_t *c, json_t *doc);

/* Polls resource c->name every half second, starting from `first`
 * (borrowed), printing its progress line on stderr whenever it changes,
 * until `progress` says done: then stores the resource in *done
 * (json_decref() it) and returns BERTHCTL_API_EXIT_OK.  At the deadline
 * calls `timed_out` and returns BERTHCTL_API_EXIT_FAILED; a failed GET
 * (`what` names it) returns its status.  *done is NULL unless done. */
int berthctl_common_wait(const berthctl_common_t *c, json_t *first, const char *what,
                         berthctl_wait_progress_cb *progress, berthctl_wait_timeout_cb *timed_out,
                         json_t **done);

/* The first step of `berthctl COMMAND VERB ...`: checks argv[2] against
 * the n `verbs`.  Returns true when it is one of them and the command goes
 * on.  Otherwise returns false with *status the exit status: for --help
 * or -h after printing `usage_text` on stdout, for a missing or unknown
 * verb after printing the usage error ("COMMAND needs a subcommand: V1,
 * V2 or V3"). */
bool berthctl_common_verb(int argc, char **argv, const char *command, const char *const *verbs,
                          size_t n, const char *usage_text, int *status);

/* Runs a parsed command: `run(ctx)` between curl_global_init() and
 * curl_global_cleanup(), then flushes stdout (a failure turns success
 * into BERTHCTL_API_EXIT_FAILED, with a message).  Returns the exit
 * status: run's, or BERTHCTL_API_EXIT_FAILED when libcurl cannot start
 * (run not called). */
typedef int berthctl_common_run_cb(void *ctx);
int berthctl_common_run(berthctl_common_run_cb *run, void *ctx);

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
