/*
 * test_index.c: unit tests of the placement index (core/engine/index.c): the
 * matching rules and tiers, class grids that grow, treaps under heavy
 * churn, tie breaking by seed independent of add order, agreement with the
 * linear scan (GPU balance and image locality included), and the index's
 * memory per host.  Never asserts on timings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "index-oracle.h"

#define GB 1024u

static berth_engine_t *engine_with(berth_policy_t policy, uint64_t seed)
{
    berth_engine_options_t o;
    berth_engine_options_init(&o);
    o.policy = policy;
    o.seed = seed;
    berth_engine_t *e = NULL;
    assert_int_equal(berth_engine_new(&o, &e, NULL), 0);
    return e;
}

static berth_engine_t *engine_scored(uint64_t seed)
{
    berth_engine_options_t o;
    berth_engine_options_init(&o);
    o.seed = seed;
    o.vector_score = 1;
    berth_engine_t *e = NULL;
    assert_int_equal(berth_engine_new(&o, &e, NULL), 0);
    return e;
}

static void add_host(berth_engine_t *e, const char *name, uint32_t cores, uint32_t gb,
                     const char *sku, uint32_t gpus)
{
    berth_host_t h;
    memset(&h, 0, sizeof h);
    h.name = name;
    h.cores = cores;
    h.memory_mib = gb * GB;
    h.os = BERTH_OS_LINUX;
    h.gpu_sku = sku;
    h.gpu_count = gpus;
    berth_error_t err;
    if (berth_engine_host_add(e, &h, &err) != 0)
        fail_msg("host %s: %s", name, err.message);
}

static berth_request_t req(uint32_t cores, uint32_t mib)
{
    berth_request_t r;
    memset(&r, 0, sizeof r);
    r.os = BERTH_OS_LINUX;
    r.demand.millicores = cores * 1000;
    r.demand.memory_mib = mib;
    return r;
}

static void check(berth_engine_t *e)
{
    char why[256];
    if (berth__index_check(berth__engine_index(e), why, sizeof why) != 0)
        fail_msg("index: %s", why);
}

static const char *choose(berth_engine_t *e, const berth_request_t *r)
{
    berth__index_t *idx = berth__engine_index(e);
    uint32_t a, b;
    berth_isolation_t ia, ib;
    int ra = berth__index_choose(idx, r, &a, &ia);
    int rb = berth__index_choose_brute(idx, r, &b, &ib);
    assert_int_equal(ra, rb);
    if (ra != 0)
        return NULL;
    assert_int_equal(a, b);
    assert_int_equal(ia, ib);
    return berth__index_host(idx, a)->name;
}

static void test_matches_and_tiers(void **state)
{
    (void)state;
    berth__attrs_t a = {.build = 0, .os = BERTH_OS_LINUX, .features = 0, .sku = -1, .zone = -1};
    berth_request_t r = req(1, 1);
    berth_isolation_t iso;
    unsigned tier;
    assert_true(berth__host_matches(&a, &r, &iso, &tier));
    assert_int_equal(tier, 0);
    assert_int_equal(iso, BERTH_ISOLATION_NONE);
    a.sku = 2;
    assert_true(berth__host_matches(&a, &r, &iso, &tier));
    assert_int_equal(tier, 4);
    a.features = BERTH_HOST_CONFIDENTIAL;
    assert_true(berth__host_matches(&a, &r, &iso, &tier));
    assert_int_equal(tier, 6);
    r.sku = BERTH_SKU_CONFIDENTIAL;
    assert_true(berth__host_matches(&a, &r, &iso, &tier));
    assert_int_equal(tier, 4);
    r.demand.gpu_count = 1;
    r.demand.gpu_sku = 1;
    assert_false(berth__host_matches(&a, &r, &iso, &tier));
    r.demand.gpu_sku = 2;
    assert_true(berth__host_matches(&a, &r, &iso, &tier));
    assert_int_equal(tier, 0);
    a.features = BERTH_HOST_DEDICATED | BERTH_HOST_CONFIDENTIAL;
    assert_false(berth__host_matches(&a, &r, &iso, &tier));
    r.sku = BERTH_SKU_DEDICATED;
    assert_true(berth__host_matches(&a, &r, &iso, &tier));
    a.zone = 3;
    r.zone_mask = 1u << 2;
    assert_false(berth__host_matches(&a, &r, &iso, &tier));
    r.zone_mask |= 1u << 3;
    assert_true(berth__host_matches(&a, &r, &iso, &tier));
    /* a sandboxed request needs the sandbox feature; the feature alone
     * changes no tier */
    r.sandbox = true;
    assert_false(berth__host_matches(&a, &r, &iso, &tier));
    a.features |= BERTH_HOST_SANDBOX;
    assert_true(berth__host_matches(&a, &r, &iso, &tier));
    unsigned sandboxed_tier = tier;
    r.sandbox = false;
    assert_true(berth__host_matches(&a, &r, &iso, &tier));
    assert_int_equal(tier, sandboxed_tier);

    berth__attrs_t w = {.build = BERTH_WINDOWS_LTSC2022, .os = BERTH_OS_WINDOWS,
                        .features = BERTH_HOST_HYPERV, .sku = -1, .zone = -1};
    berth_request_t wr = req(1, 1);
    wr.os = BERTH_OS_WINDOWS;
    wr.os_build = BERTH_WINDOWS_LTSC2019;
    assert_true(berth__host_matches(&w, &wr, &iso, &tier));
    assert_int_equal(iso, BERTH_ISOLATION_HYPERV);
    assert_int_equal(tier, 1);
    wr.os_build = BERTH_WINDOWS_LTSC2022;
    assert_true(berth__host_matches(&w, &wr, &iso, &tier));
    assert_int_equal(iso, BERTH_ISOLATION_PROCESS);
    assert_int_equal(tier, 0);
    wr.os_build = BERTH_WINDOWS_LTSC2025;
    assert_false(berth__host_matches(&w, &wr, &iso, &tier));
    w.features = 0;
    wr.os_build = BERTH_WINDOWS_LTSC2019;
    assert_false(berth__host_matches(&w, &wr, &iso, &tier));
    assert_false(berth__host_matches(&a, &wr, &iso, &tier));
}

