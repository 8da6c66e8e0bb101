/*
 * berthctl.h: what berthctl's files share, and how its parts meet.
 *
 * main.c reads the command word and hands the rest of argv to a command
 * family: place.c (offline placement), cell.c (fsck and cell load on a cell
 * held in Redis, through libberth), and the clients of berthd's REST API:
 * container.c with container_create.c and container_verbs.c (container
 * groups), host.c (host list, cordon, uncordon, drain), ngroup.c and
 * pool.c (berthd's ARM resource routes, sharing route.c).  The clients
 * talk through http.c (libcurl: set-up, requests, the bearer token,
 * CloudErrors), exec's session through ws.c (a WebSocket client, the
 * terminal raw meanwhile), and print through print.c (tables, JSON with
 * secrets redacted, group summaries).  input.c reads the user's files.
 * This header is internal to berthctl: nothing here is libberth's API, and
 * no file of berthctl may print a secret from a document (secure
 * environment values, passwords, keys show as "<redacted>").
 */
#ifndef BERTHCTL_H
#define BERTHCTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <curl/curl.h>
#include <jansson.h>

#include "lib/clock.h"

#include "berth.h"

/* ---- exit statuses ------------------------------------------------------------------ */

/* Exit statuses of the API commands (container, host, ngroup, pool); place,
 * cell load and fsck use 0, 1 and 2 with the meanings main.c's usage text
 * gives. */
#define BERTHCTL_EXIT_OK 0          /* done (create: the group Succeeded)      */
#define BERTHCTL_EXIT_FAILED 1      /* create: the group Failed or the wait timed out;
                                     * also internal failures (out of memory) */
#define BERTHCTL_EXIT_USAGE 2       /* bad arguments or an unusable input file */
#define BERTHCTL_EXIT_HTTP 3        /* no answer, or an HTTP / CloudError error */

/* Prints "berthctl: <message>" and the hint to --help on stderr and returns
 * the usage exit status (2). */
int berthctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports running out of memory on stderr and returns the internal-failure
 * status (1). */
int berthctl_out_of_memory(void);

/* ---- defaults of the API commands ---------------------------------------------------- */

#define BERTHCTL_DEFAULT_ENDPOINT "http://127.0.0.1:8080"
#define BERTHCTL_DEFAULT_SUBSCRIPTION "00000000-0000-0000-0000-000000000000"
#define BERTHCTL_DEFAULT_LOCATION "westeurope"
#define BERTHCTL_DEFAULT_TIMEOUT_S 300.0
#define BERTHCTL_REDACTED "<redacted>"

/* ---- command families (each returns the process exit status) --------------------------- */

/* `berthctl place ...` (place.c): argv[1] is "place". */
int berthctl_place_main(int argc, char **argv);

/* `berthctl fsck ...` (cell.c): argv[1] is "fsck". */
int berthctl_fsck_main(int argc, char **argv);

/* `berthctl cell load ...` (cell.c): argv[1] is "cell", argv[2] "load". */
int berthctl_cell_load_main(int argc, char **argv);

/* Runs `berthctl container VERB ...` or `berthctl host VERB ...`
 * (container.c): argv[0] is the program, argv[1] "container" or "host",
 * argv[2] the verb, the rest its options.  Talks to the endpoint
 * (--endpoint, $BERTH_ENDPOINT or http://127.0.0.1:8080), prints results on
 * stdout and progress and errors on stderr, and never prints a secret
 * (secure environment values, passwords, keys: they show as "<redacted>").
 * Every network wait is bounded by --timeout, but for `container exec`'s
 * session once open (it lasts until berthd closes it).  Returns the
 * process exit status: one of the BERTHCTL_EXIT_* values, or for
 * `container exec` the exit status of the command that ran in the
 * container (berthctl_ws_exec()). */
int berthctl_container_main(int argc, char **argv);

/* `berthctl ngroup create|show|list|scale|update|delete ...` (ngroup.c):
 * argv[1] is "ngroup".  Returns one of the BERTHCTL_EXIT_* values. */
int berthctl_ngroup_main(int argc, char **argv);

