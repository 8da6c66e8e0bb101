/*
 * quality.c: berth-bench's `quality` scenario, offline packing quality.
 *
 *   berth-bench quality [--traces DIR] [--set bpplib|vector|alibaba-2017|
 *                       alibaba-2025|all] [--limit N] [--order file|shuffled]
 *                       [--csv DIR] [--seed S]
 *
 * Packs published bin-packing instances whose optimum (or a lower bound) is
 * known and reports how many hosts each packer used against that bound:
 *
 *  - "bpplib": the BPPLIB one-dimensional instances (<traces>/bpplib:
 *    instances/<family>/.../NAME.txt, optima and lower bounds in bounds.tsv,
 *    where lb == ub means the optimum is known);
 *  - "vector": the three-dimensional instances of the vector-packing set
 *    (<traces>/vector-packing-mommessin2024/instances/<set>/<class>/
 *    class<k>_<n>_3_<seed>.vbp; LB and OPT, -1 when unknown, in <set>_summary_known.tsv);
 *  - "alibaba-2017", "alibaba-2025", and the GPU workloads "gpu-spot2026",
 *    "gpu-pai2020", "gpu-spot2026-multi", "gpu-pai2020-multi": replayed by
 *    replay.c (bench_replay_run()), with their arrivals and departures;
 *  - "locality": image locality on against off (locality.c).
 *
 * Packers, all on the same items in file order (or, with --order shuffled,
 * in one random order per instance drawn from --seed: every BPPLIB file
 * lists its items largest first, so that in file order the online packers
 * see what first-fit decreasing sees):
 *  - binpack, spread, firstfit: Berth's policies as online packers.  Each
 *    item is one group placed with berth_engine_request_place(); identical hosts
 *    are opened on demand: a host is added only when no open host can take
 *    the item, which is what online bin packing does.  For binpack and
 *    firstfit this is the same as starting with as many empty hosts as
 *    items (neither prefers an empty host to an open one that fits); for
 *    spread it makes the policy worst fit over the open hosts rather than
 *    one item per host.
 *  - ffd: offline first-fit decreasing on the original instance, the
 *    reference (items by size, or by the sum of their sizes over the
 *    capacities in d dimensions, largest first).
 *  - ffd-mapped (vector only): first-fit decreasing on the instance as the
 *    engine sees it, which isolates what the mapping below costs.
 *
 * Mapping instances onto the engine's resources (whole CPU cores, at most
 * 4096 a host; memory in MiB; at most 63 GPUs a host, a group may take 0).
 * Sizes are first divided by the gcd g of the capacity and all sizes of
 * that dimension; P bounds the items one host can hold (per dimension, the
 * number of smallest items that fit; the least over dimensions).
 *  - 1-D: when C/g <= 4096, the size is CPU cores (s/g of C/g), and each
 *    item takes 1 MiB of a host's P MiB, which never binds: binpack is then
 *    exactly best fit.  Otherwise the size is memory (s of C MiB) and each
 *    item takes 1 + floor(s * M / C) of 4096 cores, M = 4096 - P: cores
 *    never bind (a set that fits takes at most P + M cores) but follow the
 *    size, so that binpack, which compares free cores before free memory,
 *    still orders hosts by their fill.  Both are exact.
 *  - 3-D: each dimension goes to one resource, choosing among the six
 *    assignments the one that keeps most dimensions exact, then the one
 *    that enlarges items least.  Per resource: "plain" (s/g of C/g: CPU
 *    when C/g <= 4096 and no size is 0, memory when no size is 0, GPUs when
 *    C/g <= 63), "shifted" (K*s/g + 1 of K*C/g + K - 1 with K = P + 1: exact
 *    because at most P items share a host, and never 0, for CPU and
 *    memory), else "rounded up" (ceil(s * R / C) of R = 4096 cores or 63
 *    GPUs, at least 1 core): items only grow, so every packing the engine
 *    finds is valid for the original instance and the bounds still hold,
 *    but the engine packs a harder instance.  Such instances are counted
 *    in instances_inexact.  An instance that fits no mapping is skipped
 *    and counted in instances_skipped.
 *
 * Results (output.h, bench "quality"): one row per workload, family (the
 * instance's folder) and packer, and one with family "all" per workload
 * and packer: instances, items, hosts_used (sum), optimum_or_lb (sum of the
 * optimum when known, else of the lower bound), ratio_to_optimum (sum of
 * hosts over sum of optima, over instances with a known optimum),
 * instances_with_optimum, ratio_to_lower_bound (the same over the others,
 * against the larger of the published lower bound and the volume bound
 * max over dimensions of ceil(total size / capacity)),
 * instances_with_lower_bound, hosts_vs_firstfit (hosts over firstfit's
 * hosts), stranded_cpu/memory/gpu (free capacity of the used hosts at the
 * end over their capacity, in the original units of the dimension the
 * resource carried; 1-D instances report their one dimension as memory),
 * seconds (the packer's wall time, engines included), and instances_skipped,
 * instances_inexact, unplaced and infeasible, which are 0 unless something
 * is wrong.  Every packing is checked against the original instance; a
 * packing over capacity, or below a lower bound, is a bug reported on
 * stderr and makes the exit status 2.  Timings are measured, never judged.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "berth.h"
#include "output.h"
#include "quality.h"
#include "replay.h"
#include "locality.h"

#define ITEMS_MAX 1000000u          /* items in one instance                */
#define FILE_MAX (64u << 20)        /* bytes in one instance or bound file  */
#define WALK_DEPTH_MAX 4            /* folder levels under instances/       */
#define FILES_MAX 100000u           /* instance files in one workload       */
#define HOST_CORES_MAX 4096u
#define HOST_GPUS_MAX 63u
#define DEFAULT_LIMIT_BPPLIB 50     /* instances per family by default      */
#define DEFAULT_LIMIT_VECTOR 20