static void test_grid_grows(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 5);
    add_host(e, "a", 2, 8, NULL, 0);
    berth_request_t r = req(1, 512);
    assert_int_equal(berth_engine_request_place(e, "x", &r, NULL, NULL), 0);
    /* larger hosts of the same class widen its grid while hosts are in it */
    add_host(e, "b", 100, 400, NULL, 0);
    add_host(e, "c", 4000, 4000, NULL, 0);
    add_host(e, "g", 64, 512, "V100", 8);
    add_host(e, "g2", 64, 512, "V100", 63);
    check(e);
    assert_string_equal(choose(e, &r), "a");
    berth_request_t big = req(3000, 1024);
    assert_string_equal(choose(e, &big), "c");
    berth_request_t gr = req(1, 512);
    gr.demand.gpu_count = 9;
    gr.demand.gpu_sku = 2;
    assert_string_equal(choose(e, &gr), "g2");
    gr.demand.gpu_count = 64;
    assert_null(choose(e, &gr));
    berth_host_t h;
    memset(&h, 0, sizeof h);
    h.name = "a";
    h.cores = 300;
    h.memory_mib = 8 * GB;
    h.os = BERTH_OS_LINUX;
    assert_int_equal(berth_engine_host_update(e, &h, NULL), 0);
    check(e);
    berth_request_t r200 = req(200, 512);
    assert_string_equal(choose(e, &r200), "a");
    h.cores = BERTH__HOST_CORES_MAX + 1;
    assert_int_equal(berth_engine_host_update(e, &h, NULL), BERTH_EINVAL);
    berth_engine_free(e);
}

static void test_churn_keeps_invariants(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 9);
    char name[32], key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "n%d", i);
        /* identical hosts: every choice is decided by the tie key */
        add_host(e, name, 16, 64, NULL, 0);
    }
    uint64_t s = 1;
    for (int i = 0; i < 20000; i++) {
        s = berth__mix64(s + (uint64_t)i);
        snprintf(key, sizeof key, "k%u", (unsigned)(s % 2000));
        if (s % 3 == 0) {
            berth_engine_group_release(e, key, NULL);
        } else if (s % 97 == 0) {
            snprintf(name, sizeof name, "n%u", (unsigned)((s >> 8) % 200));
            berth_engine_host_set_state(e, name, (berth_host_state_t)((s >> 16) % 3), NULL);
        } else {
            berth_request_t r = req((uint32_t)(1 + (s >> 20) % 4), (uint32_t)(256 * (1 + (s >> 24) % 32)));
            choose(e, &r);
            berth_engine_request_place(e, key, &r, NULL, NULL);
        }
        if (i % 500 == 0)
            check(e);
    }
    check(e);
    berth_engine_free(e);
}

