/*
 * container.c: `berthctl container create|show|list|delete|logs|exec|
 * restart|stop|start` and `berthctl host list|cordon|uncordon|drain`, berthctl's commands on
 * berthd's ACI REST API (api-version 2023-05-01): their usage text, their
 * options and the dispatch of a verb to container_create.c,
 * container_verbs.c or host.c.
 *
 * The commands follow `az container`: create builds an ACI container-group
 * document from flags (checked with the library's berth_group_parse before
 * it is sent) or takes one from a file, PUTs it and waits for the group to
 * reach Succeeded or Failed, showing progress on stderr.  Results go to
 * stdout, progress and errors to stderr.  Secrets (secure environment
 * values, passwords, storage and workspace keys, secret volume contents)
 * are never printed: they show as "<redacted>"; an argument that may hold
 * one (NAME=VALUE) is never echoed in an error.  Every network wait is
 * bounded by --timeout (one deadline for the whole command), but for
 * exec's session once open (ws.c), which lasts until berthd closes it.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "berthctl.h"

/* Contract (berthctl.h). */
const char berthctl_container_usage[] =
    "       berthctl container create -g RG -n NAME --image IMAGE [--cpu N] [--memory GB]\n"
    "                      [--gpu-count N --gpu-sku K80|P100|V100]\n"
    "                      [--restart-policy Always|OnFailure|Never] [--ports P ...]\n"
    "                      [--protocol TCP|UDP] [--ip-address Public] [--dns-name-label L]\n"
    "                      [--environment-variables K=V ...]\n"
    "                      [--secure-environment-variables K=V ...]\n"
    "                      [--command-line \"CMD ARGS\"] [--location L]\n"
    "                      [--os-type Linux|Windows] [--priority Regular|Spot] [--no-wait]\n"
    "       berthctl container create -g RG --file FILE [-n NAME] [--location L] [--no-wait]\n"
    "       berthctl container show -g RG -n NAME [--metrics] [--output json|table]\n"
    "       berthctl container list [-g RG] [--output json|table]\n"
    "       berthctl container delete -g RG -n NAME [--yes] [--no-wait]\n"
    "       berthctl container logs -g RG -n NAME [--container-name C] [--tail N]\n"
    "                      [--timestamps] [--follow]\n"
    "       berthctl container attach -g RG -n NAME [--container-name C]\n"
    "       berthctl container exec -g RG -n NAME [--container-name C] --exec-command \"CMD\"\n"
    "       berthctl container restart|stop|start -g RG -n NAME\n"
    "       berthctl host list [--output json|table]\n"
    "       berthctl host cordon|uncordon NAME\n"
    "       berthctl host drain NAME [--no-wait]\n"
    "\n"
    "container, host  talk to berthd (the ACI REST API, api-version " BERTHCTL_ACI_API_VERSION
    ").\n"
    "        create PUTs a container-group document (built from the flags, or\n"
    "        --file, whose name and location -n and --location override) and,\n"
    "        unless --no-wait, waits for Succeeded or Failed, showing progress\n"
    "        on stderr.  exec runs a command in a session over berthd's\n"
    "        WebSocket: stdin goes to it (a terminal on stdin: raw, and the\n"
    "        process gets a TTY of its size), its output to stdout, and\n"
    "        berthctl exits with its exit status.\n"
    "        show and list name the host each group is placed on (berthd's\n"
    "        /berth/containerGroups); show gives where each port is published.\n"
    "        show --metrics adds the group's usage over the last hour (Azure\n"
    "        Monitor's metrics: each container's CPU in millicores and memory,\n"
    "        the group's network bytes/s), the latest minute's average of each;\n"
    "        with --output json it prints Azure Monitor's answer instead.\n"
    "        host list shows each host's CPU, memory and GPU allocation.\n"
    "        logs --follow prints new output (polled every second) until the\n"
    "        group stops or Ctrl-C; attach does the same, as az container\n"
    "        attach does.  host cordon keeps new groups off a host,\n"
    "        uncordon lets them land again; drain cordons it and moves its\n"
    "        groups elsewhere, waiting (unless --no-wait) until none is left\n"
    "        but finished ones (exit 1 when --timeout passes first).  These\n"
    "        need a token allowing every subscription.\n"
    "\n"
    "  --endpoint URL           berthd (default $BERTH_ENDPOINT or " BERTHCTL_DEFAULT_ENDPOINT ")\n"
    "  --token T                bearer token (default $BERTH_TOKEN)\n"
    "  --subscription S         (default $BERTH_SUBSCRIPTION or\n"
    "                           " BERTHCTL_DEFAULT_SUBSCRIPTION ")\n"
    "  -g, --resource-group RG  -n, --name NAME\n"
    "  --cacert FILE            trust this CA (PEM); --insecure: skip TLS checks\n"
    "  -o, --output json|table  (default table)\n"
    "  --timeout S              bound on the whole command, waits included\n"
    "                           (default 300)\n"
    "\n"
    "Exit status of container and host: 0 done (create: Succeeded), 1 create\n"
    "ended Failed or timed out, or drain timed out, 2 usage error, 3 no answer or an HTTP error\n"
    "(the CloudError's code, message and target are printed); exec: the\n"
    "command's exit status, 1 when berthd refuses or cuts the session.\n";

