/*
 * test_engine.c: unit tests of the placement engine (core/engine/engine.c) through
 * its public API: hosts, every hard constraint (a case that passes and one
 * that fails with the right reason), binpack and spread, redeploys,
 * releases, statistics and determinism.
 *
 * Requests are built directly (berth_request_t), so these tests do not
 * depend on the document parser, except the one berth_engine_group_place test.
 * Never asserts on timings.
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

enum { K80 = 0, P100 = 1, V100 = 2 };

static berth_engine_t *engine_with(berth_policy_t policy, uint64_t seed)
{
    berth_engine_options_t o;
    berth_engine_options_init(&o);
    o.policy = policy;
    o.seed = seed;
    berth_engine_t *e = NULL;
    assert_int_equal(berth_engine_new(&o, &e, NULL), 0);
    assert_non_null(e);
    return e;
}

/* A host description with defaults: Linux, ready, no GPU, no zone. */
static berth_host_t host(const char *name, uint32_t cores, uint32_t gb)
{
    berth_host_t h;
    memset(&h, 0, sizeof h);
    h.name = name;
    h.cores = cores;
    h.memory_mib = gb * GB;
    h.os = BERTH_OS_LINUX;
    return h;
}

static void add(berth_engine_t *e, berth_host_t h)
{
    berth_error_t err;
    int rc = berth_engine_host_add(e, &h, &err);
    if (rc != 0)
        fail_msg("adding host %s: %s", h.name, err.message);
}

static berth_request_t linux_req(uint32_t cores, uint32_t gb)
{
    berth_request_t r;
    memset(&r, 0, sizeof r);
    r.os = BERTH_OS_LINUX;
    r.demand.millicores = cores * 1000;
    r.demand.requested_millicores = cores * 1000;
    r.demand.memory_mib = gb * GB;
    return r;
}

static berth_request_t gpu_req(uint32_t cores, uint32_t gb, uint32_t sku, uint32_t n)
{
    berth_request_t r = linux_req(cores, gb);
    r.demand.gpu_sku = sku;
    r.demand.gpu_count = n;
    return r;
}

static berth_request_t windows_req(uint32_t build)
{
    berth_request_t r = linux_req(1, 1);
    r.os = BERTH_OS_WINDOWS;
    r.os_build = build;
    return r;
}

/* Places and returns the host's name (static buffer), failing the test with
 * the engine's message when refused. */
static const char *place(berth_engine_t *e, const char *key, const berth_request_t *r)
{
    static berth_placement_t p;
    berth_error_t err;
    int rc = berth_engine_request_place(e, key, r, &p, &err);
    if (rc != 0)
        fail_msg("placing %s: %d %s", key, rc, err.message);
    return p.host;
}

/* Expects a refusal with `code` whose message contains `text`. */
static void refused(berth_engine_t *e, const char *key, const berth_request_t *r, int code,
                    const char *text)
{
    berth_error_t err;
    berth_placement_t p;
    int rc = berth_engine_request_place(e, key, r, &p, &err);
    if (rc != code || strstr(err.message, text) == NULL)
        fail_msg("placing %s: expected %d with \"%s\", got %d \"%s\"", key, code, text, rc,
                 rc ? err.message : p.host);
    assert_int_equal(err.code, code);
}

static void check_index(berth_engine_t *e)
{
    char why[256];
    if (berth__index_check(berth__engine_index(e), why, sizeof why) != 0)
        fail_msg("index: %s", why);
}

/* ---- engine and tables ---------------------------------------------------------- */

static void test_engine_new_and_tables(void **state)
{
    (void)state;
    berth_engine_t *e = NULL;
    berth_engine_options_t o;
    berth_engine_options_init(&o);
    o.policy = (berth_policy_t)7;
    berth_error_t err;
    assert_int_equal(berth_engine_new(&o, &e, &err), BERTH_EINVAL);
    assert_null(e);
    berth_engine_options_init(&o);
    o.limits.max_millicores = 0;
    assert_int_equal(berth_engine_new(&o, &e, &err), BERTH_EINVAL);
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);

    uint32_t id = 99;
    const berth_gpu_sku_t *s = berth_engine_gpu_sku_find(e, "V100", &id);
    assert_non_null(s);
    assert_int_equal(id, V100);
    assert_string_equal(berth_engine_gpu_sku_name(e, K80), "K80");
    assert_null(berth_engine_gpu_sku_name(e, 31));
    assert_null(berth_engine_gpu_sku_find(e, "v100", NULL));
    berth_gpu_sku_t t4 = {"T4", 1, {{1, 4000, 16 * GB}}};
    assert_int_equal(berth_engine_gpu_sku_add(e, &t4, &err), 0);
    assert_non_null(berth_engine_gpu_sku_find(e, "T4", &id));
    assert_int_equal(id, 3);

    assert_int_equal(berth_engine_zone_id(e, "1"), 0);
    assert_int_equal(berth_engine_zone_id(e, "2"), 1);
    assert_int_equal(berth_engine_zone_id(e, "1"), 0);
    assert_int_equal(berth_engine_zone_id(e, ""), BERTH_EINVAL);
    assert_ptr_equal(berth__engine_config(e)->zones[1], berth__engine_config(e)->zones[1]);
    assert_int_equal(berth__engine_config(e)->nzones, 2);
    berth_engine_free(e);
    berth_engine_free(NULL);

    /* Room made for an expected number of hosts, or refused when absurd. */
    berth_engine_options_init(&o);
    o.expected_hosts = UINT32_MAX;
    assert_int_equal(berth_engine_new(&o, &e, &err), BERTH_ENOMEM);
    assert_null(e);
    o.expected_hosts = 300;
    assert_int_equal(berth_engine_new(&o, &e, &err), 0);
    for (int i = 0; i < 400; i++) {
        char name[16];
        snprintf(name, sizeof name, "h%d", i);
        berth_host_t h = host(name, 4, 8);
        assert_int_equal(berth_engine_host_add(e, &h, &err), 0);
    }
    assert_int_equal(berth_engine_host_count(e), 400);
    berth_host_t got;
    assert_int_equal(berth_engine_host_get(e, "h399", &got, NULL), 0);
    assert_string_equal(got.name, "h399");
    berth_engine_free(e);
}

/* ---- hosts ------------------------------------------------------------------------- */

static void test_host_add_validation(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    berth_error_t err;
    berth_host_t h = host("bad name", 8, 32);
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "name");
    h = host("", 8, 32);
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = '\0';
    h = host(longname, 8, 32);
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    longname[63] = '\0';
    h = host(longname, 8, 32);
    assert_int_equal(berth_engine_host_add(e, &h, &err), 0);
    h = host("Node_1.rack-2", 0, 32);
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "cores");
    h = host("Node_1.rack-2", 8, 0);
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    h = host("Node_1.rack-2", 8, 32);
    h.gpu_count = 4;
    h.gpu_sku = "H100";
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "InvalidGpuSku");
    h.gpu_sku = NULL;
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    h.gpu_count = 0;
    h.gpu_sku = "V100";
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    h.gpu_sku = "";
    h.os = BERTH_OS_UNSET;
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "os");
    h.os = BERTH_OS_WINDOWS;
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "os_build");
    h.os = BERTH_OS_LINUX;
    h.features = 0x80;
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EINVAL);
    h.features = 0;
    assert_int_equal(berth_engine_host_add(e, &h, &err), 0);
    assert_int_equal(berth_engine_host_add(e, &h, &err), BERTH_EEXIST);
    assert_int_equal(berth_engine_host_count(e), 2);
    check_index(e);
    berth_engine_free(e);
}

