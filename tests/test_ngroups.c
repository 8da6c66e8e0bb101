/*
 * test_ngroups.c: NGroups of the library (core/services/ngroup.c).
 *
 * Covers: the planner alone (zone skew at most 1 through sequences of
 * scale-ups and scale-downs, one member per host while hosts last, bin
 * packing between hosts holding as many, a zone without room falling back
 * to the next, rolling updates that never leave more than maxUnavailable
 * members unavailable with the agents' views simulated, batches that wait
 * for the previous one, members already down updated at once; batches of
 * maxBatchPercent, in place and by replacement, never more than 3 of 12
 * updating at once and 4 batches when members come up at once;
 * maxUnhealthyPercent stopping a rollout, a pause holding the next batch;
 * fault domains bounding members per host); the store
 * with a real redis-server and simulator agents in three zones (6 members
 * 2/2/2 on distinct hosts, scaled to 4 and 9, a template change rolled out
 * with maxUnavailable 2 and checked at every step, delete releasing every
 * member; the update profile: name prefix, six fault domains, 12 members
 * rolled out 3 at a time in 4 batches, an hour's pause holding the second
 * batch, a failing revision stopped by maxUnhealthyPercent 0, a rollout by
 * replacement, stop/start/restart); bad input (template, counts, bound, zones, key) refused with
 * the path at fault and nothing changed; a delete cut short finished by
 * the next reconcile.  berthd's ngroups routes are
 * tests/test_berthd_ngroups.c's.
 *
 * Every loop is bounded; everything listens on loopback or unix sockets.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "agent-harness.h"
#include "berthd-harness.h"
#include "redis-harness.h"
#include "store.h"

#define WAIT_MS 30000

/* ---- the planner ---------------------------------------------------------------------- */

typedef struct sim {
    berth__ng_member_t m[BERTH_NGROUP_MEMBERS_MAX];
    size_t n;
    berth__ng_host_t h[32];
    size_t nh;
    size_t nz;
    uint32_t scratch[BERTH__NG_SCRATCH(32, 8, BERTH_NGROUP_MEMBERS_MAX)];
    berth__ng_action_t acts[2 * BERTH_NGROUP_MEMBERS_MAX];
} sim_t;

/* nz zones of `per` hosts each, every host with `cores` cores and 64 GB. */
static sim_t *sim_new(size_t nz, size_t per, uint32_t cores)
{
    sim_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->nz = nz;
    for (size_t z = 0; z < nz; z++)
        for (size_t k = 0; k < per; k++) {
            berth__ng_host_t *h = &s->h[s->nh++];
            h->zone = (int)z;
            h->eligible = true;
            h->free_millicores = cores * 1000;
            h->free_memory_mib = 65536;
        }
    return s;
}

static berth__ng_input_t sim_input(sim_t *s, uint32_t desired, uint32_t max_unavailable,
                                   uint64_t revision)
{
    return (berth__ng_input_t){.members = s->m, .nmembers = s->n, .hosts = s->h,
                               .nhosts = s->nh, .nzones = s->nz, .desired = desired,
                               .max_unavailable = max_unavailable, .revision = revision,
                               .millicores = 1000, .memory_mib = 1024};
}

static size_t sim_find(sim_t *s, uint32_t index)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->m[i].index == index)
            return i;
    return SIZE_MAX;
}

/* Applies the actions as the store would: capacity follows the members;
 * created and updated members start unavailable at `revision`. */
static void sim_apply(sim_t *s, size_t n, uint64_t revision)
{
    for (size_t k = 0; k < n; k++) {
        const berth__ng_action_t *a = &s->acts[k];
        size_t i = sim_find(s, a->index);
        if (a->kind == BERTH__NG_REMOVE) {
            assert_true(i != SIZE_MAX);
            if (s->m[i].host >= 0) {
                s->h[s->m[i].host].free_millicores += 1000;
                s->h[s->m[i].host].free_memory_mib += 1024;
            }
            s->m[i] = s->m[--s->n];
        } else if (a->kind == BERTH__NG_CREATE) {
            assert_true(i == SIZE_MAX);
            assert_true(a->host >= 0);
            assert_int_equal(s->h[a->host].zone, a->zone);
            s->h[a->host].free_millicores -= 1000;
            s->h[a->host].free_memory_mib -= 1024;
            s->m[s->n++] = (berth__ng_member_t){.index = a->index, .zone = a->zone,
                                                .host = a->host, .revision = revision,
                                                .available = false};
        } else {
            assert_true(i != SIZE_MAX);
            s->m[i].revision = revision;
            s->m[i].available = false;
        }
    }
}

static void zone_counts(const sim_t *s, uint32_t *zc)
{
    memset(zc, 0, 8 * sizeof *zc);
    for (size_t i = 0; i < s->n; i++)
        zc[s->m[i].zone]++;
}

static uint32_t skew(const sim_t *s)
{
    uint32_t zc[8];
    zone_counts(s, zc);
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t z = 0; z < s->nz; z++) {
        lo = zc[z] < lo ? zc[z] : lo;
        hi = zc[z] > hi ? zc[z] : hi;
    }
    return hi - lo;
}

