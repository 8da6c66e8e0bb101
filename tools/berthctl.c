/*
 * berthctl.c: Berth's command-line tool.
 *
 * `berthctl place` is an offline placement run: it loads a host inventory
 * into a fresh engine, places (or redeploys) every ACI document of a groups
 * file in order, prints one result per document on stdout (JSON lines, or a
 * table) and a utilization summary on stderr.  `berthctl fsck` checks a
 * cell held in Redis against Berth's promises; `berthctl cell load` puts an
 * inventory's hosts into a cell in Redis.  `berthctl container ...` and
 * `berthctl host list` talk to berthd's REST API (berthctl-api.c).  It
 * uses the public API of
 * libberth only, and must never print a secret from a document: results
 * carry names, hosts and quantities, never document contents.  fsck only
 * reads the cell; it never repairs it.
 *
 * Exit status of place and cell load: 0 when the run completed (whatever
 * the individual documents' outcomes), 2 for a usage error, an unusable
 * input file or an unreachable Redis, 1 for an internal failure (out of
 * memory, stdout not writable).  fsck: 0 clean, 1 violations found, 2 usage
 * error or Redis unreachable.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "berth.h"
#include "berthctl-api.h"
#include "records_fsck.h"

#define EXIT_USAGE 2
#define EXIT_INTERNAL 1

static const char usage_text[] =
    "usage: berthctl place --hosts FILE --groups FILE [--policy binpack|spread|firstfit]\n"
    "                      [--seed N] [--table]\n"
    "       berthctl fsck --redis URL --cell NAME\n"
    "       berthctl cell load --redis URL --cell NAME --hosts FILE\n"
    "       berthctl container create|show|list|delete|logs|exec|restart|stop|start ...\n"
    "       berthctl host list ...\n"
    "       berthctl ngroup create|show|list|scale|update|delete ...\n"
    "       berthctl pool create|show|list|delete ...\n"
    "       berthctl --help\n"
    "       berthctl --version\n"
    "\n"
    "place   places every ACI container-group document of the groups file (a JSON\n"
    "        array, or one document per line) on the hosts of the inventory, in\n"
    "        order; a name seen again is a redeploy (create-or-update).  Prints one\n"
    "        JSON object per document on stdout (--table: an aligned table) and a\n"
    "        utilization summary on stderr.\n"
    "\n"
    "  --hosts FILE    host inventory: a JSON array of hosts, or\n"
    "                  {\"gpuSkus\": [...], \"hosts\": [...]}\n"
    "  --groups FILE   ACI container-group documents, each with a \"name\"\n"
    "  --policy NAME   binpack (default), spread or firstfit\n"
    "  --seed N        breaks ties between equal hosts (default 0)\n"
    "  --table         human-readable table instead of JSON lines\n"
    "\n"
    "fsck    checks a cell held in Redis: no host over capacity, host usage equal\n"
    "        to the sum of its groups, every group on an existing host and in its\n"
    "        group set, known record versions, a consistent change log.  Prints\n"
    "        each violation on stdout and a summary on stderr; changes nothing.\n"
    "\n"
    "cell load  adds (or replaces) every host of an inventory file in a cell\n"
    "        held in Redis, creating the cell when it is new.\n"
    "\n"
    "  --redis URL     redis://HOST:PORT or unix:///PATH (a Cluster node is fine)\n"
    "  --cell NAME     the cell: 1 to 63 of a-z, 0-9 and '-'\n"
    "\n"
    "Exit status: 0 when the run completed (fsck: the cell is clean), 1 for an\n"
    "internal failure (fsck: violations found), 2 for a usage error, an\n"
    "unusable input file or an unreachable Redis.\n";

int berthctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("berthctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'berthctl --help'.\n", stderr);
    return EXIT_USAGE;
}

int berthctl_out_of_memory(void)
{
    fputs("berthctl: out of memory\n", stderr);
    return EXIT_INTERNAL;
}

#define usage_error berthctl_usage_error
#define out_of_memory berthctl_out_of_memory

/* Reads a whole file into a new NUL-terminated buffer (free with free()).
 * Returns 0, or an errno value. */