static void test_host_order_and_get(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    add(e, host("a", 8, 32));
    berth_host_t g = host("b", 8, 32);
    g.gpu_count = 4;
    g.gpu_sku = "V100";
    g.zone = "2";
    g.features = BERTH_HOST_CONFIDENTIAL;
    add(e, g);
    add(e, host("c", 8, 32));
    berth_host_t out;
    berth_host_usage_t u;
    assert_int_equal(berth_engine_host_get(e, "b", &out, &u), 0);
    assert_string_equal(out.name, "b");
    assert_string_equal(out.gpu_sku, "V100");
    assert_string_equal(out.zone, "2");
    assert_int_equal(out.gpu_count, 4);
    assert_int_equal(out.features, BERTH_HOST_CONFIDENTIAL);
    assert_int_equal(u.groups, 0);
    assert_int_equal(berth_engine_host_get(e, "zz", NULL, NULL), BERTH_ENOENT);
    assert_int_equal(berth_engine_host_at(e, 0, &out, NULL), 0);
    assert_string_equal(out.name, "a");
    assert_null(out.zone);
    assert_null(out.gpu_sku);
    assert_int_equal(berth_engine_host_remove(e, "a", NULL), 0);
    /* swap-remove: the last host takes the removed one's place */
    assert_int_equal(berth_engine_host_at(e, 0, &out, NULL), 0);
    assert_string_equal(out.name, "c");
    assert_int_equal(berth_engine_host_at(e, 1, &out, NULL), 0);
    assert_string_equal(out.name, "b");
    assert_int_equal(berth_engine_host_at(e, 2, &out, NULL), BERTH_ENOENT);
    assert_int_equal(berth_engine_host_remove(e, "a", NULL), BERTH_ENOENT);
    add(e, host("a", 8, 32));
    assert_int_equal(berth_engine_host_count(e), 3);
    check_index(e);
    berth_engine_free(e);
}

static void test_host_update_remove_rules(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    berth_host_t g = host("g", 16, 64);
    g.gpu_count = 4;
    g.gpu_sku = "V100";
    add(e, g);
    berth_request_t r = gpu_req(4, 16, V100, 2);
    assert_string_equal(place(e, "x", &r), "g");
    berth_error_t err;
    assert_int_equal(berth_engine_host_remove(e, "g", &err), BERTH_EBUSY);
    assert_string_equal(err.name, "HostBusy");
    berth_host_t u = g;
    u.cores = 3;
    assert_int_equal(berth_engine_host_update(e, &u, &err), BERTH_EBUSY);
    assert_string_equal(err.target, "cores");
    u = g;
    u.memory_mib = 8 * GB;
    assert_int_equal(berth_engine_host_update(e, &u, &err), BERTH_EBUSY);
    u = g;
    u.gpu_count = 1;
    assert_int_equal(berth_engine_host_update(e, &u, &err), BERTH_EBUSY);
    u = g;
    u.gpu_sku = "K80";
    assert_int_equal(berth_engine_host_update(e, &u, &err), BERTH_EBUSY);
    assert_string_equal(err.target, "gpu_sku");
    u = g;
    u.os = BERTH_OS_WINDOWS;
    u.os_build = BERTH_WINDOWS_LTSC2022;
    u.gpu_count = 0;
    u.gpu_sku = NULL;
    assert_int_equal(berth_engine_host_update(e, &u, &err), BERTH_EBUSY);
    /* capacity down to exactly what is used, zone, features: allowed */
    u = g;
    u.cores = 4;
    u.memory_mib = 16 * GB;
    u.gpu_count = 2;
    u.zone = "3";
    u.features = BERTH_HOST_CONFIDENTIAL;
    assert_int_equal(berth_engine_host_update(e, &u, &err), 0);
    berth_host_t out;
    berth_host_usage_t use;
    assert_int_equal(berth_engine_host_get(e, "g", &out, &use), 0);
    assert_int_equal(out.cores, 4);
    assert_string_equal(out.zone, "3");
    assert_int_equal(use.millicores, 4000);
    assert_int_equal(use.gpu_count, 2);
    berth_engine_stats_t st;
    berth_engine_stats(e, &st);
    assert_int_equal(st.capacity_millicores, 4000);
    assert_int_equal(st.capacity_gpus, 2);
    check_index(e);
    u.name = "nope";
    assert_int_equal(berth_engine_host_update(e, &u, &err), BERTH_ENOENT);
    assert_int_equal(berth_engine_host_set_state(e, "nope", BERTH_HOST_DOWN, &err), BERTH_ENOENT);
    assert_int_equal(berth_engine_host_set_state(e, "g", (berth_host_state_t)9, &err),
                     BERTH_EINVAL);
    /* an empty host may change everything */
    assert_int_equal(berth_engine_group_release(e, "x", &err), 0);
    u = host("g", 8, 8);
    u.os = BERTH_OS_WINDOWS;
    u.os_build = BERTH_WINDOWS_LTSC2019;
    assert_int_equal(berth_engine_host_update(e, &u, &err), 0);
    assert_int_equal(berth_engine_host_remove(e, "g", &err), 0);
    berth_engine_stats(e, &st);
    assert_int_equal(st.hosts, 0);
    assert_int_equal(st.capacity_millicores, 0);
    assert_int_equal(st.capacity_memory_mib, 0);
    check_index(e);
    berth_engine_free(e);
}

/* ---- constraints ------------------------------------------------------------------------ */

static void test_constraint_os(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    berth_host_t w = host("win", 8, 32);
    w.os = BERTH_OS_WINDOWS;
    w.os_build = BERTH_WINDOWS_LTSC2022;
    add(e, w);
    berth_request_t r = linux_req(1, 1);
    refused(e, "a", &r, BERTH_ENOSPC, "no Linux host.");
    berth_error_t err;
    berth_engine_request_place(e, "a", &r, NULL, &err);
    assert_string_equal(err.name, "ResourceNotAvailable");
    assert_non_null(strstr(err.message, "The requested resource is not available at this "
                                        "moment: no Linux host. Resource requested: 1 CPU, "
                                        "1 GB memory, Linux. Please retry"));
    add(e, host("lin", 8, 32));
    assert_string_equal(place(e, "a", &r), "lin");
    berth_request_t wr = windows_req(BERTH_WINDOWS_LTSC2022);
    assert_string_equal(place(e, "b", &wr), "win");
    berth_engine_free(e);
}

