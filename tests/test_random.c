/*
 * test_random.c: randomized checks of the placement engine against a
 * brute-force model, with fixed seeds and bounded sizes.
 *
 * Places, redeploys and releases thousands of groups with random
 * constraints on a random mixed cluster while hosts change state and
 * capacity, and after EVERY step checks that no host is over capacity, that
 * each host's usage equals a recomputation from the groups this test
 * recorded, that the totals agree, that the index's own invariants hold, and
 * that the index chooses exactly the host a linear scan with the same
 * constraints and scoring chooses (GPU balance included, and in the
 * locality runs, image locality: hosts hold random images that change, and
 * requests name some).  Hosts carry random virtual network subnets, the
 * table changes during the run (moving hosts between classes while they
 * hold groups), and some requests name a subnet.  Never asserts on timings.
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
#define NHOSTS 60
#define NKEYS 400
#define STEPS 6000

typedef struct shadow {
    bool live;
    char host[BERTH_NAME_MAX + 1];
    berth_demand_t demand;
    berth_request_t req;
} shadow_t;

typedef struct world {
    berth_engine_t *e;
    uint64_t rng;
    shadow_t groups[NKEYS];
    berth_host_t hosts[NHOSTS];
    char names[NHOSTS][16];
    char zones[3][4];
    int zone_ids[3];
    /* NSUBNETS subnets, each carried by a random subset of the hosts. */
    berth_subnet_t subnets[3];
    const char *subnet_hosts[3][NHOSTS];
    size_t placed, refused, moved, stayed, conflicts;
    bool images;                    /* image locality exercised             */
} world_t;

static const char *const image_pool[] = {"nginx", "redis:7", "busybox", "app/a:1", "app/b:2",
                                         "mcr.microsoft.com/windows/servercore:ltsc2022"};
#define IMAGE_POOL 6

static uint64_t rnd(world_t *w)
{
    w->rng += 0x9e3779b97f4a7c15ull;
    return berth__mix64(w->rng);
}

static uint32_t below(world_t *w, uint32_t n)
{
    return (uint32_t)(rnd(w) % n);
}

static const char *const skus[] = {"K80", "P100", "V100"};

/* Replaces the subnet table: subnet i is 10.i.0.0/16 on a random half of
 * the hosts (names of hosts not added yet included). */
static void random_subnets(world_t *w)
{
    static const char *const ids[] = {"sn-a", "sn-b", "sn-c"};
    static const char *const cidrs[] = {"10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16"};
    for (int i = 0; i < 3; i++) {
        berth_subnet_t *s = &w->subnets[i];
        s->id = ids[i];
        s->cidr = cidrs[i];
        s->hosts = w->subnet_hosts[i];
        s->nhosts = 0;
        for (int h = 0; h < NHOSTS; h++)
            if (below(w, 2))
                w->subnet_hosts[i][s->nhosts++] = w->names[h];
    }
    berth_error_t err;
    if (berth_engine_subnets_set(w->e, w->subnets, 3, &err) != 0)
        fail_msg("subnets: %s %s", err.target, err.message);
}

static void make_hosts(world_t *w)
{
    for (int i = 0; i < 3; i++) {
        snprintf(w->zones[i], sizeof w->zones[i], "%d", i + 1);
        w->zone_ids[i] = berth_engine_zone_id(w->e, w->zones[i]);
        assert_true(w->zone_ids[i] >= 0);
    }
    for (int i = 0; i < NHOSTS; i++)
        snprintf(w->names[i], sizeof w->names[i], "node-%02d", i);
    /* Before the hosts: hosts added later take their subnets from it. */
    random_subnets(w);
    for (int i = 0; i < NHOSTS; i++) {
        berth_host_t *h = &w->hosts[i];
        memset(h, 0, sizeof *h);
        h->name = w->names[i];
        /* few distinct shapes, so that ties are common */
        static const uint32_t cores[] = {4, 8, 8, 16, 32};
        h->cores = cores[below(w, 5)];
        h->memory_mib = h->cores * (2 + below(w, 3) * 2) * GB;
        h->os = below(w, 5) == 0 ? BERTH_OS_WINDOWS : BERTH_OS_LINUX;
        if (h->os == BERTH_OS_WINDOWS) {
            h->os_build = below(w, 2) ? BERTH_WINDOWS_LTSC2019 : BERTH_WINDOWS_LTSC2022;
            if (below(w, 2))
                h->features |= BERTH_HOST_HYPERV;
        } else if (below(w, 4) == 0) {
            h->gpu_count = below(w, 2) ? 4 : 8;
            h->gpu_sku = skus[below(w, 3)];
        }
        uint32_t z = below(w, 4);
        h->zone = z < 3 ? w->zones[z] : NULL;
        uint32_t f = below(w, 12);
        if (f == 0)
            h->features |= BERTH_HOST_CONFIDENTIAL;
        else if (f == 1)
            h->features |= BERTH_HOST_DEDICATED;
        if (below(w, 3) == 0)
            h->features |= BERTH_HOST_SANDBOX;
        berth_error_t err;
        if (berth_engine_host_add(w->e, h, &err) != 0)
            fail_msg("host %s: %s", h->name, err.message);
    }
}