static int read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf != NULL) {
        if (cap - n < 2) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (buf == NULL)
        rc = ENOMEM;
    else if (ferror(f))
        rc = errno != 0 ? errno : EIO;
    fclose(f);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* ---- the groups file ------------------------------------------------------ */

/* One document of the groups file: a slice of the file's text. */
typedef struct doc {
    const char *text;
    size_t len;
} doc_t;

typedef struct docs {
    doc_t *v;
    size_t n, cap;
} docs_t;

static int docs_push(docs_t *d, const char *text, size_t len)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        doc_t *v = realloc(d->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = (doc_t){text, len};
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Splits a JSON array (already known to be valid JSON) into the text of its
 * elements, so that each document reaches berth_group_parse() exactly as
 * written.  Strings are skipped whole; nesting is tracked by brackets. */
static int split_array(const char *s, size_t len, docs_t *out)
{
    size_t i = 0;
    while (i < len && s[i] != '[')
        i++;
    i++;
    size_t depth = 0, start = SIZE_MAX;
    bool in_string = false;
    for (; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (start == SIZE_MAX && !is_space(c) && c != ',' && !(depth == 0 && c == ']'))
            start = i;
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        } else if (depth == 0 && (c == ',' || c == ']')) {
            if (start != SIZE_MAX) {
                size_t end = i;
                while (end > start && is_space(s[end - 1]))
                    end--;
                if (docs_push(out, s + start, end - start) != 0)
                    return -1;
                start = SIZE_MAX;
            }
            if (c == ']')
                break;
        }
    }
    return 0;
}

/* Splits JSON Lines: one document per non-blank line, each starting with
 * '{'.  Returns 0, -1 when out of memory, or the 1-based number of the first
 * line that cannot start a document. */
static long split_lines(const char *s, size_t len, docs_t *out)
{
    size_t line = 1;
    for (size_t i = 0; i < len; line++) {
        size_t end = i;
        while (end < len && s[end] != '\n')
            end++;
        size_t a = i, b = end;
        while (a < b && is_space(s[a]))
            a++;
        while (b > a && is_space(s[b - 1]))
            b--;
        if (a < b) {
            if (s[a] != '{')
                return (long)line;
            if (docs_push(out, s + a, b - a) != 0)
                return -1;
        }
        i = end + 1;
    }
    return 0;
}

/* ---- results ---------------------------------------------------------------- */

typedef struct result {
    char *name;                 /* NULL when the document gave none */
    bool ok;
    berth_placement_t placement;
    bool windows;
    berth_error_t error;
} result_t;

static const char *action_name(berth_placement_kind_t kind)
{
    switch (kind) {
    case BERTH_PLACED_NEW: return "created";
    case BERTH_PLACED_STAYED: return "stayed";
    case BERTH_PLACED_MOVED: return "moved";
    }
    return "unknown";
}

/* The "name" member of a document that failed to parse, when the document is
 * at least JSON with a string name; NULL otherwise. */
static char *salvage_name(const char *text, size_t len)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    const char *name = json_string_value(json_object_get(root, "name"));
    char *copy = name != NULL ? strdup(name) : NULL;
    json_decref(root);
    return copy;
}

/* Parses and places one document.  Returns 0, or -1 when out of memory. */
static int place_one(berth_engine_t *engine, const doc_t *d, result_t *r)
{
    memset(r, 0, sizeof *r);
    berth_group_t *group = NULL;
    int rc = berth_group_parse(d->text, d->len, &group, &r->error);
    if (rc == BERTH_ENOMEM)
        return -1;
    if (rc != 0) {
        r->name = salvage_name(d->text, d->len);
        return 0;
    }
    if (group->name == NULL || group->name[0] == '\0') {
        r->error.code = BERTH_EINVAL;
        snprintf(r->error.name, sizeof r->error.name, "%s", "InvalidRequestContent");
        snprintf(r->error.message, sizeof r->error.message, "%s",
                 "the document has no 'name'; berthctl place keys groups by name");
        snprintf(r->error.target, sizeof r->error.target, "%s", "name");
        r->error.ndetails = 1;
        memcpy(r->error.details[0].name, r->error.name, sizeof r->error.name);
        memcpy(r->error.details[0].message, r->error.message, sizeof r->error.message);
        memcpy(r->error.details[0].target, r->error.target, sizeof r->error.target);
        berth_group_free(group);
        return 0;
    }
    r->name = strdup(group->name);
    if (r->name == NULL) {
        berth_group_free(group);
        return -1;
    }
    r->windows = group->os_type == BERTH_OS_WINDOWS;
    rc = berth_group_place(engine, group->name, group, &r->placement, &r->error);
    berth_group_free(group);
    if (rc == BERTH_ENOMEM)
        return -1;
    r->ok = rc == 0;
    return 0;
}

