/*
 * cell.c: `berthctl fsck` and `berthctl cell load`, on a cell held in
 * Redis through libberth's store.  fsck checks the cell against Berth's
 * promises (no host over capacity, host usage equal to the sum of its
 * groups, every group on an existing host and in its group set, known
 * record versions, a consistent change log) and berthd's resource records
 * against the placements; cell load adds (or replaces) every host of an
 * inventory file, creating the cell when it is new, and sets the cell's
 * per-group limits when the file gives `limits`, and its sandbox policy
 * when it gives `sandbox`.
 *
 * fsck only reads the cell: it never repairs it.  cell load checks the
 * whole file before anything reaches Redis.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "berth.h"
#include "berthctl.h"
#include "records_fsck.h"

/* ---- fsck and cell load: a cell held in Redis ------------------------------- */

typedef struct redis_args {
    const char *url;
    const char *cell;
    const char *hosts;              /* cell load only                       */
} redis_args_t;

/* Parses --redis, --cell and (when `hosts` is wanted) --hosts from
 * argv[1..], argv[0] being the command's last word.  Returns 0 or
 * BERTHCTL_EXIT_USAGE (message printed). */
static int parse_redis_args(int argc, char **argv, const char *cmd, bool hosts, redis_args_t *a)
{
    enum { OPT_REDIS = 256, OPT_CELL, OPT_HOSTS };
    static const struct option options[] = {
        {"redis", required_argument, NULL, OPT_REDIS},
        {"cell", required_argument, NULL, OPT_CELL},
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    const char *arg;
    int opt;
    optind = 1;
    while ((opt = berthctl_option_next(argc, argv, "-:", options, &arg)) != -1) {
        /* --hosts is cell load's only: for fsck it is unknown, value or not. */
        bool known = opt == OPT_REDIS || opt == OPT_CELL || (hosts && opt == OPT_HOSTS) ||
                     (opt == ':' && (optopt != OPT_HOSTS || hosts));
        if (!known)
            return berthctl_usage_error("%s: unknown argument '%s'", cmd, arg);
        if (opt == ':')
            return berthctl_usage_error("option '%s' needs a value", arg);
        if (opt == OPT_REDIS)
            a->url = optarg;
        else if (opt == OPT_CELL)
            a->cell = optarg;
        else
            a->hosts = optarg;
    }
    if (a->url == NULL)
        return berthctl_usage_error("%s needs --redis URL", cmd);
    if (a->cell == NULL)
        return berthctl_usage_error("%s needs --cell NAME", cmd);
    if (hosts && a->hosts == NULL)
        return berthctl_usage_error("%s needs --hosts FILE", cmd);
    return 0;
}

/* Opens `engine` as a replica of the cell.  Returns 0, or the exit status
 * with the reason printed: BERTHCTL_EXIT_USAGE for bad options or an unreachable
 * Redis, BERTHCTL_EXIT_FAILED otherwise. */
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
        return BERTHCTL_EXIT_USAGE;
    }
    if (rc == BERTH_EINVAL) {
        fprintf(stderr, "berthctl: %s\n", err.message);
        return BERTHCTL_EXIT_USAGE;
    }
    if (rc == BERTH_ENOMEM)
        return berthctl_out_of_memory();
    fprintf(stderr, "berthctl: cannot open cell '%s': %s\n", a->cell, err.message);
    return BERTHCTL_EXIT_FAILED;
}

static void print_fsck_violation(const char *violation, void *data)
{
    (*(size_t *)data)++;
    printf("%s\n", violation);
}

/* Contract (berthctl.h): checks the cell, printing each violation on stdout
 * and a summary on stderr.  Returns 0 clean, 1 violations found, 2 for a
 * usage error or an unreachable Redis. */
int berthctl_fsck_main(int argc, char **argv)
{
    redis_args_t a;
    int rc = parse_redis_args(argc - 1, argv + 1, "fsck", false, &a);
    if (rc != 0)
        return rc;
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    berth_error_t err;
    if (berth_engine_new(NULL, &engine, &err) != 0)
        return berthctl_out_of_memory();
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
        rc = BERTHCTL_EXIT_USAGE;
    } else {
        violations += api;
        fprintf(stderr,
                "fsck cell %s (schema %d): %zu hosts, %zu groups, %zu resources checked, "
                "%d violation%s\n",
                a.cell, BERTH_CELL_SCHEMA, berth_engine_host_count(engine),
                berth_engine_group_count(engine), resources, violations,
                violations == 1 ? "" : "s");
        rc = violations > 0 ? 1 : 0;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "berthctl: cannot write the violations: %s\n", strerror(errno));
        rc = BERTHCTL_EXIT_FAILED;
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

/* True when the inventory (already checked) is the object form with member
 * `name` (`limits`, `sandbox`, `subnets`): only then does that setting of
 * the cell change. */
static bool has_member(const char *text, size_t len, const char *name)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    bool has = json_is_object(root) && json_object_get(root, name) != NULL;
    json_decref(root);
    return has;
}