/* `berthctl pool create|show|list|delete ...` (pool.c): argv[1] is "pool".
 * Returns one of the BERTHCTL_EXIT_* values. */
int berthctl_pool_main(int argc, char **argv);

/* The usage texts of the API commands (appended to berthctl's --help). */
extern const char berthctl_container_usage[];
extern const char berthctl_ngroup_usage[];
extern const char berthctl_pool_usage[];

/* ---- input.c: the user's files ----------------------------------------------------- */

/* Reads a whole file into a new NUL-terminated buffer (free with free()).
 * Returns 0, or an errno value. */
int berthctl_read_file(const char *path, char **out, size_t *len);

/* Reads a whole file ("-": stdin) of at most BERTH_DOCUMENT_MAX bytes into
 * *out (NUL-terminated; free() it).  Returns 0, or the exit status with
 * the reason printed (*out NULL). */
int berthctl_read_input(const char *path, char **out);

/* Prints an inventory error with every violation, naming the file. */
void berthctl_report_hosts_error(const char *path, const berth_error_t *err);

/* One step of getopt_long() over argv, where argv[0] is the command or
 * verb before the options; the caller sets optind to 1 before the first
 * step.  `short_options` must begin with "-:": options and other
 * arguments come back in order (another argument as 1, its text in
 * optarg), and getopt prints nothing: an unknown option comes back as '?'
 * and a missing value as ':' (optopt names the option when getopt knows
 * it).  "--" is not the end of the options but an unknown '?', as it was
 * before berthctl used getopt.  *arg is set to the element of argv being
 * read (borrowed; NULL at the end), for error messages.  Returns the
 * option's val, 1, '?', ':', or -1 after the last argument. */
int berthctl_option_next(int argc, char **argv, const char *short_options,
                         const struct option *long_options, const char **arg);

/* Parses a decimal integer from lo to hi (strtol's syntax: leading blanks
 * and a sign allowed, nothing after the digits) into *out.  Returns false,
 * *out untouched, when s is not one. */
bool berthctl_parse_long(const char *s, long lo, long hi, long *out);

/* Parses a non-negative decimal count (digits only) up to max into *out.
 * Returns false, *out untouched, when s is not one. */
bool berthctl_parse_count(const char *s, long max, long *out);

/* Parses a positive finite decimal quantity into *out.  Returns false,
 * *out untouched, when s is not one. */
bool berthctl_parse_quantity(const char *s, double *out);

/* ---- print.c: printing and formatting ------------------------------------------------- */

/* A growable string: start from {0}, add with berthctl_string_printf(),
 * end with berthctl_string_take(). */
typedef struct berthctl_string {
    char *s;
    size_t len, cap;
    bool oom;
} berthctl_string_t;

/* Appends to b; when memory runs out, b remembers it and later calls do
 * nothing. */
