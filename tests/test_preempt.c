/*
 * test_preempt.c: priority and preemption (properties.priority, Regular and
 * Spot) in the engine, in the Redis store and through berthd's REST API.
 *
 * Engine: a Regular group that fits nowhere evicts the fewest Spot groups
 * of one host, then the least capacity (cores, memory, GPUs), then by host
 * name; GPUs count as a dimension; hosts of another OS or zone, cordoned
 * hosts and Regular groups are never touched; a Spot group never preempts;
 * a redeployed Regular group that fits nowhere evicts on its own host only;
 * a refused request changes nothing; a plan can be computed without being
 * applied; the greedy fallback past the exact budget still makes room; and
 * the cost of a plan is measured (printed) on a large, full cell.
 *
 * Store: a preemption commits atomically (records, host set, the agent's
 * release, the eviction record, the change log), a second replica on the
 * same cell converges, the Redis Function refuses a stale plan (a victim at
 * another generation, a victim that is Regular) and changes nothing, two
 * replicas preempting at once retry their stale plans and all land, and
 * fsck stays clean; a redeploy's preemption commits at the group's next
 * generation, and a stale one is refused; a batch's Regular groups that
 * fit nowhere preempt after the batch, its Spot ones do not.
 *
 * API: Spot groups fill a simulated host, a Regular PUT answers 201, the
 * victim's GET shows Terminated with a Warning eviction event, its agent
 * removes it, start is refused while nothing fits and places it again once
 * room comes back; priority on an old api-version is a 400 naming
 * properties.priority, and changing a group's priority is a 409.
 *
 * Every server is the tests' own (loopback or unix socket); every wait is
 * bounded.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "agent-harness.h"
#include "berth.h"
#include "berthd-harness.h"
#include "redis-harness.h"

#define GB 1024u

/* ---- engine helpers ----------------------------------------------------------------------- */

static berth_engine_t *engine_new(void)
{
    berth_engine_t *e = NULL;
    assert_int_equal(berth_engine_new(NULL, &e, NULL), 0);
    return e;
}

static void host_add(berth_engine_t *e, const char *name, uint32_t cores, uint32_t mem_gb,
                     const char *gpu, uint32_t gpus, berth_os_t os, const char *zone)
{
    berth_host_t h = {.name = name, .cores = cores, .memory_mib = mem_gb * GB,
                      .gpu_sku = gpu, .gpu_count = gpus, .os = os, .zone = zone,
                      .os_build = os == BERTH_OS_WINDOWS ? 20348 : 0};
    berth_error_t err;
    if (berth_engine_host_add(e, &h, &err) != 0)
        fail_msg("host %s: %s", name, err.message);
}

static berth_request_t req(uint32_t cores, uint32_t mem_gb, uint32_t gpus,
                           berth_priority_t priority)
{
    berth_request_t r;
    memset(&r, 0, sizeof r);
    r.demand.millicores = cores * 1000u;
    r.demand.requested_millicores = cores * 1000u;
    r.demand.memory_mib = mem_gb * GB;
    r.demand.gpu_count = gpus;
    r.demand.gpu_sku = 2;            /* V100 in the default table (K80, P100, V100) */
    r.os = BERTH_OS_LINUX;
    r.priority = priority;
    return r;
}

/* Places `key` on `host` (forced), failing the test otherwise. */
static void put_on(berth_engine_t *e, const char *key, const char *host, berth_request_t r)
{
    berth_error_t err;
    if (berth_engine_request_assign(e, key, &r, host, NULL, &err) != 0)
        fail_msg("assign %s on %s: %s", key, host, err.message);
}

static bool placed(berth_engine_t *e, const char *key, const char *host)
{
    berth_placement_t p;
    return berth_engine_group_get(e, key, &p) == 0 && (host == NULL || strcmp(p.host, host) == 0);
}

static bool victim_named(berth_engine_t *e, const char *key)
{
    for (size_t i = 0; berth_engine_victim_get(e, i) != NULL; i++)
        if (strcmp(berth_engine_victim_get(e, i), key) == 0)
            return true;
    return false;
}

/* ---- engine tests ------------------------------------------------------------------------- */

/* Fewest victims first, even when they are bigger; then the least
 * capacity among equally few. */