static void test_plan_spread(void **state)
{
    (void)state;
    sim_t *s = sim_new(3, 4, 16);
    const uint32_t seq[] = {6, 4, 9, 1, 7, 12, 0, 5, 11, 3};
    for (size_t k = 0; k < sizeof seq / sizeof seq[0]; k++) {
        berth__ng_input_t in = sim_input(s, seq[k], 1, 1);
        berth__ng_outcome_t seen;
        size_t n = berth__ngroup_plan(&in, s->scratch, s->acts, 2 * BERTH_NGROUP_MEMBERS_MAX,
                                      &seen);
        sim_apply(s, n, 1);
        assert_int_equal(s->n, seq[k]);
        assert_true(skew(s) <= 1);
        for (size_t i = 0; i < n; i++)
            assert_false(s->acts[i].fallback);
        /* Up to 12 members on 12 hosts: never two on one host. */
        uint32_t per[32] = {0};
        for (size_t i = 0; i < s->n; i++)
            assert_int_equal(++per[s->m[i].host], 1);
        /* Indexes stay below the count ever asked for. */
        for (size_t i = 0; i < s->n; i++)
            assert_true(s->m[i].index < 12);
        for (size_t i = 0; i < s->n; i++)
            s->m[i].available = true;
    }
    /* Scale-down takes the highest index of the fullest zone. */
    s->n = 0;
    for (size_t i = 0; i < s->nh; i++) {
        s->h[i].free_millicores = 16000;
        s->h[i].free_memory_mib = 65536;
    }
    berth__ng_input_t in = sim_input(s, 6, 1, 1);
    sim_apply(s, berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL), 1);
    in = sim_input(s, 5, 1, 1);
    size_t n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(s->acts[0].kind, BERTH__NG_REMOVE);
    /* Zones all hold 2; the later zone (2) loses its highest index. */
    uint32_t hi = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->m[i].zone == 2 && s->m[i].index > hi)
            hi = s->m[i].index;
    assert_int_equal(s->acts[0].index, hi);
    free(s);
}

static void test_plan_hosts(void **state)
{
    (void)state;
    /* One zone of three hosts; host 1 has the least room: with members
     * spread evenly, bin packing picks it. */
    sim_t *s = sim_new(1, 3, 8);
    s->h[1].free_millicores = 4000;
    berth__ng_input_t in = sim_input(s, 1, 1, 1);
    size_t n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(s->acts[0].host, 1);
    sim_apply(s, n, 1);
    /* The next two avoid host 1 (anti-affinity first), then it is used again. */
    in = sim_input(s, 3, 1, 1);
    n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL);
    assert_int_equal(n, 2);
    assert_int_not_equal(s->acts[0].host, 1);
    assert_int_not_equal(s->acts[1].host, 1);
    assert_int_not_equal(s->acts[0].host, s->acts[1].host);
    sim_apply(s, n, 1);
    in = sim_input(s, 4, 1, 1);
    n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL);
    assert_int_equal(s->acts[0].host, 1);
    /* An ineligible host (down, wrong OS) is never chosen. */
    sim_t *t = sim_new(1, 2, 8);
    t->h[0].eligible = false;
    in = sim_input(t, 2, 1, 1);
    n = berth__ngroup_plan(&in, t->scratch, t->acts, 2000, NULL);
    assert_int_equal(n, 2);
    assert_int_equal(t->acts[0].host, 1);
    assert_int_equal(t->acts[1].host, 1);
    free(s);
    free(t);
}

static void test_plan_fallback(void **state)
{
    (void)state;
    /* Zone 1's hosts are full: its share goes to the others, flagged. */
    sim_t *s = sim_new(3, 2, 4);
    s->h[2].free_millicores = 0;
    s->h[3].free_millicores = 0;
    berth__ng_input_t in = sim_input(s, 6, 1, 1);
    size_t n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL);
    assert_int_equal(n, 6);
    size_t fallbacks = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_not_equal(s->acts[i].zone, 1);
        fallbacks += s->acts[i].fallback;
    }
    assert_true(fallbacks >= 2);
    sim_apply(s, n, 1);
    uint32_t zc[8];
    zone_counts(s, zc);
    assert_int_equal(zc[0], 3);
    assert_int_equal(zc[2], 3);
    /* Room nowhere: a create is still decided (the engine says why), no host. */
    sim_t *t = sim_new(2, 1, 0);
    in = sim_input(t, 1, 1, 1);
    n = berth__ngroup_plan(&in, t->scratch, t->acts, 2000, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(t->acts[0].host, -1);
    free(s);
    free(t);
}

static uint64_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

/* A rollout of 10 members with bound `mu`: simulated agents bring
 * updated members up at random; the bound holds after every step. */
static void rollout(uint32_t mu, uint64_t seed)
{
    sim_t *s = sim_new(3, 4, 16);
    berth__ng_input_t in = sim_input(s, 10, mu, 1);
    sim_apply(s, berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL), 1);
    for (size_t i = 0; i < s->n; i++)
        s->m[i].available = true;
    size_t steps = 0, max_seen = 0;
    bool done = false;
    for (; steps < 1000 && !done; steps++) {
        in = sim_input(s, 10, mu, 2);
        berth__ng_outcome_t seen;
        size_t n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, &seen);
        uint32_t waiting = seen.waiting;
        for (size_t k = 0; k < n; k++)
            assert_int_equal(s->acts[k].kind, BERTH__NG_UPDATE);
        /* A batch waits for the previous one. */
        if (waiting > 0)
            assert_int_equal(n, 0);
        sim_apply(s, n, 2);
        size_t down = 0, old = 0;
        for (size_t i = 0; i < s->n; i++) {
            down += !s->m[i].available;
            old += s->m[i].revision != 2;
        }
        assert_true(down <= mu);
        max_seen = down > max_seen ? down : max_seen;
        done = old == 0 && down == 0;
        for (size_t i = 0; i < s->n; i++)
            if (!s->m[i].available && lcg(&seed) % 3 == 0)
                s->m[i].available = true;
    }
    assert_true(done);
    assert_int_equal(max_seen, mu);
    assert_int_equal(skew(s), 1 - (10 % 3 == 0));
    free(s);
}