enum { R_CPU, R_MEM, R_GPU, R_COUNT };
enum { P_BINPACK, P_SPREAD, P_FIRSTFIT, P_FFD, P_FFD_MAPPED, P_COUNT };
enum { W_BPPLIB, W_VECTOR };

static const char *const packer_names[P_COUNT] = {"binpack", "spread", "firstfit", "ffd",
                                                  "ffd-mapped"};

typedef struct quality_options {
    const char *traces;
    const char *set;
    size_t limit;                   /* 0: the default subset                */
    bool limit_given;
    bool shuffled;                  /* items in a seeded random order       */
    unsigned long long seed;
} quality_options_t;

/* One instance: d dimensions (1 or 3), capacities, n items of d sizes. */
typedef struct instance {
    unsigned d;
    uint64_t cap[3];
    size_t n;
    uint64_t *size;                 /* n x d, row-major                     */
    long long lb;                   /* the larger of the published and volume bounds */
    long long opt;                  /* -1: unknown                          */
} instance_t;

/* The instance as the engine sees it. */
typedef struct mapping {
    int src[R_COUNT];               /* instance dimension per resource, -1: none */
    uint64_t cap[R_COUNT];          /* host cores, MiB, GPUs                */
    uint64_t *size;                 /* n x R_COUNT                          */
    bool exact;
} mapping_t;

/* Sums over the instances of one family (or a whole workload) for one packer. */
typedef struct agg {
    size_t instances, items, inexact, skipped, unplaced, infeasible;
    uint64_t hosts, bound;
    size_t n_opt;
    uint64_t hosts_opt, opt;
    size_t n_lb;
    uint64_t hosts_lb, lb;
    double stranded[R_COUNT];
    uint64_t stranded_hosts[R_COUNT];
    double seconds;
} agg_t;

/* Published bounds by instance key. */
typedef struct bound {
    char *key;
    long long lb, opt;
} bound_t;

typedef struct bounds {
    bound_t *v;
    size_t n, cap;
} bounds_t;

typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec_t;

/* Scratch for one run: engines and buffers reused across instances. */
typedef struct runner {
    berth_engine_t *engine[3];      /* binpack, spread, firstfit            */
    uint32_t v100;
    long *assign;
    size_t assign_cap;
    int status;                     /* 2 once a packing bug was seen        */
} runner_t;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int strvec_push(strvec_t *s, char *str)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        char **v = realloc(s->v, cap * sizeof *v);
        if (v == NULL) {
            free(str);
            return -1;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    return 0;
}

static void strvec_free(strvec_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Reads a whole file (at most FILE_MAX bytes) into a NUL-terminated buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= FILE_MAX) {
            free(buf);
            buf = NULL;
            break;
        }
        cap *= 2;
        char *b = realloc(buf, cap + 1);
        if (b == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
    }
    if (buf != NULL && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf == NULL)
        return NULL;
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

/* Reads the next unsigned decimal after white space; 0 or -1. */
static int scan_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    while (*s != '\0' && isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    *out = v;
    *p = end;
    return 0;
}

/* ---- bounds ------------------------------------------------------------- */

static int bound_cmp(const void *a, const void *b)
{
    return strcmp(((const bound_t *)a)->key, ((const bound_t *)b)->key);
}

static void bounds_free(bounds_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->v[i].key);
    free(b->v);
    memset(b, 0, sizeof *b);
}

/* Loads a TAB-separated bound file with a header line: name, lb, then ub
 * (bpplib: optimum known when lb == ub) or OPT (vector: -1 unknown).
 * Keys are prefix + name.  Returns 0 or -1 (message on stderr). */
static int bounds_load(bounds_t *b, const char *path, const char *prefix, bool third_is_ub)
{
    char *text = slurp(path, NULL);
    if (text == NULL) {
        fprintf(stderr, "berth-bench quality: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *save = NULL;
    bool header = true;
    for (char *line = strtok_r(text, "\r\n", &save); line != NULL;
         line = strtok_r(NULL, "\r\n", &save)) {
        if (header) {
            header = false;
            continue;
        }
        char *tab1 = strchr(line, '\t');
        if (tab1 == NULL)
            continue;
        *tab1 = '\0';
        char *end;
        long long lb = strtoll(tab1 + 1, &end, 10);
        if (*end != '\t')
            continue;
        long long third = strtoll(end + 1, &end, 10);
        long long opt = third_is_ub ? (third == lb ? lb : -1) : (third > 0 ? third : -1);
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 1024;
            bound_t *v = realloc(b->v, cap * sizeof *v);
            if (v == NULL)
                break;
            b->v = v;
            b->cap = cap;
        }
        if (asprintf(&b->v[b->n].key, "%s%s", prefix, line) < 0)
            break;
        b->v[b->n].lb = lb;
        b->v[b->n].opt = opt;
        b->n++;
    }
    free(text);
    qsort(b->v, b->n, sizeof *b->v, bound_cmp);
    return 0;
}

static const bound_t *bounds_find(const bounds_t *b, const char *key)
{
    bound_t probe = {.key = (char *)key};
    return b->n ? bsearch(&probe, b->v, b->n, sizeof *b->v, bound_cmp) : NULL;
}

/* ---- instance files ----------------------------------------------------- */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Collects the paths, relative to root, of files ending in `suffix` under
 * root/rel, at most WALK_DEPTH_MAX levels down. */
static int walk(const char *root, const char *rel, int depth, const char *suffix, strvec_t *out)
{
    char *dir;
    if (asprintf(&dir, "%s%s%s", root, *rel ? "/" : "", rel) < 0)
        return -1;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (depth == 0)
            fprintf(stderr, "berth-bench quality: cannot open %s: %s\n", dir, strerror(errno));
        free(dir);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *sub, *full;
        if (asprintf(&sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) < 0) {
            rc = -1;
            break;
        }
        if (asprintf(&full, "%s/%s", dir, e->d_name) < 0) {
            free(sub);
            rc = -1;
            break;
        }
        struct stat st;
        if (stat(full, &st) != 0) {
            free(sub);
        } else if (S_ISDIR(st.st_mode)) {
            if (depth < WALK_DEPTH_MAX)
                rc = walk(root, sub, depth + 1, suffix, out);
            free(sub);
        } else if (S_ISREG(st.st_mode) && has_suffix(e->d_name, suffix) &&
                   out->n < FILES_MAX) {
            rc = strvec_push(out, sub);
        } else {
            free(sub);
        }
        free(full);
    }
    closedir(d);
    free(dir);
    return rc;
}