/* ---- options ---------------------------------------------------------------------- */

typedef enum opt_id {
    O_ENDPOINT, O_TOKEN, O_SUBSCRIPTION, O_RG, O_NAME, O_CACERT, O_INSECURE, O_OUTPUT,
    O_TIMEOUT, O_HELP, O_FILE, O_IMAGE, O_CPU, O_MEMORY, O_GPU_COUNT, O_GPU_SKU, O_RESTART,
    O_PORTS, O_PROTOCOL, O_IP, O_DNS, O_ENV, O_SECURE_ENV, O_COMMAND, O_LOCATION, O_OS, O_PRIORITY,
    O_NO_WAIT, O_YES, O_CONTAINER, O_TAIL, O_TIMESTAMPS, O_EXEC_COMMAND, O_FOLLOW, O_METRICS
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
    {"--endpoint", NULL, O_ENDPOINT, ARG_ONE, BERTHCTL_VERB_ALL},
    {"--token", NULL, O_TOKEN, ARG_ONE, BERTHCTL_VERB_ALL},
    {"--subscription", NULL, O_SUBSCRIPTION, ARG_ONE, BERTHCTL_VERB_ALL},
    {"--resource-group", "-g", O_RG, ARG_ONE, BERTHCTL_VERB_GROUP | BERTHCTL_VERB_LIST},
    {"--name", "-n", O_NAME, ARG_ONE, BERTHCTL_VERB_GROUP},
    {"--cacert", NULL, O_CACERT, ARG_ONE, BERTHCTL_VERB_ALL},
    {"--insecure", NULL, O_INSECURE, ARG_NONE, BERTHCTL_VERB_ALL},
    {"--output", "-o", O_OUTPUT, ARG_ONE, BERTHCTL_VERB_ALL},
    {"--timeout", NULL, O_TIMEOUT, ARG_ONE, BERTHCTL_VERB_ALL},
    {"--help", "-h", O_HELP, ARG_NONE, BERTHCTL_VERB_ALL},
    {"--file", "-f", O_FILE, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--image", NULL, O_IMAGE, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--cpu", NULL, O_CPU, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--memory", NULL, O_MEMORY, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--gpu-count", NULL, O_GPU_COUNT, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--gpu-sku", NULL, O_GPU_SKU, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--restart-policy", NULL, O_RESTART, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--ports", NULL, O_PORTS, ARG_MANY, BERTHCTL_VERB_CREATE},
    {"--protocol", NULL, O_PROTOCOL, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--ip-address", NULL, O_IP, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--dns-name-label", NULL, O_DNS, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--environment-variables", "-e", O_ENV, ARG_MANY, BERTHCTL_VERB_CREATE},
    {"--secure-environment-variables", NULL, O_SECURE_ENV, ARG_MANY, BERTHCTL_VERB_CREATE},
    {"--command-line", NULL, O_COMMAND, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--location", "-l", O_LOCATION, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--os-type", NULL, O_OS, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--priority", NULL, O_PRIORITY, ARG_ONE, BERTHCTL_VERB_CREATE},
    {"--no-wait", NULL, O_NO_WAIT, ARG_NONE,
     BERTHCTL_VERB_CREATE | BERTHCTL_VERB_DELETE | BERTHCTL_VERB_HOST_ACTION},
    {"--yes", "-y", O_YES, ARG_NONE, BERTHCTL_VERB_DELETE},
    {"--container-name", NULL, O_CONTAINER, ARG_ONE, BERTHCTL_VERB_LOGS | BERTHCTL_VERB_EXEC},
    {"--tail", NULL, O_TAIL, ARG_ONE, BERTHCTL_VERB_LOGS},
    {"--timestamps", NULL, O_TIMESTAMPS, ARG_NONE, BERTHCTL_VERB_LOGS},
    {"--exec-command", NULL, O_EXEC_COMMAND, ARG_ONE, BERTHCTL_VERB_EXEC},
    {"--follow", NULL, O_FOLLOW, ARG_NONE, BERTHCTL_VERB_LOGS},
    {"--metrics", NULL, O_METRICS, ARG_NONE, BERTHCTL_VERB_SHOW},
};

static int strv_push(berthctl_strings_t *a, const char *s)
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

static void opts_free(berthctl_container_options_t *o)
{
    free(o->ports.v);
    free(o->env.v);
    free(o->secure_env.v);
}

#define OPTDEFS_COUNT (sizeof optdefs / sizeof *optdefs)
#define OPT_BASE 256                /* getopt's val of optdefs[i]: OPT_BASE + i */

/* Fills getopt_long's tables from optdefs: each long option named without
 * its "--" and answering OPT_BASE + its index, each alias a short option.
 * A many-valued option takes only an attached value (--ports=80, -eA=1);
 * parse_opts() reads the words after it itself. */
static void getopt_tables(struct option *longs, char *shorts)
{
    size_t n = 0;
    shorts[n++] = '-';
    shorts[n++] = ':';
    for (size_t i = 0; i < OPTDEFS_COUNT; i++) {
        const optdef_t *d = &optdefs[i];
        int has_arg = d->kind == ARG_NONE  ? no_argument
                      : d->kind == ARG_ONE ? required_argument
                                           : optional_argument;
        longs[i] = (struct option){d->name + 2, has_arg, NULL, OPT_BASE + (int)i};
        if (d->alias != NULL) {
            shorts[n++] = d->alias[1];
            if (has_arg != no_argument)
                shorts[n++] = ':';
            if (has_arg == optional_argument)
                shorts[n++] = ':';
        }
    }
    longs[OPTDEFS_COUNT] = (struct option){NULL, 0, NULL, 0};
    shorts[n] = '\0';
}

/* The option behind getopt's answer (OPT_BASE + index, or an alias's
 * letter), or NULL. */
static const optdef_t *find_opt(int opt)
{
    if (opt >= OPT_BASE && opt < OPT_BASE + (int)OPTDEFS_COUNT)
        return &optdefs[opt - OPT_BASE];
    for (size_t i = 0; i < OPTDEFS_COUNT; i++)
        if (optdefs[i].alias != NULL && optdefs[i].alias[1] == opt)
            return &optdefs[i];
    return NULL;
}

/* Parses argv[3..] into *o.  Returns 0 or BERTHCTL_EXIT_USAGE (message printed). */
static int parse_opts(int argc, char **argv, unsigned verb, berthctl_container_options_t *o)
{
    o->verb = verb;
    o->verb_name = argv[2];
    o->tail = -1;
    o->timeout_s = BERTHCTL_DEFAULT_TIMEOUT_S;
    const char *output = NULL, *timeout = NULL, *tail = NULL;
    struct option longs[OPTDEFS_COUNT + 1];
    char shorts[3 + 3 * OPTDEFS_COUNT];
    getopt_tables(longs, shorts);
    /* the options are argv[3..]: getopt reads words[1..] */
    int nwords = argc - 2;
    char **words = argv + 2;
    const char *arg;
    int opt;
    optind = 1;
    while ((opt = berthctl_option_next(nwords, words, shorts, longs, &arg)) != -1) {
        if (opt == 1 && verb == BERTHCTL_VERB_HOST_ACTION && o->name == NULL) {
            o->name = arg;              /* the host */
            continue;
        }
        if (opt == 1 && strcmp(arg, "-") != 0) {
            /* K=V may be a misplaced secret: never echo it */
            if (strchr(arg, '=') != NULL)
                return berthctl_usage_error(
                    "%s: unexpected argument %d (NAME=VALUE needs "
                    "--environment-variables or --secure-environment-variables)",
                    o->verb_name, optind - 1);
            return berthctl_usage_error("%s: unexpected argument '%s'", o->verb_name, arg);
        }
        const optdef_t *d = find_opt(opt == '?' || opt == ':' ? optopt : opt);
        if (d == NULL) {
            size_t len = strncmp(arg, "--", 2) == 0 ? strcspn(arg, "=") : strlen(arg);
            return berthctl_usage_error("%s: unknown option '%.*s'", o->verb_name, (int)len, arg);
        }
        if ((d->verbs & verb) == 0)
            return berthctl_usage_error("%s: option '%s' does not apply here", o->verb_name,
                                        d->name);
        if (opt == '?')
            return berthctl_usage_error("option '%s' takes no value", d->name);
        if (opt == ':')
            return berthctl_usage_error("option '%s' needs a value", d->name);
        const char *val = d->kind == ARG_ONE ? optarg : NULL;
        if (d->kind == ARG_MANY) {
            berthctl_strings_t *many = d->id == O_PORTS ? &o->ports
                                       : d->id == O_ENV ? &o->env
                                                        : &o->secure_env;
            size_t before = many->n;
            if (optarg != NULL && strv_push(many, optarg) != 0)
                return berthctl_out_of_memory();
            while (optind < nwords && words[optind][0] != '-')
                if (strv_push(many, words[optind++]) != 0)
                    return berthctl_out_of_memory();
            if (many->n == before)
                return berthctl_usage_error("option '%s' needs at least one value", d->name);
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
        case O_FOLLOW: o->follow = true; break;
        case O_METRICS: o->metrics = true; break;
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
            return berthctl_usage_error("--output must be json or table, not '%s'", output);
    }
    if (timeout != NULL &&
        (!berthctl_parse_quantity(timeout, &o->timeout_s) || o->timeout_s > 604800))
        return berthctl_usage_error(
            "--timeout needs a number of seconds from 0 to 604800, not '%s'", timeout);
    if (tail != NULL && !berthctl_parse_count(tail, 1000000, &o->tail))
        return berthctl_usage_error("--tail needs a non-negative integer, not '%s'", tail);
    if (o->endpoint == NULL)
        o->endpoint = getenv("BERTH_ENDPOINT");
    if (o->endpoint == NULL || *o->endpoint == '\0')
        o->endpoint = BERTHCTL_DEFAULT_ENDPOINT;
    if (strncmp(o->endpoint, "http://", 7) != 0 && strncmp(o->endpoint, "https://", 8) != 0)
        return berthctl_usage_error("--endpoint must be an http:// or https:// URL, not '%s'",
                                    o->endpoint);
    if (o->token == NULL)
        o->token = getenv("BERTH_TOKEN");
    if (o->token != NULL && (*o->token == '\0' || strpbrk(o->token, "\r\n") != NULL))
        o->token = NULL;
    if (o->subscription == NULL)
        o->subscription = getenv("BERTH_SUBSCRIPTION");
    if (o->subscription == NULL || *o->subscription == '\0')
        o->subscription = BERTHCTL_DEFAULT_SUBSCRIPTION;
    if ((verb & BERTHCTL_VERB_GROUP) != 0) {
        if (o->rg == NULL || *o->rg == '\0')
            return berthctl_usage_error("%s needs --resource-group/-g RG", o->verb_name);
        if ((o->name == NULL || *o->name == '\0') &&
            !(verb == BERTHCTL_VERB_CREATE && o->file != NULL))
            return berthctl_usage_error("%s needs --name/-n NAME", o->verb_name);
    }
    if (verb == BERTHCTL_VERB_HOST_ACTION && (o->name == NULL || *o->name == '\0'))
        return berthctl_usage_error("host %s needs the host's NAME", o->verb_name);
    if (verb == BERTHCTL_VERB_LIST && o->rg != NULL && *o->rg == '\0')
        return berthctl_usage_error("%s", "--resource-group needs a non-empty value");
    if (verb == BERTHCTL_VERB_EXEC && (o->exec_command == NULL || *o->exec_command == '\0'))
        return berthctl_usage_error("%s", "exec needs --exec-command \"CMD\"");
    if (verb == BERTHCTL_VERB_CREATE) {
        if (o->file != NULL && o->flags_given)
            return berthctl_usage_error(
                "%s", "create: --file cannot be combined with document flags "
                      "(--image, --cpu, ...); only -n and --location override it");
        if (o->file == NULL && (o->image == NULL || *o->image == '\0'))
            return berthctl_usage_error("%s", "create needs --image IMAGE or --file FILE");
    }
    return 0;
}

/* ---- entry ----------------------------------------------------------------------- */

/* Contract (berthctl.h). */
int berthctl_container_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        unsigned verb;
    } container_verbs[] = {
        {"create", BERTHCTL_VERB_CREATE},   {"show", BERTHCTL_VERB_SHOW},
        {"list", BERTHCTL_VERB_LIST},       {"delete", BERTHCTL_VERB_DELETE},
        {"logs", BERTHCTL_VERB_LOGS},       {"exec", BERTHCTL_VERB_EXEC},
        {"restart", BERTHCTL_VERB_RESTART}, {"stop", BERTHCTL_VERB_STOP},
        {"start", BERTHCTL_VERB_START},     {"attach", BERTHCTL_VERB_LOGS},
    };
    if (argc < 2)
        return berthctl_usage_error("%s", "missing command");
    bool host = strcmp(argv[1], "host") == 0;
    if (!host && strcmp(argv[1], "container") != 0)
        return berthctl_usage_error("unknown command '%s'", argv[1]);
    if (argc < 3)
        return berthctl_usage_error(host ? "%s needs a subcommand: list, cordon, uncordon or drain"
                                         : "%s needs a subcommand: create, show, list, delete, "
                                           "logs, attach, exec, restart, stop or start",
                                    argv[1]);
    if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        fputs(berthctl_container_usage, stdout);
        return BERTHCTL_EXIT_OK;
    }
    unsigned verb = 0;
    if (host) {
        if (strcmp(argv[2], "list") == 0)
            verb = BERTHCTL_VERB_HOSTS;
        else if (strcmp(argv[2], "cordon") == 0 || strcmp(argv[2], "uncordon") == 0 ||
                 strcmp(argv[2], "drain") == 0)
            verb = BERTHCTL_VERB_HOST_ACTION;
    } else {
        for (size_t i = 0; i < sizeof container_verbs / sizeof *container_verbs; i++)
            if (strcmp(argv[2], container_verbs[i].name) == 0)
                verb = container_verbs[i].verb;
    }
    if (verb == 0)
        return berthctl_usage_error("unknown %s subcommand '%s'", argv[1], argv[2]);

    berthctl_container_options_t o = {0};
    int rc = parse_opts(argc, argv, verb, &o);
    /* attach is the container's output from now on: its logs followed. */
    if (rc == 0 && strcmp(argv[2], "attach") == 0)
        o.follow = true;
    if (rc != 0 || o.help) {
        if (rc == 0)
            fputs(berthctl_container_usage, stdout);
        opts_free(&o);
        return rc;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        opts_free(&o);
        fputs("berthctl: cannot initialize libcurl\n", stderr);
        return BERTHCTL_EXIT_FAILED;
    }
    berthctl_client_t c = {.ep = {o.endpoint, o.token, o.cacert, o.insecure},
                           .timeout_s = o.timeout_s,
                           .deadline_ms = berth__clock_monotonic_ms() +
                                          (int64_t)(o.timeout_s * 1000)};
    size_t blen = strlen(o.endpoint);
    while (blen > 0 && o.endpoint[blen - 1] == '/')
        blen--;
    if (blen >= sizeof c.base) {
        rc = berthctl_usage_error("%s", "--endpoint is too long");
        goto out;
    }
    memcpy(c.base, o.endpoint, blen);
    c.base[blen] = '\0';
    if ((c.curl = curl_easy_init()) == NULL) {
        rc = berthctl_out_of_memory();
        goto out;
    }
    switch (verb) {
    case BERTHCTL_VERB_CREATE: rc = berthctl_container_create(&c, &o); break;
    case BERTHCTL_VERB_SHOW: rc = berthctl_container_show(&c, &o); break;
    case BERTHCTL_VERB_LIST: rc = berthctl_container_list(&c, &o); break;
    case BERTHCTL_VERB_DELETE:
        rc = berthctl_container_action(&c, &o, "DELETE", "", "deleted");
        break;
    case BERTHCTL_VERB_LOGS: rc = berthctl_container_logs(&c, &o); break;
    case BERTHCTL_VERB_EXEC: rc = berthctl_container_exec(&c, &o); break;
    case BERTHCTL_VERB_RESTART:
        rc = berthctl_container_action(&c, &o, "POST", "/restart", "restart requested");
        break;
    case BERTHCTL_VERB_STOP:
        rc = berthctl_container_action(&c, &o, "POST", "/stop", "stopped");
        break;
    case BERTHCTL_VERB_START:
        rc = berthctl_container_action(&c, &o, "POST", "/start", "start requested");
        break;
    case BERTHCTL_VERB_HOSTS: rc = berthctl_host_list(&c, &o); break;
    case BERTHCTL_VERB_HOST_ACTION: rc = berthctl_host_action(&c, &o); break;
    default: rc = berthctl_usage_error("%s", "unknown command"); break;
    }
    if (fflush(stdout) != 0 && rc == BERTHCTL_EXIT_OK) {
        fputs("berthctl: cannot write to stdout\n", stderr);
        rc = BERTHCTL_EXIT_FAILED;
    }
out:
    if (c.curl != NULL)
        curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    opts_free(&o);
    return rc;
}