static void test_plan_rolling(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        rollout(1, seed);
        rollout(2, seed);
        rollout(3, seed);
    }
    /* Members down already are updated at once, whatever the bound. */
    sim_t *s = sim_new(1, 4, 16);
    berth__ng_input_t in = sim_input(s, 4, 1, 1);
    sim_apply(s, berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL), 1);
    s->m[0].available = true;
    s->m[1].available = true;
    in = sim_input(s, 4, 1, 2);
    size_t n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL);
    assert_int_equal(n, 2);
    for (size_t k = 0; k < n; k++) {
        size_t i = sim_find(s, s->acts[k].index);
        assert_false(s->m[i].available);
    }
    free(s);
}


/* Counts of a simulated NGroup at `rev`: members updating (at rev, not
 * available), available ones, old ones. */
static void sim_counts(const sim_t *s, uint64_t rev, size_t *updating, size_t *up, size_t *old)
{
    *updating = *up = *old = 0;
    for (size_t i = 0; i < s->n; i++) {
        *updating += s->m[i].revision == rev && !s->m[i].available;
        *up += s->m[i].available;
        *old += s->m[i].revision != rev;
    }
}

/* 12 members, maxBatchPercent 25 (3 at once), in place and by
 * replacement: whether the agents bring members up at once or at random,
 * never more than 3 members update at once; by replacement the available
 * members never fall below the desired count; with members up at once the
 * rollout takes exactly 4 batches, one per step. */
static void batches(bool replace, uint64_t seed, bool at_once)
{
    sim_t *s = sim_new(3, 4, 16);
    berth__ng_input_t in = sim_input(s, 12, 1, 1);
    sim_apply(s, berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL), 1);
    for (size_t i = 0; i < s->n; i++)
        s->m[i].available = true;
    size_t steps = 0, batch_steps = 0;
    bool done = false;
    for (; steps < 1000 && !done; steps++) {
        in = sim_input(s, 12, 1, 2);
        in.batch = 3;
        in.replace = replace;
        in.max_unhealthy_percent = -1;
        berth__ng_outcome_t seen;
        size_t n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, &seen);
        batch_steps += seen.batch_started;
        sim_apply(s, n, 2);
        size_t updating, up, old;
        sim_counts(s, 2, &updating, &up, &old);
        assert_true(updating <= 3);
        if (replace) {
            assert_true(up >= 12);
            assert_true(s->n <= 15);
        }
        done = old == 0 && updating == 0 && s->n == 12;
        for (size_t i = 0; i < s->n; i++)
            if (!s->m[i].available && (at_once || lcg(&seed) % 3 == 0))
                s->m[i].available = true;
    }
    assert_true(done);
    if (at_once) {
        assert_int_equal(batch_steps, 4);
        assert_true(steps <= 6);
    }
    free(s);
}

static void test_plan_batches(void **state)
{
    (void)state;
    batches(false, 1, true);
    batches(true, 1, true);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        batches(false, seed, false);
        batches(true, seed, false);
    }
}

/* maxUnhealthyPercent: a batch whose members fail stops the rollout; a
 * pause keeps the next batch from starting. */
static void test_plan_unhealthy_pause(void **state)
{
    (void)state;
    sim_t *s = sim_new(1, 4, 16);
    berth__ng_input_t in = sim_input(s, 10, 1, 1);
    sim_apply(s, berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL), 1);
    for (size_t i = 0; i < s->n; i++)
        s->m[i].available = true;
    in = sim_input(s, 10, 1, 2);
    in.batch = 2;
    in.max_unhealthy_percent = 40;
    berth__ng_outcome_t seen;
    size_t n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, &seen);
    assert_int_equal(n, 2);
    assert_true(seen.batch_started);
    sim_apply(s, n, 2);
    /* One of the two fails: 50% > 40%, the rollout stops. */
    for (size_t i = 0; i < s->n; i++)
        if (s->m[i].revision == 2 && s->m[i].index == s->acts[0].index)
            s->m[i].unhealthy = true;
        else if (s->m[i].revision == 2)
            s->m[i].available = true;
    for (int k = 0; k < 3; k++) {
        n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, &seen);
        assert_int_equal(n, 0);
        assert_true(seen.halted);
        assert_int_equal(seen.unhealthy, 1);
    }
    /* At 50% the failed member is tolerated: the next batch goes. */
    in.max_unhealthy_percent = 50;
    n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, &seen);
    assert_false(seen.halted);
    assert_int_equal(n, 2);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(s->acts[k].kind, BERTH__NG_UPDATE);
    /* Without a bound nothing is tolerated: the batch waits for it. */
    in.max_unhealthy_percent = -1;
    n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, &seen);
    assert_false(seen.halted);
    assert_int_equal(n, 0);
    in.max_unhealthy_percent = 50;
    for (size_t i = 0; i < s->n; i++) {
        s->m[i].unhealthy = false;
        if (s->m[i].revision == 2)
            s->m[i].available = true;
    }
    /* Paused: nothing starts however often the planner runs. */
    in.paused = true;
    for (int k = 0; k < 3; k++) {
        n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, &seen);
        assert_int_equal(n, 0);
        assert_int_equal(seen.outdated, 8);
    }
    in.paused = false;
    n = berth__ngroup_plan(&in, s->scratch, s->acts, 2000, &seen);
    assert_int_equal(n, 2);
    free(s);
}