/* The {"code", "message", "target"[, "details"]} object of an error, in
 * berth_error_to_json()'s shape.  Returns a new reference or NULL. */
static json_t *error_body(const berth_error_t *err)
{
    char *text = NULL;
    if (berth_error_to_json(err, &text) != 0)
        return NULL;
    json_t *root = json_loads(text, 0, NULL);
    berth_free(text);
    json_t *body = json_incref(json_object_get(root, "error"));
    json_decref(root);
    return body;
}

static json_t *result_json(const berth_engine_t *engine, const result_t *r)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int bad = json_object_set_new(o, "name", r->name ? json_string(r->name) : json_null());
    if (!r->ok) {
        json_t *body = error_body(&r->error);
        bad |= body == NULL || json_object_set_new(o, "error", body);
    } else {
        const berth_placement_t *p = &r->placement;
        const berth_demand_t *dm = &p->demand;
        bad |= json_object_set_new(o, "host", json_string(p->host));
        bad |= json_object_set_new(o, "action", json_string(action_name(p->kind)));
        bad |= json_object_set_new(o, "cores", json_integer(dm->millicores / 1000));
        bad |= json_object_set_new(o, "memoryMiB", json_integer(dm->memory_mib));
        if (dm->gpu_count > 0) {
            const char *sku = berth_engine_gpu_sku_name(engine, dm->gpu_sku);
            bad |= json_object_set_new(o, "gpu",
                                       json_pack("{s:s?,s:I}", "sku", sku, "count",
                                                 (json_int_t)dm->gpu_count));
        } else {
            bad |= json_object_set_new(o, "gpu", json_null());
        }
        if (r->windows)
            bad |= json_object_set_new(
                o, "isolation",
                json_string(p->isolation == BERTH_ISOLATION_HYPERV ? "hyperv" : "process"));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int print_json_lines(const berth_engine_t *engine, const result_t *res, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *o = result_json(engine, &res[i]);
        char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (line == NULL)
            return -1;
        puts(line);
        free(line);
    }
    return 0;
}

/* Formats MiB as GB (1 GB = 1024 MiB) with up to two decimals, trimmed. */
static void format_gb(char *buf, size_t cap, uint64_t mib)
{
    snprintf(buf, cap, "%.2f", (double)mib / 1024.0);
    char *dot = strchr(buf, '.');
    if (dot != NULL) {
        char *end = buf + strlen(buf);
        while (end > dot + 1 && end[-1] == '0')
            *--end = '\0';
        if (end == dot + 1)
            *dot = '\0';
    }
}

#define TABLE_COLUMNS 6