/* Gives host i a random subset of the image pool. */
static void host_images(world_t *w, int i)
{
    const char *imgs[IMAGE_POOL];
    size_t n = 0;
    for (size_t k = 0; k < IMAGE_POOL; k++)
        if (below(w, 2))
            imgs[n++] = image_pool[k];
    assert_int_equal(berth_engine_host_images_set(w->e, w->names[i], imgs, n, NULL), 0);
}

static berth_request_t random_request(world_t *w)
{
    berth_request_t r;
    memset(&r, 0, sizeof r);
    r.os = below(w, 6) == 0 ? BERTH_OS_WINDOWS : BERTH_OS_LINUX;
    r.demand.millicores = (1 + below(w, below(w, 4) == 0 ? 16 : 4)) * 1000;
    r.demand.requested_millicores = r.demand.millicores;
    r.demand.memory_mib = 512 * (1 + below(w, 32));
    if (r.os == BERTH_OS_WINDOWS) {
        static const uint32_t builds[] = {0, BERTH_WINDOWS_LTSC2019, BERTH_WINDOWS_LTSC2022,
                                          BERTH_WINDOWS_LTSC2025};
        r.os_build = builds[below(w, 4)];
    } else if (below(w, 5) == 0) {
        r.demand.gpu_count = 1 + below(w, 4);
        r.demand.gpu_sku = below(w, 3);
    }
    if (below(w, 4) == 0)
        r.zone_mask = 1ull << w->zone_ids[below(w, 3)];
    if (below(w, 10) == 0)
        r.zone_mask |= 1ull << w->zone_ids[below(w, 3)];
    if (below(w, 5) == 0)
        r.subnet_mask = 1ull << below(w, 3);
    uint32_t s = below(w, 20);
    r.sku = s == 0 ? BERTH_SKU_DEDICATED : s == 1 ? BERTH_SKU_CONFIDENTIAL
          : s < 10 ? BERTH_SKU_STANDARD : BERTH_SKU_UNSET;
    r.restart_policy = (berth_restart_policy_t)below(w, 4);
    r.sandbox = below(w, 4) == 0;
    if (w->images) {
        uint32_t n = below(w, 4);
        for (uint32_t k = 0; k < n; k++)
            r.images[r.nimages++] = berth_image_hash(image_pool[below(w, IMAGE_POOL)]);
    }
    return r;
}