/* Fault domains: no host takes more than ceil(desired / F) members. */
static void test_plan_fault_domains(void **state)
{
    (void)state;
    sim_t *s = sim_new(1, 3, 64);
    berth__ng_input_t in = sim_input(s, 6, 1, 1);
    in.per_host_max = 2;            /* 6 members, 3 fault domains */
    sim_apply(s, berth__ngroup_plan(&in, s->scratch, s->acts, 2000, NULL), 1);
    assert_int_equal(s->n, 6);
    uint32_t on[3] = {0};
    for (size_t i = 0; i < s->n; i++)
        on[s->m[i].host]++;
    for (int h = 0; h < 3; h++)
        assert_int_equal(on[h], 2);
    /* Two hosts only: the members a third domain would take find none. */
    sim_t *t = sim_new(1, 2, 64);
    in = sim_input(t, 6, 1, 1);
    in.per_host_max = 2;
    size_t n = berth__ngroup_plan(&in, t->scratch, t->acts, 2000, NULL);
    assert_int_equal(n, 6);
    size_t hostless = 0;
    for (size_t k = 0; k < n; k++)
        hostless += t->acts[k].host < 0;
    assert_int_equal(hostless, 2);
    free(s);
    free(t);
}

/* ---- the store, with simulator agents ------------------------------------------------------ */

static int cell_counter;

#define NAGENTS 6

typedef struct fixture {
    char cell[32];
    test_sched_t sched;
    test_agent_t agents[NAGENTS];
    int nagents;
} fixture_t;

static const char SIM_CONFIG[] = "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 150}";

static int agent_start(fixture_t *f, const char *host, const char *zone)
{
    const char *args[] = {"--cores", "8", "--memory-mib", "16384", "--tick-ms", "50",
                          "--heartbeat-ms", "200", "--ttl-ms", "10000", "--zone", zone, NULL};
    if (test_agent_start(&f->agents[f->nagents], berth_test_redis_group->url, f->cell, host,
                         "sim", SIM_CONFIG, args) != 0)
        return -1;
    f->nagents++;
    return 0;
}

/* A cell with `n` agents, two per zone "1", "2", "3" (z1a, z1b, z2a ...). */
static fixture_t *fixture_new(int n)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    snprintf(f->cell, sizeof f->cell, "ng-%d", ++cell_counter);
    if (test_sched_open(&f->sched, berth_test_redis_group->url, f->cell) != 0) {
        free(f);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        char host[16], zone[4];
        snprintf(host, sizeof host, "z%d%c", i / 2 + 1, 'a' + i % 2);
        snprintf(zone, sizeof zone, "%d", i / 2 + 1);
        if (agent_start(f, host, zone) != 0 || !test_sched_wait_host(&f->sched, host, 10000))
            return f;               /* teardown stops what started */
    }
    return f;
}

static int setup_agents(void **state)
{
    fixture_t *f = fixture_new(NAGENTS);
    *state = f;
    return f != NULL && f->nagents == NAGENTS ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f == NULL)
        return 0;
    int bad = 0;
    for (int i = 0; i < f->nagents; i++) {
        if (test_agent_stop(&f->agents[i]) != 0) {
            test_agent_dump(&f->agents[i], 40);
            bad = 1;
        }
        unlink(f->agents[i].log_path);
    }
    test_sched_close(&f->sched);
    free(f);
    return bad ? -1 : 0;
}

/* A template: one busybox container of 1 core and 1 GB, env MODE=mode,
 * a secure value, and the template's own zones when `zones` is set. */
static char *template_doc(const char *mode, const char *zones)
{
    char *out = NULL;
    int rc = asprintf(&out,
                      "{\"location\": \"westeurope\", %s%s%s \"properties\": {\"osType\": "
                      "\"Linux\", \"restartPolicy\": \"Always\", \"containers\": [{\"name\": "
                      "\"app\", \"properties\": {\"image\": \"busybox:latest\", "
                      "\"environmentVariables\": [{\"name\": \"MODE\", \"value\": \"%s\"}, "
                      "{\"name\": \"TOKEN\", \"secureValue\": \"hush-hush-value\"}], "
                      "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}",
                      zones ? "\"zones\": " : "", zones ? zones : "", zones ? "," : "", mode);
    assert_true(rc > 0);
    return out;
}

static const char *const ZONES[] = {"1", "2", "3"};

static berth_ngroup_spec_t spec_of(const char *key, const char *tmpl, int64_t desired,
                                   int64_t mu)
{
    return (berth_ngroup_spec_t){.key = key, .name = "web", .template_json = tmpl,
                                 .desired = desired, .zones = ZONES, .nzones = 3,
                                 .max_unavailable = mu};
}

static berth_ngroup_t *get_ok(fixture_t *f, const char *key)
{
    berth_ngroup_t *g = NULL;
    berth_error_t err;
    int rc = berth_store_ngroup_get(f->sched.store, key, &g, &err);
    if (rc != 0)
        fprintf(stderr, "get: %s\n", err.message);
    assert_int_equal(rc, 0);
    return g;
}

static size_t unavailable(const berth_ngroup_t *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->nmembers; i++)
        n += !g->members[i].available;
    return n;
}

/* Reconciles until steady (bounded), checking the bound at every step:
 * never more than `mu` members unavailable once the rollout runs.
 * Returns the number of steps with updates. */
static int converge(fixture_t *f, const char *key, size_t mu, bool check)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    int batches = 0;
    while (test_now_ms() < end) {
        berth_ngroup_step_t st;
        berth_error_t err;
        int rc = berth_store_ngroup_reconcile(f->sched.store, key, &st, &err);
        if (rc != 0)
            fprintf(stderr, "reconcile: %s\n", err.message);
        assert_int_equal(rc, 0);
        assert_int_equal(st.failed, 0);
        batches += st.updated > 0;
        berth_ngroup_t *g = get_ok(f, key);
        if (check && unavailable(g) > mu) {
            fprintf(stderr, "%zu members unavailable, bound %zu\n", unavailable(g), mu);
            for (size_t i = 0; i < g->nmembers; i++)
                fprintf(stderr, "  %s rev %" PRIu64 " %s\n", g->members[i].name,
                        g->members[i].revision, g->members[i].state);
        }
        if (check)
            assert_true(unavailable(g) <= mu);
        bool steady = g->steady;
        berth_ngroup_free(g);
        if (steady && st.steady)
            return batches;
        test_sleep_ms(50);
    }
    for (int i = 0; i < f->nagents; i++)
        test_agent_dump(&f->agents[i], 10);
    fail_msg("NGroup %s did not converge", key);
    return -1;
}