/* Ties go to the tie key derived from the seed and the name: the same seed
 * gives the same host whatever the add order; another seed may not. */
static void test_ties_follow_seed(void **state)
{
    (void)state;
    char name[32];
    int differ = 0;
    for (uint64_t seed = 0; seed < 8; seed++) {
        berth_engine_t *a = engine_with(BERTH_POLICY_BINPACK, seed);
        berth_engine_t *b = engine_with(BERTH_POLICY_BINPACK, seed);
        berth_engine_t *c = engine_with(BERTH_POLICY_BINPACK, seed + 100);
        for (int i = 0; i < 16; i++) {
            snprintf(name, sizeof name, "h%d", i);
            add_host(a, name, 8, 32, NULL, 0);
            add_host(c, name, 8, 32, NULL, 0);
            snprintf(name, sizeof name, "h%d", 15 - i);
            add_host(b, name, 8, 32, NULL, 0);
        }
        berth_request_t r = req(1, 1024);
        berth_placement_t pa, pb, pc;
        assert_int_equal(berth_engine_request_place(a, "x", &r, &pa, NULL), 0);
        assert_int_equal(berth_engine_request_place(b, "x", &r, &pb, NULL), 0);
        assert_int_equal(berth_engine_request_place(c, "x", &r, &pc, NULL), 0);
        assert_string_equal(pa.host, pb.host);
        differ += strcmp(pa.host, pc.host) != 0;
        berth_engine_free(a);
        berth_engine_free(b);
        berth_engine_free(c);
    }
    assert_true(differ > 0);
}

/* The chooser remembers which classes a request shape matches; a class
 * that appears later must still be seen. */
static void test_shape_memo_sees_new_classes(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    add_host(e, "roomy", 64, 256, NULL, 0);
    berth_request_t r = req(2, 1024);
    assert_string_equal(choose(e, &r), "roomy");
    berth_host_t h;
    memset(&h, 0, sizeof h);
    h.name = "tight";
    h.cores = 2;
    h.memory_mib = 2 * GB;
    h.os = BERTH_OS_LINUX;
    h.zone = "9";
    assert_int_equal(berth_engine_host_add(e, &h, NULL), 0);
    assert_string_equal(choose(e, &r), "tight");
    /* a request of another shape still gets its own list */
    r.zone_mask = 1u << berth_engine_zone_id(e, "9");
    assert_string_equal(choose(e, &r), "tight");
    h.zone = "8";
    assert_int_equal(berth_engine_host_update(e, &h, NULL), 0);
    assert_null(choose(e, &r));
    r.zone_mask = 0;
    assert_string_equal(choose(e, &r), "tight");
    /* the sandbox requirement is part of the shape: a sandboxed request
     * finds no list of its own until a sandbox host appears, and the plain
     * request's list is not disturbed by it */
    r.sandbox = true;
    assert_null(choose(e, &r));
    h.name = "gvisor";
    h.cores = 32;
    h.memory_mib = 128 * GB;
    h.zone = NULL;
    h.features = BERTH_HOST_SANDBOX;
    assert_int_equal(berth_engine_host_add(e, &h, NULL), 0);
    assert_string_equal(choose(e, &r), "gvisor");
    r.sandbox = false;
    assert_string_equal(choose(e, &r), "tight");
    check(e);
    berth_engine_free(e);
}

static void test_firstfit_has_no_grid(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_FIRSTFIT, 0);
    add_host(e, "z", 8, 32, NULL, 0);
    add_host(e, "a", 4, 32, NULL, 0);
    berth__index_t *idx = berth__engine_index(e);
    assert_false(berth__index_host(idx, idx->order[0])->linked);
    berth_request_t r = req(1, 512);
    assert_string_equal(choose(e, &r), "z");
    check(e);
    berth_engine_free(e);
}

/* GPU balance and image locality under churn: many identical GPU and CPU
 * hosts (so buckets hold many hosts and the locality window matters), with
 * images that change, and the index agreeing with the linear scan on every
 * request. */
