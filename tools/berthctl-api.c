/*
 * berthctl-api.c: berthctl's client of berthd, Berth's daemon serving the
 * ACI REST API (api-version 2023-05-01), over HTTP(S) with libcurl.
 *
 *   berthctl container create|show|list|delete|logs|exec|restart|stop|start
 *   berthctl host list
 *
 * The commands follow `az container`: create builds an ACI container-group
 * document from flags (checked with the library's berth_group_parse before
 * it is sent) or takes one from a file, PUTs it and waits for the group to
 * reach Succeeded or Failed, showing progress on stderr.  Results go to
 * stdout, progress and errors to stderr.  Secrets (secure environment
 * values, passwords, storage and workspace keys, secret volume contents)
 * are never printed: they show as "<redacted>".  Every network wait is
 * bounded by --timeout (one deadline for the whole command).
 *
 * It also holds what the commands on berthd's other resource routes
 * (berthctl-ngroup.c, berthctl-pool.c) share: their common options, the
 * route's paths and exchanges, printing, listing and waiting.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "berth.h"
#include "berthctl-api.h"

#define API_VERSION "2023-05-01"
#define DEFAULT_ENDPOINT "http://127.0.0.1:8080"
#define DEFAULT_SUBSCRIPTION "00000000-0000-0000-0000-000000000000"
#define DEFAULT_LOCATION "westeurope"
#define DEFAULT_TIMEOUT_S 300.0
#define POLL_S 0.5                      /* between two GETs of a resource wait */
#define CONNECT_TIMEOUT_MS 10000L
#define BODY_MAX ((size_t)64 << 20)     /* bytes of one answer we keep      */
#define FILE_MAX ((size_t)BERTH_DOCUMENT_MAX)
#define PAGES_MAX 10000                 /* nextLink pages followed          */
#define BAR_WIDTH 10
#define REDACTED "<redacted>"

#define EX_OK BERTHCTL_API_EXIT_OK
#define EX_FAILED BERTHCTL_API_EXIT_FAILED
#define EX_USAGE BERTHCTL_API_EXIT_USAGE
#define EX_HTTP BERTHCTL_API_EXIT_HTTP

const char berthctl_api_usage[] =
    "       berthctl container create -g RG -n NAME --image IMAGE [--cpu N] [--memory GB]\n"
    "                      [--gpu-count N --gpu-sku K80|P100|V100]\n"
    "                      [--restart-policy Always|OnFailure|Never] [--ports P ...]\n"
    "                      [--protocol TCP|UDP] [--ip-address Public] [--dns-name-label L]\n"
    "                      [--environment-variables K=V ...]\n"
    "                      [--secure-environment-variables K=V ...]\n"
    "                      [--command-line \"CMD ARGS\"] [--location L]\n"
    "                      [--os-type Linux|Windows] [--priority Regular|Spot] [--no-wait]\n"
    "       berthctl container create -g RG --file FILE [-n NAME] [--location L] [--no-wait]\n"
    "       berthctl container show -g RG -n NAME [--output json|table]\n"
    "       berthctl container list [-g RG] [--output json|table]\n"
    "       berthctl container delete -g RG -n NAME [--yes] [--no-wait]\n"
    "       berthctl container logs -g RG -n NAME [--container-name C] [--tail N]\n"
    "                      [--timestamps]\n"
    "       berthctl container exec -g RG -n NAME [--container-name C] --exec-command \"CMD\"\n"
    "       berthctl container restart|stop|start -g RG -n NAME\n"
    "       berthctl host list [--output json|table]\n"
    "\n"
    "container, host  talk to berthd (the ACI REST API, api-version " API_VERSION ").\n"
    "        create PUTs a container-group document (built from the flags, or\n"
    "        --file, whose name and location -n and --location override) and,\n"
    "        unless --no-wait, waits for Succeeded or Failed, showing progress\n"
    "        on stderr.  exec runs one command and exits with its exit code.\n"
    "        host list shows each host's CPU, memory and GPU allocation.\n"
    "\n"
    "  --endpoint URL           berthd (default $BERTH_ENDPOINT or " DEFAULT_ENDPOINT ")\n"
    "  --token T                bearer token (default $BERTH_TOKEN)\n"
    "  --subscription S         (default $BERTH_SUBSCRIPTION or\n"
    "                           " DEFAULT_SUBSCRIPTION ")\n"
    "  -g, --resource-group RG  -n, --name NAME\n"
    "  --cacert FILE            trust this CA (PEM); --insecure: skip TLS checks\n"
    "  -o, --output json|table  (default table)\n"
    "  --timeout S              bound on the whole command, waits included\n"
    "                           (default 300)\n"
    "\n"
    "Exit status of container and host: 0 done (create: Succeeded), 1 create\n"
    "ended Failed or timed out, 2 usage error, 3 no answer or an HTTP error\n"
    "(the CloudError's code, message and target are printed); exec: the\n"
    "command's exit code.\n";

/* ---- small helpers ---------------------------------------------------------------- */

#define usage berthctl_usage_error

#define oom berthctl_out_of_memory

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Prints at most `max` bytes of s to f, with control characters (terminal
 * escapes from a server) shown as '?'. */
static void put_clean(FILE *f, const char *s, size_t max)
{
    size_t i = 0;
    for (; s[i] != '\0' && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
    }
    if (s[i] != '\0')
        fputs("...", f);
}

/* Wipes a secret in place. */
static void wipe(char *s)
{
    if (s == NULL)
        return;
    volatile char *p = s;
    while (*p != '\0')
        *p++ = '\0';
}

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* A growable string. */
typedef struct sb {
    char *s;
    size_t len, cap;
    bool oom;
} sb_t;

static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 128;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (s == NULL) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* Returns the string built (NULL when memory ran out; free() it). */
static char *sb_take(sb_t *b)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    if (b->s == NULL)
        return strdup("");
    return b->s;
}

/* A member of nested objects: jget(doc, "properties.instanceView.state"). */
static json_t *jget(json_t *v, const char *path)
{
    char key[64];
    while (v != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_is_object(v) ? json_object_get(v, key) : NULL;
        path += n + (dot ? 1 : 0);
    }
    return v;
}

static const char *jstr(json_t *v, const char *path)
{
    return json_string_value(jget(v, path));
}

/* A JSON number (integer or real) as a double; `dflt` when absent. */
static double jnum(json_t *v, const char *path, double dflt)
{
    json_t *n = jget(v, path);
    return json_is_number(n) ? json_number_value(n) : dflt;
}

/* Formats a quantity with at most 2 decimals and no trailing zeros. */
static void fmt_num(char *buf, size_t cap, double x)
{
    snprintf(buf, cap, "%.2f", x);
    char *dot = strchr(buf, '.');
    if (dot != NULL) {
        char *end = buf + strlen(buf) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot)
            *end = '\0';
    }
}

/* Replaces every secret in a document by REDACTED: secureValue, password,
 * storageAccountKey, workspaceKey and the contents of secret volumes. */
static void redact(json_t *v)
{
    static const char *const secret_keys[] = {"secureValue", "password", "storageAccountKey",
                                              "workspaceKey", "sharedKey"};
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) redact(e);
        return;
    }
    if (!json_is_object(v))
        return;
    const char *k;
    json_t *e;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, e)
    {
        bool secret = false;
        for (size_t i = 0; i < sizeof secret_keys / sizeof *secret_keys; i++)
            secret = secret || strcmp(k, secret_keys[i]) == 0;
        if (secret && json_is_string(e) && json_string_length(e) > 0) {
            json_object_set_new(v, k, json_string(REDACTED));
        } else if (strcmp(k, "secret") == 0 && json_is_object(e)) {
            const char *fk;
            json_t *fv;
            void *t2;
            json_object_foreach_safe(e, t2, fk, fv)
            {
                (void)fv;
                json_object_set_new(e, fk, json_string(REDACTED));
            }
        } else {
            redact(e);
        }
    }
}

/* Prints a document on stdout, indented, with its secrets redacted. */
static int print_json(json_t *doc)
{
    redact(doc);
    if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(12)) != 0)
        return oom();
    fputc('\n', stdout);
    return EX_OK;
}

/* ---- options ---------------------------------------------------------------------- */

enum {
    V_CREATE = 1u << 0,
    V_SHOW = 1u << 1,
    V_LIST = 1u << 2,
    V_DELETE = 1u << 3,
    V_LOGS = 1u << 4,
    V_EXEC = 1u << 5,
    V_RESTART = 1u << 6,
    V_STOP = 1u << 7,
    V_START = 1u << 8,
    V_HOSTS = 1u << 9,
    V_ALL = (1u << 10) - 1,
    V_GROUP = V_CREATE | V_SHOW | V_DELETE | V_LOGS | V_EXEC | V_RESTART | V_STOP | V_START
};

typedef enum opt_id {
    O_ENDPOINT, O_TOKEN, O_SUBSCRIPTION, O_RG, O_NAME, O_CACERT, O_INSECURE, O_OUTPUT,
    O_TIMEOUT, O_HELP, O_FILE, O_IMAGE, O_CPU, O_MEMORY, O_GPU_COUNT, O_GPU_SKU, O_RESTART,
    O_PORTS, O_PROTOCOL, O_IP, O_DNS, O_ENV, O_SECURE_ENV, O_COMMAND, O_LOCATION, O_OS, O_PRIORITY,
    O_NO_WAIT, O_YES, O_CONTAINER, O_TAIL, O_TIMESTAMPS, O_EXEC_COMMAND
} opt_id_t;

typedef enum arg_kind { ARG_NONE, ARG_ONE, ARG_MANY } arg_kind_t;

typedef struct optdef {
    const char *name;
    const char *alias;              /* short form, or NULL                  */
    opt_id_t id;
    arg_kind_t kind;
    unsigned verbs;
} optdef_t;