/* Members per zone and per host; checks skew and returns the most one
 * host holds. */
static uint32_t check_spread(const berth_ngroup_t *g, uint32_t want)
{
    assert_int_equal(g->nmembers, want);
    uint32_t zc[3] = {0}, most = 0;
    for (size_t i = 0; i < g->nmembers; i++) {
        int z = atoi(g->members[i].zone);
        assert_true(z >= 1 && z <= 3);
        zc[z - 1]++;
        uint32_t on = 0;
        for (size_t j = 0; j < g->nmembers; j++)
            on += strcmp(g->members[i].host, g->members[j].host) == 0;
        most = on > most ? on : most;
        assert_true(g->members[i].available);
        assert_int_equal(g->members[i].revision, g->revision);
    }
    uint32_t lo = zc[0], hi = zc[0];
    for (int z = 1; z < 3; z++) {
        lo = zc[z] < lo ? zc[z] : lo;
        hi = zc[z] > hi ? zc[z] : hi;
    }
    assert_true(hi - lo <= 1);
    return most;
}

static void test_store_lifecycle(void **state)
{
    fixture_t *f = *state;
    const char *key = "sub/rg/web";
    char *t1 = template_doc("one", NULL);
    berth_ngroup_spec_t spec = spec_of(key, t1, 6, 2);
    uint64_t rev = 0;
    berth_error_t err;
    int rc = berth_store_ngroup_put(f->sched.store, &spec, &rev, &err);
    if (rc != 0)
        fprintf(stderr, "put: %s (%s)\n", err.message, err.target);
    assert_int_equal(rc, 0);
    assert_int_equal(rev, 1);
    converge(f, key, 0, false);
    berth_ngroup_t *g = get_ok(f, key);
    assert_int_equal(check_spread(g, 6), 1); /* 2/2/2 on six distinct hosts */
    assert_string_equal(g->members[0].name, "web-0");
    assert_string_equal(g->members[0].key, "sub/rg/web/web-0");
    assert_string_equal(g->message, "");
    berth_ngroup_free(g);

    /* The same goal again changes nothing. */
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, &rev, &err), 0);
    assert_int_equal(rev, 1);
    berth_ngroup_step_t st;
    assert_int_equal(berth_store_ngroup_reconcile(f->sched.store, key, &st, &err), 0);
    assert_true(st.steady);
    assert_int_equal(st.created + st.removed + st.updated, 0);

    spec.desired = 4;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, &rev, &err), 0);
    converge(f, key, 0, false);
    g = get_ok(f, key);
    check_spread(g, 4);
    berth_ngroup_free(g);

    spec.desired = 9;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, &rev, &err), 0);
    converge(f, key, 0, false);
    g = get_ok(f, key);
    assert_int_equal(check_spread(g, 9), 2); /* 3 per zone on 2 hosts */
    berth_ngroup_free(g);

    /* A template change: revision 2, rolled out two at a time. */
    char *t2 = template_doc("two", NULL);
    spec.template_json = t2;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, &rev, &err), 0);
    assert_int_equal(rev, 2);
    int batches = converge(f, key, 2, true);
    assert_true(batches >= 5);      /* 9 members, at most 2 at a time */
    g = get_ok(f, key);
    assert_int_equal(g->revision, 2);
    assert_int_equal(g->updated, 9);
    check_spread(g, 9);
    /* The members run the new document. */
    char *doc = NULL;
    assert_int_equal(berth_store_group_read(f->sched.store, g->members[3].key, &doc, NULL, &err),
                     0);
    assert_non_null(strstr(doc, "\"two\""));
    assert_non_null(strstr(doc, "berth-ngroup-revision"));
    berth_free(doc);
    berth_ngroup_free(g);

    /* Listed, then deleted: every member released. */
    assert_int_equal(berth_store_ngroup_list(f->sched.store, NULL, NULL, &err), 1);
    assert_int_equal(berth_store_ngroup_delete(f->sched.store, key, &err), 0);
    assert_int_equal(berth_store_ngroup_get(f->sched.store, key, &g, &err), BERTH_ENOENT);
    assert_null(g);
    assert_int_equal(berth_store_sync(f->sched.store, &err), 0);
    assert_int_equal(berth_engine_group_count(f->sched.engine), 0);
    assert_int_equal(berth_store_ngroup_list(f->sched.store, NULL, NULL, &err), 0);
    assert_int_equal(berth_store_ngroup_delete(f->sched.store, key, &err), BERTH_ENOENT);
    free(t1);
    free(t2);
}


/* ---- the ACI update profile, with simulator agents ------------------------------------ */

/* A template whose container exits with code 1 at once, never restarted. */
static char *template_failing(void)
{
    char *out = NULL;
    int rc = asprintf(&out,
                      "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
                      "\"restartPolicy\": \"Never\", \"containers\": [{\"name\": \"app\", "
                      "\"properties\": {\"image\": \"busybox:latest\", "
                      "\"environmentVariables\": [{\"name\": \"BERTH_SIM_EXIT_AFTER_MS\", "
                      "\"value\": \"1\"}, {\"name\": \"BERTH_SIM_EXIT_CODE\", \"value\": "
                      "\"1\"}], \"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": "
                      "1}}}}]}}");
    assert_true(rc > 0);
    return out;
}

/* Members at the NGroup's revision not yet available. */
static size_t updating(const berth_ngroup_t *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->nmembers; i++)
        n += g->members[i].revision == g->revision && !g->members[i].available;
    return n;
}