static void test_constraint_windows_isolation(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    berth_host_t w = host("w2022", 8, 32);
    w.os = BERTH_OS_WINDOWS;
    w.os_build = BERTH_WINDOWS_LTSC2022;
    add(e, w);
    berth_request_t r = windows_req(BERTH_WINDOWS_LTSC2019);
    refused(e, "a", &r, BERTH_ENOSPC, "no Windows host can run OS build 17763");
    /* a newer build with Hyper-V runs the older image in a utility VM */
    w.name = "w2022hv";
    w.features = BERTH_HOST_HYPERV;
    add(e, w);
    berth_placement_t p;
    assert_int_equal(berth_engine_request_place(e, "a", &r, &p, NULL), 0);
    assert_string_equal(p.host, "w2022hv");
    assert_int_equal(p.isolation, BERTH_ISOLATION_HYPERV);
    /* process isolation is preferred when a host of the same build exists,
     * even a Hyper-V capable one of the same build */
    w.name = "w2019";
    w.os_build = BERTH_WINDOWS_LTSC2019;
    w.features = 0;
    add(e, w);
    assert_int_equal(berth_engine_request_place(e, "b", &r, &p, NULL), 0);
    assert_string_equal(p.host, "w2019");
    assert_int_equal(p.isolation, BERTH_ISOLATION_PROCESS);
    /* an image newer than every host runs nowhere */
    berth_request_t n = windows_req(BERTH_WINDOWS_LTSC2025);
    refused(e, "c", &n, BERTH_ENOSPC, "no Windows host can run OS build 26100");
    /* build 0: any Windows host, process isolation */
    berth_request_t any = windows_req(0);
    assert_int_equal(berth_engine_request_place(e, "d", &any, &p, NULL), 0);
    assert_int_equal(p.isolation, BERTH_ISOLATION_PROCESS);
    berth_request_t same = windows_req(BERTH_WINDOWS_LTSC2022);
    assert_int_equal(berth_engine_request_place(e, "e", &same, &p, NULL), 0);
    assert_int_equal(p.isolation, BERTH_ISOLATION_PROCESS);
    berth_request_t lr = linux_req(1, 1);
    assert_int_equal(berth_engine_request_place(e, "f", &lr, &p, NULL), BERTH_ENOSPC);
    check_index(e);
    berth_engine_free(e);
}

static void test_constraint_gpu(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    berth_host_t k = host("k80", 24, 224);
    k.gpu_count = 4;
    k.gpu_sku = "K80";
    add(e, k);
    berth_request_t r = gpu_req(4, 16, V100, 2);
    refused(e, "a", &r, BERTH_ENOSPC, "no Linux host with V100 GPUs");
    berth_host_t v = host("v100", 24, 448);
    v.gpu_count = 4;
    v.gpu_sku = "V100";
    v.zone = "1";
    add(e, v);
    berth_placement_t p;
    assert_int_equal(berth_engine_request_place(e, "a", &r, &p, NULL), 0);
    assert_string_equal(p.host, "v100");
    assert_int_equal(p.demand.gpu_count, 2);
    berth_request_t r3 = gpu_req(4, 16, V100, 3);
    r3.zone_mask = 1u << berth_engine_zone_id(e, "1");
    refused(e, "b", &r3, BERTH_ENOSPC,
            "no host with 3 free V100 GPUs in zone '1'. Resource requested: 4 CPU, "
            "16 GB memory, 3 V100 GPU, Linux.");
    assert_string_equal(place(e, "b", &r), "v100");
    berth_host_usage_t u;
    assert_int_equal(berth_engine_host_get(e, "v100", NULL, &u), 0);
    assert_int_equal(u.gpu_count, 4);
    berth_request_t bad = gpu_req(1, 1, 17, 1);
    refused(e, "c", &bad, BERTH_EINVAL, "GPU SKU");
    berth_engine_free(e);
}

static void test_constraint_zone(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    berth_host_t a = host("z2", 8, 32);
    a.zone = "2";
    add(e, a);
    add(e, host("nozone", 8, 32));
    int z1 = berth_engine_zone_id(e, "1");
    int z2 = berth_engine_zone_id(e, "2");
    berth_request_t r = linux_req(1, 1);
    r.zone_mask = 1u << z1;
    refused(e, "a", &r, BERTH_ENOSPC, "no Linux host in zone '1'");
    r.zone_mask |= 1u << z2;
    assert_string_equal(place(e, "a", &r), "z2");
    /* a host without a zone serves only requests without one */
    berth_request_t big = linux_req(8, 1);
    big.zone_mask = 1u << z1;
    refused(e, "b", &big, BERTH_ENOSPC, "in zone '1'");
    big.zone_mask = 0;
    assert_string_equal(place(e, "b", &big), "nozone");
    berth_request_t unknown = linux_req(1, 1);
    unknown.zone_mask = 1u << 9;
    refused(e, "c", &unknown, BERTH_EINVAL, "zone");
    berth_request_t two = linux_req(8, 1);
    two.zone_mask = (1u << z1) | (1u << z2);
    refused(e, "d", &two, BERTH_ENOSPC, "no host with 8 free CPU cores in zones '2', '1'");
    berth_engine_free(e);
}

/* A zone with Windows hosts of another build: the reason names the build,
 * not "no Windows host in zone", which would be false. */
static void test_constraint_zone_names_windows_build(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    berth_host_t old = host("w2019-z1", 8, 32);
    old.os = BERTH_OS_WINDOWS;
    old.os_build = BERTH_WINDOWS_LTSC2019;
    old.zone = "1";
    add(e, old);
    berth_host_t cur = host("w2022-z2", 8, 32);
    cur.os = BERTH_OS_WINDOWS;
    cur.os_build = BERTH_WINDOWS_LTSC2022;
    cur.zone = "2";
    add(e, cur);
    berth_request_t r = windows_req(BERTH_WINDOWS_LTSC2022);
    r.zone_mask = 1u << berth_engine_zone_id(e, "1");
    refused(e, "a", &r, BERTH_ENOSPC, "no Windows host able to run OS build 20348 in zone '1'");
    r.zone_mask = 0;
    assert_string_equal(place(e, "a", &r), "w2022-z2");
    berth_engine_free(e);
}

/* berth_engine_request_assign: the named host, or a clear refusal; redeploys keep
 * the update rules. */
static void test_assign_to_named_host(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    add(e, host("small", 4, 16));
    add(e, host("big", 32, 128));
    berth_request_t r = linux_req(2, 4);
    berth_placement_t p;
    berth_error_t err;
    /* binpack would choose "small"; assign obeys */
    assert_int_equal(berth_engine_request_assign(e, "g", &r, "big", &p, &err), 0);
    assert_string_equal(p.host, "big");
    assert_int_equal(p.kind, BERTH_PLACED_NEW);
    assert_int_equal(berth_engine_request_assign(e, "g", &r, "small", &p, &err), 0);
    assert_int_equal(p.kind, BERTH_PLACED_MOVED);
    assert_string_equal(p.previous_host, "big");
    assert_int_equal(berth_engine_request_assign(e, "g", &r, "small", &p, &err), 0);
    assert_int_equal(p.kind, BERTH_PLACED_STAYED);
    berth_request_t huge = linux_req(8, 4);
    assert_int_equal(berth_engine_request_assign(e, "h", &huge, "small", &p, &err), BERTH_ENOSPC);
    assert_non_null(strstr(err.message, "free capacity"));
    assert_int_equal(berth_engine_request_assign(e, "h", &huge, "nowhere", &p, &err), BERTH_ENOENT);
    assert_int_equal(berth_engine_request_assign(e, "h", &huge, NULL, &p, &err), BERTH_EINVAL);
    assert_int_equal(berth_engine_group_get(e, "h", &p), BERTH_ENOENT);
    berth_request_t win = windows_req(BERTH_WINDOWS_LTSC2022);
    assert_int_equal(berth_engine_request_assign(e, "w", &win, "big", &p, &err), BERTH_ENOSPC);
    berth_request_t changed = r;
    changed.restart_policy = BERTH_RESTART_NEVER;
    assert_int_equal(berth_engine_request_assign(e, "g", &changed, "big", &p, &err),
                     BERTH_ECONFLICT);
    assert_int_equal(berth_engine_group_get(e, "g", &p), 0);
    assert_string_equal(p.host, "small");
    /* a cordoned host takes a replayed placement; a down one does not */
    assert_int_equal(berth_engine_host_set_state(e, "big", BERTH_HOST_CORDONED, NULL), 0);
    assert_int_equal(berth_engine_request_assign(e, "c", &r, "big", &p, &err), 0);
    assert_int_equal(berth_engine_host_set_state(e, "big", BERTH_HOST_DOWN, NULL), 0);
    assert_int_equal(berth_engine_request_assign(e, "d", &r, "big", &p, &err), BERTH_ENOSPC);
    check_index(e);
    berth_engine_free(e);
}

