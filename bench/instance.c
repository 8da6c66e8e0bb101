/*
 * instance.c: reads the packing instances of berth-bench's `quality`
 * scenario and their published bounds (instance.h; the formats are in
 * quality.c's opening comment).  Every file is bounded in size, every
 * folder walk in depth and count; it never writes a file.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "instance.h"

#define ITEMS_MAX 1000000u          /* items in one instance                */
#define FILE_MAX (64u << 20)        /* bytes in one instance or bound file  */
#define WALK_DEPTH_MAX 4            /* folder levels under instances/       */
#define FILES_MAX 100000u           /* instance files in one workload       */

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

void bench_strvec_free(strvec_t *s)
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

void bench_bounds_free(bounds_t *b)
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

const bound_t *bench_bounds_find(const bounds_t *b, const char *key)
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
int bench_instance_walk(const char *root, const char *rel, int depth, const char *suffix, strvec_t *out)
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
                rc = bench_instance_walk(root, sub, depth + 1, suffix, out);
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
size_t bench_instance_dir_len(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return slash ? (size_t)(slash - rel) : 0;
}

/* Orders paths by folder, then by file name. */
int bench_instance_path_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t dx = bench_instance_dir_len(x), dy = bench_instance_dir_len(y);
    int c = strncmp(x, y, dx < dy ? dx : dy);
    if (c != 0)
        return c;
    if (dx != dy)
        return dx < dy ? -1 : 1;
    return strcmp(x + dx, y + dx);
}

/* The d of a vector-packing file name class<k>_<n>_<d>_<seed>.vbp; 0 when
 * the name does not say. */
unsigned bench_instance_vbp_d(const char *rel)
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
void bench_instance_shuffle(instance_t *in, uint64_t *state)
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

void bench_instance_free(instance_t *in)
{
    free(in->size);
    memset(in, 0, sizeof *in);
}

/* Parses a BPPLIB file (n, C, n sizes) or a VPSolver .vbp file (d, d
 * capacities, n, then n lines of d sizes and a multiplicity).  Returns 0,
 * or -1 with a message. */
int bench_instance_load(const char *path, bool vbp, instance_t *in)
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
        bench_instance_free(in);
    }
    return rc;
}

/* The volume bound: max over dimensions of ceil(total / capacity). */
long long bench_instance_volume_bound(const instance_t *in)
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

/* Loads the published bounds of a workload.  Missing vector bound files
 * leave the volume bound only. */
int bench_bounds_read(const char *traces, int w, bounds_t *b)
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
void bench_bound_key(int w, const char *rel, char *key, size_t cap)
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