/* Reconciles (bounded) until `until` says so, checking at every step that
 * at most `most` members update at once.  Returns the steps that started a
 * batch (updated or created members while old ones remained). */
static int roll(fixture_t *f, const char *key, size_t most,
                bool (*until)(const berth_ngroup_t *g, const berth_ngroup_step_t *st))
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    int started = 0;
    while (test_now_ms() < end) {
        berth_ngroup_step_t st;
        berth_error_t err;
        int rc = berth_store_ngroup_reconcile(f->sched.store, key, &st, &err);
        if (rc != 0)
            fprintf(stderr, "reconcile: %s\n", err.message);
        assert_int_equal(rc, 0);
        started += st.updated > 0 || st.created > 0;
        berth_ngroup_t *g = get_ok(f, key);
        if (updating(g) > most)
            fprintf(stderr, "%zu members updating at once, bound %zu\n", updating(g), most);
        assert_true(updating(g) <= most);
        bool done = until(g, &st);
        berth_ngroup_free(g);
        if (done)
            return started;
        test_sleep_ms(20);
    }
    berth_ngroup_t *g = get_ok(f, key);
    fprintf(stderr, "revision %" PRIu64 ", message '%s'\n", g->revision, g->message);
    for (size_t i = 0; i < g->nmembers; i++)
        fprintf(stderr, "  %s rev %" PRIu64 " %s\n", g->members[i].name, g->members[i].revision,
                g->members[i].state);
    berth_ngroup_free(g);
    fail_msg("NGroup %s did not get there", key);
    return -1;
}

static bool is_steady(const berth_ngroup_t *g, const berth_ngroup_step_t *st)
{
    return g->steady && st->steady;
}

static bool is_pausing(const berth_ngroup_t *g, const berth_ngroup_step_t *st)
{
    (void)g;
    return st->pausing;
}

static bool is_halted(const berth_ngroup_t *g, const berth_ngroup_step_t *st)
{
    (void)g;
    return st->halted;
}

static void test_store_update_profile(void **state)
{
    fixture_t *f = *state;
    const char *key = "sub/rg/web";
    char *t1 = template_doc("one", NULL);
    berth_ngroup_spec_t spec = spec_of(key, t1, 12, 1);
    spec.member_prefix = "cg-";
    spec.max_batch_percent = 25;
    spec.fault_domain_count = 6;
    berth_error_t err;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    roll(f, key, 12, is_steady);
    berth_ngroup_t *g = get_ok(f, key);
    /* The prefix names the members; six fault domains: two per host. */
    assert_int_equal(check_spread(g, 12), 2);
    assert_string_equal(g->members[0].name, "cg-web-0");
    assert_string_equal(g->members[0].key, "sub/rg/web/cg-web-0");
    assert_string_equal(g->member_prefix, "cg-");
    assert_int_equal(g->fault_domain_count, 6);
    berth_ngroup_free(g);
    /* Both are fixed at creation. */
    spec.member_prefix = "x-";
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err),
                     BERTH_ECONFLICT);
    assert_string_equal(err.target, "memberPrefix");
    spec.member_prefix = "cg-";
    spec.fault_domain_count = 3;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err),
                     BERTH_ECONFLICT);
    assert_string_equal(err.target, "faultDomainCount");
    spec.fault_domain_count = 6;

    /* Revision 2, 25% of 12: 3 members at once, 4 batches. */
    char *t2 = template_doc("two", NULL);
    spec.template_json = t2;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    assert_int_equal(roll(f, key, 3, is_steady), 4);

    /* Revision 3 with an hour's pause: the first batch goes at once, the
     * second waits however many steps run. */
    char *t3 = template_doc("three", NULL);
    spec.template_json = t3;
    spec.pause_between_batches_ms = 3600 * 1000;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    assert_int_equal(roll(f, key, 3, is_pausing), 1);
    for (int k = 0; k < 5; k++) {
        berth_ngroup_step_t st;
        assert_int_equal(berth_store_ngroup_reconcile(f->sched.store, key, &st, &err), 0);
        assert_true(st.pausing);
        assert_int_equal(st.updated + st.created, 0);
    }
    g = get_ok(f, key);
    assert_int_equal(g->updated, 3);
    assert_false(g->steady);
    berth_ngroup_free(g);
    /* No pause: the rest follows (the revision stays). */
    spec.pause_between_batches_ms = 0;
    uint64_t rev = 0;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, &rev, &err), 0);
    assert_int_equal(rev, 3);
    assert_int_equal(roll(f, key, 3, is_steady), 3);

    /* Revision 4 fails: with maxUnhealthyPercent 0 the first batch stops
     * the rollout, and the message says why. */
    char *bad = template_failing();
    spec.template_json = bad;
    spec.max_unhealthy_set = true;
    spec.max_unhealthy_percent = 0;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    roll(f, key, 3, is_halted);
    for (int k = 0; k < 3; k++) {
        berth_ngroup_step_t st;
        assert_int_equal(berth_store_ngroup_reconcile(f->sched.store, key, &st, &err), 0);
        assert_true(st.halted);
        assert_int_equal(st.updated + st.created, 0);
    }
    g = get_ok(f, key);
    assert_int_equal(g->updated, 3);
    assert_true(g->unhealthy >= 1);
    assert_non_null(strstr(g->message, "stopped"));
    assert_non_null(strstr(g->message, "unhealthy"));
    berth_ngroup_free(g);
    /* A good revision 5 goes out, the failed members first. */
    char *t5 = template_doc("five", NULL);
    spec.template_json = t5;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    roll(f, key, 3, is_steady);

    /* Revision 6 by replacement: new members beside the old, which go
     * once the new ones run; the available never fall below 12. */
    char *t6 = template_doc("six", NULL);
    spec.template_json = t6;
    spec.replace_on_update = true;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    roll(f, key, 3, is_steady);
    g = get_ok(f, key);
    assert_int_equal(g->nmembers, 12);
    assert_int_equal(g->updated, 12);
    bool renamed = false;
    for (size_t i = 0; i < g->nmembers; i++)
        renamed = renamed || g->members[i].index >= 12;
    assert_true(renamed);
    berth_ngroup_free(g);

    /* Stop releases every member, start brings them back, restart asks
     * every member's agent. */
    uint32_t restarted = 0;
    assert_int_equal(berth_store_ngroup_stop(f->sched.store, key, &err), 0);
    assert_int_equal(berth_store_ngroup_stop(f->sched.store, key, &err), 0);
    g = get_ok(f, key);
    assert_true(g->stopped);
    assert_int_equal(g->nmembers, 0);
    assert_true(g->steady);
    berth_ngroup_free(g);
    assert_int_equal(berth_store_ngroup_restart(f->sched.store, key, &restarted, &err),
                     BERTH_ECONFLICT);
    /* A put keeps it stopped. */
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    berth_ngroup_step_t st;
    assert_int_equal(berth_store_ngroup_reconcile(f->sched.store, key, &st, &err), 0);
    assert_int_equal(st.created, 0);
    assert_int_equal(berth_store_ngroup_start(f->sched.store, key, &err), 0);
    roll(f, key, 12, is_steady);
    g = get_ok(f, key);
    assert_false(g->stopped);
    assert_int_equal(g->running, 12);
    berth_ngroup_free(g);
    assert_int_equal(berth_store_ngroup_restart(f->sched.store, key, &restarted, &err), 0);
    assert_int_equal(restarted, 12);
    assert_int_equal(berth_store_ngroup_delete(f->sched.store, key, &err), 0);
    assert_int_equal(berth_store_ngroup_start(f->sched.store, key, &err), BERTH_ENOENT);
    free(t1);
    free(t2);
    free(t3);
    free(bad);
    free(t5);
    free(t6);
}