static void test_scoring_rules_agree_with_scan(void **state)
{
    (void)state;
    static const char *const pool[] = {"a", "b:1", "c", "d", "e"};
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 11);
    char name[32], key[32];
    for (int i = 0; i < 120; i++) {
        snprintf(name, sizeof name, "s%d", i);
        if (i % 3 == 0)
            add_host(e, name, 16 + 16 * (i % 2), 64, "V100", i % 2 ? 8 : 4);
        else
            add_host(e, name, 16, 64, NULL, 0);
    }
    uint64_t s = 7;
    for (int i = 0; i < 20000; i++) {
        s = berth__mix64(s + (uint64_t)i);
        snprintf(key, sizeof key, "k%u", (unsigned)(s % 900));
        if (s % 5 == 0) {
            berth_engine_group_release(e, key, NULL);
        } else if (s % 11 == 0) {
            snprintf(name, sizeof name, "s%u", (unsigned)((s >> 8) % 120));
            const char *imgs[5];
            size_t n = 0;
            for (size_t k = 0; k < 5; k++)
                if ((s >> (16 + k)) & 1)
                    imgs[n++] = pool[k];
            assert_int_equal(berth_engine_host_images_set(e, name, imgs, n, NULL), 0);
        } else {
            berth_request_t r = req((uint32_t)(1 + (s >> 20) % 6), (uint32_t)(512 * (1 + (s >> 24) % 16)));
            if ((s >> 28) % 4 == 0) {
                r.demand.gpu_count = (uint32_t)(1 + (s >> 30) % 4);
                r.demand.gpu_sku = 2;
            }
            r.nimages = (uint32_t)((s >> 33) % 3);
            for (uint32_t k = 0; k < r.nimages; k++)
                r.images[k] = berth_image_hash(pool[(s >> (36 + 3 * k)) % 5]);
            choose(e, &r);
            berth_engine_request_place(e, key, &r, NULL, NULL);
        }
        if (i % 1000 == 0)
            check(e);
    }
    check(e);
    berth_engine_free(e);
}

/* ---- the vector score ---------------------------------------------------- */

/* The leftover the recent mix cannot use decides: with requests of 1 core
 * and 4 GB, a host left with 1 core and 12 GB (3 GB per core short of the
 * mix: 8 GB stranded) loses to one left with 3 cores and 12 GB (none
 * stranded), which lexicographic best fit (fewest free cores) would not
 * choose. */
static void test_score_leftover_fits_the_mix(void **state)
{
    (void)state;
    for (int scored = 0; scored < 2; scored++) {
        berth_engine_t *e = scored ? engine_scored(0) : engine_with(BERTH_POLICY_BINPACK, 0);
        add_host(e, "lean", 2, 16, NULL, 0);       /* after 1c/4GB: 1 core, 12 GB */
        add_host(e, "even", 4, 16, NULL, 0);       /* after 1c/4GB: 3 cores, 12 GB */
        berth_request_t r = req(1, 4 * GB);
        berth__index_note_request(berth__engine_index(e), &r);
        assert_string_equal(choose(e, &r), scored ? "even" : "lean");
        berth_engine_free(e);
    }
}

/* The mix is learned from the requests the engine saw: the same hosts and
 * request go elsewhere once the mix has become memory-heavy. */
static void test_score_learns_the_mix(void **state)
{
    (void)state;
    berth_engine_t *e = engine_scored(0);
    add_host(e, "big", 64, 512, NULL, 0);
    add_host(e, "mem", 4, 40, NULL, 0);           /* after 2c/8GB: 2 cores, 32 GB */
    add_host(e, "cpu", 10, 16, NULL, 0);          /* after 2c/8GB: 8 cores, 8 GB */
    berth__index_t *idx = berth__engine_index(e);
    /* a core-heavy mix, 4 cores per 2 GB: "cpu" keeps 8 cores and 8 GB,
     * two of them, where "mem" keeps 32 GB no request of the mix uses */
    berth_request_t mix = req(4, 2 * GB);
    for (int i = 0; i < 1000; i++)
        berth__index_note_request(idx, &mix);
    berth_request_t r = req(2, 8 * GB);
    assert_string_equal(choose(e, &r), "cpu");
    /* a memory-heavy mix, 1 core per 16 GB: "mem" keeps exactly two */
    mix = req(1, 16 * GB);
    for (int i = 0; i < 1000; i++)
        berth__index_note_request(idx, &mix);
    assert_string_equal(choose(e, &r), "mem");
    /* placements feed the mix too: core-heavy groups bring "cpu" back */
    mix = req(4, 2 * GB);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "c%d", i);
        berth_engine_request_place(e, key, &mix, NULL, NULL);
        berth_engine_group_release(e, key, NULL);
    }
    assert_string_equal(choose(e, &r), "cpu");
    check(e);
    berth_engine_free(e);
}