/* berth_engine_reset empties the engine and leaves it usable. */
static void test_engine_reset(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    char name[16];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "h%d", i);
        add(e, host(name, 8, 32));
    }
    berth_request_t r = linux_req(1, 1);
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "g%d", i);
        place(e, name, &r);
    }
    berth_engine_reset(e);
    assert_int_equal(berth_engine_host_count(e), 0);
    assert_int_equal(berth_engine_group_count(e), 0);
    berth_engine_stats_t st;
    berth_engine_stats(e, &st);
    assert_int_equal(st.capacity_millicores, 0);
    assert_int_equal(st.used_millicores, 0);
    assert_int_equal(berth_engine_group_get(e, "g7", NULL), BERTH_ENOENT);
    add(e, host("h0", 8, 32));
    assert_string_equal(place(e, "g7", &r), "h0");
    check_index(e);
    berth_engine_free(e);
}

static void test_constraint_dedicated(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    add(e, host("plain", 16, 64));
    berth_request_t d = linux_req(2, 4);
    d.sku = BERTH_SKU_DEDICATED;
    refused(e, "d1", &d, BERTH_ENOSPC, "no host with the dedicated feature");
    berth_host_t h = host("ded", 16, 64);
    h.features = BERTH_HOST_DEDICATED;
    add(e, h);
    assert_string_equal(place(e, "d1", &d), "ded");
    /* the dedicated host belongs to its one group */
    refused(e, "d2", &d, BERTH_ENOSPC, "no empty dedicated host");
    /* and takes nothing else, even when the only host with room */
    berth_request_t big = linux_req(14, 8);
    assert_string_equal(place(e, "s1", &big), "plain");
    refused(e, "s2", &big, BERTH_ENOSPC, "no host with 14 free CPU cores");
    assert_int_equal(berth_engine_host_remove(e, "plain", NULL), BERTH_EBUSY);
    assert_int_equal(berth_engine_group_release(e, "s1", NULL), 0);
    assert_int_equal(berth_engine_host_remove(e, "plain", NULL), 0);
    berth_request_t s = linux_req(1, 1);
    refused(e, "s3", &s, BERTH_ENOSPC, "no host outside the dedicated pool");
    assert_int_equal(berth_engine_group_release(e, "d1", NULL), 0);
    assert_string_equal(place(e, "d2", &d), "ded");
    check_index(e);
    berth_engine_free(e);
}

static void test_constraint_confidential(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    add(e, host("plain", 16, 64));
    berth_request_t c = linux_req(2, 4);
    c.sku = BERTH_SKU_CONFIDENTIAL;
    refused(e, "c1", &c, BERTH_ENOSPC, "no host with the confidential feature");
    berth_host_t h = host("conf", 4, 64);
    h.features = BERTH_HOST_CONFIDENTIAL;
    add(e, h);
    assert_string_equal(place(e, "c1", &c), "conf");
    /* standard groups prefer plain hosts, even when the confidential host is
     * the better fit, and use confidential ones when nothing else fits */
    berth_request_t s = linux_req(2, 4);
    assert_string_equal(place(e, "s1", &s), "plain");
    berth_request_t big = linux_req(14, 4);
    assert_string_equal(place(e, "s2", &big), "plain");
    assert_string_equal(place(e, "s3", &s), "conf");
    check_index(e);
    berth_engine_free(e);
}

/* The sandbox policy: "all" makes every request computed from a group need
 * a sandbox host (a hard constraint, explained when nothing fits); "none"
 * lets groups use any host, sandbox hosts included; groups placed before a
 * change stay where they are. */