static void print_table(const berth_engine_t *engine, const result_t *res, size_t n)
{
    static const char *const heads[TABLE_COLUMNS] = {"NAME", "HOST", "ACTION", "CORES",
                                                      "MEMORY_GB", "GPU"};
    size_t width[TABLE_COLUMNS];
    char cell[TABLE_COLUMNS][80];
    for (int c = 0; c < TABLE_COLUMNS; c++)
        width[c] = strlen(heads[c]);
    /* Two passes: widths first, then the rows, so columns line up. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            for (int c = 0; c < TABLE_COLUMNS; c++)
                printf("%-*s%s", c + 1 < TABLE_COLUMNS ? (int)width[c] : 0, heads[c],
                       c + 1 < TABLE_COLUMNS ? "  " : "\n");
        }
        for (size_t i = 0; i < n; i++) {
            const result_t *r = &res[i];
            snprintf(cell[0], sizeof cell[0], "%s", r->name ? r->name : "-");
            if (!r->ok) {
                if (pass == 0) {
                    if (strlen(cell[0]) > width[0])
                        width[0] = strlen(cell[0]);
                    continue;
                }
                printf("%-*s  error %s: %s%s%s%s\n", (int)width[0], cell[0], r->error.name,
                       r->error.message, r->error.target[0] ? " (at " : "", r->error.target,
                       r->error.target[0] ? ")" : "");
                continue;
            }
            const berth_demand_t *dm = &r->placement.demand;
            snprintf(cell[1], sizeof cell[1], "%s", r->placement.host);
            snprintf(cell[2], sizeof cell[2], "%s", action_name(r->placement.kind));
            snprintf(cell[3], sizeof cell[3], "%u", dm->millicores / 1000);
            format_gb(cell[4], sizeof cell[4], dm->memory_mib);
            if (dm->gpu_count > 0) {
                const char *sku = berth_engine_gpu_sku_name(engine, dm->gpu_sku);
                snprintf(cell[5], sizeof cell[5], "%u x %s", dm->gpu_count, sku ? sku : "?");
            } else {
                snprintf(cell[5], sizeof cell[5], "-");
            }
            for (int c = 0; c < TABLE_COLUMNS; c++) {
                if (pass == 0 && strlen(cell[c]) > width[c])
                    width[c] = strlen(cell[c]);
                else if (pass == 1)
                    printf("%-*s%s", c + 1 < TABLE_COLUMNS ? (int)width[c] : 0, cell[c],
                           c + 1 < TABLE_COLUMNS ? "  " : "\n");
            }
        }
    }
}

/* ---- summary ---------------------------------------------------------------- */

typedef struct tally {
    char zone[BERTH_NAME_MAX + 1];
    size_t hosts, hosts_used;
    uint64_t cpu, cpu_used, mem, mem_used, gpu, gpu_used;
} tally_t;

static double pct(uint64_t used, uint64_t cap)
{
    return cap > 0 ? 100.0 * (double)used / (double)cap : 0.0;
}

static void print_tally(const char *label, const tally_t *t)
{
    char mem_used[32], mem[32];
    format_gb(mem_used, sizeof mem_used, t->mem_used);
    format_gb(mem, sizeof mem, t->mem);
    fprintf(stderr,
            "%s: hosts %zu (%zu used), cpu %llu/%llu cores (%.1f%%), "
            "memory %s/%s GB (%.1f%%), gpu %llu/%llu (%.1f%%)\n",
            label, t->hosts, t->hosts_used, (unsigned long long)(t->cpu_used / 1000),
            (unsigned long long)(t->cpu / 1000), pct(t->cpu_used, t->cpu), mem_used, mem,
            pct(t->mem_used, t->mem), (unsigned long long)t->gpu_used,
            (unsigned long long)t->gpu, pct(t->gpu_used, t->gpu));
}

static void print_summary(const berth_engine_t *engine, const berth_engine_options_t *opts,
                          const result_t *res, size_t n)
{
    size_t counts[4] = {0}, rejected = 0;
    for (size_t i = 0; i < n; i++) {
        if (!res[i].ok)
            rejected++;
        else if (res[i].placement.kind >= BERTH_PLACED_NEW &&
                 res[i].placement.kind <= BERTH_PLACED_MOVED)
            counts[res[i].placement.kind]++;
    }
    berth_engine_stats_t st;
    berth_engine_stats(engine, &st);
    fprintf(stderr, "policy %s, seed %llu\n", berth_policy_name(opts->policy),
            (unsigned long long)opts->seed);
    fprintf(stderr,
            "documents: %zu (%zu created, %zu stayed, %zu moved, %zu rejected); "
            "groups placed: %zu\n",
            n, counts[BERTH_PLACED_NEW], counts[BERTH_PLACED_STAYED],
            counts[BERTH_PLACED_MOVED], rejected, st.groups);
    tally_t all = {.hosts = st.hosts, .hosts_used = st.hosts_used,
                   .cpu = st.capacity_millicores, .cpu_used = st.used_millicores,
                   .mem = st.capacity_memory_mib, .mem_used = st.used_memory_mib,
                   .gpu = st.capacity_gpus, .gpu_used = st.used_gpus};
    print_tally("total", &all);

    /* Per zone, in the order zones first appear among the hosts. */
    tally_t zones[BERTH_ZONES_MAX];
    size_t nzones = 0;
    size_t nhosts = berth_engine_host_count(engine);
    for (size_t i = 0; i < nhosts; i++) {
        berth_host_t h;
        berth_host_usage_t u;
        if (berth_engine_host_at(engine, i, &h, &u) != 0 || h.zone == NULL || h.zone[0] == '\0')
            continue;
        size_t z = 0;
        while (z < nzones && strcmp(zones[z].zone, h.zone) != 0)
            z++;
        if (z == nzones) {
            if (nzones == BERTH_ZONES_MAX)
                continue;
            memset(&zones[z], 0, sizeof zones[z]);
            snprintf(zones[z].zone, sizeof zones[z].zone, "%s", h.zone);
            nzones++;
        }
        tally_t *t = &zones[z];
        t->hosts++;
        t->hosts_used += u.groups > 0;
        t->cpu += (uint64_t)h.cores * 1000u;
        t->cpu_used += u.millicores;
        t->mem += h.memory_mib;
        t->mem_used += u.memory_mib;
        t->gpu += h.gpu_count;
        t->gpu_used += u.gpu_count;
    }
    for (size_t z = 0; z < nzones; z++) {
        char label[BERTH_NAME_MAX + 8];
        snprintf(label, sizeof label, "zone %s", zones[z].zone);
        print_tally(label, &zones[z]);
    }
}

/* ---- place ------------------------------------------------------------------ */

typedef struct place_args {
    const char *hosts;
    const char *groups;
    berth_engine_options_t opts;
    bool table;
} place_args_t;

static int parse_place_args(int argc, char **argv, place_args_t *a)
{
    memset(a, 0, sizeof *a);
    berth_engine_options_init(&a->opts);
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        bool takes_value = strcmp(arg, "--hosts") == 0 || strcmp(arg, "--groups") == 0 ||
                           strcmp(arg, "--policy") == 0 || strcmp(arg, "--seed") == 0;
        if (takes_value && i + 1 >= argc)
            return usage_error("option '%s' needs a value", arg);
        if (strcmp(arg, "--hosts") == 0) {
            a->hosts = argv[++i];
        } else if (strcmp(arg, "--groups") == 0) {
            a->groups = argv[++i];
        } else if (strcmp(arg, "--policy") == 0) {
            if (berth_policy_parse(argv[++i], &a->opts.policy) != 0)
                return usage_error("unknown policy '%s' (binpack, spread or firstfit)",
                                   argv[i]);
        } else if (strcmp(arg, "--seed") == 0) {
            const char *v = argv[++i];
            char *end = NULL;
            errno = 0;
            unsigned long long seed = strtoull(v, &end, 10);
            if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0)
                return usage_error("--seed needs a non-negative integer, not '%s'", v);
            a->opts.seed = seed;
        } else if (strcmp(arg, "--table") == 0) {
            a->table = true;
        } else {
            return usage_error("place: unknown argument '%s'", arg);
        }
    }
    if (a->hosts == NULL)
        return usage_error("%s", "place needs --hosts FILE");
    if (a->groups == NULL)
        return usage_error("%s", "place needs --groups FILE");
    return 0;
}

