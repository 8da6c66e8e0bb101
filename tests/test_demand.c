/*
 * test_demand.c: resource accounting: ACI's rounding example, CPU shares,
 * Windows builds from image tags, request fields and their normalised
 * defaults, order-independent digests, and zone registration that a failing
 * request rolls back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "model-internal.h"

static berth_group_t *parse_ok(const char *json)
{
    berth_error_t err;
    berth_group_t *g = NULL;
    if (berth_group_parse(json, strlen(json), &g, &err) != 0)
        fail_msg("document refused: %s at '%s': %s", err.name, err.target, err.message);
    return g;
}

static berth_request_t request_of(const char *json)
{
    berth__config_t cfg;
    berth__config_init(&cfg, NULL);
    berth_group_t *g = parse_ok(json);
    berth_error_t err;
    berth_request_t r;
    if (berth__group_request(&cfg, g, &r, &err) != 0)
        fail_msg("request refused: %s at '%s': %s", err.name, err.target, err.message);
    berth_group_free(g);
    return r;
}

#define SIZED(name, cpu, mem, extra)                                                      \
    "{\"name\":\"" name "\",\"properties\":{\"image\":\"nginx\",\"resources\":"             \
    "{\"requests\":{\"cpu\":" cpu ",\"memoryInGB\":" mem "}}" extra "}}"
#define GROUP(os, containers, extra)                                                      \
    "{\"properties\":{\"osType\":\"" os "\",\"containers\":[" containers "]" extra "}}"

/* ACI's own example: 0.75 core/0.5 GB and 0.5 core/1.5 GB take 2 cores and
 * 2 GB, the cores shared 1.2 / 0.8. */
static void test_aci_rounding_example(void **state)
{
    (void)state;
    const char *doc = GROUP("Linux", SIZED("a", "0.75", "0.5", "") "," SIZED("b", "0.5", "1.5", ""), "");
    berth_request_t r = request_of(doc);
    assert_int_equal(r.demand.requested_millicores, 1250);
    assert_int_equal(r.demand.millicores, 2000);
    assert_int_equal(r.demand.memory_mib, 2048);
    assert_int_equal(r.demand.gpu_count, 0);
    berth_group_t *g = parse_ok(doc);
    uint32_t shares[2];
    assert_int_equal(berth_group_cpu_shares(g, shares, 2), 0);
    assert_int_equal(shares[0], 1200);
    assert_int_equal(shares[1], 800);
    assert_int_equal(berth_group_cpu_shares(g, shares, 1), BERTH_EINVAL);
    berth_group_free(g);
}

static void test_rounding(void **state)
{
    (void)state;
    static const struct {
        const char *cpu, *mem;
        uint32_t millicores, mib;
    } cases[] = {
        {"1", "1", 1000, 1024},       {"0.001", "0.001", 1000, 2},
        {"1.001", "1.5", 2000, 1536}, {"4", "0.3", 4000, 308},
        {"0.5", "0.123", 1000, 126},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char doc[512];
        snprintf(doc, sizeof doc, GROUP("Linux", "{\"name\":\"a\",\"properties\":{\"image\":\"i\","
                 "\"resources\":{\"requests\":{\"cpu\":%s,\"memoryInGB\":%s}}}}", ""),
                 cases[i].cpu, cases[i].mem);
        berth_request_t r = request_of(doc);
        assert_int_equal(r.demand.millicores, cases[i].millicores);
        assert_int_equal(r.demand.memory_mib, cases[i].mib);
    }
}