static void test_constraint_sandbox(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"name\": \"web\", \"properties\": {\"osType\": \"Linux\", \"containers\": ["
        "{\"name\": \"a\", \"properties\": {\"image\": \"nginx\", \"resources\": "
        "{\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}";
    berth_group_t *g = NULL;
    assert_int_equal(berth_group_parse(doc, sizeof doc - 1, &g, NULL), 0);
    berth_sandbox_policy_t sp;
    assert_int_equal(berth_sandbox_policy_parse("all", &sp), 0);
    assert_int_equal(sp, BERTH_SANDBOX_ALL);
    assert_int_equal(berth_sandbox_policy_parse("mixed", &sp), BERTH_EINVAL);
    assert_int_equal(berth_sandbox_policy_parse(NULL, &sp), BERTH_EINVAL);
    assert_string_equal(berth_sandbox_policy_name(BERTH_SANDBOX_NONE), "none");
    assert_string_equal(berth_sandbox_policy_name((berth_sandbox_policy_t)7), "unknown");

    berth_engine_options_t o;
    berth_engine_options_init(&o);
    o.sandbox = (berth_sandbox_policy_t)2;
    berth_engine_t *e = NULL;
    berth_error_t err;
    assert_int_equal(berth_engine_new(&o, &e, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "sandbox");
    o.sandbox = BERTH_SANDBOX_ALL;
    assert_int_equal(berth_engine_new(&o, &e, NULL), 0);
    assert_int_equal(berth_engine_sandbox_get(e), BERTH_SANDBOX_ALL);
    add(e, host("plain", 16, 64));
    berth_request_t r;
    assert_int_equal(berth_engine_group_request(e, g, &r, NULL), 0);
    assert_true(r.sandbox);
    refused(e, "s1", &r, BERTH_ENOSPC, "no host with the sandbox feature");
    /* a smaller sandbox host: the plain one's room does not matter */
    berth_host_t h = host("gvisor", 2, 4);
    h.features = BERTH_HOST_SANDBOX;
    add(e, h);
    assert_string_equal(place(e, "s1", &r), "gvisor");
    assert_string_equal(place(e, "s2", &r), "gvisor");
    refused(e, "s3", &r, BERTH_ENOSPC, "no host with 1 free CPU cores");

    /* an unknown policy changes nothing */
    assert_int_equal(berth_engine_sandbox_set(e, (berth_sandbox_policy_t)9, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_engine_sandbox_get(e), BERTH_SANDBOX_ALL);
    /* back to none: plain hosts first (binpack picks the fuller sandbox
     * host only when it fits; it is full), the placed groups stay */
    assert_int_equal(berth_engine_sandbox_set(e, BERTH_SANDBOX_NONE, NULL), 0);
    assert_int_equal(berth_engine_group_request(e, g, &r, NULL), 0);
    assert_false(r.sandbox);
    assert_string_equal(place(e, "s3", &r), "plain");
    berth_host_t got;
    berth_host_usage_t u;
    assert_int_equal(berth_engine_host_get(e, "gvisor", &got, &u), 0);
    assert_int_equal(u.groups, 2);
    assert_int_equal(got.features, BERTH_HOST_SANDBOX);
    assert_int_equal(berth_engine_group_release(e, "s1", NULL), 0);
    /* with room again, the sandbox host is binpack's best fit under none */
    assert_string_equal(place(e, "s4", &r), "gvisor");
    check_index(e);
    berth_engine_free(e);
    berth_group_free(g);
}

static void test_constraint_state(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    add(e, host("a", 8, 32));
    berth_host_t b = host("b", 8, 32);
    b.state = BERTH_HOST_DOWN;
    add(e, b);
    assert_int_equal(berth_engine_host_set_state(e, "a", BERTH_HOST_CORDONED, NULL), 0);
    berth_request_t r = linux_req(1, 1);
    refused(e, "x", &r, BERTH_ENOSPC, "no ready host");
    assert_int_equal(berth_engine_host_set_state(e, "b", BERTH_HOST_READY, NULL), 0);
    assert_string_equal(place(e, "x", &r), "b");
    assert_int_equal(berth_engine_host_set_state(e, "a", BERTH_HOST_READY, NULL), 0);
    check_index(e);
    berth_engine_free(e);
}

static void test_constraint_capacity(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    berth_host_t g = host("g", 8, 32);
    g.gpu_count = 2;
    g.gpu_sku = "P100";
    add(e, g);
    berth_request_t cpu = gpu_req(9, 1, P100, 1);
    refused(e, "a", &cpu, BERTH_ENOSPC, "no host with 9 free CPU cores");
    berth_request_t mem = gpu_req(1, 33, P100, 1);
    refused(e, "a", &mem, BERTH_ENOSPC, "no host with 33 GB of free memory");
    berth_request_t half = gpu_req(1, 1, P100, 1);
    half.demand.memory_mib = 1536;
    assert_string_equal(place(e, "h", &half), "g");
    berth_request_t gpus = gpu_req(1, 1, P100, 2);
    refused(e, "a", &gpus, BERTH_ENOSPC, "no host with 2 free P100 GPUs. Resource "
                                         "requested: 1 CPU, 1 GB memory, 2 P100 GPU");
    berth_request_t exact = gpu_req(7, 30, P100, 1);
    exact.demand.memory_mib = 32 * GB - 1536;
    assert_string_equal(place(e, "full", &exact), "g");
    berth_host_usage_t u;
    berth_engine_host_get(e, "g", NULL, &u);
    assert_int_equal(u.millicores, 8000);
    assert_int_equal(u.memory_mib, 32 * GB);
    assert_int_equal(u.gpu_count, 2);
    berth_request_t one = linux_req(1, 1);
    refused(e, "a", &one, BERTH_ENOSPC, "no host with 1 free CPU cores");
    /* cores and memory each fit somewhere, but not on one host */
    add(e, host("cpu", 8, 2));
    add(e, host("mem", 2, 64));
    berth_request_t both = linux_req(4, 8);
    refused(e, "b", &both, BERTH_ENOSPC, "no host with 4 free CPU cores and 8 GB of free "
                                         "memory at once");
    berth_request_t frac = linux_req(1, 0);
    frac.demand.memory_mib = 1536;
    assert_string_equal(place(e, "f", &frac), "mem");
    berth_request_t bad = linux_req(1, 1);
    bad.demand.millicores = 1500;
    refused(e, "c", &bad, BERTH_EINVAL, "whole CPU cores");
    bad = linux_req(1, 1);
    bad.os = BERTH_OS_UNSET;
    refused(e, "c", &bad, BERTH_EINVAL, "OS type");
    refused(e, "", &one, BERTH_EINVAL, "key");
    check_index(e);
    berth_engine_free(e);
}

/* ---- policies ------------------------------------------------------------------------- */

static void test_binpack_and_spread(void **state)
{
    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        berth_policy_t pol = pass ? BERTH_POLICY_SPREAD : BERTH_POLICY_BINPACK;
        berth_engine_t *e = engine_with(pol, 42);
        add(e, host("small", 4, 16));
        add(e, host("medium", 16, 64));
        add(e, host("large", 64, 256));
        berth_request_t r = linux_req(2, 4);
        const char *first = place(e, "a", &r);
        assert_string_equal(first, pass ? "large" : "small");
        /* binpack keeps filling the small host, spread keeps the large one */
        assert_string_equal(place(e, "b", &r), pass ? "large" : "small");
        assert_string_equal(place(e, "c", &r), pass ? "large" : "medium");
        /* memory breaks ties between equal free cores */
        berth_engine_t *m = engine_with(pol, 42);
        add(m, host("m32", 8, 32));
        add(m, host("m64", 8, 64));
        add(m, host("m16", 8, 16));
        assert_string_equal(place(m, "a", &r), pass ? "m64" : "m16");
        berth_request_t fat = linux_req(1, 20);
        /* free cores come before memory: after the first group m64 has 6
         * free cores, so spread prefers m32's 8 as binpack does its fit */
        assert_string_equal(place(m, "b", &fat), "m32");
        berth_engine_free(m);
        check_index(e);
        berth_engine_free(e);
    }
}

static void test_gpu_preferences(void **state)
{
    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        berth_engine_t *e = engine_with(pass ? BERTH_POLICY_SPREAD : BERTH_POLICY_BINPACK, 1);
        berth_host_t g = host("gpu", 24, 448);
        g.gpu_count = 4;
        g.gpu_sku = "V100";
        add(e, g);
        add(e, host("cpu", 4, 16));
        berth_request_t r = linux_req(2, 4);
        /* CPU-only groups go to hosts without GPUs while any fits ... */
        assert_string_equal(place(e, "a", &r), "cpu");
        assert_string_equal(place(e, "b", &r), "cpu");
        /* ... then to GPU hosts rather than fail */
        assert_string_equal(place(e, "c", &r), "gpu");
        berth_request_t v = gpu_req(6, 100, V100, 1);
        assert_string_equal(place(e, "d", &v), "gpu");
        berth_engine_free(e);
    }
    /* binpack puts GPU groups on the host with the fewest free GPUs */
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 1);
    berth_host_t g8 = host("g8", 48, 448);
    g8.gpu_count = 8;
    g8.gpu_sku = "V100";
    add(e, g8);
    berth_host_t g4 = host("g4", 48, 448);
    g4.gpu_count = 4;
    g4.gpu_sku = "V100";
    add(e, g4);
    berth_request_t v = gpu_req(6, 100, V100, 1);
    assert_string_equal(place(e, "a", &v), "g4");
    berth_request_t v4 = gpu_req(12, 100, V100, 4);
    assert_string_equal(place(e, "b", &v4), "g8");
    assert_string_equal(place(e, "c", &v), "g4");
    check_index(e);
    berth_engine_free(e);
}