static const optdef_t optdefs[] = {
    {"--endpoint", NULL, O_ENDPOINT, ARG_ONE, V_ALL},
    {"--token", NULL, O_TOKEN, ARG_ONE, V_ALL},
    {"--subscription", NULL, O_SUBSCRIPTION, ARG_ONE, V_ALL},
    {"--resource-group", "-g", O_RG, ARG_ONE, V_GROUP | V_LIST},
    {"--name", "-n", O_NAME, ARG_ONE, V_GROUP},
    {"--cacert", NULL, O_CACERT, ARG_ONE, V_ALL},
    {"--insecure", NULL, O_INSECURE, ARG_NONE, V_ALL},
    {"--output", "-o", O_OUTPUT, ARG_ONE, V_ALL},
    {"--timeout", NULL, O_TIMEOUT, ARG_ONE, V_ALL},
    {"--help", "-h", O_HELP, ARG_NONE, V_ALL},
    {"--file", "-f", O_FILE, ARG_ONE, V_CREATE},
    {"--image", NULL, O_IMAGE, ARG_ONE, V_CREATE},
    {"--cpu", NULL, O_CPU, ARG_ONE, V_CREATE},
    {"--memory", NULL, O_MEMORY, ARG_ONE, V_CREATE},
    {"--gpu-count", NULL, O_GPU_COUNT, ARG_ONE, V_CREATE},
    {"--gpu-sku", NULL, O_GPU_SKU, ARG_ONE, V_CREATE},
    {"--restart-policy", NULL, O_RESTART, ARG_ONE, V_CREATE},
    {"--ports", NULL, O_PORTS, ARG_MANY, V_CREATE},
    {"--protocol", NULL, O_PROTOCOL, ARG_ONE, V_CREATE},
    {"--ip-address", NULL, O_IP, ARG_ONE, V_CREATE},
    {"--dns-name-label", NULL, O_DNS, ARG_ONE, V_CREATE},
    {"--environment-variables", "-e", O_ENV, ARG_MANY, V_CREATE},
    {"--secure-environment-variables", NULL, O_SECURE_ENV, ARG_MANY, V_CREATE},
    {"--command-line", NULL, O_COMMAND, ARG_ONE, V_CREATE},
    {"--location", "-l", O_LOCATION, ARG_ONE, V_CREATE},
    {"--os-type", NULL, O_OS, ARG_ONE, V_CREATE},
    {"--priority", NULL, O_PRIORITY, ARG_ONE, V_CREATE},
    {"--no-wait", NULL, O_NO_WAIT, ARG_NONE, V_CREATE | V_DELETE},
    {"--yes", "-y", O_YES, ARG_NONE, V_DELETE},
    {"--container-name", NULL, O_CONTAINER, ARG_ONE, V_LOGS | V_EXEC},
    {"--tail", NULL, O_TAIL, ARG_ONE, V_LOGS},
    {"--timestamps", NULL, O_TIMESTAMPS, ARG_NONE, V_LOGS},
    {"--exec-command", NULL, O_EXEC_COMMAND, ARG_ONE, V_EXEC},
};

/* Arguments of a many-valued option: pointers into argv. */
typedef struct strv {
    const char **v;
    size_t n, cap;
} strv_t;

static int strv_push(strv_t *a, const char *s)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        const char **v = realloc(a->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = s;
    return 0;
}

typedef struct opts {
    unsigned verb;
    const char *verb_name;
    const char *endpoint, *token, *subscription, *rg, *name, *cacert;
    bool insecure, json, help;
    double timeout_s;
    /* create */
    const char *file, *image, *cpu, *memory, *gpu_count, *gpu_sku, *restart_policy;
    const char *protocol, *ip_address, *dns_label, *command_line, *location, *os_type;
    const char *priority;
    strv_t ports, env, secure_env;
    bool no_wait;
    bool flags_given;               /* a document flag (not --file) was given */
    /* logs, exec */
    const char *container;
    long tail;                      /* -1: all                              */
    bool timestamps;
    const char *exec_command;
} opts_t;

static void opts_free(opts_t *o)
{
    free(o->ports.v);
    free(o->env.v);
    free(o->secure_env.v);
}

static const optdef_t *find_opt(const char *arg, size_t len)
{
    for (size_t i = 0; i < sizeof optdefs / sizeof *optdefs; i++) {
        const optdef_t *d = &optdefs[i];
        if ((strlen(d->name) == len && strncmp(arg, d->name, len) == 0) ||
            (d->alias != NULL && strlen(d->alias) == len && strncmp(arg, d->alias, len) == 0))
            return d;
    }
    return NULL;
}

/* Parses a non-negative decimal count: digits only. */
static bool parse_count(const char *s, long max, long *out)
{
    return s != NULL && isdigit((unsigned char)*s) && berthctl_parse_long(s, 0, max, out);
}

/* Parses a positive finite decimal quantity. */
static bool parse_quantity(const char *s, double *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v <= 0)
        return false;
    *out = v;
    return true;
}

/* Parses argv[3..] into *o.  Returns 0 or EX_USAGE (message printed). */
static int parse_opts(int argc, char **argv, unsigned verb, opts_t *o)
{
    o->verb = verb;
    o->verb_name = argv[2];
    o->tail = -1;
    o->timeout_s = DEFAULT_TIMEOUT_S;
    const char *output = NULL, *timeout = NULL, *tail = NULL;
    for (int i = 3; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-') {
            /* K=V may be a misplaced secret: never echo it */
            if (strchr(arg, '=') != NULL)
                return usage("%s: unexpected argument %d (NAME=VALUE needs "
                             "--environment-variables or --secure-environment-variables)",
                             o->verb_name, i - 2);
            return usage("%s: unexpected argument '%s'", o->verb_name, arg);
        }
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const optdef_t *d = find_opt(arg, len);
        if (d == NULL)
            return usage("%s: unknown option '%.*s'", o->verb_name, (int)len, arg);
        if ((d->verbs & verb) == 0)
            return usage("%s: option '%s' does not apply here", o->verb_name, d->name);
        const char *val = NULL;
        strv_t *many = NULL;
        if (d->kind == ARG_NONE) {
            if (eq != NULL)
                return usage("option '%s' takes no value", d->name);
        } else if (d->kind == ARG_ONE) {
            if (eq != NULL)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return usage("option '%s' needs a value", d->name);
        } else {
            many = d->id == O_PORTS ? &o->ports : d->id == O_ENV ? &o->env : &o->secure_env;
            size_t before = many->n;
            if (eq != NULL && strv_push(many, eq + 1) != 0)
                return oom();
            while (i + 1 < argc && argv[i + 1][0] != '-')
                if (strv_push(many, argv[++i]) != 0)
                    return oom();
            if (many->n == before)
                return usage("option '%s' needs at least one value", d->name);
        }
        switch (d->id) {
        case O_ENDPOINT: o->endpoint = val; break;
        case O_TOKEN: o->token = val; break;
        case O_SUBSCRIPTION: o->subscription = val; break;
        case O_RG: o->rg = val; break;
        case O_NAME: o->name = val; break;
        case O_CACERT: o->cacert = val; break;
        case O_INSECURE: o->insecure = true; break;
        case O_OUTPUT: output = val; break;
        case O_TIMEOUT: timeout = val; break;
        case O_HELP: o->help = true; break;
        case O_FILE: o->file = val; break;
        case O_IMAGE: o->image = val; break;
        case O_CPU: o->cpu = val; break;
        case O_MEMORY: o->memory = val; break;
        case O_GPU_COUNT: o->gpu_count = val; break;
        case O_GPU_SKU: o->gpu_sku = val; break;
        case O_RESTART: o->restart_policy = val; break;
        case O_PROTOCOL: o->protocol = val; break;
        case O_IP: o->ip_address = val; break;
        case O_DNS: o->dns_label = val; break;
        case O_COMMAND: o->command_line = val; break;
        case O_LOCATION: o->location = val; break;
        case O_OS: o->os_type = val; break;
        case O_PRIORITY: o->priority = val; break;
        case O_NO_WAIT: o->no_wait = true; break;
        case O_YES: break;
        case O_CONTAINER: o->container = val; break;
        case O_TAIL: tail = val; break;
        case O_TIMESTAMPS: o->timestamps = true; break;
        case O_EXEC_COMMAND: o->exec_command = val; break;
        case O_PORTS: case O_ENV: case O_SECURE_ENV: break;
        }
        switch (d->id) {
        case O_IMAGE: case O_CPU: case O_MEMORY: case O_GPU_COUNT: case O_GPU_SKU:
        case O_RESTART: case O_PORTS: case O_PROTOCOL: case O_IP: case O_DNS: case O_ENV:
        case O_SECURE_ENV: case O_COMMAND: case O_OS: case O_PRIORITY:
            o->flags_given = true;
            break;
        default:
            break;
        }
    }
    if (o->help)
        return 0;
    if (output != NULL) {
        if (strcmp(output, "json") == 0)
            o->json = true;
        else if (strcmp(output, "table") != 0)
            return usage("--output must be json or table, not '%s'", output);
    }
    if (timeout != NULL && (!parse_quantity(timeout, &o->timeout_s) || o->timeout_s > 604800))
        return usage("--timeout needs a number of seconds from 0 to 604800, not '%s'", timeout);
    if (tail != NULL && !parse_count(tail, 1000000, &o->tail))
        return usage("--tail needs a non-negative integer, not '%s'", tail);
    if (o->endpoint == NULL)
        o->endpoint = getenv("BERTH_ENDPOINT");
    if (o->endpoint == NULL || *o->endpoint == '\0')
        o->endpoint = DEFAULT_ENDPOINT;
    if (strncmp(o->endpoint, "http://", 7) != 0 && strncmp(o->endpoint, "https://", 8) != 0)
        return usage("--endpoint must be an http:// or https:// URL, not '%s'", o->endpoint);
    if (o->token == NULL)
        o->token = getenv("BERTH_TOKEN");
    if (o->token != NULL && (*o->token == '\0' || strpbrk(o->token, "\r\n") != NULL))
        o->token = NULL;
    if (o->subscription == NULL)
        o->subscription = getenv("BERTH_SUBSCRIPTION");
    if (o->subscription == NULL || *o->subscription == '\0')
        o->subscription = DEFAULT_SUBSCRIPTION;
    if ((verb & V_GROUP) != 0) {
        if (o->rg == NULL || *o->rg == '\0')
            return usage("%s needs --resource-group/-g RG", o->verb_name);
        if ((o->name == NULL || *o->name == '\0') && !(verb == V_CREATE && o->file != NULL))
            return usage("%s needs --name/-n NAME", o->verb_name);
    }
    if (verb == V_LIST && o->rg != NULL && *o->rg == '\0')
        return usage("%s", "--resource-group needs a non-empty value");
    if (verb == V_EXEC && (o->exec_command == NULL || *o->exec_command == '\0'))
        return usage("%s", "exec needs --exec-command \"CMD\"");
    if (verb == V_CREATE) {
        if (o->file != NULL && o->flags_given)
            return usage("%s", "create: --file cannot be combined with document flags "
                               "(--image, --cpu, ...); only -n and --location override it");
        if (o->file == NULL && (o->image == NULL || *o->image == '\0'))
            return usage("%s", "create needs --image IMAGE or --file FILE");
    }
    return 0;
}