static void test_cpu_shares(void **state)
{
    (void)state;
    /* Three equal 0.1-core requests share one core: 334 + 333 + 333, the
     * odd millicore to the earliest. */
    berth_group_t *g = parse_ok(GROUP("Linux", SIZED("a", "0.1", "1", "") "," SIZED("b", "0.1", "1", "")
                                      "," SIZED("c", "0.1", "1", ""), ""));
    uint32_t s[3];
    assert_int_equal(berth_group_cpu_shares(g, s, 3), 0);
    assert_int_equal(s[0], 334);
    assert_int_equal(s[1], 333);
    assert_int_equal(s[2], 333);
    berth_group_free(g);
    /* Largest remainder, not the earliest: 0.001/0.001/1.5 of 2 cores are
     * 1.33 / 1.33 / 1997.34 exactly; the spare millicore goes to the
     * largest remainder (0.34), so 1, 1, 1998. */
    g = parse_ok(GROUP("Linux", SIZED("a", "0.001", "1", "") "," SIZED("b", "0.001", "1", "")
                       "," SIZED("c", "1.5", "1", ""), ""));
    assert_int_equal(berth_group_cpu_shares(g, s, 3), 0);
    assert_int_equal(s[0], 1);
    assert_int_equal(s[1], 1);
    assert_int_equal(s[2], 1998);
    assert_int_equal(s[0] + s[1] + s[2], 2000);
    berth_group_free(g);
    g = parse_ok(GROUP("Linux", SIZED("a", "0.6", "1", "") "," SIZED("b", "0.7", "1", ""), ""));
    assert_int_equal(berth_group_cpu_shares(g, s, 2), 0);
    /* 2000 * 600/1300 = 923.08, 2000 * 700/1300 = 1076.92 -> 923, 1077 */
    assert_int_equal(s[0], 923);
    assert_int_equal(s[1], 1077);
    berth_group_free(g);
}

