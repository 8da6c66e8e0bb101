/*
 * place.c: `berthctl place`, an offline placement run: it loads a host
 * inventory into a fresh engine, places (or redeploys) every ACI document
 * of a groups file in order, prints one result per document on stdout
 * (JSON lines, or a table) and a utilization summary on stderr.
 *
 * It uses the public API of libberth only, touches no Redis and no berthd,
 * and must never print a secret from a document: results carry names,
 * hosts and quantities, never document contents.
 *
 * Exit status: 0 when the run completed (whatever the individual
 * documents' outcomes), 2 for a usage error or an unusable input file, 1
 * for an internal failure (out of memory, stdout not writable).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "berth.h"
#include "berthctl.h"

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
    rc = berth_engine_group_place(engine, group->name, group, &r->placement, &r->error);
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
    berthctl_format_number(buf, cap, (double)mib / 1024.0);
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

/* Reads place's options (argv[2..]: --hosts, --groups, --policy, --seed,
 * --table) into *a.  Returns 0 or BERTHCTL_EXIT_USAGE (message printed). */
static int parse_place_args(int argc, char **argv, place_args_t *a)
{
    enum { OPT_HOSTS = 256, OPT_GROUPS, OPT_POLICY, OPT_SEED, OPT_TABLE };
    static const struct option options[] = {
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"groups", required_argument, NULL, OPT_GROUPS},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"seed", required_argument, NULL, OPT_SEED},
        {"table", no_argument, NULL, OPT_TABLE},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    berth_engine_options_init(&a->opts);
    const char *arg;
    int opt;
    optind = 1;
    while ((opt = berthctl_option_next(argc - 1, argv + 1, "-:", options, &arg)) != -1) {
        switch (opt) {
        case OPT_HOSTS: a->hosts = optarg; break;
        case OPT_GROUPS: a->groups = optarg; break;
        case OPT_POLICY:
            if (berth_policy_parse(optarg, &a->opts.policy) != 0)
                return berthctl_usage_error("unknown policy '%s' (binpack, spread or firstfit)",
                                            optarg);
            break;
        case OPT_SEED: {
            const char *v = optarg;
            char *end = NULL;
            errno = 0;
            unsigned long long seed = strtoull(v, &end, 10);
            if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0)
                return berthctl_usage_error("--seed needs a non-negative integer, not '%s'", v);
            a->opts.seed = seed;
            break;
        }
        case OPT_TABLE: a->table = true; break;
        case ':': return berthctl_usage_error("option '%s' needs a value", arg);
        default: return berthctl_usage_error("place: unknown argument '%s'", arg);
        }
    }
    if (a->hosts == NULL)
        return berthctl_usage_error("%s", "place needs --hosts FILE");
    if (a->groups == NULL)
        return berthctl_usage_error("%s", "place needs --groups FILE");
    return 0;
}

/* Reads the groups file into documents.  Returns 0, BERTHCTL_EXIT_USAGE (message
 * printed) or BERTHCTL_EXIT_FAILED. */
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
            return BERTHCTL_EXIT_USAGE;
        }
        json_decref(root);
        return split_array(text, len, docs) == 0 ? 0 : berthctl_out_of_memory();
    }
    long bad = split_lines(text, len, docs);
    if (bad < 0)
        return berthctl_out_of_memory();
    if (bad > 0) {
        fprintf(stderr,
                "berthctl: groups file '%s' is neither a JSON array nor JSON Lines: "
                "line %ld does not start a JSON object\n",
                path, bad);
        return BERTHCTL_EXIT_USAGE;
    }
    return 0;
}

/* Contract (berthctl.h): parses the options, loads the inventory and the
 * groups file, places every document, prints the results on stdout and the
 * summary on stderr.  Returns the exit status (0, 1 or 2). */
int berthctl_place_main(int argc, char **argv)
{
    place_args_t a;
    int rc = parse_place_args(argc, argv, &a);
    if (rc != 0)
        return rc;

    char *hosts_text = NULL, *groups_text = NULL;
    size_t hosts_len, groups_len;
    int e = berthctl_read_file(a.hosts, &hosts_text, &hosts_len);
    if (e == ENOMEM)
        return berthctl_out_of_memory();
    if (e != 0) {
        fprintf(stderr, "berthctl: cannot read hosts file '%s': %s\n", a.hosts, strerror(e));
        return BERTHCTL_EXIT_USAGE;
    }
    e = berthctl_read_file(a.groups, &groups_text, &groups_len);
    if (e != 0) {
        fprintf(stderr, "berthctl: cannot read groups file '%s': %s\n", a.groups, strerror(e));
        free(hosts_text);
        return BERTHCTL_EXIT_USAGE;
    }

    berth_engine_t *engine = NULL;
    berth_error_t err;
    docs_t docs = {0};
    result_t *res = NULL;
    size_t nres = 0;
    rc = berth_engine_new(&a.opts, &engine, &err);
    if (rc != 0) {
        fprintf(stderr, "berthctl: cannot create an engine: %s\n", err.message);
        rc = BERTHCTL_EXIT_FAILED;
        goto done;
    }
    rc = berth_engine_inventory_load(engine, hosts_text, hosts_len, &err);
    if (rc != 0) {
        berthctl_report_hosts_error(a.hosts, &err);
        rc = rc == BERTH_ENOMEM ? berthctl_out_of_memory() : BERTHCTL_EXIT_USAGE;
        goto done;
    }
    rc = load_groups(a.groups, groups_text, groups_len, &docs);
    if (rc != 0)
        goto done;

    res = calloc(docs.n > 0 ? docs.n : 1, sizeof *res);
    if (res == NULL) {
        rc = berthctl_out_of_memory();
        goto done;
    }
    for (; nres < docs.n; nres++) {
        if (place_one(engine, &docs.v[nres], &res[nres]) != 0) {
            free(res[nres].name);
            rc = berthctl_out_of_memory();
            goto done;
        }
    }
    if (a.table)
        print_table(engine, res, nres);
    else if (print_json_lines(engine, res, nres) != 0)
        rc = berthctl_out_of_memory();
    print_summary(engine, &a.opts, res, nres);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "berthctl: cannot write the results: %s\n", strerror(errno));
        rc = BERTHCTL_EXIT_FAILED;
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