/* Only the first BERTH__SCORE_K buckets (free-core values) of a row are
 * candidates: a host of perfect proportion further up is not seen, so the
 * score stays bounded per placement. */
static void test_score_ranks_a_bounded_set(void **state)
{
    (void)state;
    berth_engine_t *e = engine_scored(0);
    char name[32];
    /* free cores 2..2+K-1 with 6 GB each: a request of the mix, 1 core
     * and 4 GB, leaves them lopsided; the host with 2+K cores and 4(2+K)
     * GB is left even. */
    for (uint32_t k = 0; k < BERTH__SCORE_K; k++) {
        snprintf(name, sizeof name, "h%u", k);
        add_host(e, name, 2 + k, 6, NULL, 0);
    }
    add_host(e, "far", 2 + BERTH__SCORE_K, 4 * (2 + BERTH__SCORE_K), NULL, 0);
    berth_request_t r = req(1, 4 * GB);
    berth__index_note_request(berth__engine_index(e), &r);
    const char *c = choose(e, &r);
    assert_non_null(c);
    assert_string_not_equal(c, "far");
    /* with one bucket fewer in the way "far" is within reach and wins */
    assert_int_equal(berth_engine_host_set_state(e, "h0", BERTH_HOST_DOWN, NULL), 0);
    assert_string_equal(choose(e, &r), "far");
    check(e);
    berth_engine_free(e);
}

/* Free GPUs and tiers come before the score: a CPU-only group stays off a
 * GPU host while a CPU host fits, and a GPU group takes the host left with
 * the fewest free GPUs whatever the score of the others. */
static void test_score_keeps_gpus_and_tiers_first(void **state)
{
    (void)state;
    berth_engine_t *e = engine_scored(0);
    add_host(e, "gpu4", 32, 128, "V100", 4);
    add_host(e, "gpu2", 8, 256, "V100", 2);       /* lopsided, but fewer GPUs */
    add_host(e, "cpu", 2, 64, NULL, 0);            /* lopsided for 1c/4GB */
    berth_request_t r = req(1, 4 * GB);
    assert_string_equal(choose(e, &r), "cpu");
    /* a mix of 4 cores and 16 GB per GPU: "gpu4" would keep 28 cores and
     * 112 GB, seven of them; "gpu2" keeps 224 GB no request uses */
    r = req(4, 16 * GB);
    r.demand.gpu_count = 1;
    r.demand.gpu_sku = 2;
    berth__index_note_request(berth__engine_index(e), &r);
    assert_true(berth__host_score(berth__engine_index(e),
                                  berth__index_host(berth__engine_index(e), 0), &r) <
                berth__host_score(berth__engine_index(e),
                                  berth__index_host(berth__engine_index(e), 1), &r));
    assert_string_equal(choose(e, &r), "gpu2");
    check(e);
    berth_engine_free(e);
}

/* The vector score against its linear-scan definition under churn: GPU and
 * CPU hosts of several sizes (many buckets per row), GPU balance, image
 * locality, drained hosts, and a request mix that keeps changing. */