static void test_firstfit(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_FIRSTFIT, 0);
    add(e, host("big", 64, 256));
    add(e, host("small", 4, 16));
    berth_request_t r = linux_req(2, 4);
    assert_string_equal(place(e, "a", &r), "big");
    berth_request_t huge = linux_req(63, 4);
    refused(e, "b", &huge, BERTH_ENOSPC, "no host with 63 free CPU cores");
    assert_int_equal(berth_engine_host_set_state(e, "big", BERTH_HOST_CORDONED, NULL), 0);
    assert_string_equal(place(e, "c", &r), "small");
    check_index(e);
    berth_engine_free(e);
}

/* ---- redeploy --------------------------------------------------------------------------- */

static void test_redeploy_stays_and_moves(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    add(e, host("a", 8, 32));
    add(e, host("b", 16, 64));
    berth_request_t r = linux_req(4, 8);
    berth_placement_t p;
    assert_int_equal(berth_engine_request_place(e, "g", &r, &p, NULL), 0);
    assert_int_equal(p.kind, BERTH_PLACED_NEW);
    assert_string_equal(p.host, "a");
    assert_string_equal(p.previous_host, "");
    /* same demand, or a larger one that fits once the old is released */
    berth_request_t r8 = linux_req(8, 32);
    assert_int_equal(berth_engine_request_place(e, "g", &r8, &p, NULL), 0);
    assert_int_equal(p.kind, BERTH_PLACED_STAYED);
    assert_string_equal(p.host, "a");
    berth_host_usage_t u;
    berth_engine_host_get(e, "a", NULL, &u);
    assert_int_equal(u.millicores, 8000);
    assert_int_equal(u.groups, 1);
    /* a cordoned host keeps its groups on redeploy */
    assert_int_equal(berth_engine_host_set_state(e, "a", BERTH_HOST_CORDONED, NULL), 0);
    assert_int_equal(berth_engine_request_place(e, "g", &r, &p, NULL), 0);
    assert_int_equal(p.kind, BERTH_PLACED_STAYED);
    assert_int_equal(berth_engine_host_set_state(e, "a", BERTH_HOST_READY, NULL), 0);
    /* no longer fits: capacity shrunk to what is used, then a larger demand */
    berth_host_t shrunk = host("a", 4, 8);
    assert_int_equal(berth_engine_host_update(e, &shrunk, NULL), 0);
    berth_request_t r5 = linux_req(5, 8);
    assert_int_equal(berth_engine_request_place(e, "g", &r5, &p, NULL), 0);
    assert_int_equal(p.kind, BERTH_PLACED_MOVED);
    assert_string_equal(p.host, "b");
    assert_string_equal(p.previous_host, "a");
    berth_engine_host_get(e, "a", NULL, &u);
    assert_int_equal(u.groups, 0);
    assert_int_equal(u.millicores, 0);
    berth_placement_t got;
    assert_int_equal(berth_engine_group_get(e, "g", &got), 0);
    assert_int_equal(got.kind, BERTH_PLACED_MOVED);
    assert_string_equal(got.previous_host, "a");
    assert_int_equal(got.demand.millicores, 5000);
    /* its host goes down: the next redeploy moves it */
    add(e, host("c", 16, 64));
    assert_int_equal(berth_engine_host_set_state(e, "b", BERTH_HOST_DOWN, NULL), 0);
    assert_int_equal(berth_engine_request_place(e, "g", &r5, &p, NULL), 0);
    assert_int_equal(p.kind, BERTH_PLACED_MOVED);
    assert_string_equal(p.host, "c");
    assert_string_equal(p.previous_host, "b");
    /* a constraint change (zone) moves it too */
    berth_host_t cz = host("c", 16, 64);
    assert_int_equal(berth_engine_host_update(e, &cz, NULL), 0);
    berth_host_t dz = host("d", 16, 64);
    dz.zone = "1";
    add(e, dz);
    berth_request_t rz = linux_req(5, 8);
    rz.zone_mask = 1u << berth_engine_zone_id(e, "1");
    assert_int_equal(berth_engine_request_place(e, "g", &rz, &p, NULL), 0);
    assert_int_equal(p.kind, BERTH_PLACED_MOVED);
    assert_string_equal(p.host, "d");
    berth_engine_stats_t st;
    berth_engine_stats(e, &st);
    assert_int_equal(st.groups, 1);
    assert_int_equal(st.hosts_used, 1);
    assert_int_equal(st.used_millicores, 5000);
    check_index(e);
    berth_engine_free(e);
}

static void test_redeploy_failure_keeps_placement(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    add(e, host("a", 8, 32));
    berth_request_t r = linux_req(4, 8);
    assert_string_equal(place(e, "g", &r), "a");
    berth_request_t big = linux_req(16, 8);
    refused(e, "g", &big, BERTH_ENOSPC, "no host with 16 free CPU cores");
    berth_placement_t p;
    assert_int_equal(berth_engine_group_get(e, "g", &p), 0);
    assert_string_equal(p.host, "a");
    assert_int_equal(p.kind, BERTH_PLACED_NEW);
    assert_int_equal(p.demand.millicores, 4000);
    berth_host_usage_t u;
    berth_engine_host_get(e, "a", NULL, &u);
    assert_int_equal(u.millicores, 4000);
    assert_int_equal(u.memory_mib, 8 * GB);
    assert_int_equal(u.groups, 1);
    /* down host, nowhere to go: stays recorded where it was */
    assert_int_equal(berth_engine_host_set_state(e, "a", BERTH_HOST_DOWN, NULL), 0);
    refused(e, "g", &r, BERTH_ENOSPC, "no ready host");
    assert_int_equal(berth_engine_group_get(e, "g", &p), 0);
    assert_string_equal(p.host, "a");
    berth_engine_host_get(e, "a", NULL, &u);
    assert_int_equal(u.millicores, 4000);
    berth_engine_stats_t st;
    berth_engine_stats(e, &st);
    assert_int_equal(st.used_millicores, 4000);
    assert_int_equal(st.hosts_used, 1);
    check_index(e);
    berth_engine_free(e);
}