/* The length of the folder part of a relative path (0 at the top). */
static size_t dir_len(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return slash ? (size_t)(slash - rel) : 0;
}

/* Orders paths by folder, then by file name. */
static int path_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t dx = dir_len(x), dy = dir_len(y);
    int c = strncmp(x, y, dx < dy ? dx : dy);
    if (c != 0)
        return c;
    if (dx != dy)
        return dx < dy ? -1 : 1;
    return strcmp(x + dx, y + dx);
}

/* The d of a vector-packing file name class<k>_<n>_<d>_<seed>.vbp; 0 when
 * the name does not say. */
static unsigned vbp_name_d(const char *rel)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    const char *last = strrchr(base, '_');
    if (last == NULL || last == base)
        return 0;
    const char *p = last - 1;
    while (p > base && *p != '_')
        p--;
    if (*p != '_')
        return 0;
    return (unsigned)strtoul(p + 1, NULL, 10);
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Puts the items in a random order drawn from *state (Fisher-Yates). */
static void instance_shuffle(instance_t *in, uint64_t *state)
{
    for (size_t i = in->n; i > 1; i--) {
        size_t j = (size_t)(splitmix64(state) % i);
        for (unsigned k = 0; k < in->d; k++) {
            uint64_t t = in->size[(i - 1) * in->d + k];
            in->size[(i - 1) * in->d + k] = in->size[j * in->d + k];
            in->size[j * in->d + k] = t;
        }
    }
}

static void instance_free(instance_t *in)
{
    free(in->size);
    memset(in, 0, sizeof *in);
}

/* Parses a BPPLIB file (n, C, n sizes) or a VPSolver .vbp file (d, d
 * capacities, n, then n lines of d sizes and a multiplicity).  Returns 0,
 * or -1 with a message. */
static int instance_load(const char *path, bool vbp, instance_t *in)
{
    memset(in, 0, sizeof *in);
    char *text = slurp(path, NULL);
    if (text == NULL) {
        fprintf(stderr, "berth-bench quality: cannot read %s\n", path);
        return -1;
    }
    const char *p = text;
    uint64_t d = 1, n = 0;
    int rc = -1;
    if (vbp && (scan_u64(&p, &d) != 0 || d == 0 || d > 3))
        goto out;
    in->d = (unsigned)d;
    if (!vbp && scan_u64(&p, &n) != 0)
        goto out;
    for (unsigned k = 0; k < in->d; k++)
        if (scan_u64(&p, &in->cap[k]) != 0 || in->cap[k] == 0 || in->cap[k] > UINT32_MAX)
            goto out;
    if (vbp && scan_u64(&p, &n) != 0)
        goto out;
    if (n == 0 || n > ITEMS_MAX)
        goto out;
    size_t cap = (size_t)n;
    in->size = malloc(cap * in->d * sizeof *in->size);
    if (in->size == NULL)
        goto out;
    for (uint64_t line = 0; line < n; line++) {
        uint64_t s[3], mult = 1;
        for (unsigned k = 0; k < in->d; k++)
            if (scan_u64(&p, &s[k]) != 0 || s[k] > in->cap[k])
                goto out;
        if (vbp && (scan_u64(&p, &mult) != 0 || mult > ITEMS_MAX))
            goto out;
        for (uint64_t m = 0; m < mult; m++) {
            if (in->n == cap) {
                if (cap >= ITEMS_MAX)
                    goto out;
                cap *= 2;
                uint64_t *grown = realloc(in->size, cap * in->d * sizeof *grown);
                if (grown == NULL)
                    goto out;
                in->size = grown;
            }
            memcpy(in->size + in->n * in->d, s, in->d * sizeof *s);
            in->n++;
        }
    }
    rc = 0;
out:
    free(text);
    if (rc != 0) {
        fprintf(stderr, "berth-bench quality: %s: not a valid instance\n", path);
        instance_free(in);
    }
    return rc;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The most items one host can hold: per dimension, how many of the
 * smallest sizes fit; the least over dimensions.  0 on allocation failure. */
static uint64_t items_per_host_max(const instance_t *in)
{
    uint64_t *col = malloc(in->n * sizeof *col);
    if (col == NULL)
        return 0;
    uint64_t best = in->n;
    for (unsigned k = 0; k < in->d; k++) {
        for (size_t i = 0; i < in->n; i++)
            col[i] = in->size[i * in->d + k];
        qsort(col, in->n, sizeof *col, u64_cmp);
        uint64_t sum = 0, count = 0;
        for (size_t i = 0; i < in->n && sum + col[i] <= in->cap[k]; i++) {
            sum += col[i];
            count++;
        }
        if (count < best)
            best = count;
    }
    free(col);
    return best;
}

/* The volume bound: max over dimensions of ceil(total / capacity). */
static long long volume_bound(const instance_t *in)
{
    long long best = 1;
    for (unsigned k = 0; k < in->d; k++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < in->n; i++)
            sum += in->size[i * in->d + k];
        long long b = (long long)((sum + in->cap[k] - 1) / in->cap[k]);
        if (b > best)
            best = b;
    }
    return best;
}