/* ---- building a document from flags ------------------------------------------------ */

/* Splits a command line the way a POSIX shell splits words: blanks separate,
 * single quotes keep everything, double quotes keep everything but \" \\ \$
 * \`, a backslash outside quotes escapes the next character.  Returns a new
 * array of strings, or NULL with *why set. */
static json_t *split_command(const char *s, const char **why)
{
    json_t *words = json_array();
    size_t cap = strlen(s) + 1;
    char *w = malloc(cap);
    if (words == NULL || w == NULL) {
        json_decref(words);
        free(w);
        *why = "out of memory";
        return NULL;
    }
    size_t n = 0;
    bool in_word = false;
    char quote = 0;
    for (const char *p = s;; p++) {
        char ch = *p;
        if (ch == '\0') {
            if (quote != 0) {
                *why = "unterminated quote";
                goto fail;
            }
            break;
        }
        if (quote == '\'') {
            if (ch == '\'')
                quote = 0;
            else
                w[n++] = ch;
            continue;
        }
        if (quote == '"') {
            if (ch == '"')
                quote = 0;
            else if (ch == '\\' && p[1] != '\0' && strchr("\"\\$`", p[1]) != NULL)
                w[n++] = *++p;
            else
                w[n++] = ch;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n') {
            if (in_word) {
                w[n] = '\0';
                if (json_array_append_new(words, json_string(w)) != 0) {
                    *why = "invalid UTF-8 or out of memory";
                    goto fail;
                }
                n = 0;
                in_word = false;
            }
            continue;
        }
        in_word = true;
        if (ch == '\'' || ch == '"') {
            quote = ch;
        } else if (ch == '\\') {
            if (p[1] == '\0') {
                *why = "a backslash ends the command line";
                goto fail;
            }
            w[n++] = *++p;
        } else {
            w[n++] = ch;
        }
    }
    if (in_word) {
        w[n] = '\0';
        if (json_array_append_new(words, json_string(w)) != 0) {
            *why = "invalid UTF-8 or out of memory";
            goto fail;
        }
    }
    free(w);
    if (json_array_size(words) == 0) {
        *why = "the command line is empty";
        json_decref(words);
        return NULL;
    }
    return words;
fail:
    free(w);
    json_decref(words);
    return NULL;
}

/* One of a fixed set of words, matched case-insensitively; the canonical
 * spelling, or NULL. */
static const char *pick(const char *v, const char *const *choices)
{
    for (; *choices != NULL; choices++)
        if (ieq(v, *choices))
            return *choices;
    return NULL;
}

/* A quantity as a JSON number: an integer when whole (1, not 1.0). */
static json_t *quantity_json(double x)
{
    if (x == floor(x) && x < 1e15)
        return json_integer((json_int_t)x);
    return json_real(x);
}

/* Adds K=V pairs to env (secure: as secureValue).  Returns 0 or EX_USAGE. */
static int add_env(json_t *env, const strv_t *pairs, bool secure)
{
    const char *flag = secure ? "--secure-environment-variables" : "--environment-variables";
    for (size_t i = 0; i < pairs->n; i++) {
        const char *kv = pairs->v[i];
        const char *eq = strchr(kv, '=');
        if (eq == NULL || eq == kv) {
            /* never echo the argument: it may hold a secret value */
            return usage("%s: value %zu is not NAME=VALUE", flag, i + 1);
        }
        json_t *name = json_stringn(kv, (size_t)(eq - kv));
        json_t *value = json_string(eq + 1);
        if (name == NULL || value == NULL) {
            json_decref(name);
            json_decref(value);
            return usage("%s: value %zu is not valid UTF-8", flag, i + 1);
        }
        json_t *e = json_pack("{s:o,s:o}", "name", name, secure ? "secureValue" : "value", value);
        if (e == NULL || json_array_append_new(env, e) != 0)
            return oom();
    }
    return 0;
}

/* Builds the ACI document of `container create` from flags.  Returns 0 with
 * *out set, or an exit status (message printed). */
static int build_from_flags(const opts_t *o, json_t **out)
{
    static const char *const skus[] = {"K80", "P100", "V100", NULL};
    static const char *const policies[] = {"Always", "OnFailure", "Never", NULL};
    static const char *const protocols[] = {"TCP", "UDP", NULL};
    static const char *const ip_types[] = {"Public", NULL};
    static const char *const os_types[] = {"Linux", "Windows", NULL};
    static const char *const priorities[] = {"Regular", "Spot", NULL};
    *out = NULL;
    double cpu = 1, memory = 1.5;
    if (o->cpu != NULL && !parse_quantity(o->cpu, &cpu))
        return usage("--cpu needs a positive number of cores, not '%s'", o->cpu);
    if (o->memory != NULL && !parse_quantity(o->memory, &memory))
        return usage("--memory needs a positive number of GB, not '%s'", o->memory);
    long gpu_count = 0;
    const char *gpu_sku = NULL;
    if (o->gpu_count != NULL && (!parse_count(o->gpu_count, 64, &gpu_count) || gpu_count == 0))
        return usage("--gpu-count needs a positive integer, not '%s'", o->gpu_count);
    if (o->gpu_sku != NULL && (gpu_sku = pick(o->gpu_sku, skus)) == NULL)
        return usage("--gpu-sku must be K80, P100 or V100, not '%s'", o->gpu_sku);
    if ((gpu_count > 0) != (gpu_sku != NULL))
        return usage("%s", "--gpu-count and --gpu-sku go together");
    const char *policy = "Always", *protocol = "TCP", *ip = NULL, *os = "Linux";
    if (o->restart_policy != NULL && (policy = pick(o->restart_policy, policies)) == NULL)
        return usage("--restart-policy must be Always, OnFailure or Never, not '%s'",
                     o->restart_policy);
    if (o->protocol != NULL && (protocol = pick(o->protocol, protocols)) == NULL)
        return usage("--protocol must be TCP or UDP, not '%s'", o->protocol);
    if (o->ip_address != NULL && (ip = pick(o->ip_address, ip_types)) == NULL)
        return usage("--ip-address must be Public, not '%s'", o->ip_address);
    if (o->os_type != NULL && (os = pick(o->os_type, os_types)) == NULL)
        return usage("--os-type must be Linux or Windows, not '%s'", o->os_type);
    const char *priority = NULL;
    if (o->priority != NULL && (priority = pick(o->priority, priorities)) == NULL)
        return usage("--priority must be Regular or Spot, not '%s'", o->priority);
    if (o->dns_label != NULL)
        ip = "Public";              /* a DNS name label needs a public IP   */

    json_t *doc = NULL, *ports = json_array(), *gports = json_array(), *env = json_array();
    int rc = EX_OK;
    if (ports == NULL || gports == NULL || env == NULL) {
        rc = oom();
        goto out;
    }
    /* az's default: port 80 */
    size_t nports = o->ports.n ? o->ports.n : 1;
    for (size_t i = 0; i < nports; i++) {
        long port = 80;
        if (o->ports.n && (!parse_count(o->ports.v[i], 65535, &port) || port == 0)) {
            rc = usage("--ports needs port numbers 1 to 65535, not '%s'", o->ports.v[i]);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (json_integer_value(json_object_get(json_array_get(ports, j), "port")) == port) {
                rc = usage("--ports: port %ld is given twice", port);
                goto out;
            }
        if (json_array_append_new(ports, json_pack("{s:I,s:s}", "port", (json_int_t)port,
                                                   "protocol", protocol)) != 0 ||
            json_array_append_new(gports, json_pack("{s:I,s:s}", "port", (json_int_t)port,
                                                    "protocol", protocol)) != 0) {
            rc = oom();
            goto out;
        }
    }
    if ((rc = add_env(env, &o->env, false)) != 0 || (rc = add_env(env, &o->secure_env, true)) != 0)
        goto out;

    json_t *requests = json_pack("{s:o,s:o}", "cpu", quantity_json(cpu), "memoryInGB",
                                 quantity_json(memory));
    if (requests != NULL && gpu_count > 0)
        json_object_set_new(requests, "gpu",
                            json_pack("{s:I,s:s}", "count", (json_int_t)gpu_count, "sku", gpu_sku));
    json_t *cprops = json_pack("{s:s,s:O,s:O,s:{s:o}}", "image", o->image, "ports", ports,
                               "environmentVariables", env, "resources", "requests", requests);
    if (cprops == NULL) {
        rc = usage("%s", "--image is not valid UTF-8");
        goto out;
    }
    if (o->command_line != NULL) {
        const char *why = NULL;
        json_t *cmd = split_command(o->command_line, &why);
        if (cmd == NULL) {
            json_decref(cprops);
            rc = usage("--command-line: %s", why);
            goto out;
        }
        json_object_set_new(cprops, "command", cmd);
    }
    doc = json_pack("{s:s,s:s,s:{s:[{s:s,s:o}],s:s,s:s}}", "name", o->name, "location",
                    o->location ? o->location : DEFAULT_LOCATION, "properties", "containers",
                    "name", o->name, "properties", cprops, "osType", os, "restartPolicy", policy);
    if (doc == NULL) {
        rc = usage("%s", "--name or --location is not valid UTF-8");
        goto out;
    }
    if (priority != NULL &&
        json_object_set_new(jget(doc, "properties"), "priority", json_string(priority)) != 0) {
        rc = oom();
        goto out;
    }
    if (ip != NULL) {
        json_t *ipa = json_pack("{s:s,s:O}", "type", ip, "ports", gports);
        if (ipa != NULL && o->dns_label != NULL)
            json_object_set_new(ipa, "dnsNameLabel", json_string(o->dns_label));
        if (ipa == NULL || json_object_set_new(jget(doc, "properties"), "ipAddress", ipa) != 0) {
            rc = oom();
            goto out;
        }
    }
out:
    json_decref(ports);
    json_decref(gports);
    json_decref(env);
    if (rc != EX_OK) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return EX_OK;
}

/* Checks a document with the library's parser.  Returns 0 or EX_USAGE with
 * the violations printed (targets and messages only, never values). */
static int check_document(const char *text)
{
    berth_group_t *g = NULL;
    berth_error_t err;
    berth_error_clear(&err);
    int rc = berth_group_parse(text, strlen(text), &g, &err);
    berth_group_free(g);
    if (rc == 0)
        return EX_OK;
    if (rc == BERTH_ENOMEM)
        return oom();
    fprintf(stderr, "berthctl: create: the document is not a valid container group:\n");
    size_t n = err.ndetails < BERTH_ERROR_DETAILS_MAX ? err.ndetails : BERTH_ERROR_DETAILS_MAX;
    if (n == 0)
        fprintf(stderr, "  %s: %s%s%s\n", err.name, err.message, *err.target ? " at " : "",
                err.target);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  %s: %s%s%s\n", err.details[i].name, err.details[i].message,
                *err.details[i].target ? " at " : "", err.details[i].target);
    if (err.ndetails > n)
        fprintf(stderr, "  (%zu more)\n", err.ndetails - n);
    return EX_USAGE;
}