static void test_redeploy_conflicts(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    add(e, host("a", 8, 32));
    berth_host_t w = host("w", 8, 32);
    w.os = BERTH_OS_WINDOWS;
    w.os_build = BERTH_WINDOWS_LTSC2022;
    add(e, w);
    berth_request_t r = linux_req(2, 4);
    r.cpu_digest = 11;
    r.memory_digest = 22;
    r.gpu_digest = 33;
    r.ports_digest = 44;
    r.restart_policy = BERTH_RESTART_ALWAYS;
    assert_string_equal(place(e, "grp", &r), "a");
    static const struct {
        const char *property, *target;
    } cases[] = {
        {"osType", "properties.osType"},
        {"CPU", "properties.containers"},
        {"memory", "properties.containers"},
        {"GPU", "properties.containers"},
        {"restartPolicy", "properties.restartPolicy"},
        {"ports", "properties.ipAddress.ports"},
    };
    for (size_t i = 0; i < BERTH__ARRAY_LEN(cases); i++) {
        berth_request_t c = r;
        switch (i) {
        case 0: c.os = BERTH_OS_WINDOWS; break;
        case 1: c.cpu_digest = 12; break;
        case 2: c.memory_digest = 23; break;
        case 3: c.gpu_digest = 34; break;
        case 4: c.restart_policy = BERTH_RESTART_NEVER; break;
        default: c.ports_digest = 45; break;
        }
        berth_error_t err;
        assert_int_equal(berth_engine_request_place(e, "grp", &c, NULL, &err), BERTH_ECONFLICT);
        assert_string_equal(err.name, "InvalidContainerGroupUpdate");
        assert_string_equal(err.target, cases[i].target);
        char want[300];
        snprintf(want, sizeof want,
                 "The updates on container group 'grp' are invalid. If you are going to "
                 "update the %s of a container group, you must delete it first and then "
                 "create a new one.", cases[i].property);
        assert_string_equal(err.message, want);
    }
    /* unknown digests (0) are not compared; an absent restart policy is
     * ACI's default, Always */
    berth_request_t same = r;
    same.cpu_digest = 0;
    same.ports_digest = 0;
    same.restart_policy = BERTH_RESTART_UNSET;
    berth_placement_t p;
    assert_int_equal(berth_engine_request_place(e, "grp", &same, &p, NULL), 0);
    assert_int_equal(p.kind, BERTH_PLACED_STAYED);
    /* the record keeps the digests it knew */
    berth_request_t cpu = r;
    cpu.cpu_digest = 99;
    assert_int_equal(berth_engine_request_place(e, "grp", &cpu, NULL, NULL), BERTH_ECONFLICT);
    /* after a release the key is new again */
    assert_int_equal(berth_engine_group_release(e, "grp", NULL), 0);
    assert_int_equal(berth_engine_group_release(e, "grp", NULL), BERTH_ENOENT);
    assert_int_equal(berth_engine_group_get(e, "grp", &p), BERTH_ENOENT);
    berth_request_t win = windows_req(BERTH_WINDOWS_LTSC2022);
    assert_int_equal(berth_engine_request_place(e, "grp", &win, &p, NULL), 0);
    assert_int_equal(p.kind, BERTH_PLACED_NEW);
    assert_string_equal(p.host, "w");
    berth_engine_free(e);
}

/* ---- groups, stats --------------------------------------------------------------------- */

static void test_many_groups_and_stats(void **state)
{
    (void)state;
    berth_engine_t *e = engine_with(BERTH_POLICY_SPREAD, 3);
    char name[32];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "h%02d", i);
        add(e, host(name, 64, 256));
    }
    berth_request_t r = linux_req(1, 1);
    char key[300];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "resourceGroups/rg/containerGroups/g%d", i);
        berth_error_t err;
        assert_int_equal(berth_engine_request_place(e, key, &r, NULL, &err), 0);
    }
    assert_int_equal(berth_engine_group_count(e), 3000);
    for (int i = 0; i < 3000; i += 3) {
        snprintf(key, sizeof key, "resourceGroups/rg/containerGroups/g%d", i);
        assert_int_equal(berth_engine_group_release(e, key, NULL), 0);
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "resourceGroups/rg/containerGroups/g%d", i);
        assert_int_equal(berth_engine_group_get(e, key, NULL), i % 3 ? 0 : BERTH_ENOENT);
    }
    berth_engine_stats_t st;
    berth_engine_stats(e, &st);
    assert_int_equal(st.groups, 2000);
    assert_int_equal(st.hosts, 50);
    assert_int_equal(st.hosts_used, 50);
    assert_int_equal(st.used_millicores, 2000 * 1000);
    assert_int_equal(st.used_memory_mib, 2000 * GB);
    assert_int_equal(st.capacity_millicores, 50 * 64000);
    /* spread levels equal hosts: group i went to host i mod 50 of a fixed
     * order, so releasing every third key leaves 40 groups on each */
    berth_host_usage_t u;
    for (size_t i = 0; i < 50; i++) {
        assert_int_equal(berth_engine_host_at(e, i, NULL, &u), 0);
        assert_int_equal(u.groups, 40);
    }
    /* a 255-byte key works, 256 does not */
    memset(key, 'k', 256);
    key[256] = '\0';
    assert_int_equal(berth_engine_request_place(e, key, &r, NULL, NULL), BERTH_EINVAL);
    key[255] = '\0';
    assert_int_equal(berth_engine_request_place(e, key, &r, NULL, NULL), 0);
    assert_int_equal(berth_engine_group_get(e, key, NULL), 0);
    check_index(e);
    berth_engine_free(e);
}

/* ---- determinism ------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    return berth__mix64(*s);
}

static void fill_mixed(berth_engine_t *e, int n, const int *perm)
{
    char name[32];
    for (int k = 0; k < n; k++) {
        int i = perm[k];
        snprintf(name, sizeof name, "host-%03d", i);
        berth_host_t h = host(name, (uint32_t)(8 << (i % 4)), (uint32_t)(32 << (i % 3)));
        if (i % 5 == 0) {
            h.gpu_count = 4;
            h.gpu_sku = (i % 3 == 0) ? "V100" : "K80";
        }
        if (i % 7 == 0) {
            h.os = BERTH_OS_WINDOWS;
            h.os_build = (i % 2) ? BERTH_WINDOWS_LTSC2019 : BERTH_WINDOWS_LTSC2022;
            h.gpu_count = 0;
            h.gpu_sku = NULL;
        }
        h.zone = (i % 3 == 0) ? "1" : (i % 3 == 1) ? "2" : NULL;
        add(e, h);
    }
}

static void test_determinism_across_add_order(void **state)
{
    (void)state;
    enum { N = 120 };
    int fwd[N], rev[N];
    for (int i = 0; i < N; i++) {
        fwd[i] = i;
        rev[i] = N - 1 - i;
    }
    for (int pol = 0; pol < 2; pol++) {
        berth_engine_t *a = engine_with((berth_policy_t)pol, 1234);
        berth_engine_t *b = engine_with((berth_policy_t)pol, 1234);
        /* zone ids are given in order of first sight: fix them first */
        berth_engine_zone_id(a, "1");
        berth_engine_zone_id(b, "1");
        fill_mixed(a, N, fwd);
        fill_mixed(b, N, rev);
        uint64_t rng = 77;
        char key[32];
        for (int i = 0; i < 4000; i++) {
            uint64_t x = rng_next(&rng);
            snprintf(key, sizeof key, "g%u", (unsigned)(x % 1500));
            if (x % 11 == 0) {
                int ra = berth_engine_group_release(a, key, NULL);
                assert_int_equal(berth_engine_group_release(b, key, NULL), ra);
                continue;
            }
            berth_request_t r = linux_req((uint32_t)(1 + x % 4), (uint32_t)(1 + (x >> 8) % 8));
            if ((x >> 16) % 10 == 0) {
                r.demand.gpu_count = 1;
                r.demand.gpu_sku = (x >> 20) % 2 ? V100 : K80;
            }
            if ((x >> 24) % 13 == 0) {
                r.os = BERTH_OS_WINDOWS;
                r.os_build = BERTH_WINDOWS_LTSC2019;
            }
            if ((x >> 28) % 5 == 0)
                r.zone_mask = 1;
            berth_placement_t pa, pb;
            int rca = berth_engine_request_place(a, key, &r, &pa, NULL);
            int rcb = berth_engine_request_place(b, key, &r, &pb, NULL);
            assert_int_equal(rca, rcb);
            if (rca == 0) {
                assert_string_equal(pa.host, pb.host);
                assert_int_equal(pa.kind, pb.kind);
            }
        }
        check_index(a);
        check_index(b);
        berth_engine_free(a);
        berth_engine_free(b);
    }
}

