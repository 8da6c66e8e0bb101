/*
 * test_placement_score.c: unit tests of binpack's scoring rules on small
 * clusters, each showing one rule deciding a placement -- GPU hosts kept
 * for GPU groups, one-GPU groups on partly used GPU hosts, multi-GPU groups
 * on hosts with enough GPUs free together, GPU balance (cores and memory
 * per free GPU), CPU-only groups forced onto GPU hosts stranding the
 * fewest GPUs -- and image locality (normalized image references, the
 * per-host image sets, the preference among hosts that fit equally well,
 * its switch and its counters, and the loader that reads the images agents
 * report from a real redis-server into a store's engine).  Every choice is
 * also checked against the linear reference scan
 * (berth__index_choose_brute).
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
#include "redis-harness.h"

#define GB 1024u

static berth_engine_t *engine_with(berth_policy_t policy, uint64_t seed, int locality)
{
    berth_engine_options_t o;
    berth_engine_options_init(&o);
    o.policy = policy;
    o.seed = seed;
    o.image_locality = locality;
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

static berth_request_t req(uint32_t cores, uint32_t gb, uint32_t gpus)
{
    berth_request_t r;
    memset(&r, 0, sizeof r);
    r.os = BERTH_OS_LINUX;
    r.demand.millicores = cores * 1000;
    r.demand.requested_millicores = cores * 1000;
    r.demand.memory_mib = gb * GB;
    r.demand.gpu_count = gpus;
    r.demand.gpu_sku = 2; /* V100 in the engine's default table */
    return r;
}

/* The index's choice, checked against the reference scan. */
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
    if (a != b)
        fail_msg("index chose '%s', the reference scan '%s'", berth__index_host(idx, a)->name,
                 berth__index_host(idx, b)->name);
    assert_int_equal(ia, ib);
    char why[256];
    if (berth__index_check(idx, why, sizeof why) != 0)
        fail_msg("index: %s", why);
    return berth__index_host(idx, a)->name;
}

static void place_on(berth_engine_t *e, const char *key, const berth_request_t *r,
                     const char *host)
{
    berth_error_t err;
    if (berth_engine_request_assign(e, key, r, host, NULL, &err) != 0)
        fail_msg("assign %s on %s: %s", key, host, err.message);
}

/* Rule 1: a CPU-only group avoids GPU hosts while a CPU host has room, even
 * when a GPU host would be the tighter fit; once no CPU host fits, it goes
 * to the GPU host with the fewest free GPUs (the one it strands least),
 * even when another GPU host is the tighter fit on cores. */
static void test_cpu_only_avoids_gpu_hosts(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0, 1);
    add_host(e, "cpu", 64, 256, NULL, 0);
    add_host(e, "gpu-small", 8, 64, "V100", 4);
    add_host(e, "gpu-used", 32, 128, "V100", 4);
    berth_request_t three = req(4, 16, 3);
    place_on(e, "three-gpus", &three, "gpu-used");
    berth_request_t cpu = req(2, 4, 0);
    assert_string_equal(choose(e, &cpu), "cpu");
    /* fill the CPU host */
    berth_request_t big = req(63, 200, 0);
    place_on(e, "big", &big, "cpu");
    /* gpu-small has fewer free cores (8 against 28), but gpu-used has one
     * free GPU against four */
    assert_string_equal(choose(e, &cpu), "gpu-used");
    berth_engine_free(e);
}

/* Rule 2: a one-GPU group goes to a GPU host already partly used rather
 * than opening an empty one, even when the empty one has fewer free cores. */
static void test_one_gpu_prefers_partly_used(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0, 1);
    add_host(e, "empty", 16, 64, "V100", 4);
    add_host(e, "partly", 32, 128, "V100", 4);
    berth_request_t one = req(4, 8, 1);
    place_on(e, "first", &one, "partly");
    assert_string_equal(choose(e, &one), "partly");
    berth_placement_t p;
    assert_int_equal(berth_engine_request_place(e, "second", &one, &p, NULL), 0);
    assert_string_equal(p.host, "partly");
    berth_engine_free(e);
}

/* Rule 3: a multi-GPU group finds a host with enough GPUs free together,
 * and of those the one with the fewest, so larger free blocks stay whole. */