static void test_windows_build(void **state)
{
    (void)state;
    static const struct {
        const char *image;
        uint32_t build;
    } cases[] = {
        {"mcr.microsoft.com/windows/servercore:ltsc2019", 17763},
        {"mcr.microsoft.com/windows/nanoserver:1809", 17763},
        {"mcr.microsoft.com/windows/servercore:ltsc2022", 20348},
        {"mcr.microsoft.com/windows/server:ltsc2025", 26100},
        {"mcr.microsoft.com/windows/servercore:10.0.20348.1234", 20348},
        {"mcr.microsoft.com/windows/servercore:10.0.17763", 17763},
        {"mcr.microsoft.com/dotnet/framework/runtime:4.8-windowsservercore-ltsc2022", 20348},
        {"myregistry:5000/app:ltsc2019", 17763},
        {"servercore:ltsc2022@sha256:0123abcd", 20348},
        {"ltsc2022/app@sha256:0123", 0},     /* the build is in a path, not the tag */
        {"myregistry:5000/ltsc2022", 0},     /* a port is not a tag */
        {"nginx", 0},
        {"nginx:latest", 0},
        {"app:10.0.x", 0},
        {"app:10.0.", 0},
        {"app:10.0.123.", 0},
        {"app:", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (berth__image_windows_build(cases[i].image) != cases[i].build)
            fail_msg("'%s': %u, expected %u", cases[i].image,
                     berth__image_windows_build(cases[i].image), cases[i].build);
    assert_int_equal(berth__image_windows_build(NULL), 0);
}

#define WIN(image) "{\"name\":\"w\",\"properties\":{\"image\":\"" image "\",\"resources\":" \
    "{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}"

static void test_request_fields(void **state)
{
    (void)state;
    berth_request_t r = request_of(GROUP("Windows", WIN("servercore:ltsc2022"), ""));
    assert_int_equal(r.os, BERTH_OS_WINDOWS);
    assert_int_equal(r.os_build, 20348);
    r = request_of(GROUP("Windows", WIN("myimage:latest"), ""));
    assert_int_equal(r.os_build, 0);
    /* Linux images are not read for Windows builds. */
    r = request_of(GROUP("Linux", WIN("odd:ltsc2022"), ""));
    assert_int_equal(r.os_build, 0);
    assert_int_equal(r.os, BERTH_OS_LINUX);
    /* Absent means ACI's default, and the request says so. */
    assert_int_equal(r.restart_policy, BERTH_RESTART_ALWAYS);
    assert_int_equal(r.sku, BERTH_SKU_STANDARD);
    assert_int_equal(r.priority, BERTH_PRIORITY_REGULAR);
    assert_int_equal(r.zone_mask, 0);
    r = request_of(GROUP("Linux", WIN("x"), ",\"restartPolicy\":\"Never\",\"sku\":\"Confidential\","
                                            "\"priority\":\"Spot\""));
    assert_int_equal(r.restart_policy, BERTH_RESTART_NEVER);
    assert_int_equal(r.sku, BERTH_SKU_CONFIDENTIAL);
    assert_int_equal(r.priority, BERTH_PRIORITY_SPOT);
    /* Explicit defaults and absent ones give the same request. */
    berth_request_t a = request_of(GROUP("Linux", WIN("x"), ""));
    berth_request_t b = request_of(GROUP("Linux", WIN("x"), ",\"restartPolicy\":\"Always\","
                                                            "\"sku\":\"Standard\",\"priority\":\"Regular\""));
    assert_memory_equal(&a, &b, sizeof a);
}

static void test_windows_build_conflict(void **state)
{
    (void)state;
    /* Windows groups hold one container, so build it by hand to reach the
     * rule across init containers too. */
    berth__config_t cfg;
    berth__config_init(&cfg, NULL);
    berth_group_t *g = parse_ok(GROUP("Windows", WIN("servercore:ltsc2022"), ""));
    berth_container_t init;
    memset(&init, 0, sizeof init);
    init.name = "init";
    init.image = "servercore:ltsc2019";
    g->init_containers = &init;
    g->ninit_containers = 1;
    berth_error_t err;
    berth_request_t r;
    assert_int_equal(berth__group_request(&cfg, g, &r, &err), BERTH_EINVAL);
    bool found = false;
    for (size_t i = 0; i < err.ndetails && i < BERTH_ERROR_DETAILS_MAX; i++)
        found |= strcmp(err.details[i].name, "ConflictingWindowsBuilds") == 0 &&
                 strcmp(err.details[i].target, "properties.initContainers[0].properties.image") == 0;
    assert_true(found);
    g->init_containers = NULL;
    g->ninit_containers = 0;
    berth_group_free(g);
}

#define PORTED(name, cpu, mem, port) SIZED(name, cpu, mem, ",\"ports\":[{\"port\":" port "}]")

static void test_digests(void **state)
{
    (void)state;
    berth_request_t a = request_of(GROUP("Linux", PORTED("a", "1", "1", "80") "," PORTED("b", "0.5", "2", "81"),
                                         ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80}]}"));
    berth_request_t reordered = request_of(GROUP("Linux", PORTED("b", "0.5", "2", "81") "," PORTED("a", "1", "1", "80"),
                                           ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]}"));
    assert_true(a.cpu_digest != 0 && a.memory_digest != 0 && a.gpu_digest != 0 && a.ports_digest != 0);
    assert_true(a.cpu_digest == reordered.cpu_digest);
    assert_true(a.memory_digest == reordered.memory_digest);
    assert_true(a.gpu_digest == reordered.gpu_digest);
    assert_true(a.ports_digest == reordered.ports_digest);
    /* One container's CPU changes: the same total, a different digest. */
    berth_request_t cpu = request_of(GROUP("Linux", PORTED("a", "0.5", "1", "80") "," PORTED("b", "1", "2", "81"),
                                           ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80}]}"));
    assert_int_equal(cpu.demand.requested_millicores, a.demand.requested_millicores);
    assert_true(cpu.cpu_digest != a.cpu_digest);
    assert_true(cpu.memory_digest == a.memory_digest);
    assert_true(cpu.ports_digest == a.ports_digest);
    /* A limit counts too. */
    berth_request_t lim = request_of(GROUP("Linux",
        "{\"name\":\"a\",\"properties\":{\"image\":\"nginx\",\"ports\":[{\"port\":80}],\"resources\":"
        "{\"requests\":{\"cpu\":1,\"memoryInGB\":1},\"limits\":{\"cpu\":1.5}}}}," PORTED("b", "0.5", "2", "81"),
        ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80}]}"));
    assert_true(lim.cpu_digest != a.cpu_digest);
    assert_true(lim.memory_digest == a.memory_digest);
    /* Memory moved between containers. */
    berth_request_t mem = request_of(GROUP("Linux", PORTED("a", "1", "2", "80") "," PORTED("b", "0.5", "1", "81"),
                                           ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80}]}"));
    assert_true(mem.memory_digest != a.memory_digest);
    assert_true(mem.cpu_digest == a.cpu_digest);
    /* Ports: a container's port, or the IP address's. */
    berth_request_t port = request_of(GROUP("Linux", PORTED("a", "1", "1", "80") "," PORTED("b", "0.5", "2", "82"),
                                            ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80}]}"));
    assert_true(port.ports_digest != a.ports_digest);
    berth_request_t ip = request_of(GROUP("Linux", PORTED("a", "1", "1", "80") "," PORTED("b", "0.5", "2", "81"),
                                          ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80},{\"port\":81}]}"));
    assert_true(ip.ports_digest != a.ports_digest);
    /* GPUs. */
    berth_request_t gpu = request_of(GROUP("Linux",
        "{\"name\":\"a\",\"properties\":{\"image\":\"nginx\",\"ports\":[{\"port\":80}],\"resources\":"
        "{\"requests\":{\"cpu\":1,\"memoryInGB\":1,\"gpu\":{\"count\":1,\"sku\":\"K80\"}}}}},"
        PORTED("b", "0.5", "2", "81"), ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80}]}"));
    assert_true(gpu.gpu_digest != a.gpu_digest);
    assert_true(gpu.cpu_digest == a.cpu_digest);
    /* Renaming a container changes every per-container digest. */
    berth_request_t renamed = request_of(GROUP("Linux", PORTED("z", "1", "1", "80") "," PORTED("b", "0.5", "2", "81"),
                                               ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80}]}"));
    assert_true(renamed.cpu_digest != a.cpu_digest);
}