/* Reads a whole file ("-": stdin) of at most FILE_MAX bytes. */
static int read_input(const char *path, char **out)
{
    *out = NULL;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL)
        return usage("cannot open '%s': %s", path, strerror(errno));
    char *buf = malloc(FILE_MAX + 2);
    if (buf == NULL) {
        if (f != stdin)
            fclose(f);
        return oom();
    }
    size_t n = fread(buf, 1, FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    if (f != stdin)
        fclose(f);
    if (bad || n > FILE_MAX) {
        free(buf);
        return usage("cannot read '%s': %s", path, bad ? "read error" : "larger than 1 MiB");
    }
    buf[n] = '\0';
    *out = buf;
    return EX_OK;
}

/* Loads --file and applies -n and --location.  Returns 0 with *out and
 * *name (borrowed from *out) set, or an exit status. */
static int load_document(const opts_t *o, json_t **out)
{
    *out = NULL;
    char *text = NULL;
    int rc = read_input(o->file, &text);
    if (rc != EX_OK)
        return rc;
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (doc == NULL)
        return usage("%s: not JSON (line %d: %s)", o->file, jerr.line, jerr.text);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return usage("%s: not a container-group document (a JSON object)", o->file);
    }
    if (o->name != NULL)
        json_object_set_new(doc, "name", json_string(o->name));
    if (o->location != NULL)
        json_object_set_new(doc, "location", json_string(o->location));
    else if (json_object_get(doc, "location") == NULL)
        json_object_set_new(doc, "location", json_string(DEFAULT_LOCATION));
    const char *name = jstr(doc, "name");
    if (name == NULL || *name == '\0') {
        json_decref(doc);
        return usage("%s: the document has no name; give -n NAME", o->file);
    }
    *out = doc;
    return EX_OK;
}

/* ---- HTTP ------------------------------------------------------------------------- */

typedef struct client {
    CURL *curl;
    const opts_t *o;
    char base[1024];                /* the endpoint, no trailing '/'        */
    double deadline;                /* monotonic seconds                    */
} client_t;

typedef struct resp {
    long status;                    /* 0: no answer                         */
    char *body;                     /* NUL-terminated, never NULL after http() */
    size_t len;
    bool too_big;
    json_t *json;                   /* the body parsed, or NULL             */
    char why[CURL_ERROR_SIZE];      /* when status is 0                     */
} resp_t;

static void resp_free(resp_t *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    resp_t *r = user;
    size_t n = size * nmemb;
    if (r->len + n > BODY_MAX) {
        r->too_big = true;
        return 0;
    }
    char *b = realloc(r->body, r->len + n + 1);
    if (b == NULL)
        return 0;
    memcpy(b + r->len, data, n);
    r->len += n;
    b[r->len] = '\0';
    r->body = b;
    return n;
}

/* One exchange: METHOD url with `body` (NULL: none; "" an empty one) and
 * extra header lines.  Returns 0 when an answer came (look at r->status),
 * -1 otherwise (r->why says why). */
static int http(client_t *c, const char *method, const char *url, const char *body,
                const char *extra_header, resp_t *r)
{
    memset(r, 0, sizeof *r);
    double left = c->deadline - now_s();
    if (left <= 0) {
        snprintf(r->why, sizeof r->why, "timed out (--timeout %g s)", c->o->timeout_s);
        r->body = strdup("");
        return -1;
    }
    long left_ms = (long)(left * 1000) + 1;
    CURL *h = c->curl;
    curl_easy_reset(h);
    struct curl_slist *hdrs = NULL, *t;
    char auth[8192];
    bool ok = true;
#define ADD_HEADER(s)                                                                       \
    do {                                                                                    \
        if (ok && (t = curl_slist_append(hdrs, (s))) != NULL)                               \
            hdrs = t;                                                                       \
        else                                                                                \
            ok = false;                                                                     \
    } while (0)
    ADD_HEADER("Accept: application/json");
    if (body != NULL)
        ADD_HEADER("Content-Type: application/json");
    if (c->o->token != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->o->token);
        ADD_HEADER(auth);
        wipe(auth);
    }
    if (extra_header != NULL)
        ADD_HEADER(extra_header);
#undef ADD_HEADER
    if (!ok) {
        curl_slist_free_all(hdrs);
        snprintf(r->why, sizeof r->why, "out of memory");
        r->body = strdup("");
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "berthctl");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     left_ms < CONNECT_TIMEOUT_MS ? left_ms : CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->why);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (c->o->cacert != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->o->cacert);
    if (c->o->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body != NULL) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        }
    }
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    if (r->body == NULL)
        r->body = strdup("");
    if (r->body == NULL) {
        snprintf(r->why, sizeof r->why, "out of memory");
        return -1;
    }
    if (cc != CURLE_OK) {
        if (r->too_big)
            snprintf(r->why, sizeof r->why, "the answer is larger than %zu bytes", BODY_MAX);
        else if (r->why[0] == '\0')
            snprintf(r->why, sizeof r->why, "%s", curl_easy_strerror(cc));
        r->status = 0;
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->len > 0)
        r->json = json_loadb(r->body, r->len, 0, NULL);
    return 0;
}

/* Prints why an exchange failed: no answer, or the status and the
 * CloudError's code, message, target and details.  Returns EX_HTTP. */
static int http_error(const char *what, const resp_t *r)
{
    if (r->status == 0) {
        fprintf(stderr, "berthctl: %s: no answer: ", what);
        put_clean(stderr, r->why, 300);
        fputc('\n', stderr);
        return EX_HTTP;
    }
    fprintf(stderr, "berthctl: %s failed: HTTP %ld\n", what, r->status);
    json_t *e = jget(r->json, "error");
    if (!json_is_object(e)) {
        if (r->len > 0) {
            fputs("  ", stderr);
            put_clean(stderr, r->body, 300);
            fputc('\n', stderr);
        }
        return EX_HTTP;
    }
    static const char *const fields[] = {"code", "message", "target"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = jstr(e, fields[i]);
        if (v != NULL && *v != '\0') {
            fprintf(stderr, "  %-8s ", fields[i]);
            put_clean(stderr, v, 1000);
            fputc('\n', stderr);
        }
    }
    json_t *details = json_object_get(e, "details");
    size_t i;
    json_t *d;
    json_array_foreach(details, i, d)
    {
        if (i >= 20) {
            fprintf(stderr, "  (%zu more details)\n", json_array_size(details) - i);
            break;
        }
        fputs("  detail   ", stderr);
        put_clean(stderr, jstr(d, "code") ? jstr(d, "code") : "?", 100);
        fputs(": ", stderr);
        put_clean(stderr, jstr(d, "message") ? jstr(d, "message") : "", 500);
        if (jstr(d, "target") != NULL && *jstr(d, "target") != '\0') {
            fputs(" (target ", stderr);
            put_clean(stderr, jstr(d, "target"), 200);
            fputc(')', stderr);
        }
        fputc('\n', stderr);
    }
    return EX_HTTP;
}

static bool ok_status(long s)
{
    return s >= 200 && s < 300;
}

/* The URL of a group (or of one of its sub-resources: `suffix` is "" or
 * e.g. "/restart"), with the api-version and `query` ("" or "&a=b").
 * Returns a new string or NULL. */
static char *group_url(client_t *c, const char *name, const char *suffix, const char *query)
{
    char *sub = curl_easy_escape(c->curl, c->o->subscription, 0);
    char *rg = curl_easy_escape(c->curl, c->o->rg, 0);
    char *n = curl_easy_escape(c->curl, name, 0);
    sb_t b = {0};
    if (sub == NULL || rg == NULL || n == NULL)
        b.oom = true;
    sb_printf(&b,
              "%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
              "containerGroups/%s%s?api-version=" API_VERSION "%s",
              c->base, sub, rg, n, suffix, query);
    curl_free(sub);
    curl_free(rg);
    curl_free(n);
    return sb_take(&b);
}

/* The URL of a container's sub-resource ("logs", "exec"). */
static char *container_url(client_t *c, const char *container, const char *what,
                           const char *query)
{
    char *cn = curl_easy_escape(c->curl, container, 0);
    if (cn == NULL)
        return NULL;
    sb_t b = {0};
    sb_printf(&b, "/containers/%s/%s", cn, what);
    curl_free(cn);
    char *suffix = sb_take(&b);
    if (suffix == NULL)
        return NULL;
    char *url = group_url(c, c->o->name, suffix, query);
    free(suffix);
    return url;
}

/* ---- tables ----------------------------------------------------------------------- */

typedef struct table {
    size_t ncols;
    char **cells;                   /* row-major, owned                     */
    size_t ncells, cap;
    bool oom;
} table_t;

static void table_add(table_t *t, const char *s)
{
    if (t->oom)
        return;
    if (t->ncells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **v = realloc(t->cells, cap * sizeof *v);
        if (v == NULL) {
            t->oom = true;
            return;
        }
        t->cells = v;
        t->cap = cap;
    }
    char *copy = strdup(s != NULL && *s != '\0' ? s : "-");
    if (copy == NULL) {
        t->oom = true;
        return;
    }
    t->cells[t->ncells++] = copy;
}

/* Prints the table aligned, two blanks between columns; returns an exit status. */
static int table_print(table_t *t)
{
    int rc = EX_OK;
    if (t->oom) {
        rc = oom();
    } else {
        size_t widths[16] = {0};
        for (size_t i = 0; i < t->ncells; i++) {
            size_t len = strlen(t->cells[i]);
            if (len > widths[i % t->ncols])
                widths[i % t->ncols] = len;
        }
        for (size_t i = 0; i < t->ncells; i++) {
            size_t col = i % t->ncols;
            bool last = col + 1 == t->ncols;
            put_clean(stdout, t->cells[i], 4096);
            if (last)
                fputc('\n', stdout);
            else
                printf("%*s", (int)(widths[col] - strlen(t->cells[i]) + 2), "");
        }
    }
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    return rc;
}