static void test_multi_gpu_finds_gpus_together(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0, 1);
    add_host(e, "three-free", 64, 256, "V100", 4);
    add_host(e, "two-free", 64, 256, "V100", 4);
    add_host(e, "four-free", 64, 256, "V100", 4);
    add_host(e, "eight-free", 64, 256, "V100", 8);
    berth_request_t one = req(4, 16, 1), two = req(8, 32, 2), four = req(16, 64, 4);
    place_on(e, "a", &one, "three-free");
    place_on(e, "b", &two, "two-free");
    /* four GPUs: neither partly used host has them together */
    assert_string_equal(choose(e, &four), "four-free");
    /* two GPUs: exactly two free, so no larger block is broken */
    assert_string_equal(choose(e, &two), "two-free");
    berth_request_t eight = req(32, 128, 8);
    assert_string_equal(choose(e, &eight), "eight-free");
    berth_request_t nine = req(32, 128, 9);
    assert_null(choose(e, &nine));
    berth_engine_free(e);
}

/* GPU balance: a GPU group goes where each free GPU keeps the group's
 * share of cores and memory per GPU; a host that would be left with free
 * GPUs but no cores or memory for them is used only when no balanced host
 * of the same tier fits. */
static void test_gpu_balance(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0, 1);
    add_host(e, "few-cores", 6, 256, "V100", 4);
    add_host(e, "cores", 32, 256, "V100", 4);
    berth_request_t one = req(4, 16, 1);
    /* few-cores is the tighter fit (6 free cores against 32) but would
     * keep 3 GPUs with 2 cores: 6 x 1 < 4 x 4 */
    assert_string_equal(choose(e, &one), "cores");
    berth__index_t *idx = berth__engine_index(e);
    assert_false(berth__host_balanced(berth__index_host(idx, idx->order[0]), &one));
    assert_true(berth__host_balanced(berth__index_host(idx, idx->order[1]), &one));
    /* memory the same way */
    add_host(e, "little-memory", 64, 20, "P100", 4);
    add_host(e, "memory", 64, 256, "P100", 4);
    berth_request_t p = one;
    p.demand.gpu_sku = 1;
    assert_string_equal(choose(e, &p), "memory");
    /* with no balanced host left, the unbalanced one is still used */
    assert_int_equal(berth_engine_host_set_state(e, "cores", BERTH_HOST_CORDONED, NULL), 0);
    assert_string_equal(choose(e, &one), "few-cores");
    /* balance comes after fewest free GPUs only within balanced hosts:
     * a partly used balanced host still beats an empty one */
    assert_int_equal(berth_engine_host_set_state(e, "cores", BERTH_HOST_READY, NULL), 0);
    add_host(e, "partly", 64, 256, "V100", 4);
    place_on(e, "p1", &one, "partly");
    assert_string_equal(choose(e, &one), "partly");
    /* a request without GPUs is always balanced */
    berth_request_t cpu = req(1, 1, 0);
    assert_true(berth__host_balanced(berth__index_host(idx, idx->order[0]), &cpu));
    berth_engine_free(e);
}

/* Plain best fit (GPU-unaware, fewest free cores then memory) would have
 * decided each of the rules above the other way: the scores differ. */
static void test_rules_differ_from_plain_best_fit(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0, 1);
    add_host(e, "cpu", 64, 256, NULL, 0);
    add_host(e, "gpu", 8, 64, "V100", 4);
    berth_request_t cpu = req(2, 4, 0);
    /* best fit on cores alone would take "gpu" (8 free cores) */
    assert_string_equal(choose(e, &cpu), "cpu");
    berth_engine_free(e);
}

/* ---- image locality ---------------------------------------------------------------- */

static void test_image_hash_normalizes(void **state)
{
    (void)state;
    uint64_t h = berth_image_hash("busybox");
    assert_true(h != 0);
    assert_true(berth_image_hash("busybox:latest") == h);
    assert_true(berth_image_hash("docker.io/library/busybox:latest") == h);
    assert_true(berth_image_hash("docker.io/library/busybox") == h);
    assert_true(berth_image_hash("index.docker.io/library/busybox") == h);
    assert_true(berth_image_hash("library/busybox:latest") == h);
    assert_true(berth_image_hash("busybox:1.36") != h);
    assert_true(berth_image_hash("user/app") == berth_image_hash("docker.io/user/app:latest"));
    assert_true(berth_image_hash("myregistry.azurecr.io/app") ==
                berth_image_hash("myregistry.azurecr.io/app:latest"));
    assert_true(berth_image_hash("myregistry.azurecr.io/app") != berth_image_hash("app"));
    assert_true(berth_image_hash("localhost:5000/app") ==
                berth_image_hash("localhost:5000/app:latest"));
    assert_true(berth_image_hash("app@sha256:abcd") != berth_image_hash("app:latest"));
    assert_true(berth_image_hash("") == 0);
    assert_true(berth_image_hash(NULL) == 0);
}