static void test_zones_rolled_back(void **state)
{
    (void)state;
    berth__config_t cfg;
    berth__config_init(&cfg, NULL);
    char name[16];
    for (int i = 0; i < BERTH_ZONES_MAX - 1; i++) {
        snprintf(name, sizeof name, "z%d", i);
        assert_int_equal(berth__config_zone_id(&cfg, name, true), i);
    }
    berth__config_t before = cfg;
    /* "new1" would fit, "new2" would not: neither may stay. */
    berth_group_t *g = parse_ok("{\"zones\":[\"z3\",\"new1\",\"new2\"],\"properties\":{\"osType\":"
                                "\"Linux\",\"containers\":[" SIZED("a", "1", "1", "") "]}}");
    berth_error_t err;
    berth_request_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(berth__group_request(&cfg, g, &r, &err), BERTH_ELIMIT);
    assert_string_equal(err.name, "TooManyZones");
    assert_string_equal(err.target, "zones[2]");
    assert_int_equal(cfg.nzones, BERTH_ZONES_MAX - 1);
    assert_memory_equal(&cfg, &before, sizeof cfg);
    assert_int_equal(berth__config_zone_id(&cfg, "new1", false), -1);
    assert_int_equal(r.zone_mask, 0);
    berth_group_free(g);
    /* A group whose only new zone fits is accepted and registers it. */
    g = parse_ok("{\"zones\":[\"z3\",\"new1\"],\"properties\":{\"osType\":\"Linux\","
                 "\"containers\":[" SIZED("a", "1", "1", "") "]}}");
    assert_int_equal(berth__group_request(&cfg, g, &r, &err), 0);
    assert_int_equal(cfg.nzones, BERTH_ZONES_MAX);
    assert_true(r.zone_mask == ((UINT64_C(1) << 3) | (UINT64_C(1) << 63)));
    berth_group_free(g);
    /* A group refused for another reason registers nothing either. */
    berth__config_init(&cfg, NULL);
    g = parse_ok("{\"zones\":[\"1\"],\"properties\":{\"osType\":\"Linux\",\"containers\":["
                 SIZED("a", "5", "1", "") "]}}");
    assert_int_equal(berth__group_request(&cfg, g, &r, &err), BERTH_EINVAL);
    assert_int_equal(cfg.nzones, 0);
    berth_group_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aci_rounding_example),
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_cpu_shares),
        cmocka_unit_test(test_windows_build),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_windows_build_conflict),
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_zones_rolled_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