/* Puts the scratch engine's subnet table (the inventory's) into the cell.
 * Returns 0 or a BERTHCTL_EXIT_* code, with a message on stderr. */
static int put_subnets(berth_engine_t *scratch, berth_store_t *store, const char *cell)
{
    berth_subnet_t v[BERTH_SUBNETS_MAX];
    size_t n = berth_engine_subnet_count(scratch);
    for (size_t i = 0; i < n; i++)
        berth_engine_subnet_at(scratch, i, &v[i]);
    berth_error_t err;
    int rc = berth_store_subnets_put(store, v, n, &err);
    if (rc != 0) {
        fprintf(stderr, "berthctl: cannot set the subnets of cell '%s': %s %s\n", cell,
                err.target, err.message);
        return rc == BERTH_EIO ? BERTHCTL_EXIT_USAGE : BERTHCTL_EXIT_FAILED;
    }
    fprintf(stderr, "cell %s: %zu subnets\n", cell, n);
    return 0;
}

/* Contract (berthctl.h): checks the whole inventory file, then puts its
 * limits (when it gives them) and each of its hosts into the cell.  Returns
 * 0, 1 for an internal failure, 2 for a usage error, an unusable file or an
 * unreachable Redis. */
int berthctl_cell_load_main(int argc, char **argv)
{
    redis_args_t a;
    int rc = parse_redis_args(argc - 2, argv + 2, "cell load", true, &a);
    if (rc != 0)
        return rc;
    char *text = NULL;
    size_t len = 0;
    int e = berthctl_read_file(a.hosts, &text, &len);
    if (e == ENOMEM)
        return berthctl_out_of_memory();
    if (e != 0) {
        fprintf(stderr, "berthctl: cannot read hosts file '%s': %s\n", a.hosts, strerror(e));
        return BERTHCTL_EXIT_USAGE;
    }
    berth_engine_t *scratch = NULL, *engine = NULL;
    berth_store_t *store = NULL;
    berth_error_t err;
    size_t loaded = 0, n = 0;
    if (berth_engine_new(NULL, &scratch, &err) != 0 || berth_engine_new(NULL, &engine, &err) != 0) {
        rc = berthctl_out_of_memory();
        goto done;
    }
    /* The whole file is checked before anything reaches Redis. */
    rc = berth_engine_inventory_load(scratch, text, len, &err);
    if (rc != 0) {
        berthctl_report_hosts_error(a.hosts, &err);
        rc = rc == BERTH_ENOMEM ? berthctl_out_of_memory() : BERTHCTL_EXIT_USAGE;
        goto done;
    }
    if (copy_gpu_skus(scratch, engine, &err) != 0) {
        fprintf(stderr, "berthctl: hosts file '%s': %s\n", a.hosts, err.message);
        rc = BERTHCTL_EXIT_USAGE;
        goto done;
    }
    rc = open_cell(&a, engine, &store);
    if (rc != 0)
        goto done;
    /* The sandbox policy, then the limits, before the hosts: once hosts are
     * in, groups are placed and checked against them; a replica that has
     * the limits has the policy. */
    if (has_member(text, len, "sandbox")) {
        berth_sandbox_policy_t policy = berth_engine_sandbox_get(scratch);
        int src = berth_store_sandbox_put(store, policy, &err);
        if (src != 0) {
            fprintf(stderr, "berthctl: cannot set the sandbox policy of cell '%s': %s\n",
                    a.cell, err.message);
            rc = src == BERTH_EIO ? BERTHCTL_EXIT_USAGE : BERTHCTL_EXIT_FAILED;
            goto done;
        }
        fprintf(stderr, "cell %s: sandbox policy %s\n", a.cell,
                berth_sandbox_policy_name(policy));
    }
    if (has_member(text, len, "limits")) {
        berth_limits_t limits;
        berth_engine_limits_get(scratch, &limits);
        int lrc = berth_store_limits_put(store, &limits, &err);
        if (lrc != 0) {
            fprintf(stderr, "berthctl: cannot set the limits of cell '%s': %s\n", a.cell,
                    err.message);
            rc = lrc == BERTH_EIO ? BERTHCTL_EXIT_USAGE : BERTHCTL_EXIT_FAILED;
            goto done;
        }
        fprintf(stderr, "cell %s: per-group limits %u cores, %.3g GB, %u containers, "
                "%u volumes, %u ports\n", a.cell, limits.max_millicores / 1000,
                limits.max_memory_mib / 1024.0, limits.max_containers, limits.max_volumes,
                limits.max_ip_ports);
    }
    /* The subnets before the hosts, so that no group of a subnet lands on
     * a host that does not carry it while the hosts arrive. */
    if (has_member(text, len, "subnets") && (rc = put_subnets(scratch, store, a.cell)) != 0)
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
            rc = prc == BERTH_EIO ? BERTHCTL_EXIT_USAGE : BERTHCTL_EXIT_FAILED;
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