static void test_fewest_then_least(void **state)
{
    (void)state;
    berth_engine_t *e = engine_new();
    host_add(e, "a", 8, 32, NULL, 0, BERTH_OS_LINUX, NULL);
    host_add(e, "b", 8, 32, NULL, 0, BERTH_OS_LINUX, NULL);
    /* a: four 2-core Spot groups (room for 4 cores takes two of them). */
    put_on(e, "a1", "a", req(2, 4, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "a2", "a", req(2, 4, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "a3", "a", req(2, 4, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "a4", "a", req(2, 4, 0, BERTH_PRIORITY_SPOT));
    /* b: one 6-core Spot group and two 1-core ones: one victim suffices. */
    put_on(e, "b6", "b", req(6, 4, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "b1", "b", req(1, 1, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "b2", "b", req(1, 1, 0, BERTH_PRIORITY_SPOT));
    assert_int_equal(berth_engine_spot_count(e), 7);

    berth_request_t r = req(4, 4, 0, BERTH_PRIORITY_REGULAR);
    berth_preemption_t plan;
    assert_int_equal(berth_engine_preemption_plan(e, &r, &plan, NULL), 0);
    assert_string_equal(plan.host, "b");
    assert_int_equal(plan.victims, 1);
    assert_int_equal(plan.evicted.millicores, 6000);
    assert_string_equal(berth_engine_victim_get(e, 0), "b6");
    assert_null(berth_engine_victim_get(e, 1));
    assert_int_equal(berth_engine_group_count(e), 7);  /* a plan changes nothing */

    berth_placement_t p;
    berth_error_t err;
    assert_int_equal(berth_engine_request_place(e, "reg", &r, &p, &err), 0);
    assert_string_equal(p.host, "b");
    assert_int_equal(p.kind, BERTH_PLACED_NEW);
    assert_int_equal(p.evicted, 1);
    assert_string_equal(berth_engine_victim_get(e, 0), "b6");
    assert_false(placed(e, "b6", NULL));
    assert_true(placed(e, "b1", "b") && placed(e, "b2", "b"));
    assert_int_equal(berth_engine_spot_count(e), 6);

    /* Now 5 cores: b has 2 free and its two 1-core Spot groups, 4 < 5
     * even evicting both (its Regular group stays); a has none free and
     * needs three of its 2-core groups. */
    berth_request_t r5 = req(5, 4, 0, BERTH_PRIORITY_UNSET);
    assert_int_equal(berth_engine_request_place(e, "reg5", &r5, &p, &err), 0);
    assert_string_equal(p.host, "a");
    assert_int_equal(p.evicted, 3);
    assert_int_equal(berth_engine_spot_count(e), 3);
    /* Equal sizes: the first keys in order go. */
    assert_true(victim_named(e, "a1") && victim_named(e, "a2") && victim_named(e, "a3"));
    assert_true(placed(e, "a4", "a"));
    berth_engine_free(e);
}

/* Equally few victims: the least capacity wins (cores, then memory). */
static void test_least_capacity(void **state)
{
    (void)state;
    berth_engine_t *e = engine_new();
    host_add(e, "a", 8, 64, NULL, 0, BERTH_OS_LINUX, NULL);
    host_add(e, "b", 8, 64, NULL, 0, BERTH_OS_LINUX, NULL);
    host_add(e, "c", 8, 64, NULL, 0, BERTH_OS_LINUX, NULL);
    put_on(e, "a-reg", "a", req(2, 8, 0, BERTH_PRIORITY_REGULAR));
    put_on(e, "a-spot", "a", req(6, 8, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "b-reg", "b", req(4, 8, 0, BERTH_PRIORITY_REGULAR));
    put_on(e, "b-spot", "b", req(4, 32, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "c-reg", "c", req(4, 8, 0, BERTH_PRIORITY_REGULAR));
    put_on(e, "c-spot", "c", req(4, 16, 0, BERTH_PRIORITY_SPOT));
    berth_request_t r = req(4, 8, 0, BERTH_PRIORITY_REGULAR);
    berth_placement_t p;
    assert_int_equal(berth_engine_request_place(e, "reg", &r, &p, NULL), 0);
    /* One victim everywhere; 4 cores beat 6; 16 GB beat 32 GB. */
    assert_string_equal(p.host, "c");
    assert_string_equal(berth_engine_victim_get(e, 0), "c-spot");
    assert_true(placed(e, "a-spot", "a") && placed(e, "b-spot", "b"));
    berth_engine_free(e);
}

/* GPUs are a dimension: the Spot group holding GPUs goes, not the one with
 * more cores. */
static void test_gpu_dimension(void **state)
{
    (void)state;
    berth_engine_t *e = engine_new();
    host_add(e, "g", 24, 448, "V100", 4, BERTH_OS_LINUX, NULL);
    put_on(e, "cpu-big", "g", req(12, 100, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "gpu-2", "g", req(6, 112, 2, BERTH_PRIORITY_SPOT));
    put_on(e, "gpu-1", "g", req(6, 100, 2, BERTH_PRIORITY_SPOT));
    berth_request_t r = req(6, 112, 2, BERTH_PRIORITY_REGULAR);
    berth_placement_t p;
    berth_error_t err;
    assert_int_equal(berth_engine_request_place(e, "train", &r, &p, &err), 0);
    assert_int_equal(p.evicted, 1);
    /* Both GPU groups free 2 GPUs; the one with less memory goes. */
    assert_string_equal(berth_engine_victim_get(e, 0), "gpu-1");
    assert_true(placed(e, "cpu-big", "g") && placed(e, "gpu-2", "g"));
    berth_engine_free(e);
}

/* Hosts of another OS, another zone, or cordoned are never considered;
 * Regular groups are never evicted; a refusal changes nothing. */
static void test_constraints_and_refusals(void **state)
{
    (void)state;
    berth_engine_t *e = engine_new();
    host_add(e, "win", 8, 32, NULL, 0, BERTH_OS_WINDOWS, "1");
    host_add(e, "z2", 8, 32, NULL, 0, BERTH_OS_LINUX, "2");
    host_add(e, "z1", 8, 32, NULL, 0, BERTH_OS_LINUX, "1");
    host_add(e, "z1c", 8, 32, NULL, 0, BERTH_OS_LINUX, "1");
    berth_request_t wspot = req(8, 8, 0, BERTH_PRIORITY_SPOT);
    wspot.os = BERTH_OS_WINDOWS;
    put_on(e, "w-spot", "win", wspot);
    put_on(e, "z2-spot", "z2", req(8, 8, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "z1-reg", "z1", req(6, 8, 0, BERTH_PRIORITY_REGULAR));
    put_on(e, "z1-spot", "z1", req(2, 8, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "z1c-spot", "z1c", req(8, 8, 0, BERTH_PRIORITY_SPOT));
    assert_int_equal(berth_engine_host_set_state(e, "z1c", BERTH_HOST_CORDONED, NULL), 0);

    int zone1 = berth_engine_zone_id(e, "1");
    assert_true(zone1 >= 0);
    berth_request_t r = req(4, 8, 0, BERTH_PRIORITY_REGULAR);
    r.zone_mask = 1ull << zone1;
    berth_engine_stats_t before, after;
    berth_engine_stats(e, &before);
    berth_error_t err;
    berth_placement_t p;
    /* Zone 1: the Windows host is the wrong OS, z1c is cordoned, and z1's
     * Spot group frees 2 of the 4 cores (its Regular group stays). */
    assert_int_equal(berth_engine_request_place(e, "reg", &r, &p, &err), BERTH_ENOSPC);
    assert_string_equal(err.name, "ResourceNotAvailable");
    assert_non_null(strstr(err.message, "evicting Spot"));
    berth_preemption_t plan;
    assert_int_equal(berth_engine_preemption_plan(e, &r, &plan, NULL), BERTH_ENOSPC);
    berth_engine_stats(e, &after);
    assert_memory_equal(&before, &after, sizeof before);
    assert_int_equal(berth_engine_spot_count(e), 4);
    assert_true(placed(e, "z1-reg", "z1") && placed(e, "z1-spot", "z1") &&
                placed(e, "w-spot", "win") && placed(e, "z2-spot", "z2") &&
                placed(e, "z1c-spot", "z1c"));

    /* Without the zone, z2's Spot group goes. */
    r.zone_mask = 0;
    assert_int_equal(berth_engine_request_place(e, "reg", &r, &p, &err), 0);
    assert_string_equal(p.host, "z2");
    assert_string_equal(berth_engine_victim_get(e, 0), "z2-spot");

    /* A Spot group never preempts. */
    berth_request_t s = req(5, 8, 0, BERTH_PRIORITY_SPOT);   /* z2 has 4 cores left */
    assert_int_equal(berth_engine_request_place(e, "spot", &s, &p, &err), BERTH_ENOSPC);
    assert_null(strstr(err.message, "evicting"));   /* the usual refusal */
    assert_int_equal(berth_engine_preemption_plan(e, &s, &plan, &err), BERTH_ENOSPC);
    assert_string_equal(err.target, "properties.priority");
    assert_false(placed(e, "spot", NULL));

    /* A redeploy may not change the priority. */
    berth_request_t up = req(4, 8, 0, BERTH_PRIORITY_SPOT);
    assert_int_equal(berth_engine_request_place(e, "reg", &up, &p, &err), BERTH_ECONFLICT);
    assert_string_equal(err.target, "properties.priority");
    berth_engine_free(e);
}

/* A redeployed Regular group that fits nowhere stays on its host by
 * evicting Spot groups there (never another host's, never a Regular one);
 * one that fits elsewhere moves without evicting; a Spot one never
 * preempts; a refusal changes nothing. */
static void test_redeploy_preempts(void **state)
{
    (void)state;
    berth_engine_t *e = engine_new();
    host_add(e, "a", 8, 32, NULL, 0, BERTH_OS_LINUX, NULL);
    host_add(e, "b", 8, 32, NULL, 0, BERTH_OS_LINUX, NULL);
    put_on(e, "grow", "a", req(2, 4, 0, BERTH_PRIORITY_REGULAR));
    put_on(e, "a-s1", "a", req(1, 2, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "a-s2", "a", req(2, 4, 0, BERTH_PRIORITY_SPOT));
    put_on(e, "a-reg", "a", req(3, 4, 0, BERTH_PRIORITY_REGULAR));
    put_on(e, "b-reg", "b", req(4, 4, 0, BERTH_PRIORITY_REGULAR));
    put_on(e, "b-s", "b", req(4, 4, 0, BERTH_PRIORITY_SPOT));
    berth_error_t err;
    berth_placement_t p;

    /* 4 cores: a has its own 2 back, b nothing; one victim on a does it
     * (a-s2: fewest victims), b's Spot group stays. */
    berth_request_t r = req(4, 4, 0, BERTH_PRIORITY_REGULAR);
    assert_int_equal(berth_engine_request_place(e, "grow", &r, &p, &err), 0);
    assert_string_equal(p.host, "a");
    assert_int_equal(p.kind, BERTH_PLACED_STAYED);
    assert_int_equal(p.evicted, 1);
    assert_string_equal(berth_engine_victim_get(e, 0), "a-s2");
    assert_false(placed(e, "a-s2", NULL));
    assert_true(placed(e, "a-s1", "a") && placed(e, "a-reg", "a") && placed(e, "b-s", "b"));
    assert_int_equal(berth_engine_spot_count(e), 2);

    /* 6 cores needs more than its own 4 and a-s1's 1 (a-reg is Regular):
     * no plan, and nothing changes. */
    berth_engine_stats_t before, after;
    berth_engine_stats(e, &before);
    r = req(6, 4, 0, BERTH_PRIORITY_REGULAR);
    assert_int_equal(berth_engine_request_place(e, "grow", &r, &p, &err), BERTH_ENOSPC);
    assert_non_null(strstr(err.message, "evicting Spot"));
    berth_engine_stats(e, &after);
    assert_memory_equal(&before, &after, sizeof before);
    assert_int_equal(berth_engine_group_get(e, "grow", &p), 0);
    assert_string_equal(p.host, "a");
    assert_int_equal(p.demand.millicores, 4000);
    assert_int_equal(berth_engine_spot_count(e), 2);

    /* A Spot group never preempts, its own host's neighbours included. */
    berth_request_t s = req(5, 4, 0, BERTH_PRIORITY_SPOT);
    assert_int_equal(berth_engine_request_place(e, "a-s1", &s, &p, &err), BERTH_ENOSPC);
    assert_null(strstr(err.message, "evicting"));
    assert_true(placed(e, "b-s", "b"));

    /* Room elsewhere (b emptied): the 6-core redeploy moves there and
     * evicts nothing. */
    assert_int_equal(berth_engine_group_release(e, "b-s", &err), 0);
    assert_int_equal(berth_engine_group_release(e, "b-reg", &err), 0);
    r = req(6, 4, 0, BERTH_PRIORITY_REGULAR);
    assert_int_equal(berth_engine_request_place(e, "grow", &r, &p, &err), 0);
    assert_string_equal(p.host, "b");
    assert_int_equal(p.kind, BERTH_PLACED_MOVED);
    assert_int_equal(p.evicted, 0);
    assert_true(placed(e, "a-s1", "a"));
    assert_int_equal(berth_engine_spot_count(e), 1);
    berth_engine_free(e);
}

/* A Regular-only cell: ENOSPC as before, and a fitting request plans with
 * no victims. */
static void test_no_spot(void **state)
{
    (void)state;
    berth_engine_t *e = engine_new();
    host_add(e, "a", 4, 16, NULL, 0, BERTH_OS_LINUX, NULL);
    put_on(e, "r1", "a", req(2, 4, 0, BERTH_PRIORITY_REGULAR));
    berth_request_t r = req(2, 4, 0, BERTH_PRIORITY_REGULAR);
    berth_preemption_t plan;
    assert_int_equal(berth_engine_preemption_plan(e, &r, &plan, NULL), 0);
    assert_int_equal(plan.victims, 0);
    assert_string_equal(plan.host, "a");
    put_on(e, "r2", "a", r);
    berth_error_t err;
    assert_int_equal(berth_engine_request_place(e, "r3", &r, NULL, &err), BERTH_ENOSPC);
    assert_int_equal(berth_engine_spot_count(e), 0);
    assert_int_equal(berth_engine_group_count(e), 2);
    berth_engine_free(e);
}

/* Past the exact budget (a host of 100 one-core Spot groups, 40 cores
 * needed) the greedy fallback still frees the room with no spare victim. */
static void test_greedy_fallback(void **state)
{
    (void)state;
    berth_engine_t *e = engine_new();
    host_add(e, "big", 100, 400, NULL, 0, BERTH_OS_LINUX, NULL);
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "s%03d", i);
        put_on(e, key, "big", req(1, 4, 0, BERTH_PRIORITY_SPOT));
    }
    berth_request_t r = req(40, 16, 0, BERTH_PRIORITY_REGULAR);
    berth_placement_t p;
    berth_error_t err;
    assert_int_equal(berth_engine_request_place(e, "reg", &r, &p, &err), 0);
    assert_int_equal(p.evicted, 40);
    assert_int_equal(berth_engine_spot_count(e), 60);
    berth_host_usage_t u;
    berth_host_t h;
    assert_int_equal(berth_engine_host_get(e, "big", &h, &u), 0);
    assert_int_equal(u.millicores, 100000);
    berth_engine_free(e);
}

/* The cost of the preemption path on a full cell: 2,000 hosts of 16 cores,
 * each holding 16 one-core Spot groups (32,000 groups), and the cost of a
 * refusal with no Spot group.  Printed; bounded loosely so that a
 * pathological slowdown fails. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_plan_cost(void **state)
{
    (void)state;
    berth_engine_t *e = engine_new();
    enum { HOSTS = 2000, PER = 16 };
    char name[32], key[48];
    for (int i = 0; i < HOSTS; i++) {
        snprintf(name, sizeof name, "h%05d", i);
        host_add(e, name, PER, 64, NULL, 0, BERTH_OS_LINUX, NULL);
        for (int j = 0; j < PER; j++) {
            snprintf(key, sizeof key, "h%05d-s%02d", i, j);
            put_on(e, key, name, req(1, 2, 0, BERTH_PRIORITY_SPOT));
        }
    }
    berth_request_t r = req(4, 8, 0, BERTH_PRIORITY_REGULAR);
    berth_preemption_t plan;
    const int N = 20;
    double t0 = now_s();
    for (int i = 0; i < N; i++)
        assert_int_equal(berth_engine_preemption_plan(e, &r, &plan, NULL), 0);
    double per = (now_s() - t0) / N;
    assert_int_equal(plan.victims, 4);
    print_message("preemption plan: %d hosts, %d Spot groups: %.3f ms per plan\n", HOSTS,
                  HOSTS * PER, per * 1e3);
    assert_true(per < 2.0);
    berth_engine_free(e);
}

/* ---- store tests -------------------------------------------------------------------------- */

static int cell_counter;

typedef struct replica {
    berth_engine_t *engine;
    berth_store_t *store;
} replica_t;

static void replica_open(replica_t *r, const char *cell)
{
    r->engine = engine_new();
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = berth_test_redis_group->url;
    o.cell = cell;
    berth_error_t err;
    if (berth_store_open(&o, r->engine, &r->store, &err) != 0)
        fail_msg("open: %s", err.message);
}

static void replica_close(replica_t *r)
{
    berth_store_close(r->store);
    berth_engine_free(r->engine);
}

static void store_put(replica_t *r, const char *key, berth_request_t q, const char *host)
{
    berth_placement_t p;
    berth_error_t err;
    if (berth_store_place(r->store, key, &q, NULL, &p, &err) != 0)
        fail_msg("place %s: %s", key, err.message);
    if (host != NULL)
        assert_string_equal(p.host, host);
    assert_int_equal(p.evicted, 0);
}

static void fsck_print(const char *v, void *data)
{
    (void)data;
    fprintf(stderr, "fsck: %s\n", v);
}

static long long scard(redisContext *c, const char *cell, const char *host)
{
    redisReply *x = redisCommand(c, "SCARD berth:{%s}:hostgroups:%s", cell, host);
    long long n = x && x->type == REDIS_REPLY_INTEGER ? x->integer : -1;
    freeReplyObject(x);
    return n;
}

static bool hexists(redisContext *c, const char *cell, const char *hash, const char *field)
{
    redisReply *x = redisCommand(c, "HEXISTS berth:{%s}:%s %s", cell, hash, field);
    bool yes = x && x->type == REDIS_REPLY_INTEGER && x->integer == 1;
    freeReplyObject(x);
    return yes;
}

/* True when host's assignment stream holds a release of `key`. */
static bool assign_release(redisContext *c, const char *cell, const char *host, const char *key)
{
    redisReply *x = redisCommand(c, "XRANGE berth:{%s}:assign:%s - +", cell, host);
    bool found = false;
    for (size_t i = 0; x && x->type == REDIS_REPLY_ARRAY && i < x->elements; i++) {
        /* An entry holds one or more assignments: op, key, gen, repeated. */
        redisReply *f = x->element[i]->element[1];
        for (size_t j = 0; j + 5 < f->elements; j += 6)
            found = found || (strcmp(f->element[j + 1]->str, "release") == 0 &&
                              strcmp(f->element[j + 3]->str, key) == 0);
    }
    freeReplyObject(x);
    return found;
}

static void test_store_preempt(void **state)
{
    (void)state;
    char cell[32];
    snprintf(cell, sizeof cell, "pre-%d-%d", (int)getpid() % 10000, ++cell_counter);
    replica_t a, b;
    replica_open(&a, cell);
    replica_open(&b, cell);
    berth_host_t h = {.name = "h1", .cores = 4, .memory_mib = 16 * GB, .os = BERTH_OS_LINUX};
    berth_host_t h2 = {.name = "h2", .cores = 4, .memory_mib = 16 * GB, .os = BERTH_OS_LINUX};
    berth_error_t err;
    assert_int_equal(berth_store_host_put(a.store, &h, &err), 0);
    assert_int_equal(berth_store_host_put(a.store, &h2, &err), 0);
    store_put(&a, "r-fill", req(2, 4, 0, BERTH_PRIORITY_REGULAR), NULL);
    berth_placement_t where;
    assert_int_equal(berth_engine_group_get(a.engine, "r-fill", &where), 0);
    const char *full = where.host;          /* the other host gets the Spot groups */
    const char *spot_host = strcmp(full, "h1") == 0 ? "h2" : "h1";
    char sh[16];
    snprintf(sh, sizeof sh, "%s", spot_host);
    store_put(&a, "r-fill2", req(2, 4, 0, BERTH_PRIORITY_REGULAR), full);
    store_put(&b, "s-b", req(2, 8, 0, BERTH_PRIORITY_SPOT), sh);
    store_put(&a, "s-a", req(2, 4, 0, BERTH_PRIORITY_SPOT), sh);
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    assert_int_equal(berth_engine_spot_count(a.engine), 2);

    /* A Spot request is refused, alone or in a batch. */
    berth_request_t r = req(2, 4, 0, BERTH_PRIORITY_REGULAR);
    berth_request_t s = req(1, 1, 0, BERTH_PRIORITY_SPOT);
    berth_placement_t bp;
    assert_int_equal(berth_store_place(a.store, "s-new", &s, NULL, &bp, &err), BERTH_ENOSPC);
    const char *keys[] = {"s-batch"};
    int res = 0;
    assert_int_equal(berth_store_place_batch(a.store, 1, keys, &s, &bp, &res, &err), 0);
    assert_int_equal(res, BERTH_ENOSPC);

    /* The Regular group evicts the Spot group with less memory. */
    berth_placement_t p;
    if (berth_store_place(a.store, "reg", &r, "{\"doc\": 1}", &p, &err) != 0)
        fail_msg("preempting place: %s", err.message);
    assert_string_equal(p.host, sh);
    assert_int_equal(p.evicted, 1);
    assert_string_equal(berth_engine_victim_get(a.engine, 0), "s-a");
    assert_false(placed(a.engine, "s-a", NULL));
    assert_true(placed(a.engine, "reg", sh) && placed(a.engine, "s-b", sh));

    redisContext *c = berth_test_redis_connect(berth_test_redis_group);
    assert_non_null(c);
    assert_false(hexists(c, cell, "groups", "s-a"));
    assert_true(hexists(c, cell, "groups", "reg"));
    assert_true(hexists(c, cell, "evictions", "s-a"));
    assert_int_equal(scard(c, cell, sh), 2);
    assert_true(assign_release(c, cell, sh, "s-a"));
    berth_eviction_t ev;
    assert_int_equal(berth_store_eviction_read(b.store, "s-a", &ev, &err), 0);
    assert_string_equal(ev.host, sh);
    assert_string_equal(ev.by, "reg");
    assert_true(ev.time_ms > 1600000000000ull);
    assert_int_equal(berth_store_eviction_read(b.store, "s-b", &ev, &err), BERTH_ENOENT);

    /* The other replica converges through the log. */
    assert_int_equal(berth_store_sync(b.store, &err), 0);
    assert_false(placed(b.engine, "s-a", NULL));
    assert_true(placed(b.engine, "reg", sh) && placed(b.engine, "s-b", sh));
    assert_int_equal(berth_engine_spot_count(b.engine), 1);
    berth_engine_stats_t sa, sb;
    berth_engine_stats(a.engine, &sa);
    berth_engine_stats(b.engine, &sb);
    assert_int_equal(sa.used_millicores, sb.used_millicores);
    assert_int_equal(sa.used_memory_mib, sb.used_memory_mib);
    assert_int_equal(sa.groups, sb.groups);
    assert_int_equal(berth_store_fsck(a.store, fsck_print, NULL, &err), 0);

    /* Forget drops the record; a missing one is no error. */
    assert_int_equal(berth_store_eviction_forget(a.store, "s-a", &err), 0);
    assert_int_equal(berth_store_eviction_read(a.store, "s-a", &ev, &err), BERTH_ENOENT);
    assert_int_equal(berth_store_eviction_forget(a.store, "s-a", &err), 0);
    redisFree(c);
    replica_close(&a);
    replica_close(&b);
}

/* A batch: what fits is placed in one round trip; a Regular group that
 * fits nowhere then preempts as berth_store_place() would; a Spot one is
 * refused. */
static void test_store_batch_preempt(void **state)
{
    (void)state;
    char cell[32];
    snprintf(cell, sizeof cell, "pre-%d-%d", (int)getpid() % 10000, ++cell_counter);
    replica_t a;
    replica_open(&a, cell);
    berth_host_t h = {.name = "h1", .cores = 6, .memory_mib = 16 * GB, .os = BERTH_OS_LINUX};
    berth_error_t err;
    assert_int_equal(berth_store_host_put(a.store, &h, &err), 0);
    store_put(&a, "s1", req(2, 2, 0, BERTH_PRIORITY_SPOT), "h1");
    store_put(&a, "s2", req(2, 2, 0, BERTH_PRIORITY_SPOT), "h1");
    const char *keys[] = {"fits", "b-spot", "b-reg", "b-reg2"};
    berth_request_t rs[] = {req(2, 2, 0, BERTH_PRIORITY_REGULAR),
                            req(1, 1, 0, BERTH_PRIORITY_SPOT),
                            req(2, 2, 0, BERTH_PRIORITY_REGULAR),
                            req(2, 2, 0, BERTH_PRIORITY_REGULAR)};
    berth_placement_t outs[4];
    int res[4] = {1, 1, 1, 1};
    assert_int_equal(berth_store_place_batch(a.store, 4, keys, rs, outs, res, &err), 0);
    assert_int_equal(res[0], 0);
    assert_int_equal(outs[0].evicted, 0);
    assert_int_equal(res[1], BERTH_ENOSPC);
    assert_int_equal(res[2], 0);
    assert_int_equal(outs[2].evicted, 1);
    assert_int_equal(res[3], 0);
    assert_int_equal(outs[3].evicted, 1);
    assert_false(placed(a.engine, "s1", NULL) || placed(a.engine, "s2", NULL));
    assert_false(placed(a.engine, "b-spot", NULL));
    assert_true(placed(a.engine, "b-reg", "h1") && placed(a.engine, "b-reg2", "h1"));
    redisContext *c = berth_test_redis_connect(berth_test_redis_group);
    assert_non_null(c);
    assert_true(hexists(c, cell, "evictions", "s1") && hexists(c, cell, "evictions", "s2"));
    assert_int_equal(scard(c, cell, "h1"), 3);
    redisFree(c);
    assert_int_equal(berth_store_fsck(a.store, fsck_print, NULL, &err), 0);
    replica_close(&a);
}

/* A redeployed Regular group that fits nowhere evicts a Spot group of its
 * own host in the store: one commit (its record at the next generation,
 * the victim released and recorded, the agent told), fsck clean, the
 * other replica converges; a stale generation is refused. */
static void test_store_redeploy_preempt(void **state)
{
    (void)state;
    char cell[32];
    snprintf(cell, sizeof cell, "pre-%d-%d", (int)getpid() % 10000, ++cell_counter);
    replica_t a, b;
    replica_open(&a, cell);
    replica_open(&b, cell);
    berth_host_t h = {.name = "h1", .cores = 4, .memory_mib = 16 * GB, .os = BERTH_OS_LINUX};
    berth_error_t err;
    assert_int_equal(berth_store_host_put(a.store, &h, &err), 0);
    store_put(&a, "grow", req(1, 2, 0, BERTH_PRIORITY_REGULAR), "h1");
    store_put(&b, "sp1", req(1, 2, 0, BERTH_PRIORITY_SPOT), "h1");
    store_put(&a, "sp2", req(2, 2, 0, BERTH_PRIORITY_SPOT), "h1");

    /* 2 cores: its own 1 back and sp1's (the least capacity) make room. */
    berth_request_t r = req(2, 2, 0, BERTH_PRIORITY_REGULAR);
    berth_placement_t p;
    if (berth_store_place(a.store, "grow", &r, "{\"doc\": 2}", &p, &err) != 0)
        fail_msg("preempting redeploy: %s", err.message);
    assert_string_equal(p.host, "h1");
    assert_int_equal(p.kind, BERTH_PLACED_STAYED);
    assert_int_equal(p.evicted, 1);
    assert_string_equal(berth_engine_victim_get(a.engine, 0), "sp1");
    redisContext *c = berth_test_redis_connect(berth_test_redis_group);
    assert_non_null(c);
    assert_false(hexists(c, cell, "groups", "sp1"));
    assert_true(hexists(c, cell, "groups", "sp2"));
    assert_true(hexists(c, cell, "evictions", "sp1"));
    assert_true(assign_release(c, cell, "h1", "sp1"));
    assert_int_equal(scard(c, cell, "h1"), 2);
    char *spec = NULL;
    uint64_t gen = 0;
    assert_int_equal(berth_store_group_read(b.store, "grow", &spec, &gen, &err), 0);
    assert_int_equal(gen, 2);
    assert_string_equal(spec, "{\"doc\": 2}");
    berth_free(spec);
    berth_eviction_t ev;
    assert_int_equal(berth_store_eviction_read(b.store, "sp1", &ev, &err), 0);
    assert_string_equal(ev.by, "grow");
    assert_int_equal(berth_store_fsck(a.store, fsck_print, NULL, &err), 0);
    assert_int_equal(berth_store_sync(b.store, &err), 0);
    assert_int_equal(berth_engine_group_get(b.engine, "grow", &p), 0);
    assert_int_equal(p.demand.millicores, 2000);
    assert_false(placed(b.engine, "sp1", NULL));
    assert_int_equal(berth_engine_spot_count(b.engine), 1);

    /* A plan at a stale generation of the group is refused, unchanged. */
    redisReply *x = redisCommand(
        c,
        "FCALL berth_preempt 7 berth:{%s}:hosts berth:{%s}:groups berth:{%s}:log "
        "berth:{%s}:seq berth:{%s}:hostgroups:h1 berth:{%s}:assign:h1 "
        "berth:{%s}:evictions grow h1 rec 1000 3000 2048 0 1 1 sp2 1 1",
        cell, cell, cell, cell, cell, cell, cell);
    assert_non_null(x);
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    assert_int_equal(x->element[0]->integer, 0);
    assert_string_equal(x->element[1]->str, "generation");
    freeReplyObject(x);
    assert_true(hexists(c, cell, "groups", "sp2"));

    /* 5 cores: more than the host has, sp2 or not: refused, unchanged. */
    r = req(5, 2, 0, BERTH_PRIORITY_REGULAR);
    assert_int_equal(berth_store_place(a.store, "grow", &r, NULL, &p, &err), BERTH_ENOSPC);
    assert_true(hexists(c, cell, "groups", "sp2"));
    assert_int_equal(berth_store_fsck(a.store, fsck_print, NULL, &err), 0);
    redisFree(c);
    replica_close(&a);
    replica_close(&b);
}

/* The Function's victim checks: a victim at another generation, a Regular
 * victim and a missing one are refused and change nothing; the library's
 * own plan for the same room is taken. */
static void test_store_stale_victims(void **state)
{
    (void)state;
    char cell[32];
    snprintf(cell, sizeof cell, "pre-%d-%d", (int)getpid() % 10000, ++cell_counter);
    replica_t a;
    replica_open(&a, cell);
    berth_host_t h = {.name = "h1", .cores = 2, .memory_mib = 8 * GB, .os = BERTH_OS_LINUX};
    berth_error_t err;
    assert_int_equal(berth_store_host_put(a.store, &h, &err), 0);
    store_put(&a, "sp", req(1, 2, 0, BERTH_PRIORITY_SPOT), "h1");
    store_put(&a, "rg", req(1, 2, 0, BERTH_PRIORITY_REGULAR), "h1");
    redisContext *c = berth_test_redis_connect(berth_test_redis_group);
    assert_non_null(c);
    /* The host's epoch is the seq of its put: the first change of the cell. */
    redisReply *seq = redisCommand(c, "GET berth:{%s}:seq", cell);
    long long before = atoll(seq->str);
    freeReplyObject(seq);
    const char *bad[][2] = {{"sp", "2"}, {"rg", "1"}, {"nope", "1"}};
    for (int i = 0; i < 3; i++) {
        redisReply *x = redisCommand(
            c,
            "FCALL berth_preempt 7 berth:{%s}:hosts berth:{%s}:groups berth:{%s}:log "
            "berth:{%s}:seq berth:{%s}:hostgroups:h1 berth:{%s}:assign:h1 "
            "berth:{%s}:evictions x-new h1 rec 1000 1000 1024 0 1 1 %s %s 0",
            cell, cell, cell, cell, cell, cell, cell, bad[i][0], bad[i][1]);
        assert_non_null(x);
        assert_int_equal(x->type, REDIS_REPLY_ARRAY);
        assert_int_equal(x->element[0]->integer, 0);
        assert_string_equal(x->element[1]->str, "victim");
        freeReplyObject(x);
    }
    /* A victim named twice would be freed twice: refused. */
    redisReply *twice = redisCommand(
        c,
        "FCALL berth_preempt 7 berth:{%s}:hosts berth:{%s}:groups berth:{%s}:log "
        "berth:{%s}:seq berth:{%s}:hostgroups:h1 berth:{%s}:assign:h1 "
        "berth:{%s}:evictions x-new h1 rec 1000 2000 1024 0 1 2 sp 1 sp 1 0",
        cell, cell, cell, cell, cell, cell, cell);
    assert_non_null(twice);
    assert_int_equal(twice->type, REDIS_REPLY_ARRAY);
    assert_int_equal(twice->element[0]->integer, 0);
    assert_string_equal(twice->element[1]->str, "victim");
    freeReplyObject(twice);
    seq = redisCommand(c, "GET berth:{%s}:seq", cell);
    assert_int_equal(atoll(seq->str), before);
    freeReplyObject(seq);
    assert_true(hexists(c, cell, "groups", "sp"));
    assert_false(hexists(c, cell, "evictions", "sp"));

    /* The library's own commit of the same room succeeds. */
    berth_request_t r = req(1, 2, 0, BERTH_PRIORITY_REGULAR);
    berth_placement_t p;
    assert_int_equal(berth_store_place(a.store, "new", &r, NULL, &p, &err), 0);
    assert_int_equal(p.evicted, 1);
    assert_false(hexists(c, cell, "groups", "sp"));
    assert_int_equal(berth_store_fsck(a.store, fsck_print, NULL, &err), 0);
    redisFree(c);
    replica_close(&a);
}

/* Two replicas preempting at once on one cell, each from its own thread:
 * their plans go stale under each other (a victim the other one evicted,
 * a host whose room the other one took), Redis refuses those and the
 * store plans again.  Every Regular group lands, exactly the Spot groups
 * needed are evicted, fsck stays clean and the replicas converge. */
typedef struct racer {
    replica_t r;
    const char *prefix;
    int placed, evicted, failed;
} racer_t;

static void *racer_run(void *arg)
{
    racer_t *x = arg;
    for (int i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s-%d", x->prefix, i);
        berth_request_t q = req(2, 2, 0, BERTH_PRIORITY_REGULAR);
        berth_placement_t p;
        berth_error_t err;
        if (berth_store_place(x->r.store, key, &q, NULL, &p, &err) == 0) {
            x->placed++;
            x->evicted += (int)p.evicted;
        } else {
            fprintf(stderr, "%s: %s\n", key, err.message);
            x->failed++;
        }
    }
    return NULL;
}

/* Redis's count of FCALLs so far (INFO commandstats). */
static long long fcall_count(redisContext *c)
{
    redisReply *x = redisCommand(c, "INFO commandstats");
    long long n = -1;
    const char *p = x && x->type == REDIS_REPLY_STRING ? x->str : NULL;
    p = p ? strstr(p, "cmdstat_fcall:calls=") : NULL;
    if (p != NULL)
        n = atoll(p + strlen("cmdstat_fcall:calls="));
    freeReplyObject(x);
    return n;
}

static void test_store_race(void **state)
{
    (void)state;
    char cell[32];
    snprintf(cell, sizeof cell, "pre-%d-%d", (int)getpid() % 10000, ++cell_counter);
    racer_t a = {.prefix = "ra"}, b = {.prefix = "rb"};
    replica_open(&a.r, cell);
    replica_open(&b.r, cell);
    berth_error_t err;
    char name[16], key[32];
    for (int h = 0; h < 4; h++) {
        snprintf(name, sizeof name, "h%d", h);
        berth_host_t d = {.name = name, .cores = 4, .memory_mib = 16 * GB,
                          .os = BERTH_OS_LINUX};
        assert_int_equal(berth_store_host_put(a.r.store, &d, &err), 0);
    }
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof key, "spot-%02d", i);
        store_put(&a.r, key, req(1, 2, 0, BERTH_PRIORITY_SPOT), NULL);
    }
    assert_int_equal(berth_store_sync(b.r.store, &err), 0);
    assert_int_equal(berth_engine_spot_count(b.r.engine), 16);
    redisContext *c = berth_test_redis_connect(berth_test_redis_group);
    assert_non_null(c);
    long long fcalls0 = fcall_count(c);
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, racer_run, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, racer_run, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    /* Every FCALL past the 8 that landed was a stale plan refused. */
    print_message("racing preemptions: %lld commits tried for 8 placed\n",
                  fcall_count(c) - fcalls0);
    redisFree(c);
    assert_int_equal(a.failed + b.failed, 0);
    assert_int_equal(a.placed + b.placed, 8);
    assert_int_equal(a.evicted + b.evicted, 16);
    assert_int_equal(berth_store_sync(a.r.store, &err), 0);
    assert_int_equal(berth_store_sync(b.r.store, &err), 0);
    assert_int_equal(berth_engine_spot_count(a.r.engine), 0);
    assert_int_equal(berth_engine_spot_count(b.r.engine), 0);
    berth_engine_stats_t sa, sb;
    berth_engine_stats(a.r.engine, &sa);
    berth_engine_stats(b.r.engine, &sb);
    assert_int_equal(sa.groups, 8);
    assert_int_equal(sb.groups, 8);
    assert_int_equal(sa.used_millicores, 16000);
    assert_int_equal(sb.used_millicores, 16000);
    assert_int_equal(berth_store_fsck(a.r.store, fsck_print, NULL, &err), 0);
    /* Every Spot group has its eviction record. */
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof key, "spot-%02d", i);
        berth_eviction_t ev;
        assert_int_equal(berth_store_eviction_read(a.r.store, key, &ev, &err), 0);
        assert_true(strncmp(ev.by, "ra-", 3) == 0 || strncmp(ev.by, "rb-", 3) == 0);
    }
    replica_close(&a.r);
    replica_close(&b.r);
}

/* ---- API tests ---------------------------------------------------------------------------- */

#define SUB "0000-sub-1"
#define APIV "2023-05-01"
#define WAIT_MS 15000

static const char SIM_CONFIG[] = "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 50}";

typedef struct fixture {
    char cell[32];
    test_agent_t agent;
    bool agent_running;
    test_berthd_t d;
    bool d_running;
    redisContext *rc;
} fixture_t;

static char *gpath(const char *name, const char *suffix, const char *apiv)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/rg/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s%s?api-version=%s",
                 name, suffix ? suffix : "", apiv ? apiv : APIV) < 0)
        abort();
    return p;
}

static char *gdoc(int cpu, const char *priority)
{
    char pr[64] = "";
    if (priority != NULL)
        snprintf(pr, sizeof pr, "\"priority\": \"%s\", ", priority);
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {%s\"osType\": \"Linux\", "
                 "\"restartPolicy\": \"Never\", \"containers\": [{\"name\": \"app\", "
                 "\"properties\": {\"image\": \"busybox:latest\", \"resources\": "
                 "{\"requests\": {\"cpu\": %d, \"memoryInGB\": 1}}}}]}}",
                 pr, cpu) < 0)
        abort();
    return out;
}

static test_http_t http(fixture_t *f, const char *method, const char *path, const char *body)
{
    return test_http_send(&f->d, method, path, body, NULL);
}

static long call(fixture_t *f, const char *method, const char *name, const char *suffix,
                 const char *body)
{
    char *p = gpath(name, suffix, NULL);
    test_http_t h = http(f, method, p, body);
    long status = h.status;
    if (status >= 400)
        fprintf(stderr, "%s %s%s: %ld %s\n", method, name, suffix ? suffix : "", status, h.body);
    test_http_free(&h);
    free(p);
    return status;
}

static json_t *get_group(fixture_t *f, const char *name)
{
    char *p = gpath(name, NULL, NULL);
    test_http_t h = http(f, "GET", p, NULL);
    json_t *j = h.status == 200 ? json_incref(h.json) : NULL;
    test_http_free(&h);
    free(p);
    return j;
}

static const char *group_state(json_t *body)
{
    const char *s = json_string_value(json_object_get(
        json_object_get(json_object_get(body, "properties"), "instanceView"), "state"));
    return s ? s : "";
}

static const char *ctr_state(json_t *body)
{
    json_t *c = json_array_get(json_object_get(json_object_get(body, "properties"), "containers"),
                               0);
    const char *s = json_string_value(json_object_get(
        json_object_get(json_object_get(json_object_get(c, "properties"), "instanceView"),
                        "currentState"),
        "state"));
    return s ? s : "";
}

/* Waits until GET shows the group with its container Running. */
static bool wait_running(fixture_t *f, const char *name)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (test_now_ms() < end) {
        json_t *j = get_group(f, name);
        bool ok = j != NULL && strcmp(ctr_state(j), "Running") == 0;
        json_decref(j);
        if (ok)
            return true;
        test_sleep_ms(100);
    }
    fprintf(stderr, "group %s never ran\n", name);
    return false;
}