/* Everything that must hold after every step. */
static void check_world(world_t *w)
{
    berth__index_t *idx = berth__engine_index(w->e);
    char why[256];
    if (berth__index_check(idx, why, sizeof why) != 0)
        fail_msg("index invariant: %s", why);
    berth_engine_stats_t st;
    berth_engine_stats(w->e, &st);
    uint64_t cpu = 0, mem = 0, gpu = 0;
    size_t groups = 0, used_hosts = 0;
    /* recompute every host's usage from this test's own records */
    uint64_t c_of[NHOSTS] = {0}, m_of[NHOSTS] = {0}, g_of[NHOSTS] = {0};
    uint32_t n_of[NHOSTS] = {0};
    for (int k = 0; k < NKEYS; k++) {
        const shadow_t *s = &w->groups[k];
        if (!s->live)
            continue;
        int i = atoi(s->host + strlen("node-"));
        assert_in_range(i, 0, NHOSTS - 1);
        assert_string_equal(s->host, w->names[i]);
        c_of[i] += s->demand.millicores;
        m_of[i] += s->demand.memory_mib;
        g_of[i] += s->demand.gpu_count;
        n_of[i]++;
    }
    for (int i = 0; i < NHOSTS; i++) {
        berth_host_t h;
        berth_host_usage_t u;
        assert_int_equal(berth_engine_host_get(w->e, w->names[i], &h, &u), 0);
        uint64_t c = c_of[i], m = m_of[i], g = g_of[i];
        uint32_t n = n_of[i];
        if (u.millicores != c || u.memory_mib != m || u.gpu_count != g || u.groups != n)
            fail_msg("host %s: engine says %u/%u/%u/%u, records say %u/%u/%u/%u",
                     w->names[i], u.millicores, u.memory_mib, u.gpu_count, u.groups,
                     (unsigned)c, (unsigned)m, (unsigned)g, n);
        if (c > (uint64_t)h.cores * 1000u || m > h.memory_mib || g > h.gpu_count)
            fail_msg("host %s is over capacity", w->names[i]);
        if ((h.features & BERTH_HOST_DEDICATED) && n > 1)
            fail_msg("dedicated host %s holds %u groups", w->names[i], n);
        for (int k = 0; k < NKEYS && !(h.features & BERTH_HOST_SANDBOX); k++)
            if (w->groups[k].live && w->groups[k].req.sandbox &&
                strcmp(w->groups[k].host, w->names[i]) == 0)
                fail_msg("host %s has no sandbox but holds a group that needs one",
                         w->names[i]);
        cpu += c;
        mem += m;
        gpu += g;
        groups += n;
        used_hosts += n > 0;
    }
    assert_int_equal(st.used_millicores, cpu);
    assert_int_equal(st.used_memory_mib, mem);
    assert_int_equal(st.used_gpus, gpu);
    assert_int_equal(st.groups, groups);
    assert_int_equal(st.hosts_used, used_hosts);
    assert_int_equal(berth_engine_group_count(w->e), groups);
}

/* The index and the linear scan must agree on every request. */
static void check_choice(world_t *w, const berth_request_t *r)
{
    berth__index_t *idx = berth__engine_index(w->e);
    uint32_t a = BERTH__NIL, b = BERTH__NIL;
    berth_isolation_t ia = BERTH_ISOLATION_NONE, ib = BERTH_ISOLATION_NONE;
    int ra = berth__index_choose(idx, r, &a, &ia);
    int rb = berth__index_choose_brute(idx, r, &b, &ib);
    assert_int_equal(ra, rb);
    if (ra == 0) {
        if (a != b)
            fail_msg("index chose %s, the scan %s", berth__index_host(idx, a)->name,
                     berth__index_host(idx, b)->name);
        assert_int_equal(ia, ib);
    }
}

static void step(world_t *w)
{
    uint32_t op = below(w, 100);
    uint32_t k = below(w, NKEYS);
    char key[32];
    snprintf(key, sizeof key, "rg/cg-%u", k);
    shadow_t *s = &w->groups[k];
    if (w->images && op < 4) {
        host_images(w, (int)below(w, NHOSTS));
        return;
    }
    if (op == 4 && below(w, 8) == 0) {
        /* the subnet table changes: hosts move between classes */
        random_subnets(w);
        return;
    }
    if (op < 8) {
        /* a host changes state */
        uint32_t i = below(w, NHOSTS);
        berth_host_state_t st = below(w, 3) == 0 ? BERTH_HOST_READY
                              : (berth_host_state_t)below(w, 3);
        assert_int_equal(berth_engine_host_set_state(w->e, w->names[i], st, NULL), 0);
        w->hosts[i].state = st;
        return;
    }
    if (op < 11) {
        /* a host's capacity changes: refused below what it uses */
        uint32_t i = below(w, NHOSTS);
        berth_host_t h = w->hosts[i];
        berth_host_usage_t u;
        berth_engine_host_get(w->e, h.name, NULL, &u);
        h.cores = 4 + below(w, 29);
        h.memory_mib = (4 + below(w, 128)) * GB;
        bool fits = (uint64_t)h.cores * 1000 >= u.millicores && h.memory_mib >= u.memory_mib;
        int rc = berth_engine_host_update(w->e, &h, NULL);
        assert_int_equal(rc, fits ? 0 : BERTH_EBUSY);
        if (rc == 0)
            w->hosts[i] = h;
        return;
    }
    if (op < 30) {
        int rc = berth_engine_group_release(w->e, key, NULL);
        assert_int_equal(rc, s->live ? 0 : BERTH_ENOENT);
        s->live = false;
        return;
    }
    berth_request_t r;
    if (s->live && op < 50) {
        /* a redeploy: mostly the same properties, sometimes a new demand */
        r = s->req;
        if (below(w, 3) == 0) {
            r.demand.millicores = (1 + below(w, 6)) * 1000;
            r.demand.memory_mib = 512 * (1 + below(w, 40));
        }
        if (below(w, 10) == 0)
            r.zone_mask = 1ull << w->zone_ids[below(w, 3)];
        if (below(w, 15) == 0)
            r.restart_policy = r.restart_policy == BERTH_RESTART_NEVER
                ? BERTH_RESTART_ON_FAILURE : BERTH_RESTART_NEVER;
    } else {
        r = random_request(w);
    }
    if (!s->live)
        check_choice(w, &r);
    berth_placement_t p;
    berth_error_t err;
    char before[BERTH_NAME_MAX + 1];
    strcpy(before, s->live ? s->host : "");
    int rc = berth_engine_request_place(w->e, key, &r, &p, &err);
    if (rc == BERTH_ECONFLICT) {
        assert_true(s->live);
        assert_string_equal(err.name, "InvalidContainerGroupUpdate");
        w->conflicts++;
    } else if (rc == BERTH_ENOSPC) {
        assert_string_equal(err.name, "ResourceNotAvailable");
        assert_non_null(strstr(err.message, "The requested resource is not available"));
        w->refused++;
        if (s->live) {
            berth_placement_t g;
            assert_int_equal(berth_engine_group_get(w->e, key, &g), 0);
            assert_string_equal(g.host, before);
        }
    } else {
        if (rc != 0)
            fail_msg("place %s: %d %s", key, rc, err.message);
        if (s->live) {
            assert_int_equal(p.kind, strcmp(p.host, before) == 0 ? BERTH_PLACED_STAYED
                                                                 : BERTH_PLACED_MOVED);
            if (p.kind == BERTH_PLACED_MOVED) {
                assert_string_equal(p.previous_host, before);
                w->moved++;
            } else {
                w->stayed++;
            }
        } else {
            assert_int_equal(p.kind, BERTH_PLACED_NEW);
            w->placed++;
        }
        s->live = true;
        strcpy(s->host, p.host);
        s->demand = r.demand;
        s->req = r;
    }
}