static void test_host_images_set(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0, 1);
    add_host(e, "h", 8, 32, NULL, 0);
    const char *imgs[] = {"busybox", "nginx:1.25", "docker.io/library/busybox:latest"};
    berth_error_t err;
    assert_int_equal(berth_engine_host_images_set(e, "h", imgs, 3, &err), 0);
    assert_int_equal(berth_engine_host_images_count(e, "h"), 2); /* busybox once */
    assert_int_equal(berth_engine_host_images_set(e, "nope", imgs, 3, &err), BERTH_ENOENT);
    assert_string_equal(err.name, "HostNotFound");
    const char *bad[] = {"nginx", ""};
    assert_int_equal(berth_engine_host_images_set(e, "h", bad, 2, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "images");
    /* a failing call changes nothing */
    assert_int_equal(berth_engine_host_images_count(e, "h"), 2);
    assert_int_equal(berth_engine_host_images_set(e, "h", NULL, 0, &err), 0);
    assert_int_equal(berth_engine_host_images_count(e, "h"), 0);
    assert_int_equal(berth_engine_host_images_count(e, "nope"), BERTH_ENOENT);
    berth_engine_free(e);
}

static berth_request_t with_images(berth_request_t r, const char *a, const char *b)
{
    r.images[r.nimages++] = berth_image_hash(a);
    if (b != NULL)
        r.images[r.nimages++] = berth_image_hash(b);
    return r;
}

/* Among hosts that fit equally well (same class, free GPUs and free
 * cores), the one holding the group's images wins; a host that fits better
 * by the score still wins without them; locality off ignores them. */
static void test_locality_prefers_cached_hosts(void **state)
{
    (void)state;
    char name[16];
    for (int on = 0; on <= 1; on++) {
        berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 3, on);
        for (int i = 0; i < 6; i++) {
            snprintf(name, sizeof name, "h%d", i);
            add_host(e, name, 8, 32, NULL, 0);
        }
        berth_request_t plain = req(2, 4, 0);
        const char *tie_winner = choose(e, &plain);
        char tie[16];
        snprintf(tie, sizeof tie, "%s", tie_winner);
        /* the images sit on another host than the tie key's winner */
        const char *cached = strcmp(tie, "h4") == 0 ? "h2" : "h4";
        const char *imgs[] = {"nginx", "redis:7"};
        assert_int_equal(berth_engine_host_images_set(e, cached, imgs, 2, NULL), 0);
        const char *one[] = {"nginx"};
        const char *partial = strcmp(cached, "h4") == 0 && strcmp(tie, "h1") != 0 ? "h1" : "h5";
        assert_int_equal(berth_engine_host_images_set(e, partial, one, 1, NULL), 0);
        berth_request_t r = with_images(req(2, 4, 0), "docker.io/library/nginx:latest", "redis:7");
        assert_string_equal(choose(e, &r), on ? cached : tie);
        berth_placement_t p;
        assert_int_equal(berth_engine_request_place(e, "g1", &r, &p, NULL), 0);
        berth_engine_stats_t st;
        berth_engine_stats(e, &st);
        assert_int_equal(st.placements_with_images, 1);
        assert_int_equal(st.placements_images_cached, on ? 1 : 0);
        /* the host that took g1 now has the fewest free cores: the score
         * alone sends the next group there, cached or not */
        berth_request_t n = with_images(req(2, 4, 0), "nginx", NULL);
        assert_string_equal(choose(e, &n), p.host);
        /* a host that fits better by the score wins over cached images */
        berth_request_t tight = req(6, 4, 0);
        snprintf(name, sizeof name, "%s", p.host);
        berth_request_t t = with_images(tight, "nginx", "redis:7");
        /* only the used host (6 free cores) and the others (8) remain */
        assert_string_equal(choose(e, &t), name);
        /* requests without images are untouched by locality */
        assert_int_equal(berth_engine_group_release(e, "g1", NULL), 0);
        assert_string_equal(choose(e, &plain), tie);
        berth_engine_free(e);
    }
}

/* The bounded scan: only the first BERTH_LOCALITY_SCAN hosts of a bucket
 * by free memory are candidates. */