/* ---- mapping onto the engine -------------------------------------------- */

enum { M_NONE = -1, M_PLAIN, M_SHIFT, M_ROUND };

typedef struct dimplan {
    int kind;
    uint64_t g, k, cap;
    double inflation;               /* summed growth of items, in capacities */
} dimplan_t;

static uint64_t plan_apply(const dimplan_t *p, int r, uint64_t s, uint64_t c)
{
    switch (p->kind) {
    case M_PLAIN:
        return s / p->g;
    case M_SHIFT:
        return p->k * (s / p->g) + 1;
    default: {
        uint64_t v = (s * p->cap + c - 1) / c;
        return v == 0 && r != R_GPU ? 1 : v;
    }
    }
}

/* How dimension k of `in` goes onto resource r; kind M_NONE when it can't. */
static dimplan_t plan_dim(const instance_t *in, unsigned k, int r, uint64_t per_host)
{
    dimplan_t p = {.kind = M_NONE, .g = in->cap[k]};
    bool zero = false;
    for (size_t i = 0; i < in->n; i++) {
        uint64_t s = in->size[i * in->d + k];
        p.g = gcd64(p.g, s);
        zero |= s == 0;
    }
    uint64_t c = in->cap[k] / p.g;
    uint64_t limit = r == R_CPU ? HOST_CORES_MAX : r == R_GPU ? HOST_GPUS_MAX : UINT32_MAX;
    p.k = per_host + 1;
    if (c <= limit && (!zero || r == R_GPU)) {
        p.kind = M_PLAIN;
        p.cap = c;
    } else if (r != R_GPU && p.k <= limit / (c + 1) && p.k * c + p.k - 1 <= limit) {
        p.kind = M_SHIFT;
        p.cap = p.k * c + p.k - 1;
    } else if (r != R_MEM) {
        p.kind = M_ROUND;
        p.cap = limit;
        for (size_t i = 0; i < in->n; i++) {
            uint64_t s = in->size[i * in->d + k];
            p.inflation += (double)plan_apply(&p, r, s, in->cap[k]) / (double)p.cap -
                (double)s / (double)in->cap[k];
        }
    }
    return p;
}

/* Maps `in` onto the engine's resources (the file comment says how).
 * Returns 0, or -1 when no mapping represents the instance. */
static int map_instance(const instance_t *in, mapping_t *m)
{
    memset(m, 0, sizeof *m);
    for (int r = 0; r < R_COUNT; r++)
        m->src[r] = -1;
    uint64_t per_host = items_per_host_max(in);
    if (per_host == 0 || per_host >= HOST_CORES_MAX)
        return -1;
    m->size = calloc(in->n * R_COUNT, sizeof *m->size);
    if (m->size == NULL)
        return -1;
    m->exact = true;
    if (in->d == 1) {
        uint64_t g = in->cap[0];
        bool zero = false;
        for (size_t i = 0; i < in->n; i++) {
            g = gcd64(g, in->size[i]);
            zero |= in->size[i] == 0;
        }
        if (zero)
            goto fail;
        m->src[R_MEM] = 0;          /* reported as memory (file comment)    */
        if (in->cap[0] / g <= HOST_CORES_MAX) {
            m->cap[R_CPU] = in->cap[0] / g;
            m->cap[R_MEM] = per_host;
            for (size_t i = 0; i < in->n; i++) {
                m->size[i * R_COUNT + R_CPU] = in->size[i] / g;
                m->size[i * R_COUNT + R_MEM] = 1;
            }
        } else {
            uint64_t scale = HOST_CORES_MAX - per_host;
            m->cap[R_CPU] = HOST_CORES_MAX;
            m->cap[R_MEM] = in->cap[0];
            for (size_t i = 0; i < in->n; i++) {
                m->size[i * R_COUNT + R_CPU] = 1 + in->size[i] * scale / in->cap[0];
                m->size[i * R_COUNT + R_MEM] = in->size[i];
            }
        }
        return 0;
    }
    if (in->d != 3)
        goto fail;
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    dimplan_t plan[3][R_COUNT];
    for (unsigned k = 0; k < 3; k++)
        for (int r = 0; r < R_COUNT; r++)
            plan[k][r] = plan_dim(in, k, r, per_host);
    int best = -1, best_inexact = 4;
    double best_inflation = 0;
    for (int p = 0; p < 6; p++) {
        int inexact = 0;
        double inflation = 0;
        bool ok = true;
        for (int r = 0; r < R_COUNT; r++) {
            const dimplan_t *dp = &plan[perms[p][r]][r];
            ok &= dp->kind != M_NONE;
            inexact += dp->kind == M_ROUND;
            inflation += dp->inflation;
        }
        if (ok && (inexact < best_inexact ||
                   (inexact == best_inexact && inflation < best_inflation))) {
            best = p;
            best_inexact = inexact;
            best_inflation = inflation;
        }
    }
    if (best < 0)
        goto fail;
    m->exact = best_inexact == 0;
    for (int r = 0; r < R_COUNT; r++) {
        unsigned k = (unsigned)perms[best][r];
        const dimplan_t *dp = &plan[k][r];
        m->src[r] = (int)k;
        m->cap[r] = dp->cap;
        for (size_t i = 0; i < in->n; i++)
            m->size[i * R_COUNT + r] = plan_apply(dp, r, in->size[i * 3 + k], in->cap[k]);
    }
    return 0;
fail:
    free(m->size);
    m->size = NULL;
    return -1;
}