/* A utilization bar: "[#######...]  70%" (width BAR_WIDTH). */
static void fmt_bar(char *buf, size_t cap, uint64_t used, uint64_t total)
{
    char bar[BAR_WIDTH + 1];
    unsigned fill = 0, pct = 0;
    if (total > 0) {
        uint64_t u = used > total ? total : used;
        fill = (unsigned)((u * BAR_WIDTH + total / 2) / total);
        pct = (unsigned)((used * 100 + total / 2) / total);
    }
    for (unsigned i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    if (total > 0)
        snprintf(buf, cap, "[%s] %3u%%", bar, pct);
    else
        snprintf(buf, cap, "[%s]    -", bar);
}

/* ---- group summaries ------------------------------------------------------------- */

/* The resource group named in a resource id, copied into buf. */
static const char *rg_of(json_t *g, char *buf, size_t cap)
{
    const char *id = jstr(g, "id");
    buf[0] = '\0';
    if (id == NULL)
        return buf;
    static const char key[] = "/resourceGroups/";
    const char *p = id;
    while (*p != '\0' && strncasecmp(p, key, sizeof key - 1) != 0)
        p++;
    if (*p == '\0')
        return buf;
    p += sizeof key - 1;
    size_t n = strcspn(p, "/");
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    return buf;
}

/* The host a group runs on, when berthd says. */
static const char *host_of(json_t *g)
{
    static const char *const paths[] = {"properties.instanceView.host",
                                        "properties.instanceView.hostName",
                                        "properties.host", "properties.hostName"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        const char *h = jstr(g, paths[i]);
        if (h != NULL && *h != '\0')
            return h;
    }
    return NULL;
}

/* Totals of the containers' CPU and memory requests. */
static void group_totals(json_t *g, double *cpu, double *mem)
{
    *cpu = *mem = 0;
    size_t i;
    json_t *c;
    json_array_foreach(jget(g, "properties.containers"), i, c)
    {
        *cpu += jnum(c, "properties.resources.requests.cpu", 0);
        *mem += jnum(c, "properties.resources.requests.memoryInGB", 0);
    }
}

static void print_field(const char *label, const char *value)
{
    if (value == NULL || *value == '\0')
        return;
    printf("%-20s", label);
    put_clean(stdout, value, 4096);
    fputc('\n', stdout);
}

/* Prints the summary of `container show` (and of a finished create). */
static int print_summary(json_t *g)
{
    char buf[512], rg[256];
    print_field("Name:", jstr(g, "name"));
    print_field("Resource group:", rg_of(g, rg, sizeof rg));
    print_field("Location:", jstr(g, "location"));
    print_field("Provisioning state:", jstr(g, "properties.provisioningState"));
    print_field("State:", jstr(g, "properties.instanceView.state"));
    print_field("Host:", host_of(g));
    print_field("OS type:", jstr(g, "properties.osType"));
    print_field("Restart policy:", jstr(g, "properties.restartPolicy"));
    json_t *ip = jget(g, "properties.ipAddress");
    if (json_is_object(ip)) {
        sb_t b = {0};
        sb_printf(&b, "%s", jstr(ip, "ip") ? jstr(ip, "ip") : "(pending)");
        if (jstr(ip, "type"))
            sb_printf(&b, " (%s)", jstr(ip, "type"));
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(ip, "ports"), i, p)
            sb_printf(&b, "%s%lld/%s", i == 0 ? ", ports " : " ",
                      (long long)json_integer_value(json_object_get(p, "port")),
                      jstr(p, "protocol") ? jstr(p, "protocol") : "TCP");
        char *s = sb_take(&b);
        print_field("IP address:", s);
        free(s);
        print_field("FQDN:", jstr(ip, "fqdn"));
    }
    table_t t = {.ncols = 7};
    static const char *const heads[] = {"CONTAINER", "IMAGE", "CPU", "MEMORY", "STATE",
                                        "RESTARTS", "GPU"};
    for (size_t i = 0; i < 7; i++)
        table_add(&t, heads[i]);
    size_t i;
    json_t *c;
    json_t *containers = jget(g, "properties.containers");
    json_array_foreach(containers, i, c)
    {
        table_add(&t, jstr(c, "name"));
        table_add(&t, jstr(c, "properties.image"));
        fmt_num(buf, sizeof buf, jnum(c, "properties.resources.requests.cpu", 0));
        table_add(&t, buf);
        fmt_num(buf, sizeof buf, jnum(c, "properties.resources.requests.memoryInGB", 0));
        strcat(buf, " GB");
        table_add(&t, buf);
        const char *state = jstr(c, "properties.instanceView.currentState.state");
        const char *detail = jstr(c, "properties.instanceView.currentState.detailStatus");
        if (state != NULL && detail != NULL && *detail != '\0') {
            snprintf(buf, sizeof buf, "%s (%s)", state, detail);
            table_add(&t, buf);
        } else {
            table_add(&t, state);
        }
        json_t *rc = jget(c, "properties.instanceView.restartCount");
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(rc));
        table_add(&t, json_is_integer(rc) ? buf : NULL);
        json_t *gpu = jget(c, "properties.resources.requests.gpu");
        if (json_is_object(gpu)) {
            snprintf(buf, sizeof buf, "%lld %s",
                     (long long)json_integer_value(json_object_get(gpu, "count")),
                     jstr(gpu, "sku") ? jstr(gpu, "sku") : "");
            table_add(&t, buf);
        } else {
            table_add(&t, NULL);
        }
    }
    fputc('\n', stdout);
    int rc = table_print(&t);
    /* environment: names, and values only when they are not secrets */
    json_array_foreach(containers, i, c)
    {
        size_t j;
        json_t *e;
        json_t *env = jget(c, "properties.environmentVariables");
        if (json_array_size(env) == 0)
            continue;
        printf("\nEnvironment of %s:\n", jstr(c, "name") ? jstr(c, "name") : "?");
        json_array_foreach(env, j, e)
        {
            fputs("  ", stdout);
            put_clean(stdout, jstr(e, "name") ? jstr(e, "name") : "?", 256);
            fputc('=', stdout);
            if (json_object_get(e, "secureValue") != NULL || jstr(e, "value") == NULL)
                fputs(REDACTED, stdout);
            else
                put_clean(stdout, jstr(e, "value"), 4096);
            fputc('\n', stdout);
        }
    }
    return rc;
}

/* Prints every event of the group and of its containers (stderr). */
static void print_events(json_t *g)
{
    size_t i, j;
    json_t *e, *c;
    fputs("berthctl: events:\n", stderr);
    json_array_foreach(jget(g, "properties.instanceView.events"), i, e)
    {
        fprintf(stderr, "  [%s] %s: ", jstr(e, "type") ? jstr(e, "type") : "?",
                jstr(e, "name") ? jstr(e, "name") : "?");
        put_clean(stderr, jstr(e, "message") ? jstr(e, "message") : "", 1000);
        fputc('\n', stderr);
    }
    json_array_foreach(jget(g, "properties.containers"), i, c)
    {
        json_array_foreach(jget(c, "properties.instanceView.events"), j, e)
        {
            fprintf(stderr, "  [%s] container ", jstr(e, "type") ? jstr(e, "type") : "?");
            put_clean(stderr, jstr(c, "name") ? jstr(c, "name") : "?", 100);
            fprintf(stderr, " %s: ", jstr(e, "name") ? jstr(e, "name") : "?");
            put_clean(stderr, jstr(e, "message") ? jstr(e, "message") : "", 1000);
            fputc('\n', stderr);
        }
    }
}

/* ---- commands -------------------------------------------------------------------- */

/* Prints what changed since the last look (provisioningState, the group's
 * state, each container's state) on stderr; `seen` remembers. */
static void show_progress(const char *name, json_t *g, json_t *seen)
{
    const char *prov = jstr(g, "properties.provisioningState");
    const char *state = jstr(g, "properties.instanceView.state");
    const char *old = jstr(seen, "provisioningState");
    if (prov != NULL && (old == NULL || strcmp(old, prov) != 0)) {
        fprintf(stderr, "%s: provisioningState ", name);
        put_clean(stderr, prov, 64);
        fputc('\n', stderr);
        json_object_set_new(seen, "provisioningState", json_string(prov));
    }
    old = jstr(seen, "state");
    if (state != NULL && (old == NULL || strcmp(old, state) != 0)) {
        fprintf(stderr, "%s: state ", name);
        put_clean(stderr, state, 64);
        fputc('\n', stderr);
        json_object_set_new(seen, "state", json_string(state));
    }
    size_t i;
    json_t *c;
    json_array_foreach(jget(g, "properties.containers"), i, c)
    {
        const char *cn = jstr(c, "name");
        const char *cs = jstr(c, "properties.instanceView.currentState.state");
        if (cn == NULL || cs == NULL)
            continue;
        char key[128];
        snprintf(key, sizeof key, "c:%s", cn);
        old = jstr(seen, key);
        if (old != NULL && strcmp(old, cs) == 0)
            continue;
        json_object_set_new(seen, key, json_string(cs));
        fprintf(stderr, "%s: container ", name);
        put_clean(stderr, cn, 64);
        fputs(" ", stderr);
        put_clean(stderr, cs, 64);
        const char *detail = jstr(c, "properties.instanceView.currentState.detailStatus");
        if (detail != NULL && *detail != '\0') {
            fputs(" (", stderr);
            put_clean(stderr, detail, 200);
            fputc(')', stderr);
        }
        fputc('\n', stderr);
    }
}

/* Polls the group until Succeeded or Failed (or the deadline).  `first` is
 * the PUT's answer (may be NULL).  Returns an exit status; on Succeeded or
 * Failed *final holds the last document. */