static void test_score_agrees_with_scan(void **state)
{
    (void)state;
    static const char *const pool[] = {"a", "b:1", "c", "d", "e"};
    for (uint64_t seed = 1; seed <= 2; seed++) {
        berth_engine_t *e = engine_scored(seed);
        char name[32], key[32];
        for (int i = 0; i < 120; i++) {
            snprintf(name, sizeof name, "s%d", i);
            if (i % 3 == 0)
                add_host(e, name, 16 + 16 * (i % 2), 64 + 32 * (i % 4), "V100", i % 2 ? 8 : 4);
            else
                add_host(e, name, 8 + 4 * (uint32_t)(i % 5), 32 + 16 * (uint32_t)(i % 7), NULL, 0);
        }
        uint64_t s = 7 * seed;
        for (int i = 0; i < 12000; i++) {
            s = berth__mix64(s + (uint64_t)i);
            snprintf(key, sizeof key, "k%u", (unsigned)(s % 900));
            if (s % 5 == 0) {
                berth_engine_group_release(e, key, NULL);
            } else if (s % 11 == 0) {
                snprintf(name, sizeof name, "s%u", (unsigned)((s >> 8) % 120));
                const char *imgs[5];
                size_t n = 0;
                for (size_t k = 0; k < 5; k++)
                    if ((s >> (16 + k)) & 1)
                        imgs[n++] = pool[k];
                assert_int_equal(berth_engine_host_images_set(e, name, imgs, n, NULL), 0);
            } else if (s % 97 == 0) {
                snprintf(name, sizeof name, "s%u", (unsigned)((s >> 8) % 120));
                berth_engine_host_set_state(e, name, (berth_host_state_t)((s >> 16) % 3), NULL);
            } else {
                /* the mix drifts: memory-heavy, then core-heavy phases */
                uint32_t per = (i / 2000) % 2 ? 1024 : 4096;
                berth_request_t r = req((uint32_t)(1 + (s >> 20) % 6),
                                        (uint32_t)(per * (1 + (s >> 24) % 4)));
                if ((s >> 28) % 4 == 0) {
                    r.demand.gpu_count = (uint32_t)(1 + (s >> 30) % 4);
                    r.demand.gpu_sku = 2;
                }
                r.nimages = (uint32_t)((s >> 33) % 3);
                for (uint32_t k = 0; k < r.nimages; k++)
                    r.images[k] = berth_image_hash(pool[(s >> (36 + 3 * k)) % 5]);
                choose(e, &r);
                berth_engine_request_place(e, key, &r, NULL, NULL);
            }
            if (i % 1000 == 0)
                check(e);
        }
        check(e);
        berth_engine_free(e);
    }
}

/* The index's memory per host on a large mixed cluster (host records
 * included) stays within 256 bytes. */
static void test_bytes_per_host(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    static const char *const skus[] = {"K80", "P100", "V100"};
    static const char *const zones[] = {"1", "2", "3"};
    char name[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof name, "host-%05d", i);
        berth_host_t h;
        memset(&h, 0, sizeof h);
        h.name = name;
        h.cores = 8u << (i % 4);
        h.memory_mib = h.cores * 4 * GB;
        h.os = BERTH_OS_LINUX;
        h.zone = zones[i % 3];
        if (i % 10 == 0) {
            h.gpu_sku = skus[(i / 10) % 3];
            h.gpu_count = (i / 30) % 2 ? 4 : 8;
        } else if (i % 10 == 1) {
            h.os = BERTH_OS_WINDOWS;
            h.os_build = (i / 10) % 2 ? BERTH_WINDOWS_LTSC2019 : BERTH_WINDOWS_LTSC2022;
            h.features = (i / 20) % 2 ? BERTH_HOST_HYPERV : 0;
        }
        assert_int_equal(berth_engine_host_add(e, &h, NULL), 0);
    }
    size_t bytes = berth__index_bytes(berth__engine_index(e));
    print_message("index: %zu bytes for 10000 hosts (%zu per host)\n", bytes, bytes / 10000);
    assert_true(bytes / 10000 <= 256);
    check(e);
    berth_engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_and_tiers),
        cmocka_unit_test(test_grid_grows),
        cmocka_unit_test(test_churn_keeps_invariants),
        cmocka_unit_test(test_ties_follow_seed),
        cmocka_unit_test(test_shape_memo_sees_new_classes),
        cmocka_unit_test(test_firstfit_has_no_grid),
        cmocka_unit_test(test_scoring_rules_agree_with_scan),
        cmocka_unit_test(test_score_leftover_fits_the_mix),
        cmocka_unit_test(test_score_learns_the_mix),
        cmocka_unit_test(test_score_ranks_a_bounded_set),
        cmocka_unit_test(test_score_keeps_gpus_and_tiers_first),
        cmocka_unit_test(test_score_agrees_with_scan),
        cmocka_unit_test(test_bytes_per_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