/* Prints an inventory error with every violation, naming the file. */
static void report_hosts_error(const char *path, const berth_error_t *err)
{
    fprintf(stderr, "berthctl: hosts file '%s' is invalid: %s%s%s%s\n", path, err->message,
            err->target[0] ? " (at " : "", err->target, err->target[0] ? ")" : "");
    size_t n = err->ndetails < BERTH_ERROR_DETAILS_MAX ? err->ndetails : BERTH_ERROR_DETAILS_MAX;
    for (size_t i = 1; i < n; i++) {
        const berth_error_detail_t *d = &err->details[i];
        fprintf(stderr, "berthctl:   also: %s%s%s%s\n", d->message, d->target[0] ? " (at " : "",
                d->target, d->target[0] ? ")" : "");
    }
    if (err->ndetails > n)
        fprintf(stderr, "berthctl:   and %zu more\n", err->ndetails - n);
}

/* Reads the groups file into documents.  Returns 0, EXIT_USAGE (message
 * printed) or EXIT_INTERNAL. */
static int load_groups(const char *path, const char *text, size_t len, docs_t *docs)
{
    size_t i = 0;
    while (i < len && is_space(text[i]))
        i++;
    if (i < len && text[i] == '[') {
        json_error_t jerr;
        json_t *root = json_loadb(text, len, 0, &jerr);
        if (root == NULL) {
            fprintf(stderr,
                    "berthctl: groups file '%s' is not a valid JSON array: %s "
                    "(line %d, column %d)\n",
                    path, jerr.text, jerr.line, jerr.column);
            return EXIT_USAGE;
        }
        json_decref(root);
        return split_array(text, len, docs) == 0 ? 0 : out_of_memory();
    }
    long bad = split_lines(text, len, docs);
    if (bad < 0)
        return out_of_memory();
    if (bad > 0) {
        fprintf(stderr,
                "berthctl: groups file '%s' is neither a JSON array nor JSON Lines: "
                "line %ld does not start a JSON object\n",
                path, bad);
        return EXIT_USAGE;
    }
    return 0;
}

