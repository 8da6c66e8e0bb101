/*
 * locality.c: image locality measured (locality.h).
 *
 * A cluster of LOC_HOSTS hosts (half 16 cores / 64 GiB, half 32 / 128)
 * takes LOC_GROUPS groups, one after another; once LOC_LIVE groups are
 * live, each arrival first releases a live group drawn uniformly, which
 * holds the cluster near 75% of its cores.  A group asks for 1 to 4 cores
 * and 1 to 8 GiB and runs one image (two for a third of the groups), drawn
 * from LOC_IMAGES images with Zipf-like popularity (weight 1 / rank).  Every
 * host caches the images of the groups it ran, at most LOC_CACHE of them,
 * evicting the least recently used; after each placement the host's cache
 * is given to the engine (berth_engine_host_images_set()), as an agent
 * reporting its images would.
 *
 * The same seeded input is placed by binpack with image locality on and
 * with it off.  Figures: cached_share (placements whose host held all the
 * group's images, over placements: the engine's counters), image_hit_share
 * (images found cached, over images needed), hosts_used_peak and
 * hosts_used_end (hosts holding a group), rejected, and placements/s
 * (engine calls only; cache upkeep excluded).
 */
#include "locality.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "berth.h"
#include "output.h"
#include "util.h"

#define LOC_HOSTS 500u
#define LOC_GROUPS 60000u
#define LOC_LIVE 3600u
#define LOC_IMAGES 400u
#define LOC_CACHE 24u

typedef struct loc_group {
    uint16_t cores, gb;
    uint16_t nimages;
    uint16_t images[2];
} loc_group_t;

typedef struct loc_host {
    uint16_t n;
    uint16_t image[LOC_CACHE];
    uint64_t used[LOC_CACHE];       /* the LRU clock at the last use        */
    uint32_t groups;
} loc_host_t;

typedef struct loc_result {
    uint64_t placed, rejected, images_needed, images_hit;
    uint64_t hosts_used_peak, hosts_used_end;
    double cached_share, seconds;
} loc_result_t;

/* A Zipf-like draw: rank r (0-based) with weight 1 / (r + 1). */
static uint16_t zipf(const double *cdf, uint64_t *s)
{
    double u = (double)(bench_next(s) >> 11) / 9007199254740992.0 * cdf[LOC_IMAGES - 1];
    uint32_t lo = 0, hi = LOC_IMAGES - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint16_t)lo;
}

static bool cache_has(const loc_host_t *h, uint16_t image)
{
    for (uint16_t i = 0; i < h->n; i++)
        if (h->image[i] == image)
            return true;
    return false;
}

static void cache_touch(loc_host_t *h, uint16_t image, uint64_t clock)
{
    for (uint16_t i = 0; i < h->n; i++) {
        if (h->image[i] == image) {
            h->used[i] = clock;
            return;
        }
    }
    uint16_t at = h->n;
    if (h->n == LOC_CACHE) {
        at = 0;
        for (uint16_t i = 1; i < h->n; i++)
            if (h->used[i] < h->used[at])
                at = i;
    } else {
        h->n++;
    }
    h->image[at] = image;
    h->used[at] = clock;
}

static int run(bool locality, const loc_group_t *groups, const uint32_t *victims,
               char (*names)[32], loc_result_t *r)
{
    memset(r, 0, sizeof *r);
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    eo.image_locality = locality ? 1 : 0;
    berth_engine_t *e;
    berth_error_t err;
    if (berth_engine_new(&eo, &e, &err) != 0) {
        fprintf(stderr, "berth-bench: locality: %s\n", err.message);
        return -1;
    }
    loc_host_t *hosts = calloc(LOC_HOSTS, sizeof *hosts);
    uint32_t *where = malloc(LOC_GROUPS * sizeof *where);
    uint32_t *live = malloc(LOC_GROUPS * sizeof *live);
    int rc = hosts != NULL && where != NULL && live != NULL ? 0 : -1;
    for (uint32_t i = 0; i < LOC_HOSTS && rc == 0; i++) {
        char name[32];
        snprintf(name, sizeof name, "l%04u", i);
        berth_host_t h;
        memset(&h, 0, sizeof h);
        h.name = name;
        h.cores = i % 2 ? 32 : 16;
        h.memory_mib = h.cores * 4u * 1024u;
        h.os = BERTH_OS_LINUX;
        if (berth_engine_host_add(e, &h, &err) != 0) {
            fprintf(stderr, "berth-bench: locality: %s\n", err.message);
            rc = -1;
        }
    }
    uint32_t nlive = 0;
    uint64_t used = 0, engine_ns = 0;
    const char *list[LOC_CACHE];
    for (uint32_t g = 0; g < LOC_GROUPS && rc == 0; g++) {
        char key[16];
        if (nlive == LOC_LIVE) {
            uint32_t at = victims[g] % nlive;
            uint32_t v = live[at];
            live[at] = live[--nlive];
            snprintf(key, sizeof key, "g%u", v);
            uint64_t t0 = bench_now_ns();
            int rel = berth_engine_group_release(e, key, NULL);
            engine_ns += bench_now_ns() - t0;
            if (rel != 0) {
                fprintf(stderr, "berth-bench: locality: release of %s failed\n", key);
                rc = -1;
                break;
            }
            if (--hosts[where[v]].groups == 0)
                used--;
        }
        const loc_group_t *q = &groups[g];
        berth_request_t req;
        memset(&req, 0, sizeof req);
        req.os = BERTH_OS_LINUX;
        req.demand.millicores = q->cores * 1000u;
        req.demand.requested_millicores = req.demand.millicores;
        req.demand.memory_mib = q->gb * 1024u;
        for (uint16_t k = 0; k < q->nimages; k++)
            req.images[req.nimages++] = berth_image_hash(names[q->images[k]]);
        snprintf(key, sizeof key, "g%u", g);
        berth_placement_t pl;
        uint64_t t0 = bench_now_ns();
        int prc = berth_engine_request_place(e, key, &req, &pl, NULL);
        engine_ns += bench_now_ns() - t0;
        if (prc != 0) {
            r->rejected++;
            continue;
        }
        r->placed++;
        uint32_t h = (uint32_t)strtoul(pl.host + 1, NULL, 10);
        where[g] = h;
        live[nlive++] = g;
        if (hosts[h].groups++ == 0 && ++used > r->hosts_used_peak)
            r->hosts_used_peak = used;
        loc_host_t *lh = &hosts[h];
        for (uint16_t k = 0; k < q->nimages; k++) {
            r->images_needed++;
            r->images_hit += cache_has(lh, q->images[k]);
            cache_touch(lh, q->images[k], (uint64_t)g * 4 + k + 1);
        }
        for (uint16_t k = 0; k < lh->n; k++)
            list[k] = names[lh->image[k]];
        if (berth_engine_host_images_set(e, pl.host, list, lh->n, &err) != 0) {
            fprintf(stderr, "berth-bench: locality: %s\n", err.message);
            rc = -1;
        }
    }
    r->hosts_used_end = used;
    berth_engine_stats_t st;
    berth_engine_stats(e, &st);
    r->cached_share = st.placements_with_images > 0
                          ? (double)st.placements_images_cached / (double)st.placements_with_images
                          : 0.0;
    r->seconds = (double)engine_ns / 1e9;
    free(hosts);
    free(where);
    free(live);
    berth_engine_free(e);
    return rc;
}