static void test_locality_scan_is_bounded(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0, 1);
    char name[16];
    for (int i = 0; i < BERTH_LOCALITY_SCAN + 4; i++) {
        snprintf(name, sizeof name, "m%02d", i);
        add_host(e, name, 8, 16 + (uint32_t)i, NULL, 0); /* free memory orders them */
    }
    berth_request_t r = with_images(req(1, 1, 0), "app", NULL);
    const char *imgs[] = {"app"};
    /* beyond the window: not found, the least free memory wins */
    snprintf(name, sizeof name, "m%02d", BERTH_LOCALITY_SCAN);
    assert_int_equal(berth_engine_host_images_set(e, name, imgs, 1, NULL), 0);
    assert_string_equal(choose(e, &r), "m00");
    /* inside the window: found */
    snprintf(name, sizeof name, "m%02d", BERTH_LOCALITY_SCAN - 1);
    assert_int_equal(berth_engine_host_images_set(e, name, imgs, 1, NULL), 0);
    assert_string_equal(choose(e, &r), name);
    berth_engine_free(e);
}

/* berth_engine_group_request() fills the request's images from the document:
 * containers then init containers, distinct after normalization. */
static void test_group_request_images(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0, 1);
    const char *doc =
        "{\"properties\":{\"osType\":\"Linux\",\"containers\":["
        "{\"name\":\"a\",\"properties\":{\"image\":\"nginx\",\"resources\":{\"requests\":"
        "{\"cpu\":1,\"memoryInGB\":1}}}},"
        "{\"name\":\"b\",\"properties\":{\"image\":\"docker.io/library/nginx:latest\","
        "\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}],"
        "\"initContainers\":[{\"name\":\"i\",\"properties\":{\"image\":\"busybox\"}}]}}";
    berth_group_t *g = NULL;
    berth_error_t err;
    if (berth_group_parse(doc, strlen(doc), &g, &err) != 0)
        fail_msg("parse: %s", err.message);
    berth_request_t r;
    assert_int_equal(berth_engine_group_request(e, g, &r, &err), 0);
    assert_int_equal(r.nimages, 2);
    assert_true(r.images[0] == berth_image_hash("nginx"));
    assert_true(r.images[1] == berth_image_hash("busybox:latest"));
    berth_group_free(g);
    berth_engine_free(e);
}

/* Random clusters with images, GPUs and churn: the index and the
 * reference scan agree on every choice, locality on. */
static void test_random_agreement(void **state)
{
    (void)state;
    static const char *const pool[] = {"a", "b", "c", "d", "e", "f"};
    for (uint64_t seed = 1; seed <= 6; seed++) {
        berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, seed, 1);
        char name[16], key[16];
        uint64_t s = seed;
        for (int i = 0; i < 40; i++) {
            s = berth__mix64(s + (uint64_t)i);
            snprintf(name, sizeof name, "r%02d", i);
            uint32_t gpus = (s & 3) == 0 ? (uint32_t)(1 + (s >> 8) % 8) : 0;
            add_host(e, name, 4 + (uint32_t)((s >> 12) % 4) * 4, 16 + (uint32_t)((s >> 16) % 3) * 16,
                     gpus ? "V100" : NULL, gpus);
            const char *imgs[3];
            size_t n = 0;
            for (size_t k = 0; k < 6 && n < 3; k++)
                if ((s >> (20 + k)) & 1)
                    imgs[n++] = pool[k];
            assert_int_equal(berth_engine_host_images_set(e, name, imgs, n, NULL), 0);
        }
        for (int i = 0; i < 3000; i++) {
            s = berth__mix64(s + (uint64_t)i);
            snprintf(key, sizeof key, "k%u", (unsigned)(s % 150));
            if (s % 4 == 0) {
                berth_engine_group_release(e, key, NULL);
                continue;
            }
            uint32_t g = (s >> 10) % 5 == 0 ? (uint32_t)(1 + (s >> 14) % 4) : 0;
            berth_request_t r = req(1 + (uint32_t)((s >> 18) % 4), 1 + (uint32_t)((s >> 22) % 8), g);
            r.nimages = (uint32_t)((s >> 26) % 3);
            for (uint32_t k = 0; k < r.nimages; k++)
                r.images[k] = berth_image_hash(pool[(s >> (30 + 3 * k)) % 6]);
            choose(e, &r);
            berth_engine_request_place(e, key, &r, NULL, NULL);
        }
        berth_engine_free(e);
    }
}

/* Puts hosts "s<from>" to "s<to - 1>" (8 cores, 32 GB, Linux each) into
 * the store's cell. */