/* ---- packers ------------------------------------------------------------ */

static const double *ffd_keys;

static int ffd_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (ffd_keys[x] != ffd_keys[y])
        return ffd_keys[x] > ffd_keys[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* First-fit decreasing of n items of d sizes (row-major) into bins of
 * capacities cap[0..d-1] (a 0 capacity dimension holds only 0 sizes).
 * Writes each item's bin to assign[] and returns the bins used, or
 * (size_t)-1 on allocation failure. */
static size_t ffd_pack(size_t n, unsigned d, const uint64_t *size, const uint64_t *cap,
                       long *assign)
{
    size_t *order = malloc(n * sizeof *order);
    double *key = malloc(n * sizeof *key);
    uint64_t *load = calloc(n * d, sizeof *load);
    size_t bins = 0;
    if (order == NULL || key == NULL || load == NULL) {
        bins = (size_t)-1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        key[i] = 0;
        for (unsigned k = 0; k < d; k++)
            if (cap[k] > 0)
                key[i] += (double)size[i * d + k] / (double)cap[k];
    }
    ffd_keys = key;
    qsort(order, n, sizeof *order, ffd_cmp);
    for (size_t j = 0; j < n; j++) {
        size_t i = order[j], b;
        const uint64_t *s = size + i * d;
        for (b = 0; b < bins; b++) {
            unsigned k = 0;
            while (k < d && load[b * d + k] + s[k] <= cap[k])
                k++;
            if (k == d)
                break;
        }
        if (b == bins)
            bins++;
        for (unsigned k = 0; k < d; k++)
            load[b * d + k] += s[k];
        assign[i] = (long)b;
    }
out:
    free(order);
    free(key);
    free(load);
    return bins;
}

/* Places the items one by one with engine e (reset first), opening hosts
 * on demand.  Writes each item's host number (-1: not placed) and returns
 * the hosts opened, or (size_t)-1 when the engine refused a host. */
static size_t engine_pack(runner_t *run, berth_engine_t *e, const mapping_t *m, size_t n,
                          long *assign)
{
    berth_engine_reset(e);
    size_t hosts = 0;
    char name[32], key[32];
    bool reported = false;
    for (size_t i = 0; i < n; i++) {
        const uint64_t *s = m->size + i * R_COUNT;
        berth_request_t req;
        memset(&req, 0, sizeof req);
        req.os = BERTH_OS_LINUX;
        req.demand.millicores = (uint32_t)(s[R_CPU] * 1000u);
        req.demand.requested_millicores = req.demand.millicores;
        req.demand.memory_mib = (uint32_t)s[R_MEM];
        req.demand.gpu_count = (uint32_t)s[R_GPU];
        req.demand.gpu_sku = req.demand.gpu_count > 0 ? run->v100 : 0;
        snprintf(key, sizeof key, "g%zu", i);
        berth_placement_t pl;
        berth_error_t err;
        int rc = berth_engine_request_place(e, key, &req, &pl, &err);
        if (rc == BERTH_ENOSPC && hosts < n) {
            snprintf(name, sizeof name, "h%zu", hosts);
            berth_host_t h = {
                .name = name,
                .cores = (uint32_t)m->cap[R_CPU],
                .memory_mib = (uint32_t)m->cap[R_MEM],
                .gpu_sku = m->cap[R_GPU] > 0 ? "V100" : NULL,
                .gpu_count = (uint32_t)m->cap[R_GPU],
                .os = BERTH_OS_LINUX,
                .state = BERTH_HOST_READY,
            };
            berth_error_t herr;
            if (berth_engine_host_add(e, &h, &herr) != 0) {
                fprintf(stderr, "berth-bench quality: adding a host: %s\n", herr.message);
                return (size_t)-1;
            }
            hosts++;
            rc = berth_engine_request_place(e, key, &req, &pl, &err);
        }
        if (rc != 0) {
            if (!reported)
                fprintf(stderr, "berth-bench quality: item %zu not placed: %s\n", i,
                        err.message);
            reported = true;
            assign[i] = -1;
            continue;
        }
        assign[i] = strtol(pl.host + 1, NULL, 10);
    }
    return hosts;
}

/* Checks a packing against the original instance and adds it to *a.
 * Returns false when it is over capacity or below a lower bound. */
static bool account(const instance_t *in, const mapping_t *m, const long *assign,
                    size_t bins, agg_t *a)
{
    uint64_t *load = calloc((bins + 1) * in->d, sizeof *load);
    size_t *count = calloc(bins + 1, sizeof *count);
    bool ok = load != NULL && count != NULL;
    size_t used = 0, unplaced = 0;
    for (size_t i = 0; ok && i < in->n; i++) {
        if (assign[i] < 0 || (size_t)assign[i] >= bins) {
            unplaced++;
            continue;
        }
        size_t b = (size_t)assign[i];
        used += count[b]++ == 0;
        for (unsigned k = 0; k < in->d; k++)
            load[b * in->d + k] += in->size[i * in->d + k];
    }
    bool feasible = true;
    for (size_t b = 0; ok && b < bins; b++) {
        if (count[b] == 0)
            continue;
        for (unsigned k = 0; k < in->d; k++)
            feasible &= load[b * in->d + k] <= in->cap[k];
        for (int r = 0; r < R_COUNT; r++) {
            int k = m->src[r];
            if (k < 0)
                continue;
            a->stranded[r] +=
                (double)(in->cap[k] - load[b * in->d + (unsigned)k]) / (double)in->cap[k];
            a->stranded_hosts[r]++;
        }
    }
    free(load);
    free(count);
    a->instances++;
    a->items += in->n;
    a->inexact += !m->exact;
    a->unplaced += unplaced;
    a->hosts += used;
    a->bound += (uint64_t)(in->opt > 0 ? in->opt : in->lb);
    if (in->opt > 0) {
        a->n_opt++;
        a->hosts_opt += used;
        a->opt += (uint64_t)in->opt;
    } else {
        a->n_lb++;
        a->hosts_lb += used;
        a->lb += (uint64_t)in->lb;
    }
    bool below = unplaced == 0 && (long long)used < (in->opt > 0 ? in->opt : in->lb);
    if (!ok || !feasible || below) {
        a->infeasible++;
        return false;
    }
    return true;
}

static void agg_add(agg_t *to, const agg_t *from)
{
    to->instances += from->instances;
    to->items += from->items;
    to->inexact += from->inexact;
    to->skipped += from->skipped;
    to->unplaced += from->unplaced;
    to->infeasible += from->infeasible;
    to->hosts += from->hosts;
    to->bound += from->bound;
    to->n_opt += from->n_opt;
    to->hosts_opt += from->hosts_opt;
    to->opt += from->opt;
    to->n_lb += from->n_lb;
    to->hosts_lb += from->hosts_lb;
    to->lb += from->lb;
    for (int r = 0; r < R_COUNT; r++) {
        to->stranded[r] += from->stranded[r];
        to->stranded_hosts[r] += from->stranded_hosts[r];
    }
    to->seconds += from->seconds;
}

/* Runs every packer on one instance, adding to agg[packer].  Returns 0, or
 * -1 when the instance was skipped. */
static int run_instance(runner_t *run, const char *name, instance_t *in, int workload,
                        agg_t *agg)
{
    mapping_t m;
    if (map_instance(in, &m) != 0) {
        for (int p = 0; p < P_COUNT; p++)
            agg[p].skipped++;
        return -1;
    }
    if (run->assign_cap < in->n) {
        long *a = realloc(run->assign, in->n * sizeof *a);
        if (a == NULL) {
            free(m.size);
            return -1;
        }
        run->assign = a;
        run->assign_cap = in->n;
    }
    for (int p = 0; p < P_COUNT; p++) {
        if (p == P_FFD_MAPPED && workload != W_VECTOR)
            continue;
        double t0 = now_seconds();
        size_t bins;
        if (p == P_FFD)
            bins = ffd_pack(in->n, in->d, in->size, in->cap, run->assign);
        else if (p == P_FFD_MAPPED)
            bins = ffd_pack(in->n, R_COUNT, m.size, m.cap, run->assign);
        else
            bins = engine_pack(run, run->engine[p], &m, in->n, run->assign);
        agg[p].seconds += now_seconds() - t0;
        if (bins == (size_t)-1) {
            run->status = 2;
            agg[p].infeasible++;
            continue;
        }
        if (p < P_FFD) {
            berth_engine_stats_t st;
            berth_engine_stats(run->engine[p], &st);
            if (st.hosts != bins)
                fprintf(stderr, "berth-bench quality: %s: the engine holds %zu hosts, %zu opened\n",
                        name, st.hosts, bins);
        }
        if (!account(in, &m, run->assign, bins, &agg[p])) {
            fprintf(stderr, "berth-bench quality: %s: %s's packing is over capacity or below "
                    "the lower bound %lld\n", name, packer_names[p],
                    in->opt > 0 ? in->opt : in->lb);
            run->status = 2;
        }
    }
    free(m.size);
    return 0;
}

/* ---- results ------------------------------------------------------------ */

static json_t *ratio(uint64_t num, uint64_t den)
{
    if (den == 0)
        return json_null();
    return json_real(round((double)num / (double)den * 10000.0) / 10000.0);
}

static json_t *fraction(double sum, uint64_t n)
{
    if (n == 0)
        return json_null();
    return json_real(round(sum / (double)n * 10000.0) / 10000.0);
}

static int emit_rows(const char *workload, const char *family, const char *order,
                     const agg_t *agg)
{
    int rc = 0;
    for (int p = 0; p < P_COUNT; p++) {
        const agg_t *a = &agg[p];
        if (a->instances == 0 && a->skipped == 0)
            continue;
        if (p == P_FFD_MAPPED && strcmp(workload, "vector") != 0)
            continue;
        json_t *row = json_object();
        json_object_set_new(row, "bench", json_string("quality"));
        json_object_set_new(row, "workload", json_string(workload));
        json_object_set_new(row, "family", json_string(family));
        json_object_set_new(row, "policy", json_string(packer_names[p]));
        json_object_set_new(row, "order", json_string(order));
        json_object_set_new(row, "instances", json_integer((json_int_t)a->instances));
        json_object_set_new(row, "items", json_integer((json_int_t)a->items));
        json_object_set_new(row, "hosts_used", json_integer((json_int_t)a->hosts));
        json_object_set_new(row, "optimum_or_lb", json_integer((json_int_t)a->bound));
        json_object_set_new(row, "ratio_to_optimum", ratio(a->hosts_opt, a->opt));
        json_object_set_new(row, "instances_with_optimum", json_integer((json_int_t)a->n_opt));
        json_object_set_new(row, "ratio_to_lower_bound", ratio(a->hosts_lb, a->lb));
        json_object_set_new(row, "instances_with_lower_bound",
                            json_integer((json_int_t)a->n_lb));
        json_object_set_new(row, "hosts_vs_firstfit",
                            ratio(a->hosts, agg[P_FIRSTFIT].hosts));
        json_object_set_new(row, "stranded_cpu",
                            fraction(a->stranded[R_CPU], a->stranded_hosts[R_CPU]));
        json_object_set_new(row, "stranded_memory",
                            fraction(a->stranded[R_MEM], a->stranded_hosts[R_MEM]));
        json_object_set_new(row, "stranded_gpu",
                            fraction(a->stranded[R_GPU], a->stranded_hosts[R_GPU]));
        json_object_set_new(row, "seconds", json_real(round(a->seconds * 1e6) / 1e6));
        json_object_set_new(row, "instances_skipped", json_integer((json_int_t)a->skipped));
        json_object_set_new(row, "instances_inexact", json_integer((json_int_t)a->inexact));
        json_object_set_new(row, "unplaced", json_integer((json_int_t)a->unplaced));
        json_object_set_new(row, "infeasible", json_integer((json_int_t)a->infeasible));
        if (bench_emit(row) != 0)
            rc = -1;
    }
    return rc;
}

/* ---- workloads ---------------------------------------------------------- */

static int runner_init(runner_t *run, unsigned long long seed)
{
    memset(run, 0, sizeof *run);
    static const berth_policy_t policies[3] = {BERTH_POLICY_BINPACK, BERTH_POLICY_SPREAD,
                                               BERTH_POLICY_FIRSTFIT};
    for (int p = 0; p < 3; p++) {
        berth_engine_options_t o;
        berth_engine_options_init(&o);
        o.policy = policies[p];
        o.seed = seed;
        berth_error_t err;
        if (berth_engine_new(&o, &run->engine[p], &err) != 0) {
            fprintf(stderr, "berth-bench quality: engine: %s\n", err.message);
            return -1;
        }
    }
    if (berth_engine_gpu_sku_find(run->engine[0], "V100", &run->v100) == NULL) {
        fprintf(stderr, "berth-bench quality: the engine has no V100 GPU SKU\n");
        return -1;
    }
    return 0;
}

static void runner_free(runner_t *run)
{
    for (int p = 0; p < 3; p++)
        berth_engine_free(run->engine[p]);
    free(run->assign);
}

/* Loads the published bounds of a workload.  Missing vector bound files
 * leave the volume bound only. */
static int workload_bounds(const char *traces, int w, bounds_t *b)
{
    char *path;
    if (w == W_BPPLIB) {
        if (asprintf(&path, "%s/bpplib/bounds.tsv", traces) < 0)
            return -1;
        int rc = bounds_load(b, path, "", true);
        free(path);
        return rc;
    }
    static const char *const sets[] = {"New", "Panigrahy", "Triplet"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%s/", sets[i]);
        if (asprintf(&path, "%s/vector-packing-mommessin2024/%s_summary_known.tsv", traces,
                     sets[i]) < 0)
            return -1;
        bounds_load(b, path, prefix, false);
        free(path);
    }
    return 0;
}

/* The bound key of an instance: bpplib, its file name without ".txt";
 * vector, "<set>/<file name without .vbp>". */
static void bound_key(int w, const char *rel, char *key, size_t cap)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    size_t len = strlen(base);
    size_t stem = len > 4 ? len - 4 : len;
    if (w == W_BPPLIB) {
        snprintf(key, cap, "%.*s", (int)stem, base);
        return;
    }
    size_t set = strcspn(rel, "/");
    snprintf(key, cap, "%.*s/%.*s", (int)set, rel, (int)stem, base);
}