static void emit(bool locality, const loc_result_t *r, const loc_result_t *off)
{
    json_t *row = json_object();
    json_object_set_new(row, "bench", json_string("locality"));
    json_object_set_new(row, "locality", json_string(locality ? "on" : "off"));
    json_object_set_new(row, "hosts", json_integer(LOC_HOSTS));
    json_object_set_new(row, "groups", json_integer(LOC_GROUPS));
    json_object_set_new(row, "images", json_integer(LOC_IMAGES));
    json_object_set_new(row, "cache_per_host", json_integer(LOC_CACHE));
    json_object_set_new(row, "placed", json_integer((json_int_t)r->placed));
    json_object_set_new(row, "rejected", json_integer((json_int_t)r->rejected));
    json_object_set_new(row, "cached_share", json_real(bench_rounded(r->cached_share, 4)));
    json_object_set_new(row, "image_hit_share",
                        json_real(bench_rounded(r->images_needed > 0
                                                    ? (double)r->images_hit /
                                                          (double)r->images_needed
                                                    : 0.0,
                                                4)));
    json_object_set_new(row, "cached_share_vs_off",
                        off->cached_share > 0
                            ? json_real(bench_rounded(r->cached_share / off->cached_share, 4))
                            : json_null());
    json_object_set_new(row, "hosts_used_peak", json_integer((json_int_t)r->hosts_used_peak));
    json_object_set_new(row, "hosts_used_end", json_integer((json_int_t)r->hosts_used_end));
    json_object_set_new(row, "placements_per_sec",
                        r->seconds > 0
                            ? json_real(bench_rounded((double)(r->placed + r->rejected) / r->seconds, 0))
                            : json_null());
    bench_emit(row);
}

int bench_locality_run(unsigned long long seed)
{
    double cdf[LOC_IMAGES];
    double acc = 0;
    for (uint32_t i = 0; i < LOC_IMAGES; i++) {
        acc += 1.0 / (double)(i + 1);
        cdf[i] = acc;
    }
    char (*names)[32] = malloc(LOC_IMAGES * sizeof *names);
    loc_group_t *groups = malloc(LOC_GROUPS * sizeof *groups);
    uint32_t *victims = malloc(LOC_GROUPS * sizeof *victims);
    if (names == NULL || groups == NULL || victims == NULL) {
        free(names);
        free(groups);
        free(victims);
        fputs("berth-bench: out of memory\n", stderr);
        return -1;
    }
    for (uint32_t i = 0; i < LOC_IMAGES; i++)
        snprintf(names[i], sizeof names[i], "registry.example/app-%03u:v1", i);
    uint64_t s = seed ^ 0x6c6f63616c697479ull;
    for (uint32_t g = 0; g < LOC_GROUPS; g++) {
        loc_group_t *q = &groups[g];
        q->cores = (uint16_t)(1 + bench_below(&s, 4));
        q->gb = (uint16_t)(1 + bench_below(&s, 8));
        q->nimages = 1;
        q->images[0] = zipf(cdf, &s);
        if (bench_below(&s, 3) == 0) {
            uint16_t second = zipf(cdf, &s);
            if (second != q->images[0])
                q->images[q->nimages++] = second;
        }
        victims[g] = (uint32_t)bench_next(&s);
    }
    loc_result_t on, off;
    int rc = run(false, groups, victims, names, &off);
    if (rc == 0)
        rc = run(true, groups, victims, names, &on);
    if (rc == 0) {
        emit(true, &on, &off);
        emit(false, &off, &off);
    }
    free(names);
    free(groups);
    free(victims);
    return rc;
}