/* Waits until the cell holds no instance view of group `name`: its agent
 * removed it. */
static bool wait_view_gone(fixture_t *f, const char *name)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (test_now_ms() < end) {
        redisReply *r = redisCommand(f->rc, "HEXISTS berth:{%s}:views %s/rg/%s", f->cell,
                                     SUB, name);
        bool gone = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0;
        if (r != NULL)
            freeReplyObject(r);
        if (gone)
            return true;
        test_sleep_ms(50);
    }
    return false;
}

static int api_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->cell, sizeof f->cell, "pa-%d-%d", (int)getpid() % 10000, ++cell_counter);
    f->rc = berth_test_redis_connect(berth_test_redis_group);
    const char *dargs[] = {"--redis", berth_test_redis_group->url, "--cell", f->cell, NULL};
    const char *aargs[] = {"--cores", "4", "--memory-mib", "16384", "--tick-ms", "50",
                           "--heartbeat-ms", "200", "--ttl-ms", "10000", NULL};
    if (f->rc != NULL && test_berthd_start(&f->d, false, dargs) == 0) {
        f->d_running = true;
        if (test_agent_start(&f->agent, berth_test_redis_group->url, f->cell, "sim-1", "sim",
                             SIM_CONFIG, aargs) == 0)
            f->agent_running = true;
    }
    bool host = false;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (f->agent_running && !host && test_now_ms() < end) {
        test_http_t h = http(f, "GET", "/berth/hosts", NULL);
        host = json_array_size(json_object_get(h.json, "value")) >= 1;
        test_http_free(&h);
        if (!host)
            test_sleep_ms(50);
    }
    if (!host) {
        if (f->d_running) {
            test_berthd_dump(&f->d, 30);
            test_berthd_kill(&f->d);
        }
        if (f->agent_running) {
            test_agent_dump(&f->agent, 20);
            test_agent_kill(&f->agent);
        }
        if (f->rc != NULL)
            redisFree(f->rc);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* Stops the daemons; a daemon that does not exit cleanly (a checker such
 * as valgrind wrapping it reports through its exit status) fails. */
static int api_teardown(void **state)
{
    fixture_t *f = *state;
    int rc = 0;
    if (f->d_running && test_berthd_stop(&f->d) != 0) {
        test_berthd_dump(&f->d, 30);
        rc = -1;
    }
    if (f->agent_running && test_agent_stop(&f->agent) != 0) {
        test_agent_dump(&f->agent, 30);
        rc = -1;
    }
    redisFree(f->rc);
    free(f);
    return rc;
}

static void test_api_preempt(void **state)
{
    fixture_t *f = *state;
    char *spot = gdoc(2, "Spot");
    char *regular = gdoc(2, "Regular");
    char *plain = gdoc(2, NULL);
    /* Priority needs a recent api-version. */
    char *old = gpath("spot-old", NULL, "2021-03-01");
    test_http_t h = http(f, "PUT", old, spot);
    assert_int_equal(h.status, 400);
    json_t *e = json_object_get(h.json, "error");
    assert_string_equal(json_string_value(json_object_get(e, "target")), "properties.priority");
    test_http_free(&h);
    free(old);

    /* Spot groups fill the 4-core host. */
    assert_int_equal(call(f, "PUT", "spot-a", NULL, spot), 201);
    assert_int_equal(call(f, "PUT", "spot-b", NULL, spot), 201);
    assert_true(wait_running(f, "spot-a"));
    assert_true(wait_running(f, "spot-b"));
    /* A Spot group never preempts. */
    assert_int_equal(call(f, "PUT", "spot-c", NULL, spot), 409);
    /* Changing the priority needs a delete. */
    assert_int_equal(call(f, "PUT", "spot-a", NULL, regular), 409);

    /* A Regular group evicts one of them: 201 as usual. */
    assert_int_equal(call(f, "PUT", "reg", NULL, plain), 201);
    assert_true(wait_running(f, "reg"));
    json_t *a = get_group(f, "spot-a");
    json_t *b = get_group(f, "spot-b");
    assert_non_null(a);
    assert_non_null(b);
    bool a_gone = strcmp(group_state(a), "Terminated") == 0;
    bool b_gone = strcmp(group_state(b), "Terminated") == 0;
    assert_true(a_gone != b_gone);     /* exactly one victim */
    const char *victim = a_gone ? "spot-a" : "spot-b";
    const char *survivor = a_gone ? "spot-b" : "spot-a";
    json_t *vbody = a_gone ? a : b;
    json_t *events = json_object_get(
        json_object_get(json_object_get(vbody, "properties"), "instanceView"), "events");
    assert_int_equal(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_string_equal(json_string_value(json_object_get(ev, "name")), "SpotEviction");
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "Warning");
    assert_int_equal(json_integer_value(json_object_get(ev, "count")), 1);
    assert_non_null(json_string_value(json_object_get(ev, "firstTimestamp")));
    assert_non_null(json_string_value(json_object_get(ev, "lastTimestamp")));
    assert_non_null(strstr(json_string_value(json_object_get(ev, "message")), "evicted"));
    json_t *cs = json_object_get(json_object_get(vbody, "properties"), "containers");
    assert_true(json_array_size(cs) > 0);
    size_t ci;
    json_t *c;
    json_array_foreach(cs, ci, c)
    {
        json_t *civ = json_object_get(json_object_get(c, "properties"), "instanceView");
        json_t *cur = json_object_get(civ, "currentState");
        assert_string_equal(json_string_value(json_object_get(cur, "state")), "Terminated");
        assert_string_equal(json_string_value(json_object_get(cur, "detailStatus")), "Evicted");
        assert_string_equal(json_string_value(json_object_get(cur, "finishTime")),
                            json_string_value(json_object_get(ev, "lastTimestamp")));
    }
    json_decref(a);
    json_decref(b);
    assert_true(wait_running(f, survivor));
    /* Its agent removed it, and the GET still says Terminated after. */
    assert_true(wait_view_gone(f, victim));
    json_t *v = get_group(f, victim);
    assert_string_equal(group_state(v), "Terminated");
    json_decref(v);
    /* Restart is refused; start is refused while nothing fits. */
    assert_int_equal(call(f, "POST", victim, "/start", NULL), 409);
    v = get_group(f, victim);
    assert_string_equal(group_state(v), "Terminated");
    json_decref(v);

    /* Metrics count the eviction. */
    test_http_t m = http(f, "GET", "/metrics", NULL);
    assert_int_equal(m.status, 200);
    assert_non_null(strstr(m.body, "berthd_evictions_total 1"));
    test_http_free(&m);

    /* Room comes back: start places it again. */
    assert_int_equal(call(f, "DELETE", "reg", NULL, NULL), 200);
    assert_int_equal(call(f, "POST", victim, "/start", NULL), 202);
    assert_true(wait_running(f, victim));
    v = get_group(f, victim);
    assert_string_not_equal(group_state(v), "Terminated");
    json_decref(v);
    berth_error_t err;
    replica_t r;
    replica_open(&r, f->cell);
    assert_int_equal(berth_store_fsck(r.store, fsck_print, NULL, &err), 0);
    berth_eviction_t evr;
    char key[128];
    snprintf(key, sizeof key, SUB "/rg/%s", victim);
    assert_int_equal(berth_store_eviction_read(r.store, key, &evr, NULL), BERTH_ENOENT);
    replica_close(&r);
    /* Deleting an evicted group works like any other. */
    assert_int_equal(call(f, "DELETE", victim, NULL, NULL), 200);

    free(spot);
    free(regular);
    free(plain);
}

int main(void)
{
    const struct CMUnitTest engine_tests[] = {
        cmocka_unit_test(test_fewest_then_least),
        cmocka_unit_test(test_least_capacity),
        cmocka_unit_test(test_gpu_dimension),
        cmocka_unit_test(test_constraints_and_refusals),
        cmocka_unit_test(test_redeploy_preempts),
        cmocka_unit_test(test_no_spot),
        cmocka_unit_test(test_greedy_fallback),
        cmocka_unit_test(test_plan_cost),
    };
    const struct CMUnitTest store_tests[] = {
        cmocka_unit_test(test_store_preempt),
        cmocka_unit_test(test_store_redeploy_preempt),
        cmocka_unit_test(test_store_batch_preempt),
        cmocka_unit_test(test_store_stale_victims),
        cmocka_unit_test(test_store_race),
    };
    const struct CMUnitTest api_tests[] = {
        cmocka_unit_test_setup_teardown(test_api_preempt, api_setup, api_teardown),
    };
    int failed = cmocka_run_group_tests_name("preempt_engine", engine_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("preempt_store", store_tests,
                                          berth_test_redis_group_setup,
                                          berth_test_redis_group_teardown);
    failed += cmocka_run_group_tests_name("preempt_api", api_tests, berth_test_redis_group_setup,
                                          berth_test_redis_group_teardown);
    return failed;
}