static int run_workload(const quality_options_t *o, int w, runner_t *run)
{
    const char *wname = w == W_BPPLIB ? "bpplib" : "vector";
    char *root;
    if (asprintf(&root, "%s/%s/instances", o->traces,
                 w == W_BPPLIB ? "bpplib" : "vector-packing-mommessin2024") < 0)
        return -1;
    bounds_t bounds = {0};
    strvec_t files = {0};
    int rc = -1;
    if (workload_bounds(o->traces, w, &bounds) != 0)
        goto out;
    if (walk(root, "", 0, w == W_BPPLIB ? ".txt" : ".vbp", &files) != 0)
        goto out;
    if (w == W_VECTOR) {            /* the three-dimensional instances only */
        size_t kept = 0;
        for (size_t i = 0; i < files.n; i++) {
            if (vbp_name_d(files.v[i]) == 3)
                files.v[kept++] = files.v[i];
            else
                free(files.v[i]);
        }
        files.n = kept;
    }
    qsort(files.v, files.n, sizeof *files.v, path_cmp);
    size_t limit = o->limit_given ? o->limit
                                  : (w == W_BPPLIB ? DEFAULT_LIMIT_BPPLIB : DEFAULT_LIMIT_VECTOR);
    const char *order = o->shuffled ? "shuffled" : "file";
    uint64_t rng = o->seed;
    agg_t total[P_COUNT];
    memset(total, 0, sizeof total);
    rc = 0;
    for (size_t i = 0; i < files.n;) {
        size_t dl = dir_len(files.v[i]), j = i + 1;
        while (j < files.n && dir_len(files.v[j]) == dl &&
               strncmp(files.v[j], files.v[i], dl) == 0)
            j++;
        char family[256];
        snprintf(family, sizeof family, "%.*s", (int)dl, dl ? files.v[i] : ".");
        size_t m = j - i, take = limit == 0 || limit > m ? m : limit;
        agg_t agg[P_COUNT];
        memset(agg, 0, sizeof agg);
        for (size_t t = 0; t < take; t++) {
            const char *rel = files.v[i + t * m / take];
            char *path, key[512];
            if (asprintf(&path, "%s/%s", root, rel) < 0) {
                rc = -1;
                break;
            }
            instance_t in;
            if (instance_load(path, w == W_VECTOR, &in) != 0) {
                for (int p = 0; p < P_COUNT; p++)
                    agg[p].skipped++;
                free(path);
                continue;
            }
            if (o->shuffled)
                instance_shuffle(&in, &rng);
            bound_key(w, rel, key, sizeof key);
            const bound_t *b = bounds_find(&bounds, key);
            in.lb = volume_bound(&in);
            in.opt = -1;
            if (b != NULL) {
                if (b->lb > in.lb)
                    in.lb = b->lb;
                in.opt = b->opt;
            }
            run_instance(run, rel, &in, w, agg);
            instance_free(&in);
            free(path);
        }
        if (emit_rows(wname, family, order, agg) != 0)
            rc = -1;
        for (int p = 0; p < P_COUNT; p++)
            agg_add(&total[p], &agg[p]);
        i = j;
    }
    if (files.n == 0)
        fprintf(stderr, "berth-bench quality: no %s instances under %s\n", wname, root);
    else if (emit_rows(wname, "all", order, total) != 0)
        rc = -1;
    if (files.n == 0)
        rc = -1;
out:
    strvec_free(&files);
    bounds_free(&bounds);
    free(root);
    return rc;
}