static int cmd_place(int argc, char **argv)
{
    place_args_t a;
    int rc = parse_place_args(argc, argv, &a);
    if (rc != 0)
        return rc;

    char *hosts_text = NULL, *groups_text = NULL;
    size_t hosts_len, groups_len;
    int e = read_file(a.hosts, &hosts_text, &hosts_len);
    if (e == ENOMEM)
        return out_of_memory();
    if (e != 0) {
        fprintf(stderr, "berthctl: cannot read hosts file '%s': %s\n", a.hosts, strerror(e));
        return EXIT_USAGE;
    }
    e = read_file(a.groups, &groups_text, &groups_len);
    if (e != 0) {
        fprintf(stderr, "berthctl: cannot read groups file '%s': %s\n", a.groups, strerror(e));
        free(hosts_text);
        return EXIT_USAGE;
    }

    berth_engine_t *engine = NULL;
    berth_error_t err;
    docs_t docs = {0};
    result_t *res = NULL;
    size_t nres = 0;
    rc = berth_engine_new(&a.opts, &engine, &err);
    if (rc != 0) {
        fprintf(stderr, "berthctl: cannot create an engine: %s\n", err.message);
        rc = EXIT_INTERNAL;
        goto done;
    }
    rc = berth_inventory_load(engine, hosts_text, hosts_len, &err);
    if (rc != 0) {
        report_hosts_error(a.hosts, &err);
        rc = rc == BERTH_ENOMEM ? out_of_memory() : EXIT_USAGE;
        goto done;
    }
    rc = load_groups(a.groups, groups_text, groups_len, &docs);
    if (rc != 0)
        goto done;

    res = calloc(docs.n > 0 ? docs.n : 1, sizeof *res);
    if (res == NULL) {
        rc = out_of_memory();
        goto done;
    }
    for (; nres < docs.n; nres++) {
        if (place_one(engine, &docs.v[nres], &res[nres]) != 0) {
            free(res[nres].name);
            rc = out_of_memory();
            goto done;
        }
    }
    if (a.table)
        print_table(engine, res, nres);
    else if (print_json_lines(engine, res, nres) != 0)
        rc = out_of_memory();
    print_summary(engine, &a.opts, res, nres);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "berthctl: cannot write the results: %s\n", strerror(errno));
        rc = EXIT_INTERNAL;
    }

done:
    for (size_t i = 0; i < nres; i++)
        free(res[i].name);
    free(res);
    free(docs.v);
    berth_engine_free(engine);
    free(hosts_text);
    free(groups_text);
    return rc;
}

/* ---- fsck and cell load: a cell held in Redis ------------------------------- */

typedef struct redis_args {
    const char *url;
    const char *cell;
    const char *hosts;              /* cell load only                       */
} redis_args_t;