/* ---- documents ------------------------------------------------------------------------- */

static void test_group_place_document(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"name\": \"web\", \"location\": \"westeurope\", \"properties\": {"
        "\"osType\": \"Linux\", \"restartPolicy\": \"Always\", \"containers\": ["
        "{\"name\": \"a\", \"properties\": {\"image\": \"nginx\", \"resources\": "
        "{\"requests\": {\"cpu\": 0.75, \"memoryInGB\": 0.5}}}},"
        "{\"name\": \"b\", \"properties\": {\"image\": \"redis\", \"resources\": "
        "{\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 1.5}}}}]}}";
    berth_group_t *g = NULL;
    berth_error_t err;
    int rc = berth_group_parse(doc, sizeof doc - 1, &g, &err);
    if (rc != 0)
        fail_msg("parse: %s", err.message);
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    add(e, host("a", 8, 32));
    berth_placement_t p;
    rc = berth_engine_group_place(e, "rg/web", g, &p, &err);
    if (rc != 0)
        fail_msg("place: %s", err.message);
    assert_string_equal(p.host, "a");
    assert_int_equal(p.demand.millicores, 2000);
    assert_int_equal(p.demand.memory_mib, 2 * GB);
    assert_int_equal(berth_engine_group_place(e, "rg/web", g, &p, &err), 0);
    assert_int_equal(p.kind, BERTH_PLACED_STAYED);
    assert_int_equal(berth_engine_group_place(e, "", g, &p, &err), BERTH_EINVAL);
    berth_group_free(g);
    berth_engine_free(e);
}

/* The former names (berth.h, "Former names") still work for this release:
 * each forwards to its new name, so an engine driven only through them
 * ends where the new names take it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void test_former_names(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"name\": \"web\", \"properties\": {\"osType\": \"Linux\", \"containers\": ["
        "{\"name\": \"a\", \"properties\": {\"image\": \"nginx\", \"resources\": "
        "{\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}";
    static const char inventory[] =
        "[{\"name\": \"inv\", \"cpu\": 2, \"memoryInGB\": 4, \"osType\": \"Linux\"}]";
    berth_engine_t *e = engine_with(BERTH_POLICY_BINPACK, 0);
    berth_error_t err;
    berth_host_t h = host("a", 4, 8);
    assert_int_equal(berth_host_add(e, &h, &err), 0);
    h.cores = 8;
    assert_int_equal(berth_host_update(e, &h, &err), 0);
    berth_host_t got;
    berth_host_usage_t use;
    assert_int_equal(berth_host_get(e, "a", &got, &use), 0);
    assert_int_equal(got.cores, 8);
    assert_int_equal(berth_inventory_load(e, inventory, sizeof inventory - 1, &err), 0);
    assert_int_equal(berth_engine_host_get(e, "inv", &got, NULL), 0);
    assert_int_equal(berth_host_remove(e, "inv", &err), 0);
    assert_int_equal(berth_engine_host_get(e, "inv", &got, NULL), BERTH_ENOENT);

    berth_group_t *g = NULL;
    assert_int_equal(berth_group_parse(doc, sizeof doc - 1, &g, &err), 0);
    assert_int_equal(berth_group_validate(e, g, &err), 0);
    berth_request_t r, r2;
    assert_int_equal(berth_group_request(e, g, &r, &err), 0);
    assert_int_equal(berth_engine_group_request(e, g, &r2, &err), 0);
    assert_memory_equal(&r, &r2, sizeof r);
    uint64_t d1 = 0, d2 = 0;
    assert_int_equal(berth_template_digest(g, &d1), 0);
    assert_int_equal(berth_group_template_digest(g, &d2), 0);
    assert_true(d1 == d2 && d1 != 0);

    berth_placement_t p;
    assert_int_equal(berth_group_place(e, "rg/web", g, &p, &err), 0);
    assert_string_equal(p.host, "a");
    assert_int_equal(berth_request_place(e, "rg/two", &r, &p, &err), 0);
    assert_int_equal(berth_request_assign(e, "rg/three", &r, "a", &p, &err), 0);
    assert_int_equal(berth_group_get(e, "rg/three", &p), 0);
    assert_string_equal(p.host, "a");
    assert_int_equal(berth_group_release(e, "rg/three", &err), 0);
    assert_int_equal(berth_engine_group_get(e, "rg/three", &p), BERTH_ENOENT);
    assert_int_equal(berth_host_set_state(e, "a", BERTH_HOST_CORDONED, &err), 0);
    assert_int_equal(berth_engine_host_get(e, "a", &got, NULL), 0);
    assert_int_equal(got.state, BERTH_HOST_CORDONED);

    /* No Spot group to take: the plan is refused the same both ways. */
    berth_preemption_t plan, plan2;
    int rc1 = berth_request_preemption(e, &r, &plan, &err);
    int rc2 = berth_engine_preemption_plan(e, &r, &plan2, &err);
    assert_int_equal(rc1, rc2);
    assert_true(rc1 != 0);
    assert_null(berth_engine_victim(e, 0));
    assert_null(berth_engine_victim_get(e, 0));
    berth_group_free(g);
    berth_engine_free(e);
}
#pragma GCC diagnostic pop

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_new_and_tables),
        cmocka_unit_test(test_host_add_validation),
        cmocka_unit_test(test_host_order_and_get),
        cmocka_unit_test(test_host_update_remove_rules),
        cmocka_unit_test(test_constraint_os),
        cmocka_unit_test(test_constraint_windows_isolation),
        cmocka_unit_test(test_constraint_gpu),
        cmocka_unit_test(test_constraint_zone),
        cmocka_unit_test(test_constraint_zone_names_windows_build),
        cmocka_unit_test(test_assign_to_named_host),
        cmocka_unit_test(test_engine_reset),
        cmocka_unit_test(test_constraint_dedicated),
        cmocka_unit_test(test_constraint_confidential),
        cmocka_unit_test(test_constraint_sandbox),
        cmocka_unit_test(test_constraint_state),
        cmocka_unit_test(test_constraint_capacity),
        cmocka_unit_test(test_binpack_and_spread),
        cmocka_unit_test(test_gpu_preferences),
        cmocka_unit_test(test_firstfit),
        cmocka_unit_test(test_redeploy_stays_and_moves),
        cmocka_unit_test(test_redeploy_failure_keeps_placement),
        cmocka_unit_test(test_redeploy_conflicts),
        cmocka_unit_test(test_many_groups_and_stats),
        cmocka_unit_test(test_determinism_across_add_order),
        cmocka_unit_test(test_group_place_document),
        cmocka_unit_test(test_former_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