void berthctl_string_printf(berthctl_string_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Returns the string built (NULL when memory ran out; free() it); b is
 * spent. */
char *berthctl_string_take(berthctl_string_t *b);

/* Prints at most `max` bytes of s to f, with control characters (terminal
 * escapes from a server) shown as '?'. */
void berthctl_put_clean(FILE *f, const char *s, size_t max);

/* Wipes a secret in place (s may be NULL). */
void berthctl_wipe(char *s);

/* A member of nested objects: berthctl_json_get(doc,
 * "properties.instanceView.state"); borrowed, or NULL. */
json_t *berthctl_json_get(json_t *v, const char *path);

/* The string at `path` (borrowed), or NULL. */
const char *berthctl_json_string(json_t *v, const char *path);

/* A JSON number (integer or real) at `path` as a double; `dflt` when
 * absent. */
double berthctl_json_number(json_t *v, const char *path, double dflt);

/* Formats a quantity with at most 2 decimals and no trailing zeros. */
void berthctl_format_number(char *buf, size_t cap, double x);

/* Prints `doc` on stdout, indented, every secret replaced by
 * "<redacted>" (doc is changed).  Returns BERTHCTL_EXIT_OK or
 * BERTHCTL_EXIT_FAILED (out of memory, reported). */
int berthctl_print_json(json_t *doc);

/* A table of strings printed aligned: start from {.ncols = N}, add cells
 * row by row with berthctl_table_add(), end with berthctl_table_print(). */
typedef struct berthctl_table {
    size_t ncols;                   /* at most 16                           */
    char **cells;                   /* row-major, owned                     */
    size_t ncells, cap;
    bool oom;
} berthctl_table_t;

/* Adds a copy of s as the next cell ("-" when s is NULL or empty). */
void berthctl_table_add(berthctl_table_t *t, const char *s);

/* Prints the table aligned, two blanks between columns, and frees its
 * cells.  Returns an exit status. */
int berthctl_table_print(berthctl_table_t *t);

/* The resource group named in a group's resource id, copied into buf
 * (empty when there is none); returns buf. */
const char *berthctl_group_resource_group(json_t *g, char *buf, size_t cap);

/* Totals of a group's containers' CPU and memory requests. */
void berthctl_group_totals(json_t *g, double *cpu, double *mem);

/* Prints the summary of `container show` (and of a finished create) on
 * stdout, with `host` (NULL: unknown) the host the group runs on.
 * Returns an exit status. */
int berthctl_group_print_summary(json_t *g, const char *host);

/* Prints every event of the group and of its containers (stderr). */
void berthctl_group_print_events(json_t *g);

/* Prints what changed since the last look (provisioningState, the group's
 * state, each container's state) on stderr; `seen`, a JSON object the
 * caller owns, remembers. */
void berthctl_group_show_progress(const char *name, json_t *g, json_t *seen);

/* ---- http.c: the client of berthd -------------------------------------------------- */

/* How to reach berthd: what --endpoint, --token, --cacert and --insecure
 * say.  Strings are borrowed. */
typedef struct berthctl_endpoint {
    const char *url;                /* "http(s)://HOST:PORT"                */
    const char *token;              /* bearer token, or NULL                */
    const char *cacert;             /* a CA to trust (PEM), or NULL         */
    bool insecure;                  /* skip TLS checks                      */
} berthctl_endpoint_t;

/* A libcurl handle with where it goes and until when. */
typedef struct berthctl_client {
    CURL *curl;
    berthctl_endpoint_t ep;
    char base[1024];                /* the endpoint, no trailing '/'        */
    double timeout_s;               /* --timeout, for messages              */
    int64_t deadline_ms;            /* berth__clock_monotonic_ms()          */
} berthctl_client_t;

/* One answer. */
typedef struct berthctl_response {
    long status;                    /* 0: no answer                         */
    char *body;                     /* NUL-terminated, never NULL after berthctl_http() */
    size_t len;
    bool too_big;
    json_t *json;                   /* the body parsed, or NULL             */
    char why[CURL_ERROR_SIZE];      /* when status is 0                     */
} berthctl_response_t;

/* Frees what r holds and clears it. */
void berthctl_response_free(berthctl_response_t *r);

/* One exchange: METHOD url with `body` (NULL: none; "" an empty one) and
 * extra header lines, bounded by what is left of c->deadline_ms.  Returns 0
 * when an answer came (look at r->status), -1 otherwise (r->why says why).
 * Either way the caller frees r with berthctl_response_free(). */
int berthctl_http(berthctl_client_t *c, const char *method, const char *url, const char *body,
                  const char *extra_header, berthctl_response_t *r);

/* Prints why an exchange failed: no answer, or the status and the
 * CloudError's code, message, target and details.  Returns
 * BERTHCTL_EXIT_HTTP. */
int berthctl_http_error(const char *what, const berthctl_response_t *r);

/* Whether an HTTP status is a success (2xx). */
bool berthctl_http_ok(long status);

/* One exchange with berthd: METHOD url + `path` (from the '/', query
 * included) with the JSON `body` (NULL: none), bounded by timeout_s
 * seconds; the caller has called curl_global_init().  On a 2xx answer
 * stores the status in *status and the body parsed (NULL when it is not
 * JSON; json_decref() it) in *json and returns BERTHCTL_EXIT_OK.
 * Otherwise prints on stderr why `what` failed (no answer, or the status
 * and the CloudError's code, message, target and details), stores the
 * status (0: no answer) and NULL, and returns BERTHCTL_EXIT_HTTP
 * (BERTHCTL_EXIT_FAILED for want of memory). */
int berthctl_http_request(const berthctl_endpoint_t *ep, const char *method, const char *path,
                          const char *body, double timeout_s, const char *what, long *status,
                          json_t **json);

/* ---- ws.c: exec's interactive session ------------------------------------------------ */

/* The size of the terminal on stdin into *rows and *cols; false (both
 * untouched) when stdin is not a terminal or says no size. */
bool berthctl_terminal_size(int *rows, int *cols);

/* Runs an exec session on berthd's WebSocket `uri` (ws:// or wss://, from
 * the exec answer) with its `password` (sent as the first message; not
 * kept, the caller wipes its copy), through c's handle, TLS trust and
 * token (the token sent only when the URI has the endpoint's origin).
 * Connecting and the upgrade are bounded by c->deadline_ms; the session
 * then lasts until berthd closes it.  stdin's bytes go to the process
 * until its end, the output goes raw to stdout.  With `tty` (stdin is a
 * terminal) the terminal is raw for the session and put back on every
 * way out, its resizes are sent, and SIGINT does not end berthctl (Ctrl-C
 * is a byte for the process); SIGTERM and SIGHUP end the session and then
 * berthctl, of that signal, the terminal restored first.  Returns the
 * command's exit status (berthd's close 1000 "exit status N"), or, with
 * the reason printed on stderr: BERTHCTL_EXIT_HTTP when the connection or
 * the upgrade failed, BERTHCTL_EXIT_FAILED when berthd refused the session
 * (a close 4000 + HTTP status: its message and code), closed it without an
 * exit status, or the connection dropped. */
int berthctl_ws_exec(berthctl_client_t *c, const char *uri, const char *password, bool tty);

/* ---- container groups (container.c, container_create.c, container_verbs.c) -------------- */

#define BERTHCTL_ACI_API_VERSION "2023-05-01"

/* The verbs of `container` and `host`, as bits (an option lists the verbs
 * it applies to). */
enum {
    BERTHCTL_VERB_CREATE = 1u << 0,
    BERTHCTL_VERB_SHOW = 1u << 1,
    BERTHCTL_VERB_LIST = 1u << 2,
    BERTHCTL_VERB_DELETE = 1u << 3,
    BERTHCTL_VERB_LOGS = 1u << 4,
    BERTHCTL_VERB_EXEC = 1u << 5,
    BERTHCTL_VERB_RESTART = 1u << 6,
    BERTHCTL_VERB_STOP = 1u << 7,
    BERTHCTL_VERB_START = 1u << 8,
    BERTHCTL_VERB_HOSTS = 1u << 9,
    BERTHCTL_VERB_HOST_ACTION = 1u << 10, /* host cordon, uncordon, drain    */
    BERTHCTL_VERB_ALL = (1u << 11) - 1,
    BERTHCTL_VERB_GROUP = BERTHCTL_VERB_CREATE | BERTHCTL_VERB_SHOW | BERTHCTL_VERB_DELETE |
                          BERTHCTL_VERB_LOGS | BERTHCTL_VERB_EXEC | BERTHCTL_VERB_RESTART |
                          BERTHCTL_VERB_STOP | BERTHCTL_VERB_START
};

/* Arguments of a many-valued option: pointers into argv. */
typedef struct berthctl_strings {
    const char **v;
    size_t n, cap;
} berthctl_strings_t;

/* What `container VERB` and `host list` read from their command line
 * (container.c).  Strings are borrowed from argv, the environment or
 * constants; the arrays are freed by container.c. */
typedef struct berthctl_container_options {
    unsigned verb;
    const char *verb_name;
    const char *endpoint, *token, *subscription, *rg, *name, *cacert;
    bool insecure, json, help;
    double timeout_s;
    /* create */
    const char *file, *image, *cpu, *memory, *gpu_count, *gpu_sku, *restart_policy;
    const char *protocol, *ip_address, *dns_label, *command_line, *location, *os_type;
    const char *priority;
    berthctl_strings_t ports, env, secure_env;
    bool no_wait;
    bool flags_given;               /* a document flag (not --file) was given */
    /* logs, exec */
    const char *container;
    long tail;                      /* -1: all                              */
    bool timestamps;
    bool follow;                    /* logs --follow                        */
    bool metrics;                   /* show --metrics                       */
    const char *exec_command;
} berthctl_container_options_t;

/* `container create` (container_create.c): builds the document from the
 * flags or reads --file, PUTs it and, unless --no-wait, waits for Succeeded
 * or Failed.  Returns the exit status. */
int berthctl_container_create(berthctl_client_t *c, const berthctl_container_options_t *o);

/* `container show`, `list`, `delete`, `restart`, `stop`, `start`, `logs`
 * and `exec` (container_verbs.c; exec's session in ws.c).  Each returns
 * the exit status (exec: the command's, as berthctl_ws_exec() says).  `method` and `suffix` of the action name the
 * request ("DELETE", "" or "POST", "/restart"), `done` what is printed
 * after it. */
int berthctl_container_show(berthctl_client_t *c, const berthctl_container_options_t *o);
int berthctl_container_list(berthctl_client_t *c, const berthctl_container_options_t *o);
int berthctl_container_action(berthctl_client_t *c, const berthctl_container_options_t *o,
                              const char *method, const char *suffix, const char *done);
int berthctl_container_logs(berthctl_client_t *c, const berthctl_container_options_t *o);
int berthctl_container_exec(berthctl_client_t *c, const berthctl_container_options_t *o);

/* The URL of group `name` (or of one of its sub-resources: `suffix` is ""
 * or e.g. "/restart"), with the api-version and `query` ("" or "&a=b").
 * Returns a new string (free() it) or NULL for want of memory. */
char *berthctl_group_url(berthctl_client_t *c, const berthctl_container_options_t *o,
                         const char *name, const char *suffix, const char *query);

/* The hosts berthd's operator route (GET /berth/containerGroups) says
 * groups are placed on: an object "<resource group, lowercased>/<name>" ->
 * host ("" when the group is placed nowhere), for the group `name` of
 * o->rg, else every group of o->rg, else of the subscription.  NULL when
 * berthd did not answer it (nothing printed): tables then leave the host
 * out. */
json_t *berthctl_group_hosts(berthctl_client_t *c, const berthctl_container_options_t *o,
                             const char *name);

/* The key of group body `g` in berthctl_group_hosts()'s object, into
 * out[cap]; returns out. */
const char *berthctl_group_host_key(json_t *g, char *out, size_t cap);

/* `host list` (host.c): the hosts' allocation.  Returns the exit status. */
int berthctl_host_list(berthctl_client_t *c, const berthctl_container_options_t *o);

/* `host cordon|uncordon|drain NAME` (host.c): o->name is the host,
 * o->verb_name the action.  drain, unless --no-wait, asks again every
 * second, showing progress on stderr, until no group but finished ones is
 * left on the host (0) or the --timeout passes (1, the groups left and why
 * printed).  Returns the exit status. */
int berthctl_host_action(berthctl_client_t *c, const berthctl_container_options_t *o);

/* logs --follow: the polling interval, and the tail asked for after the
 * first round (what is new is found by overlap with the last answer). */
#define BERTHCTL_FOLLOW_MS 1000
#define BERTHCTL_FOLLOW_TAIL 1000

/* ---- route.c: what the commands on berthd's ARM resource routes share ------------------ */

/* What every command on one of berthd's ARM resource routes (ngroup,
 * pool) reads from its command line: the endpoint, --subscription, -g/-n,
 * --file/--location, --output, --timeout and --no-wait.  Strings are
 * borrowed (from argv, the environment or the caller's constants). */
typedef struct berthctl_common {
    const char *command;            /* "pool": names the command in errors  */
    const char *verb;               /* "create", ...                        */
    const char *resource_type;      /* "Microsoft.ContainerInstance/ngroups" */
    const char *api_version;        /* its api-version                      */
    berthctl_endpoint_t ep;
    const char *subscription, *rg, *name, *file, *location;
    bool json, no_wait;
    double timeout_s;
    int64_t deadline_ms;            /* berth__clock_monotonic_ms(), from
                                       berthctl_common_finish()             */
} berthctl_common_t;

/* What berthctl_common_parse() returns for --help or -h. */
#define BERTHCTL_COMMON_HELP (-1)

/* getopt's vals of a command's own options (berthctl_common_parse()) are
 * BERTHCTL_OPT_OWN and up. */
#define BERTHCTL_OPT_OWN 1000

/* Reads the value of one of a command's own options: `id` is its val,
 * `value` what followed it (borrowed from argv).  Returns 0, or the usage
 * exit status with the error printed. */
typedef int berthctl_option_cb(void *ctx, int id, const char *value);

/* Fills *c with the defaults: $BERTH_ENDPOINT or http://127.0.0.1:8080,
 * $BERTH_TOKEN, $BERTH_SUBSCRIPTION or the all-zero subscription, table
 * output, a 300 s timeout, nothing else given. */
void berthctl_common_init(berthctl_common_t *c, const char *command, const char *verb,
                          const char *resource_type, const char *api_version);

/* Reads the options after the verb (argv[3..]) with getopt_long: the
 * common ones into *c, and the command's own (`own`: at most 8, each
 * required_argument with a val of BERTHCTL_OPT_OWN and up, ending in a
 * zeroed entry; NULL: none) through option(ctx, val, value).  As before
 * getopt, any other word is taken for an option with a value: "unknown
 * argument", or when it is the last word "needs a value or is unknown".
 * Returns 0, BERTHCTL_COMMON_HELP for --help or -h (nothing after it
 * read), or the usage exit status with the error printed (a bad --output
 * or --timeout too). */
int berthctl_common_parse(berthctl_common_t *c, int argc, char **argv,
                          const struct option *own, berthctl_option_cb *option, void *ctx);

/* After the options: checks that -g was given and, for every verb but
 * list, -n, and starts the --timeout clock.  Returns 0 or
 * BERTHCTL_EXIT_USAGE (the error printed). */
int berthctl_common_finish(berthctl_common_t *c);

/* Reads the template --file names: *doc is the document (json_decref() it;
 * NULL when it is not a JSON object) and *location the --location, else
 * the document's, else "westeurope" (borrowed from c or *doc).  Returns 0,
 * or BERTHCTL_EXIT_USAGE (the error printed) when the file is not an
 * object with a "properties" object. */
int berthctl_common_load_template(const berthctl_common_t *c, json_t **doc,
                                  const char **location);

/* One exchange on the resource route: METHOD on the resource `name` (NULL:
 * the resource group's collection) with the JSON `body` (NULL: none),
 * bounded by what is left of the deadline.  As berthctl_http_request();
 * `status` may be NULL. */
int berthctl_common_request(const berthctl_common_t *c, const char *method, const char *name,
                            json_t *body, const char *what, long *status, json_t **out);

/* Prints a table of `doc` (one resource, or a collection's page with its
 * "value" array) on stdout. */
typedef void berthctl_table_cb(json_t *doc);

/* Prints `doc` on stdout: as berthctl_print_json() with --output json
 * (doc is changed: secrets redacted), else through table(doc).  Returns
 * BERTHCTL_EXIT_OK or BERTHCTL_EXIT_FAILED. */
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
 * (json_decref() it) and returns BERTHCTL_EXIT_OK.  At the deadline
 * calls `timed_out` and returns BERTHCTL_EXIT_FAILED; a failed GET
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
 * into BERTHCTL_EXIT_FAILED, with a message).  Returns the exit
 * status: run's, or BERTHCTL_EXIT_FAILED when libcurl cannot start
 * (run not called). */
typedef int berthctl_common_run_cb(void *ctx);
int berthctl_common_run(berthctl_common_run_cb *run, void *ctx);

#endif /* BERTHCTL_H */