/* ---- bad input ------------------------------------------------------------------------- */

static int setup_hosts(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    *state = f;
    snprintf(f->cell, sizeof f->cell, "ng-%d", ++cell_counter);
    if (test_sched_open(&f->sched, berth_test_redis_group->url, f->cell) != 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        char name[8], zone[4];
        snprintf(name, sizeof name, "h%d", i);
        snprintf(zone, sizeof zone, "%d", i + 1);
        berth_host_t h = {.name = name, .cores = 8, .memory_mib = 16384, .os = BERTH_OS_LINUX,
                          .zone = zone};
        if (berth_store_host_put(f->sched.store, &h, NULL) != 0)
            return -1;
    }
    return 0;
}

/* Puts `spec`, expecting `code` with `target`, and checks nothing changed. */
static void put_bad(fixture_t *f, const berth_ngroup_spec_t *spec, int code, const char *target)
{
    berth_ngroup_t *before = get_ok(f, "sub/rg/web");
    berth_error_t err;
    int rc = berth_store_ngroup_put(f->sched.store, spec, NULL, &err);
    if (rc != code || strcmp(err.target, target) != 0)
        fprintf(stderr, "got %d %s at '%s': %s\n", rc, err.name, err.target, err.message);
    assert_int_equal(rc, code);
    assert_string_equal(err.target, target);
    assert_true(err.message[0] != '\0');
    berth_ngroup_t *after = get_ok(f, "sub/rg/web");
    assert_int_equal(after->revision, before->revision);
    assert_int_equal(after->desired, before->desired);
    assert_int_equal(after->max_unavailable, before->max_unavailable);
    assert_string_equal(after->template_json, before->template_json);
    assert_int_equal(after->nmembers, before->nmembers);
    berth_ngroup_free(before);
    berth_ngroup_free(after);
}