static void put_hosts(berth_store_t *store, int from, int to)
{
    for (int i = from; i < to; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        berth_host_t h;
        memset(&h, 0, sizeof h);
        h.name = name;
        h.cores = 8;
        h.memory_mib = 32 * GB;
        h.os = BERTH_OS_LINUX;
        berth_error_t err;
        if (berth_store_host_put(store, &h, &err) != 0)
            fail_msg("host: %s", err.message);
    }
}

/* berth_store_images_sync(): the sets agents write through their host
 * links reach the store's engine, a host without a set holds nothing, and
 * the next placement uses them. */
static void test_store_images_sync(void **state)
{
    (void)state;
    berth_test_redis_options_t ro = {BERTH_TEST_REDIS_UNIX, BERTH_TEST_REDIS_AOF_OFF, 0};
    berth_test_redis_t *redis = berth_test_redis_start(&ro);
    if (redis == NULL)
        fail_msg("redis-server did not start");
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 1, 1);
    berth_store_options_t so;
    berth_store_options_init(&so);
    so.url = redis->url;
    so.cell = "images";
    berth_store_t *store = NULL;
    berth_error_t err;
    if (berth_store_open(&so, e, &store, &err) != 0)
        fail_msg("store: %s", err.message);
    put_hosts(store, 0, 4);
    assert_int_equal(berth_store_sync(store, &err), 0);
    assert_int_equal(berth_engine_host_count(e), 4);
    berth_hostlink_t *link = NULL;
    if (berth_hostlink_open(&so, "s2", &link, &err) != 0)
        fail_msg("link: %s", err.message);
    const char *imgs[] = {"nginx:1.25", "busybox"};
    assert_int_equal(berth_hostlink_images_put(link, imgs, 2, &err), 0);
    assert_int_equal(berth_engine_host_images_count(e, "s2"), 0);
    assert_int_equal(berth_engine_host_images_set(e, "s0", imgs, 1, NULL), 0);
    assert_int_equal(berth_store_images_sync(store, &err), 0);
    assert_int_equal(berth_engine_host_images_count(e, "s2"), 2);
    assert_int_equal(berth_engine_host_images_count(e, "s0"), 0); /* no set: nothing */
    berth_request_t r = with_images(req(1, 1, 0), "docker.io/library/nginx:1.25",
                                    "busybox:latest");
    assert_string_equal(choose(e, &r), "s2");
    /* an agent that reports no images clears its host */
    assert_int_equal(berth_hostlink_images_put(link, NULL, 0, &err), 0);
    assert_int_equal(berth_store_images_sync(store, &err), 0);
    assert_int_equal(berth_engine_host_images_count(e, "s2"), 0);
    berth_hostlink_close(link);
    /* More hosts than one round trip reads (256 per batch): the first and
     * the last host's sets both arrive. */
    put_hosts(store, 4, 600);
    assert_int_equal(berth_store_sync(store, &err), 0);
    const char *far[] = {"s0", "s255", "s256", "s599"};
    for (size_t i = 0; i < 4; i++) {
        if (berth_hostlink_open(&so, far[i], &link, &err) != 0)
            fail_msg("link: %s", err.message);
        assert_int_equal(berth_hostlink_images_put(link, imgs, i % 2 + 1, &err), 0);
        berth_hostlink_close(link);
    }
    assert_int_equal(berth_store_images_sync(store, &err), 0);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(berth_engine_host_images_count(e, far[i]), (int)(i % 2 + 1));
    assert_int_equal(berth_engine_host_images_count(e, "s300"), 0);
    /* Redis gone: an error, and the engine keeps what it had */
    assert_int_equal(berth_engine_host_images_set(e, "s1", imgs, 2, NULL), 0);
    berth_test_redis_stop(redis);
    assert_int_equal(berth_store_images_sync(store, &err), BERTH_EIO);
    assert_int_equal(berth_engine_host_images_count(e, "s1"), 2);
    berth_store_close(store);
    berth_engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_only_avoids_gpu_hosts),
        cmocka_unit_test(test_one_gpu_prefers_partly_used),
        cmocka_unit_test(test_multi_gpu_finds_gpus_together),
        cmocka_unit_test(test_gpu_balance),
        cmocka_unit_test(test_rules_differ_from_plain_best_fit),
        cmocka_unit_test(test_image_hash_normalizes),
        cmocka_unit_test(test_host_images_set),
        cmocka_unit_test(test_locality_prefers_cached_hosts),
        cmocka_unit_test(test_locality_scan_is_bounded),
        cmocka_unit_test(test_group_request_images),
        cmocka_unit_test(test_random_agreement),
        cmocka_unit_test(test_store_images_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