static int wait_group(client_t *c, const char *name, const char *url, json_t *first,
                      json_t **final)
{
    *final = NULL;
    json_t *seen = json_object();
    if (seen == NULL)
        return oom();
    json_t *g = json_incref(first);
    double pause = 0.2;
    bool warned = false;
    int rc;
    for (;;) {
        if (g != NULL) {
            show_progress(name, g, seen);
            const char *prov = jstr(g, "properties.provisioningState");
            if (prov != NULL && (ieq(prov, "Succeeded") || ieq(prov, "Failed"))) {
                *final = g;
                rc = ieq(prov, "Succeeded") ? EX_OK : EX_FAILED;
                break;
            }
            json_decref(g);
            g = NULL;
        }
        double left = c->deadline - now_s();
        if (left <= 0) {
            fprintf(stderr, "berthctl: %s: timed out after %g s waiting for Succeeded or "
                            "Failed (provisioningState %s)\n",
                    name, c->o->timeout_s,
                    jstr(seen, "provisioningState") ? jstr(seen, "provisioningState")
                                                    : "unknown");
            rc = EX_FAILED;
            break;
        }
        sleep_s(pause < left ? pause : left);
        pause = pause * 1.5 > 2.0 ? 2.0 : pause * 1.5;
        resp_t r;
        if (http(c, "GET", url, NULL, NULL, &r) == 0 && ok_status(r.status) &&
            json_is_object(r.json)) {
            g = json_incref(r.json);
        } else if (r.status == 0 || r.status >= 500 || r.status == 429) {
            /* transient: keep trying until the deadline */
            if (!warned && now_s() < c->deadline) {
                fprintf(stderr, "berthctl: %s: ", name);
                if (r.status == 0)
                    put_clean(stderr, r.why, 300);
                else
                    fprintf(stderr, "HTTP %ld", r.status);
                fputs("; retrying\n", stderr);
                warned = true;
            }
        } else {
            rc = http_error("wait", &r);
            resp_free(&r);
            break;
        }
        resp_free(&r);
    }
    json_decref(seen);
    return rc;
}

static int cmd_create(client_t *c)
{
    const opts_t *o = c->o;
    json_t *doc = NULL;
    int rc = o->file != NULL ? load_document(o, &doc) : build_from_flags(o, &doc);
    if (rc != EX_OK)
        return rc;
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
    char *name = strdup(jstr(doc, "name"));
    char *url = NULL;
    json_t *final = NULL;
    resp_t r = {0};
    if (text == NULL || name == NULL) {
        rc = oom();
        goto out;
    }
    if (o->file == NULL && (rc = check_document(text)) != EX_OK)
        goto out;
    if ((url = group_url(c, name, "", "")) == NULL) {
        rc = oom();
        goto out;
    }
    if (http(c, "PUT", url, text, NULL, &r) != 0 || !ok_status(r.status)) {
        rc = http_error("create", &r);
        goto out;
    }
    if (o->no_wait) {
        fprintf(stderr, "%s: accepted (HTTP %ld, provisioningState %s)\n", name, r.status,
                jstr(r.json, "properties.provisioningState")
                    ? jstr(r.json, "properties.provisioningState")
                    : "unknown");
        rc = EX_OK;
        if (o->json && json_is_object(r.json))
            rc = print_json(r.json);
        goto out;
    }
    rc = wait_group(c, name, url, json_is_object(r.json) ? r.json : NULL, &final);
    if (final != NULL) {
        if (rc == EX_FAILED)
            print_events(final);
        int prc = o->json ? print_json(final) : print_summary(final);
        if (rc == EX_OK)
            rc = prc;
    }
out:
    if (text != NULL) {
        wipe(text);                 /* it may hold secure values           */
        free(text);
    }
    json_decref(doc);
    json_decref(final);
    resp_free(&r);
    free(name);
    free(url);
    return rc;
}

/* GETs the group into *out.  Returns an exit status. */
static int get_group(client_t *c, const char *what, json_t **out)
{
    *out = NULL;
    char *url = group_url(c, c->o->name, "", "");
    if (url == NULL)
        return oom();
    resp_t r;
    int rc = EX_OK;
    if (http(c, "GET", url, NULL, NULL, &r) != 0 || !ok_status(r.status) ||
        !json_is_object(r.json)) {
        if (r.status != 0 && ok_status(r.status))
            fprintf(stderr, "berthctl: %s: the answer is not a JSON object\n", what);
        rc = ok_status(r.status) ? EX_HTTP : http_error(what, &r);
    } else {
        *out = json_incref(r.json);
    }
    resp_free(&r);
    free(url);
    return rc;
}

static int cmd_show(client_t *c)
{
    json_t *g;
    int rc = get_group(c, "show", &g);
    if (rc != EX_OK)
        return rc;
    rc = c->o->json ? print_json(g) : print_summary(g);
    json_decref(g);
    return rc;
}

/* Turns a nextLink into a URL: absolute as given, or relative to the endpoint. */
static char *next_url(client_t *c, const char *link)
{
    sb_t b = {0};
    if (strncmp(link, "http://", 7) == 0 || strncmp(link, "https://", 8) == 0)
        sb_printf(&b, "%s", link);
    else
        sb_printf(&b, "%s%s%s", c->base, link[0] == '/' ? "" : "/", link);
    return sb_take(&b);
}

static int cmd_list(client_t *c)
{
    const opts_t *o = c->o;
    char *sub = curl_easy_escape(c->curl, o->subscription, 0);
    char *rg = o->rg ? curl_easy_escape(c->curl, o->rg, 0) : NULL;
    sb_t b = {0};
    if (sub == NULL || (o->rg != NULL && rg == NULL))
        b.oom = true;
    sb_printf(&b, "%s/subscriptions/%s", c->base, sub ? sub : "");
    if (rg != NULL)
        sb_printf(&b, "/resourceGroups/%s", rg);
    sb_printf(&b, "/providers/Microsoft.ContainerInstance/containerGroups?api-version=" API_VERSION);
    curl_free(sub);
    curl_free(rg);
    char *url = sb_take(&b);
    json_t *all = json_array();
    if (url == NULL || all == NULL) {
        free(url);
        json_decref(all);
        return oom();
    }
    int rc = EX_OK;
    for (int page = 0; url != NULL; page++) {
        if (page >= PAGES_MAX) {
            fprintf(stderr, "berthctl: list: more than %d pages; stopping\n", PAGES_MAX);
            break;
        }
        resp_t r;
        if (http(c, "GET", url, NULL, NULL, &r) != 0 || !ok_status(r.status)) {
            rc = http_error("list", &r);
            resp_free(&r);
            break;
        }
        json_t *value = json_object_get(r.json, "value");
        if (!json_is_array(value)) {
            fprintf(stderr, "berthctl: list: the answer has no \"value\" array\n");
            resp_free(&r);
            rc = EX_HTTP;
            break;
        }
        json_array_extend(all, value);
        free(url);
        url = NULL;
        const char *link = jstr(r.json, "nextLink");
        if (link != NULL && *link != '\0' && (url = next_url(c, link)) == NULL)
            rc = oom();
        resp_free(&r);
    }
    free(url);
    if (rc == EX_OK) {
        if (o->json) {
            rc = print_json(all);
        } else {
            static const char *const heads[] = {"NAME", "RESOURCE-GROUP", "STATE",
                                                "PROVISIONING", "IMAGE", "CPU",
                                                "MEMORY", "LOCATION"};
            table_t t = {.ncols = 8};
            for (size_t i = 0; i < 8; i++)
                table_add(&t, heads[i]);
            size_t i;
            json_t *g;
            char buf[512], rgb[256];
            json_array_foreach(all, i, g)
            {
                table_add(&t, jstr(g, "name"));
                table_add(&t, rg_of(g, rgb, sizeof rgb));
                table_add(&t, jstr(g, "properties.instanceView.state"));
                table_add(&t, jstr(g, "properties.provisioningState"));
                json_t *cs = jget(g, "properties.containers");
                const char *image = jstr(json_array_get(cs, 0), "properties.image");
                if (image != NULL && json_array_size(cs) > 1) {
                    snprintf(buf, sizeof buf, "%s (+%zu)", image, json_array_size(cs) - 1);
                    table_add(&t, buf);
                } else {
                    table_add(&t, image);
                }
                double cpu, mem;
                group_totals(g, &cpu, &mem);
                fmt_num(buf, sizeof buf, cpu);
                table_add(&t, buf);
                fmt_num(buf, sizeof buf, mem);
                strcat(buf, " GB");
                table_add(&t, buf);
                table_add(&t, jstr(g, "location"));
            }
            rc = table_print(&t);
        }
    }
    json_decref(all);
    return rc;
}

/* POSTs (empty body) or DELETEs the group or a sub-resource. */
static int simple_action(client_t *c, const char *method, const char *suffix, const char *done)
{
    char *url = group_url(c, c->o->name, suffix, "");
    if (url == NULL)
        return oom();
    resp_t r;
    int rc = EX_OK;
    if (http(c, method, url, strcmp(method, "POST") == 0 ? "" : NULL, NULL, &r) != 0 ||
        !ok_status(r.status)) {
        rc = http_error(c->o->verb_name, &r);
    } else if (c->o->verb == V_DELETE && r.status == 204) {
        fprintf(stderr, "berthctl: %s/%s: no such container group (nothing deleted)\n",
                c->o->rg, c->o->name);
    } else if (c->o->verb == V_DELETE && r.status == 202 && !c->o->no_wait) {
        /* accepted: wait until the group is gone */
        for (double pause = 0.2;; pause = pause * 1.5 > 2 ? 2 : pause * 1.5) {
            resp_t g;
            http(c, "GET", url, NULL, NULL, &g);
            long st = g.status;
            resp_free(&g);
            if (st == 404)
                break;
            double left = c->deadline - now_s();
            if (left <= 0) {
                fprintf(stderr, "berthctl: %s/%s: timed out waiting for the deletion\n",
                        c->o->rg, c->o->name);
                rc = EX_FAILED;
                break;
            }
            sleep_s(pause < left ? pause : left);
        }
        if (rc == EX_OK)
            fprintf(stderr, "berthctl: %s/%s: %s\n", c->o->rg, c->o->name, done);
    } else {
        fprintf(stderr, "berthctl: %s/%s: %s\n", c->o->rg, c->o->name, done);
        if (c->o->json && json_is_object(r.json))
            rc = print_json(r.json);
    }
    resp_free(&r);
    free(url);
    return rc;
}

/* The container to act on: --container-name, or the group's first one. */
static int pick_container(client_t *c, char **out)
{
    *out = NULL;
    if (c->o->container != NULL) {
        *out = strdup(c->o->container);
        return *out ? EX_OK : oom();
    }
    json_t *g;
    int rc = get_group(c, c->o->verb_name, &g);
    if (rc != EX_OK)
        return rc;
    const char *name = jstr(json_array_get(jget(g, "properties.containers"), 0), "name");
    if (name == NULL) {
        fprintf(stderr, "berthctl: %s: the group has no containers\n", c->o->verb_name);
        rc = EX_HTTP;
    } else if ((*out = strdup(name)) == NULL) {
        rc = oom();
    }
    json_decref(g);
    return rc;
}