static void run_world(berth_policy_t policy, uint64_t seed, bool images)
{
    world_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    berth_engine_options_t o;
    berth_engine_options_init(&o);
    o.policy = policy;
    o.seed = seed;
    assert_int_equal(berth_engine_new(&o, &w->e, NULL), 0);
    w->rng = seed;
    w->images = images;
    make_hosts(w);
    for (int i = 0; images && i < NHOSTS; i++)
        host_images(w, i);
    check_world(w);
    for (int i = 0; i < STEPS; i++) {
        step(w);
        check_world(w);
    }
    /* the run must have exercised every outcome */
    assert_true(w->placed > 100);
    assert_true(w->refused > 10);
    assert_true(w->stayed > 10);
    assert_true(w->moved > 0);
    assert_true(w->conflicts > 0);
    /* drain: every host can be emptied and removed */
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "rg/cg-%d", k);
        assert_int_equal(berth_engine_group_release(w->e, key, NULL), w->groups[k].live ? 0
                                                                                  : BERTH_ENOENT);
        w->groups[k].live = false;
    }
    check_world(w);
    for (int i = 0; i < NHOSTS; i++)
        assert_int_equal(berth_engine_host_remove(w->e, w->names[i], NULL), 0);
    berth_engine_stats_t st;
    berth_engine_stats(w->e, &st);
    assert_int_equal(st.hosts, 0);
    assert_int_equal(st.capacity_millicores, 0);
    berth_engine_free(w->e);
    free(w);
}

static void run(berth_policy_t policy, uint64_t seed)
{
    run_world(policy, seed, false);
}

static void test_random_binpack(void **state)
{
    (void)state;
    run(BERTH_POLICY_BINPACK, 1);
    run(BERTH_POLICY_BINPACK, 0xfeedface);
}

static void test_random_spread(void **state)
{
    (void)state;
    run(BERTH_POLICY_SPREAD, 2);
    run(BERTH_POLICY_SPREAD, 0xdecafbad);
}

static void test_random_binpack_locality(void **state)
{
    (void)state;
    run_world(BERTH_POLICY_BINPACK, 4, true);
    run_world(BERTH_POLICY_BINPACK, 0xabad1dea, true);
}

static void test_random_firstfit(void **state)
{
    (void)state;
    run(BERTH_POLICY_FIRSTFIT, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_binpack),
        cmocka_unit_test(test_random_spread),
        cmocka_unit_test(test_random_firstfit),
        cmocka_unit_test(test_random_binpack_locality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
