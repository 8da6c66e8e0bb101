/*
 * instance.h: the packing instances of berth-bench's `quality` scenario
 * (instance.c): the BPPLIB and vector-packing files, their published
 * bounds, and the instances read from them.  It only reads files under the
 * traces folder: it never writes one and never runs a packer.
 */
#ifndef BERTH_BENCH_INSTANCE_H
#define BERTH_BENCH_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { W_BPPLIB, W_VECTOR };

/* One instance: d dimensions (1 or 3), capacities, n items of d sizes. */
typedef struct instance {
    unsigned d;
    uint64_t cap[3];
    size_t n;
    uint64_t *size;                 /* n x d, row-major                     */
    long long lb;                   /* the larger of the published and volume bounds */
    long long opt;                  /* -1: unknown                          */
} instance_t;

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

/* Frees the strings of *s and its array, and empties it. */
void bench_strvec_free(strvec_t *s);

/* Frees the keys of *b and its array, and empties it. */
void bench_bounds_free(bounds_t *b);

/* The bound of `key` in *b (sorted by bench_bounds_read()), or NULL. */
const bound_t *bench_bounds_find(const bounds_t *b, const char *key);

/* Loads the published bounds of a workload.  Missing vector bound files
 * leave the volume bound only. */
int bench_bounds_read(const char *traces, int w, bounds_t *b);

/* The bound key of an instance: bpplib, its file name without ".txt";
 * vector, "<set>/<file name without .vbp>". */
void bench_bound_key(int w, const char *rel, char *key, size_t cap);

/* Collects the paths, relative to root, of files ending in `suffix` under
 * root/rel, at most WALK_DEPTH_MAX levels down (start with rel "" and
 * depth 0); the strings are the caller's (bench_strvec_free()).  Returns 0
 * or -1. */
int bench_instance_walk(const char *root, const char *rel, int depth, const char *suffix,
                        strvec_t *out);

/* The length of the folder part of a relative path (0 at the top). */
size_t bench_instance_dir_len(const char *rel);

/* Orders paths by folder, then by file name. (qsort() on char *). */
int bench_instance_path_cmp(const void *a, const void *b);

/* The d of a vector-packing file name class<k>_<n>_<d>_<seed>.vbp; 0 when
 * the name does not say. */
unsigned bench_instance_vbp_d(const char *rel);

/* Puts the items in a random order drawn from *state (Fisher-Yates). */
void bench_instance_shuffle(instance_t *in, uint64_t *state);

/* Parses a BPPLIB file (n, C, n sizes) or a VPSolver .vbp file (d, d
 * capacities, n, then n lines of d sizes and a multiplicity).  Returns 0,
 * or -1 with a message.  Free it with
 * bench_instance_free(). */
int bench_instance_load(const char *path, bool vbp, instance_t *in);

/* Frees the sizes of an instance bench_instance_load() filled. */
void bench_instance_free(instance_t *in);

/* The volume bound: max over dimensions of ceil(total / capacity). */
long long bench_instance_volume_bound(const instance_t *in);

#endif /* BERTH_BENCH_INSTANCE_H */