static void quality_usage(FILE *f)
{
    fputs("usage: berth-bench quality [--traces DIR] "
          "[--set bpplib|vector|alibaba-2017|alibaba-2025|gpu-spot2026|\n"
          "                           gpu-pai2020|gpu-spot2026-multi|gpu-pai2020-multi|locality|all]\n"
          "                           [--limit N] [--order file|shuffled] [--csv DIR] [--seed S]\n"
          "  --traces DIR  the traces folder (default: $BERTH_TRACES)\n"
          "  --set SET     the workload (default: all)\n"
          "  --limit N     instances per family, tasks per Alibaba workload; 0: all\n"
          "                (default: 50 per BPPLIB family, 20 per vector class, 20,000\n"
          "                tasks of Alibaba 2017, all of Alibaba 2025)\n"
          "  --order O     items in file order (default) or shuffled by the seed\n"
          "  --csv DIR     also write DIR/quality.csv (and DIR/replay.csv for Alibaba)\n"
          "  --seed S      the engines' tie-breaking seed and the shuffle's (default 0)\n",
          f);
}

int bench_quality_main(int argc, char **argv)
{
    quality_options_t o = {.set = "all"};
    o.traces = getenv("BERTH_TRACES");
#ifdef BERTH_BENCH_TRACES
    if (o.traces == NULL || *o.traces == '\0')
        o.traces = BERTH_BENCH_TRACES;
#endif
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            quality_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "berth-bench quality: %s needs a value (or is unknown)\n", a);
            quality_usage(stderr);
            return 1;
        }
        const char *v = argv[++i];
        char *end;
        if (strcmp(a, "--traces") == 0) {
            o.traces = v;
        } else if (strcmp(a, "--set") == 0) {
            o.set = v;
        } else if (strcmp(a, "--order") == 0) {
            if (strcmp(v, "file") != 0 && strcmp(v, "shuffled") != 0) {
                fprintf(stderr, "berth-bench quality: bad --order '%s'\n", v);
                return 1;
            }
            o.shuffled = v[0] == 's';
        } else if (strcmp(a, "--csv") == 0) {
            bench_output_csv_dir(v);
        } else if (strcmp(a, "--limit") == 0 || strcmp(a, "--seed") == 0) {
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0' || v[0] == '-') {
                fprintf(stderr, "berth-bench quality: bad %s '%s'\n", a, v);
                return 1;
            }
            if (a[2] == 'l') {
                o.limit = (size_t)n;
                o.limit_given = true;
            } else {
                o.seed = n;
            }
        } else {
            fprintf(stderr, "berth-bench quality: unknown option %s\n", a);
            quality_usage(stderr);
            return 1;
        }
    }
    static const char *const sets[] = {"bpplib", "vector", "alibaba-2017", "alibaba-2025",
                                       "gpu-spot2026", "gpu-pai2020", "gpu-spot2026-multi",
                                       "gpu-pai2020-multi", "locality"};
    bool all = strcmp(o.set, "all") == 0, known = all;
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++)
        known |= strcmp(o.set, sets[s]) == 0;
    if (!known) {
        fprintf(stderr, "berth-bench quality: unknown set '%s'\n", o.set);
        return 1;
    }
    if (o.traces == NULL || *o.traces == '\0') {
        fprintf(stderr, "berth-bench quality: no traces folder: give --traces DIR or set "
                "BERTH_TRACES\n");
        return 1;
    }
    runner_t run;
    if (runner_init(&run, o.seed) != 0) {
        runner_free(&run);
        return 1;
    }
    int status = 0;
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        if (!all && strcmp(o.set, sets[s]) != 0)
            continue;
        int rc;
        if (s < 2) {
            rc = run_workload(&o, s == 0 ? W_BPPLIB : W_VECTOR, &run);
        } else if (strcmp(sets[s], "locality") == 0) {
            rc = bench_locality_run(o.seed);
        } else {
            /* By default the 2017 batch trace is cut to its first 20,000
             * tasks (3.5M groups, about 30 s with the linear baseline);
             * --limit 0 replays all 80,553 (11M groups, minutes). */
            replay_options_t ro = {.traces_dir = o.traces,
                                   .limit = o.limit_given ? o.limit
                                          : strcmp(sets[s], "alibaba-2017") == 0 ? 20000 : 0,
                                   .seed = o.seed};
            rc = bench_replay_run(sets[s], &ro);
        }
        if (rc != 0 && status == 0)
            status = 1;
    }
    if (run.status != 0)
        status = run.status;
    runner_free(&run);
    return status;
}