static int cmd_logs(client_t *c)
{
    char *container;
    int rc = pick_container(c, &container);
    if (rc != EX_OK)
        return rc;
    char query[64] = "";
    if (c->o->tail >= 0)
        snprintf(query, sizeof query, "&tail=%ld", c->o->tail);
    if (c->o->timestamps)
        strcat(query, "&timestamps=true");
    char *url = container_url(c, container, "logs", query);
    free(container);
    if (url == NULL)
        return oom();
    resp_t r;
    if (http(c, "GET", url, NULL, NULL, &r) != 0 || !ok_status(r.status)) {
        rc = http_error("logs", &r);
    } else if (c->o->json && json_is_object(r.json)) {
        rc = print_json(r.json);
    } else {
        json_t *content = json_object_get(r.json, "content");
        if (json_is_string(content)) {
            fwrite(json_string_value(content), 1, json_string_length(content), stdout);
        } else if (!json_is_null(content) && content != NULL) {
            fprintf(stderr, "berthctl: logs: the answer has no \"content\" string\n");
            rc = EX_HTTP;
        }
    }
    resp_free(&r);
    free(url);
    return rc;
}

/* Turns the exec answer's webSocketUri into the URL to POST to. */
static char *exec_url(const char *uri)
{
    sb_t b = {0};
    if (strncmp(uri, "wss://", 6) == 0)
        sb_printf(&b, "https://%s", uri + 6);
    else if (strncmp(uri, "ws://", 5) == 0)
        sb_printf(&b, "http://%s", uri + 5);
    else if (strncmp(uri, "https://", 8) == 0 || strncmp(uri, "http://", 7) == 0)
        sb_printf(&b, "%s", uri);
    else
        return NULL;
    return sb_take(&b);
}

static int cmd_exec(client_t *c)
{
    char *container;
    int rc = pick_container(c, &container);
    if (rc != EX_OK)
        return rc;
    char *url = container_url(c, container, "exec", "");
    free(container);
    int rows = 24, cols = 80;
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 &&
        ws.ws_col > 0) {
        rows = ws.ws_row;
        cols = ws.ws_col;
    }
    json_t *req = json_pack("{s:s,s:{s:i,s:i}}", "command", c->o->exec_command, "terminalSize",
                            "rows", rows, "cols", cols);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (url == NULL || body == NULL) {
        free(url);
        free(body);
        return req == NULL ? usage("%s", "--exec-command is not valid UTF-8") : oom();
    }
    resp_t r, x = {0};
    char *hdr = NULL, *xurl = NULL, *xbody = NULL;
    if (http(c, "POST", url, body, NULL, &r) != 0 || !ok_status(r.status)) {
        rc = http_error("exec", &r);
        goto out;
    }
    const char *uri = jstr(r.json, "webSocketUri");
    const char *password = jstr(r.json, "password");
    if (uri == NULL || password == NULL || strpbrk(password, "\r\n") != NULL) {
        fprintf(stderr, "berthctl: exec: the answer has no webSocketUri and password\n");
        rc = EX_HTTP;
        goto out;
    }
    if ((xurl = exec_url(uri)) == NULL) {
        fprintf(stderr, "berthctl: exec: unexpected webSocketUri scheme\n");
        rc = EX_HTTP;
        goto out;
    }
    /* The password goes in the x-berth-exec-password header and, for a
     * server that sees no custom headers, in the body {"password": ...}. */
    sb_t hb = {0};
    sb_printf(&hb, "x-berth-exec-password: %s", password);
    json_t *pw = json_pack("{s:s}", "password", password);
    xbody = pw ? json_dumps(pw, JSON_COMPACT) : NULL;
    json_decref(pw);
    if ((hdr = sb_take(&hb)) == NULL || xbody == NULL) {
        rc = oom();
        goto out;
    }
    if (http(c, "POST", xurl, xbody, hdr, &x) != 0 || !ok_status(x.status)) {
        rc = http_error("exec", &x);
        goto out;
    }
    json_t *output = json_object_get(x.json, "output");
    json_t *code = json_object_get(x.json, "exitCode");
    if (json_is_object(x.json) && (json_is_string(output) || json_is_integer(code))) {
        if (json_is_string(output))
            fwrite(json_string_value(output), 1, json_string_length(output), stdout);
        long long ec = json_integer_value(code);
        rc = ec < 0 || ec > 255 ? 255 : (int)ec;
    } else {
        fwrite(x.body, 1, x.len, stdout);  /* plain-text output */
        rc = EX_OK;
    }
out:
    if (hdr != NULL) {
        wipe(hdr);
        free(hdr);
    }
    if (xbody != NULL) {
        wipe(xbody);
        free(xbody);
    }
    if (r.body != NULL && r.len > 0)
        memset(r.body, 0, r.len);   /* the answer held the password        */
    resp_free(&r);
    resp_free(&x);
    free(xurl);
    free(url);
    free(body);
    return rc;
}

/* GPU SKU and counts; "-" when none. */
static int cmd_hosts(client_t *c)
{
    sb_t b = {0};
    sb_printf(&b, "%s/berth/hosts", c->base);
    char *url = sb_take(&b);
    if (url == NULL)
        return oom();
    resp_t r;
    int rc = EX_OK;
    if (http(c, "GET", url, NULL, NULL, &r) != 0 || !ok_status(r.status)) {
        rc = http_error("host list", &r);
        goto out;
    }
    json_t *hosts = json_object_get(r.json, "value");
    if (!json_is_array(hosts)) {
        fprintf(stderr, "berthctl: host list: the answer has no \"value\" array\n");
        rc = EX_HTTP;
        goto out;
    }
    if (c->o->json) {
        rc = print_json(r.json);
        goto out;
    }
    bool gpus = false;
    size_t i;
    json_t *h;
    json_array_foreach(hosts, i, h) gpus = gpus || jnum(h, "gpuCount", 0) > 0;
    static const char *const heads[] = {"NAME", "STATE", "ZONE", "GROUPS", "CPU (cores)",
                                        "MEMORY (GiB)", "GPU"};
    size_t ncols = gpus ? 7 : 6;
    table_t t = {.ncols = ncols};
    for (size_t k = 0; k < ncols; k++)
        table_add(&t, heads[k]);
    json_array_foreach(hosts, i, h)
    {
        char bar[64], buf[160], a[32], z[32];
        table_add(&t, jstr(h, "name"));
        table_add(&t, jstr(h, "state"));
        table_add(&t, jstr(h, "zone"));
        snprintf(buf, sizeof buf, "%.0f", jnum(h, "allocated.groups", 0));
        table_add(&t, buf);
        double cores = jnum(h, "cores", 0), mc = jnum(h, "allocated.millicores", 0);
        fmt_bar(bar, sizeof bar, mc > 0 ? (uint64_t)mc : 0,
                cores > 0 ? (uint64_t)(cores * 1000) : 0);
        fmt_num(a, sizeof a, mc / 1000);
        fmt_num(z, sizeof z, cores);
        snprintf(buf, sizeof buf, "%s %s/%s", bar, a, z);
        table_add(&t, buf);
        double mem = jnum(h, "memoryMiB", 0), mm = jnum(h, "allocated.memoryMiB", 0);
        fmt_bar(bar, sizeof bar, mm > 0 ? (uint64_t)mm : 0, mem > 0 ? (uint64_t)mem : 0);
        fmt_num(a, sizeof a, mm / 1024);
        fmt_num(z, sizeof z, mem / 1024);
        snprintf(buf, sizeof buf, "%s %s/%s", bar, a, z);
        table_add(&t, buf);
        if (gpus) {
            double gc = jnum(h, "gpuCount", 0);
            if (gc > 0) {
                snprintf(buf, sizeof buf, "%.0f/%.0f %s", jnum(h, "allocated.gpus", 0), gc,
                         jstr(h, "gpuSku") ? jstr(h, "gpuSku") : "");
                table_add(&t, buf);
            } else {
                table_add(&t, NULL);
            }
        }
    }
    rc = table_print(&t);
out:
    resp_free(&r);
    free(url);
    return rc;
}

/* ---- entry ----------------------------------------------------------------------- */

int berthctl_api_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        unsigned verb;
    } container_verbs[] = {
        {"create", V_CREATE}, {"show", V_SHOW},       {"list", V_LIST},
        {"delete", V_DELETE}, {"logs", V_LOGS},       {"exec", V_EXEC},
        {"restart", V_RESTART}, {"stop", V_STOP},     {"start", V_START},
    };
    if (argc < 2)
        return usage("%s", "missing command");
    bool host = strcmp(argv[1], "host") == 0;
    if (!host && strcmp(argv[1], "container") != 0)
        return usage("unknown command '%s'", argv[1]);
    if (argc < 3)
        return usage(host ? "%s needs a subcommand: list"
                          : "%s needs a subcommand: create, show, list, delete, logs, exec, "
                            "restart, stop or start",
                     argv[1]);
    if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        fputs(berthctl_api_usage, stdout);
        return EX_OK;
    }
    unsigned verb = 0;
    if (host) {
        if (strcmp(argv[2], "list") == 0)
            verb = V_HOSTS;
    } else {
        for (size_t i = 0; i < sizeof container_verbs / sizeof *container_verbs; i++)
            if (strcmp(argv[2], container_verbs[i].name) == 0)
                verb = container_verbs[i].verb;
    }
    if (verb == 0)
        return usage("unknown %s subcommand '%s'", argv[1], argv[2]);

    opts_t o = {0};
    int rc = parse_opts(argc, argv, verb, &o);
    if (rc != 0 || o.help) {
        if (rc == 0)
            fputs(berthctl_api_usage, stdout);
        opts_free(&o);
        return rc;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        opts_free(&o);
        fputs("berthctl: cannot initialize libcurl\n", stderr);
        return EX_FAILED;
    }
    client_t c = {.o = &o, .deadline = now_s() + o.timeout_s};
    size_t blen = strlen(o.endpoint);
    while (blen > 0 && o.endpoint[blen - 1] == '/')
        blen--;
    if (blen >= sizeof c.base) {
        rc = usage("%s", "--endpoint is too long");
        goto out;
    }
    memcpy(c.base, o.endpoint, blen);
    c.base[blen] = '\0';
    if ((c.curl = curl_easy_init()) == NULL) {
        rc = oom();
        goto out;
    }
    switch (verb) {
    case V_CREATE: rc = cmd_create(&c); break;
    case V_SHOW: rc = cmd_show(&c); break;
    case V_LIST: rc = cmd_list(&c); break;
    case V_DELETE: rc = simple_action(&c, "DELETE", "", "deleted"); break;
    case V_LOGS: rc = cmd_logs(&c); break;
    case V_EXEC: rc = cmd_exec(&c); break;
    case V_RESTART: rc = simple_action(&c, "POST", "/restart", "restart requested"); break;
    case V_STOP: rc = simple_action(&c, "POST", "/stop", "stopped"); break;
    case V_START: rc = simple_action(&c, "POST", "/start", "start requested"); break;
    case V_HOSTS: rc = cmd_hosts(&c); break;
    default: rc = usage("%s", "unknown command"); break;
    }
    if (fflush(stdout) != 0 && rc == EX_OK) {
        fputs("berthctl: cannot write to stdout\n", stderr);
        rc = EX_FAILED;
    }