/* Parses --redis, --cell and (when `hosts` is wanted) --hosts from
 * argv[first..].  Returns 0 or EXIT_USAGE (message printed). */
static int parse_redis_args(int argc, char **argv, int first, const char *cmd, bool hosts,
                            redis_args_t *a)
{
    memset(a, 0, sizeof *a);
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        bool known = strcmp(arg, "--redis") == 0 || strcmp(arg, "--cell") == 0 ||
                     (hosts && strcmp(arg, "--hosts") == 0);
        if (!known)
            return usage_error("%s: unknown argument '%s'", cmd, arg);
        if (i + 1 >= argc)
            return usage_error("option '%s' needs a value", arg);
        const char *v = argv[++i];
        if (strcmp(arg, "--redis") == 0)
            a->url = v;
        else if (strcmp(arg, "--cell") == 0)
            a->cell = v;
        else
            a->hosts = v;
    }
    if (a->url == NULL)
        return usage_error("%s needs --redis URL", cmd);
    if (a->cell == NULL)
        return usage_error("%s needs --cell NAME", cmd);
    if (hosts && a->hosts == NULL)
        return usage_error("%s needs --hosts FILE", cmd);
    return 0;
}

/* Opens `engine` as a replica of the cell.  Returns 0, or the exit status
 * with the reason printed: EXIT_USAGE for bad options or an unreachable
 * Redis, EXIT_INTERNAL otherwise. */
static int open_cell(const redis_args_t *a, berth_engine_t *engine, berth_store_t **store)
{
    berth_store_options_t opts;
    berth_store_options_init(&opts);
    opts.url = a->url;
    opts.cell = a->cell;
    berth_error_t err;
    int rc = berth_store_open(&opts, engine, store, &err);
    if (rc == 0)
        return 0;
    if (rc == BERTH_EIO) {
        fprintf(stderr, "berthctl: cannot use Redis at '%s' for cell '%s': %s\n", a->url,
                a->cell, err.message);
        return EXIT_USAGE;
    }
    if (rc == BERTH_EINVAL) {
        fprintf(stderr, "berthctl: %s\n", err.message);
        return EXIT_USAGE;
    }
    if (rc == BERTH_ENOMEM)
        return out_of_memory();
    fprintf(stderr, "berthctl: cannot open cell '%s': %s\n", a->cell, err.message);
    return EXIT_INTERNAL;
}

static void print_fsck_violation(const char *violation, void *data)
{
    (*(size_t *)data)++;
    printf("%s\n", violation);
}

static int cmd_fsck(int argc, char **argv)
{
    redis_args_t a;
    int rc = parse_redis_args(argc, argv, 2, "fsck", false, &a);
    if (rc != 0)
        return rc;
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    berth_error_t err;
    if (berth_engine_new(NULL, &engine, &err) != 0)
        return out_of_memory();
    rc = open_cell(&a, engine, &store);
    if (rc != 0) {
        berth_engine_free(engine);
        return rc;
    }
    size_t printed = 0, resources = 0;
    int violations = berth_store_fsck(store, print_fsck_violation, &printed, &err);
    /* berthd's resource records against the placements (records_fsck.c). */
    int api = violations < 0 ? 0
                             : bd_records_fsck(store, engine, a.url, a.cell, print_fsck_violation,
                                               &printed, &resources, &err);
    if (violations < 0 || api < 0) {
        fprintf(stderr, "berthctl: fsck of cell '%s' failed: %s\n", a.cell, err.message);
        rc = EXIT_USAGE;
    } else {
        violations += api;
        fprintf(stderr,
                "fsck cell %s (schema %d): %zu hosts, %zu groups, %zu resources checked, "
                "%d violation%s\n",
                a.cell, BERTH_CELL_SCHEMA, berth_engine_host_count(engine), berth_engine_group_count(engine),
                resources, violations, violations == 1 ? "" : "s");
        rc = violations > 0 ? 1 : 0;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "berthctl: cannot write the violations: %s\n", strerror(errno));
        rc = EXIT_INTERNAL;
    }
    berth_store_close(store);
    berth_engine_free(engine);
    return rc;
}

/* Gives `to` every GPU SKU that a host of `from` uses, so that the store's
 * engine accepts those hosts (an inventory may declare SKUs of its own). */