static void test_bad_input(void **state)
{
    fixture_t *f = *state;
    char *good = template_doc("one", NULL);
    berth_ngroup_spec_t spec = spec_of("sub/rg/web", good, 3, 1);
    berth_error_t err;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    /* No agents: members are placed, never Running. */
    berth_ngroup_step_t st;
    assert_int_equal(berth_store_ngroup_reconcile(f->sched.store, "sub/rg/web", &st, &err), 0);
    assert_int_equal(st.created, 3);
    assert_int_equal(st.waiting, 0);

    berth_ngroup_spec_t s = spec;
    const char *bad_cpu =
        "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
        "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"busybox\", "
        "\"resources\": {\"requests\": {\"cpu\": \"lots\", \"memoryInGB\": 1}}}}]}}";
    s.template_json = bad_cpu;
    put_bad(f, &s, BERTH_EINVAL, "template.properties.containers[0].properties.resources."
                                 "requests.cpu");
    s.template_json = "{\"location\": ";
    put_bad(f, &s, BERTH_EINVAL, "template");
    char *zoned = template_doc("one", "[\"1\"]");
    s.template_json = zoned;
    put_bad(f, &s, BERTH_EINVAL, "template.zones");
    s = spec;
    s.desired = -1;
    put_bad(f, &s, BERTH_EINVAL, "desiredCount");
    s.desired = 1000000;
    put_bad(f, &s, BERTH_EINVAL, "desiredCount");
    s = spec;
    s.max_unavailable = 0;
    put_bad(f, &s, BERTH_EINVAL, "maxUnavailable");
    s = spec;
    const char *const unknown[] = {"1", "9", "3"};
    s.zones = unknown;
    put_bad(f, &s, BERTH_EINVAL, "zones[1]");
    const char *const twice[] = {"1", "2", "2"};
    s.zones = twice;
    put_bad(f, &s, BERTH_EINVAL, "zones[2]");
    const char *const fewer[] = {"1", "2"};
    s.zones = fewer;
    s.nzones = 2;
    put_bad(f, &s, BERTH_ECONFLICT, "zones");
    s = spec;
    s.name = "Web";
    put_bad(f, &s, BERTH_EINVAL, "name");
    s = spec;
    s.metadata_json = "[1]";
    put_bad(f, &s, BERTH_EINVAL, "metadata");
    /* A bad key reaches nothing. */
    s = spec;
    s.key = "";
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &s, NULL, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "key");
    assert_int_equal(berth_store_ngroup_get(f->sched.store, "bad\nkey", &(berth_ngroup_t *){NULL},
                                            &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_ngroup_list(f->sched.store, NULL, NULL, &err), 1);
    /* The members are still the three of the good goal. */
    assert_int_equal(berth_store_sync(f->sched.store, &err), 0);
    assert_int_equal(berth_engine_group_count(f->sched.engine), 3);

    /* A delete cut short (the mark written, nothing released): a put is
     * refused, and the next reconcile finishes the delete. */
    redisContext *rc = berth_test_redis_connect(berth_test_redis_group);
    assert_non_null(rc);
    redisReply *x = redisCommand(rc, "HGET berth:{%s}:ngroups %s", f->cell, "sub/rg/web");
    assert_int_equal(x->type, REDIS_REPLY_STRING);
    json_t *rec = json_loads(x->str, 0, NULL);
    freeReplyObject(x);
    assert_non_null(rec);
    json_object_set_new(rec, "deleting", json_true());
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    x = redisCommand(rc, "HSET berth:{%s}:ngroups %s %s", f->cell, "sub/rg/web", text);
    assert_int_equal(x->type, REDIS_REPLY_INTEGER);
    freeReplyObject(x);
    free(text);
    redisFree(rc);
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), BERTH_ECONFLICT);
    assert_string_equal(err.target, "key");
    berth_ngroup_t *g = get_ok(f, "sub/rg/web");
    assert_true(g->deleting);
    assert_false(g->steady);
    berth_ngroup_free(g);
    assert_int_equal(berth_store_ngroup_reconcile(f->sched.store, "sub/rg/web", &st, &err), 0);
    assert_true(st.deleted);
    assert_int_equal(st.removed, 3);
    assert_int_equal(berth_store_sync(f->sched.store, &err), 0);
    assert_int_equal(berth_engine_group_count(f->sched.engine), 0);
    assert_int_equal(berth_store_ngroup_reconcile(f->sched.store, "sub/rg/web", &st, &err),
                     BERTH_ENOENT);
    /* Gone: it can be created anew. */
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    free(good);
    free(zoned);
}

/* No room in one zone: members go to the others, and the status says so. */
static void test_zone_without_room(void **state)
{
    fixture_t *f = *state;
    berth_error_t err;
    berth_host_t h = {.name = "h1", .cores = 8, .memory_mib = 16384, .os = BERTH_OS_LINUX,
                      .zone = "2", .state = BERTH_HOST_CORDONED};
    assert_int_equal(berth_store_host_put(f->sched.store, &h, &err), 0);
    char *t = template_doc("one", NULL);
    berth_ngroup_spec_t spec = spec_of("sub/rg/web", t, 4, 1);
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    berth_ngroup_step_t st;
    assert_int_equal(berth_store_ngroup_reconcile(f->sched.store, "sub/rg/web", &st, &err), 0);
    assert_int_equal(st.created, 4);
    berth_ngroup_t *g = get_ok(f, "sub/rg/web");
    assert_int_equal(g->nmembers, 4);
    for (size_t i = 0; i < g->nmembers; i++)
        assert_string_not_equal(g->members[i].zone, "2");
    assert_non_null(strstr(g->message, "no room"));
    berth_ngroup_free(g);
    /* Far more than fits: the failures are counted and noted. */
    spec.desired = 40;
    assert_int_equal(berth_store_ngroup_put(f->sched.store, &spec, NULL, &err), 0);
    assert_int_equal(berth_store_ngroup_reconcile(f->sched.store, "sub/rg/web", &st, &err), 0);
    assert_true(st.failed > 0);
    assert_int_equal(st.created + 4, 16); /* two hosts of 8 cores */
    g = get_ok(f, "sub/rg/web");
    assert_non_null(strstr(g->message, "could not be placed"));
    assert_false(g->steady);
    berth_ngroup_free(g);
    assert_int_equal(berth_store_ngroup_delete(f->sched.store, "sub/rg/web", &err), 0);
    assert_int_equal(berth_store_sync(f->sched.store, &err), 0);
    assert_int_equal(berth_engine_group_count(f->sched.engine), 0);
    free(t);
}

int main(void)
{
    const struct CMUnitTest planner[] = {
        cmocka_unit_test(test_plan_spread),
        cmocka_unit_test(test_plan_hosts),
        cmocka_unit_test(test_plan_fallback),
        cmocka_unit_test(test_plan_rolling),
        cmocka_unit_test(test_plan_batches),
        cmocka_unit_test(test_plan_unhealthy_pause),
        cmocka_unit_test(test_plan_fault_domains),
    };
    const struct CMUnitTest cell[] = {
        cmocka_unit_test_setup_teardown(test_store_lifecycle, setup_agents, teardown),
        cmocka_unit_test_setup_teardown(test_store_update_profile, setup_agents, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup_hosts, teardown),
        cmocka_unit_test_setup_teardown(test_zone_without_room, setup_hosts, teardown),
    };
    int failed = cmocka_run_group_tests_name("planner", planner, NULL, NULL);
    failed += cmocka_run_group_tests_name("cell", cell, berth_test_redis_group_setup,
                                          berth_test_redis_group_teardown);
    return failed == 0 ? 0 : 1;
}