out:
    if (c.curl != NULL)
        curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    opts_free(&o);
    return rc;
}

/* ---- for the other commands that talk to berthd (berthctl-api.h) ------------------- */

/* Contract (berthctl-api.h): one exchange through http(), errors printed
 * by http_error(). */
int berthctl_api_request(const berthctl_endpoint_t *ep, const char *method, const char *path,
                         const char *body, double timeout_s, const char *what, long *status,
                         json_t **json)
{
    *status = 0;
    *json = NULL;
    opts_t o = {.token = ep->token, .cacert = ep->cacert, .insecure = ep->insecure,
                .timeout_s = timeout_s};
    client_t c = {.o = &o, .deadline = now_s() + timeout_s};
    sb_t b = {0};
    sb_printf(&b, "%s%s", ep->url, path);
    char *url = sb_take(&b);
    if (url == NULL || (c.curl = curl_easy_init()) == NULL) {
        free(url);
        return oom();
    }
    resp_t r;
    int rc = http(&c, method, url, body, NULL, &r);
    *status = r.status;
    if (rc != 0 || !ok_status(r.status)) {
        rc = http_error(what, &r);
    } else {
        *json = r.json;
        r.json = NULL;
        rc = EX_OK;
    }
    resp_free(&r);
    free(url);
    curl_easy_cleanup(c.curl);
    return rc;
}

/* Contract (berthctl-api.h). */
int berthctl_api_print_json(json_t *doc)
{
    return print_json(doc);
}

/* Contract (berthctl-api.h). */
bool berthctl_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* ---- what the commands on berthd's ARM resource routes share (berthctl-api.h) ------ */

/* Contract (berthctl-api.h). */
void berthctl_common_init(berthctl_common_t *c, const char *command, const char *verb,
                          const char *resource_type, const char *api_version)
{
    memset(c, 0, sizeof *c);
    c->command = command;
    c->verb = verb;
    c->resource_type = resource_type;
    c->api_version = api_version;
    c->ep.url = getenv("BERTH_ENDPOINT") ? getenv("BERTH_ENDPOINT") : DEFAULT_ENDPOINT;
    c->ep.token = getenv("BERTH_TOKEN");
    c->subscription =
        getenv("BERTH_SUBSCRIPTION") ? getenv("BERTH_SUBSCRIPTION") : DEFAULT_SUBSCRIPTION;
    c->timeout_s = DEFAULT_TIMEOUT_S;
}

/* Contract (berthctl-api.h). */
int berthctl_common_option(berthctl_common_t *c, int argc, char **argv, int *i,
                           const char **value)
{
    const char *a = argv[*i];
    if (strcmp(a, "--insecure") == 0) {
        c->ep.insecure = true;
        return BERTHCTL_COMMON_TAKEN;
    }
    if (strcmp(a, "--no-wait") == 0) {
        c->no_wait = true;
        return BERTHCTL_COMMON_TAKEN;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
        return BERTHCTL_COMMON_HELP;
    if (*i + 1 >= argc)
        return usage("%s %s: '%s' needs a value or is unknown", c->command, c->verb, a);
    const char *v = argv[++*i];
    if (strcmp(a, "--endpoint") == 0) {
        c->ep.url = v;
    } else if (strcmp(a, "--token") == 0) {
        c->ep.token = v;
    } else if (strcmp(a, "--cacert") == 0) {
        c->ep.cacert = v;
    } else if (strcmp(a, "--subscription") == 0) {
        c->subscription = v;
    } else if (strcmp(a, "-g") == 0 || strcmp(a, "--resource-group") == 0) {
        c->rg = v;
    } else if (strcmp(a, "-n") == 0 || strcmp(a, "--name") == 0) {
        c->name = v;
    } else if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) {
        c->file = v;
    } else if (strcmp(a, "-l") == 0 || strcmp(a, "--location") == 0) {
        c->location = v;
    } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
        if (strcmp(v, "json") != 0 && strcmp(v, "table") != 0)
            return usage("--output is json or table, not '%s'", v);
        c->json = strcmp(v, "json") == 0;
    } else if (strcmp(a, "--timeout") == 0) {
        char *end;
        c->timeout_s = strtod(v, &end);
        if (end == v || *end != '\0' || !(c->timeout_s > 0))
            return usage("--timeout needs a positive number, not '%s'", v);
    } else {
        *value = v;
        return BERTHCTL_COMMON_OTHER;
    }
    return BERTHCTL_COMMON_TAKEN;
}

/* Contract (berthctl-api.h). */
int berthctl_common_finish(berthctl_common_t *c)
{
    if (c->rg == NULL)
        return usage("%s %s needs -g RESOURCE-GROUP", c->command, c->verb);
    if (strcmp(c->verb, "list") != 0 && c->name == NULL)
        return usage("%s %s needs -n NAME", c->command, c->verb);
    c->deadline = now_s() + c->timeout_s;
    return 0;
}

/* Contract (berthctl-api.h). */
int berthctl_common_load_template(const berthctl_common_t *c, json_t **doc,
                                  const char **location)
{
    json_error_t je;
    *location = NULL;
    *doc = json_load_file(c->file, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(*doc)) {
        json_decref(*doc);
        *doc = NULL;
        return usage("%s: not a JSON object: %s (line %d)", c->file, je.text, je.line);
    }
    if (!json_is_object(json_object_get(*doc, "properties")))
        return usage("%s: the template has no \"properties\" object", c->file);
    *location = c->location ? c->location : json_string_value(json_object_get(*doc, "location"));
    if (*location == NULL)
        *location = DEFAULT_LOCATION;
    return 0;
}

/* The route's path for resource `name` (NULL: the resource group's
 * collection); a new string (free()), or NULL for want of memory. */
static char *common_path(const berthctl_common_t *c, const char *name)
{
    char *sub = curl_easy_escape(NULL, c->subscription, 0);
    char *rg = curl_easy_escape(NULL, c->rg, 0);
    char *n = name ? curl_easy_escape(NULL, name, 0) : NULL;
    char *out = NULL;
    if (sub != NULL && rg != NULL && (name == NULL || n != NULL)) {
        sb_t b = {0};
        sb_printf(&b, "/subscriptions/%s/resourceGroups/%s/providers/%s%s%s?api-version=%s", sub,
                  rg, c->resource_type, name ? "/" : "", name ? n : "", c->api_version);
        out = sb_take(&b);
    }
    curl_free(sub);
    curl_free(rg);
    curl_free(n);
    return out;
}

/* Contract (berthctl-api.h). */
int berthctl_common_request(const berthctl_common_t *c, const char *method, const char *name,
                            json_t *body, const char *what, long *status, json_t **out)
{
    char *path = common_path(c, name);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    double left = c->deadline - now_s();
    long st = 0;
    int rc = path != NULL && (body == NULL || text != NULL)
                 ? berthctl_api_request(&c->ep, method, path, text, left > 0 ? left : 0.001,
                                        what, &st, out)
                 : oom();
    free(path);
    free(text);
    if (status != NULL)
        *status = st;
    return rc;
}

/* Contract (berthctl-api.h). */
int berthctl_common_print(const berthctl_common_t *c, json_t *doc, berthctl_table_cb *table)
{
    if (c->json)
        return print_json(doc);
    table(doc);
    return EX_OK;
}

/* Contract (berthctl-api.h). */
int berthctl_common_show(const berthctl_common_t *c, const char *name, const char *what,
                         berthctl_table_cb *table)
{
    json_t *doc = NULL;
    int rc = berthctl_common_request(c, "GET", name, NULL, what, NULL, &doc);
    if (rc == EX_OK)
        rc = berthctl_common_print(c, doc, table);
    json_decref(doc);
    return rc;
}

/* Contract (berthctl-api.h). */
int berthctl_common_wait(const berthctl_common_t *c, json_t *first, const char *what,
                         berthctl_wait_progress_cb *progress, berthctl_wait_timeout_cb *timed_out,
                         json_t **done)
{
    json_t *doc = json_incref(first);
    char last[160] = "";
    *done = NULL;
    for (;;) {
        char line[160];
        bool there = progress(c, doc, line, sizeof line);
        if (strcmp(line, last) != 0) {
            fprintf(stderr, "%s\n", line);
            snprintf(last, sizeof last, "%s", line);
        }
        if (there) {
            *done = doc;
            return EX_OK;
        }
        if (now_s() + POLL_S >= c->deadline) {
            timed_out(c, doc);
            json_decref(doc);
            return EX_FAILED;
        }
        sleep_s(POLL_S);
        json_decref(doc);
        doc = NULL;
        int rc = berthctl_common_request(c, "GET", c->name, NULL, what, NULL, &doc);
        if (rc != EX_OK)
            return rc;
    }
}

/* Contract (berthctl-api.h). */
bool berthctl_common_verb(int argc, char **argv, const char *command, const char *const *verbs,
                          size_t n, const char *usage_text, int *status)
{
    if (argc < 3) {
        sb_t b = {0};
        for (size_t i = 0; i < n; i++)
            sb_printf(&b, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : " or ", verbs[i]);
        char *list = sb_take(&b);
        *status = list ? usage("%s needs a subcommand: %s", command, list) : oom();
        free(list);
        return false;
    }
    if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        fputs(usage_text, stdout);
        *status = EX_OK;
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[2], verbs[i]) == 0)
            return true;
    *status = usage("unknown %s subcommand '%s'", command, argv[2]);
    return false;
}

/* Contract (berthctl-api.h). */
int berthctl_common_run(berthctl_common_run_cb *run, void *ctx)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("berthctl: cannot initialize libcurl\n", stderr);
        return EX_FAILED;
    }
    int rc = run(ctx);
    if (fflush(stdout) != 0 && rc == EX_OK) {
        fputs("berthctl: cannot write to stdout\n", stderr);
        rc = EX_FAILED;
    }
    curl_global_cleanup();
    return rc;
}