static int copy_gpu_skus(const berth_engine_t *from, berth_engine_t *to, berth_error_t *err)
{
    size_t n = berth_engine_host_count(from);
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        if (berth_engine_host_at(from, i, &h, NULL) != 0 || h.gpu_count == 0)
            continue;
        const berth_gpu_sku_t *sku = berth_engine_gpu_sku_find(from, h.gpu_sku, NULL);
        if (sku == NULL)
            continue;
        berth_gpu_sku_t copy = *sku;
        int rc = berth_engine_gpu_sku_add(to, &copy, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int cmd_cell_load(int argc, char **argv)
{
    redis_args_t a;
    int rc = parse_redis_args(argc, argv, 3, "cell load", true, &a);
    if (rc != 0)
        return rc;
    char *text = NULL;
    size_t len = 0;
    int e = read_file(a.hosts, &text, &len);
    if (e == ENOMEM)
        return out_of_memory();
    if (e != 0) {
        fprintf(stderr, "berthctl: cannot read hosts file '%s': %s\n", a.hosts, strerror(e));
        return EXIT_USAGE;
    }
    berth_engine_t *scratch = NULL, *engine = NULL;
    berth_store_t *store = NULL;
    berth_error_t err;
    size_t loaded = 0, n = 0;
    if (berth_engine_new(NULL, &scratch, &err) != 0 || berth_engine_new(NULL, &engine, &err) != 0) {
        rc = out_of_memory();
        goto done;
    }
    /* The whole file is checked before anything reaches Redis. */
    rc = berth_inventory_load(scratch, text, len, &err);
    if (rc != 0) {
        report_hosts_error(a.hosts, &err);
        rc = rc == BERTH_ENOMEM ? out_of_memory() : EXIT_USAGE;
        goto done;
    }
    if (copy_gpu_skus(scratch, engine, &err) != 0) {
        fprintf(stderr, "berthctl: hosts file '%s': %s\n", a.hosts, err.message);
        rc = EXIT_USAGE;
        goto done;
    }
    rc = open_cell(&a, engine, &store);
    if (rc != 0)
        goto done;
    n = berth_engine_host_count(scratch);
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        if (berth_engine_host_at(scratch, i, &h, NULL) != 0)
            continue;
        int prc = berth_store_host_put(store, &h, &err);
        if (prc != 0) {
            fprintf(stderr, "berthctl: cannot put host '%s' into cell '%s': %s\n", h.name,
                    a.cell, err.message);
            rc = prc == BERTH_EIO ? EXIT_USAGE : EXIT_INTERNAL;
            break;
        }
        loaded++;
    }
    fprintf(stderr, "cell %s: %zu of %zu hosts loaded from '%s'; the cell has %zu hosts\n",
            a.cell, loaded, n, a.hosts, berth_engine_host_count(engine));

done:
    berth_store_close(store);
    berth_engine_free(engine);
    berth_engine_free(scratch);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("%s", "missing command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        fputs("\n", stdout);
        fputs(berthctl_api_usage, stdout);
        fputs("\n", stdout);
        fputs(berthctl_ngroup_usage, stdout);
        fputs("\n", stdout);
        fputs(berthctl_pool_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("berthctl %s\n", berth_version());
        return 0;
    }
    if (strcmp(cmd, "place") == 0)
        return cmd_place(argc, argv);
    if (strcmp(cmd, "fsck") == 0)
        return cmd_fsck(argc, argv);
    if (strcmp(cmd, "cell") == 0) {
        if (argc >= 3 && strcmp(argv[2], "load") == 0)
            return cmd_cell_load(argc, argv);
        return usage_error("%s", "cell needs a subcommand: load");
    }
    if (strcmp(cmd, "container") == 0 || strcmp(cmd, "host") == 0)
        return berthctl_api_main(argc, argv);
    if (strcmp(cmd, "ngroup") == 0)
        return berthctl_ngroup_main(argc, argv);
    if (strcmp(cmd, "pool") == 0)
        return berthctl_pool_main(argc, argv);
    return usage_error("unknown command '%s'", cmd);
}
