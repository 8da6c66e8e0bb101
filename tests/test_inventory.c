/*
 * test_inventory.c: berth_engine_inventory_load(): both document forms, every
 * field's conversion, each refusal with its JSON path, duplicate names, GPU
 * SKUs declared and used, the per-group `limits` (applied to group
 * validation; GPU offers keep theirs), table limits, and the all-or-nothing
 * promise (a refused inventory leaves the engine exactly as it was).
 *
 * Builds its documents in memory; never writes files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static berth_engine_t *new_engine(void)
{
    berth_engine_t *e = NULL;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    assert_non_null(e);
    return e;
}

static int load(berth_engine_t *e, const char *doc, berth_error_t *err)
{
    return berth_engine_inventory_load(e, doc, strlen(doc), err);
}

static void test_array_form(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    const char *doc =
        "[{\"name\": \"lx-1\", \"cpu\": 16, \"memoryInGB\": 1.5, \"osType\": \"Linux\","
        "  \"zone\": \"1\", \"features\": [\"confidential\", \"dedicated\"]},"
        " {\"name\": \"win_2.a\", \"cpu\": 8, \"memoryInGB\": 0.3, \"osType\": \"Windows\","
        "  \"osBuild\": 20348, \"features\": [\"hyperv\"], \"state\": \"cordoned\"},"
        " {\"name\": \"gpu-1\", \"cpu\": 24, \"memoryInGB\": 448, \"osType\": \"Linux\","
        "  \"gpu\": {\"sku\": \"V100\", \"count\": 4}, \"state\": \"down\"}]";
    assert_int_equal(load(e, doc, &err), 0);
    assert_int_equal(berth_engine_host_count(e), 3);

    berth_host_t h;
    assert_int_equal(berth_engine_host_get(e, "lx-1", &h, NULL), 0);
    assert_int_equal(h.cores, 16);
    assert_int_equal(h.memory_mib, 1536);
    assert_int_equal(h.os, BERTH_OS_LINUX);
    assert_int_equal(h.os_build, 0);
    assert_string_equal(h.zone, "1");
    assert_int_equal(h.features, BERTH_HOST_CONFIDENTIAL | BERTH_HOST_DEDICATED);
    assert_int_equal(h.state, BERTH_HOST_READY);
    assert_int_equal(h.gpu_count, 0);

    assert_int_equal(berth_engine_host_get(e, "win_2.a", &h, NULL), 0);
    assert_int_equal(h.memory_mib, 308); /* ceil(300 * 1024 / 1000) */
    assert_int_equal(h.os, BERTH_OS_WINDOWS);
    assert_int_equal(h.os_build, BERTH_WINDOWS_LTSC2022);
    assert_int_equal(h.features, BERTH_HOST_HYPERV);
    assert_int_equal(h.state, BERTH_HOST_CORDONED);

    assert_int_equal(berth_engine_host_get(e, "gpu-1", &h, NULL), 0);
    assert_int_equal(h.gpu_count, 4);
    assert_string_equal(h.gpu_sku, "V100");
    assert_int_equal(h.memory_mib, 448 * 1024);
    assert_int_equal(h.state, BERTH_HOST_DOWN);
    berth_engine_free(e);
}

static void test_memory_conversion(void **state)
{
    (void)state;
    static const struct {
        const char *gb;
        uint32_t mib;
    } cases[] = {
        {"1", 1024}, {"0.001", 2}, {"0.5", 512}, {"64.123", 65662}, {"0.1", 103},
        {"3.999", 4095}, {"1e1", 10240}, {"2.50", 2560},
    };
    for (size_t i = 0; i < BERTH__ARRAY_LEN(cases); i++) {
        berth_engine_t *e = new_engine();
        berth_error_t err;
        char doc[256];
        snprintf(doc, sizeof doc,
                 "[{\"name\":\"h\",\"cpu\":1,\"memoryInGB\":%s,\"osType\":\"Linux\"}]",
                 cases[i].gb);
        assert_int_equal(load(e, doc, &err), 0);
        berth_host_t h;
        assert_int_equal(berth_engine_host_get(e, "h", &h, NULL), 0);
        if (h.memory_mib != cases[i].mib)
            fail_msg("%s GB: expected %u MiB, got %u", cases[i].gb, cases[i].mib, h.memory_mib);
        berth_engine_free(e);
    }
}

static void test_sku_declared_and_used(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    const char *doc =
        "{\"gpuSkus\": [{\"name\": \"T4\", \"offers\": [{\"count\": 1, \"cpu\": 8,"
        "  \"memoryInGB\": 32}, {\"count\": 2, \"cpu\": 16, \"memoryInGB\": 64.5}]},"
        "  {\"name\": \"V100\", \"offers\": [{\"count\": 8, \"cpu\": 48, \"memoryInGB\": 896}]}],"
        " \"hosts\": [{\"name\": \"t4-1\", \"cpu\": 48, \"memoryInGB\": 192,"
        "  \"osType\": \"Linux\", \"gpu\": {\"sku\": \"T4\", \"count\": 4}}]}";
    assert_int_equal(load(e, doc, &err), 0);
    uint32_t id = 99;
    const berth_gpu_sku_t *t4 = berth_engine_gpu_sku_find(e, "T4", &id);
    assert_non_null(t4);
    assert_int_equal(t4->noffers, 2);
    assert_int_equal(t4->offers[0].count, 1);
    assert_int_equal(t4->offers[0].max_millicores, 8000);
    assert_int_equal(t4->offers[0].max_memory_mib, 32 * 1024);
    assert_int_equal(t4->offers[1].max_memory_mib, 66048);
    assert_string_equal(berth_engine_gpu_sku_name(e, id), "T4");
    /* A declared SKU of a known name replaces its offers. */
    const berth_gpu_sku_t *v100 = berth_engine_gpu_sku_find(e, "V100", NULL);
    assert_non_null(v100);
    assert_int_equal(v100->noffers, 1);
    assert_int_equal(v100->offers[0].count, 8);
    berth_host_t h;
    assert_int_equal(berth_engine_host_get(e, "t4-1", &h, NULL), 0);
    assert_string_equal(h.gpu_sku, "T4");
    assert_int_equal(h.gpu_count, 4);
    berth_engine_free(e);
}

static void test_empty_inventories(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    assert_int_equal(load(e, "[]", &err), 0);
    assert_int_equal(load(e, "{\"hosts\": []}", &err), 0);
    assert_int_equal(berth_engine_host_count(e), 0);
    berth_engine_free(e);
}

/* Each refusal: the document, the code, the error name and the target. */
static const struct refusal {
    const char *doc;
    int code;
    const char *name;
    const char *target;
} refusals[] = {
#define H(extra) "[{\"name\":\"h\",\"cpu\":4,\"memoryInGB\":8,\"osType\":\"Linux\"" extra "}]"
    {H(",\"colour\":\"blue\""), BERTH_EINVAL, "InvalidRequestContent", "hosts[0].colour"},
    {"[{\"cpu\":4,\"memoryInGB\":8,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidRequestContent", "hosts[0].name"},
    {"[{\"name\":\"h\",\"memoryInGB\":8,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidRequestContent", "hosts[0].cpu"},
    {"[{\"name\":\"h\",\"cpu\":4,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidRequestContent", "hosts[0].memoryInGB"},
    {"[{\"name\":\"h\",\"cpu\":4,\"memoryInGB\":8}]", BERTH_EINVAL,
     "InvalidRequestContent", "hosts[0].osType"},
    {"[{\"name\":\"bad name\",\"cpu\":4,\"memoryInGB\":8,\"osType\":\"Linux\"}]",
     BERTH_EINVAL, "InvalidHostName", "hosts[0].name"},
    {"[{\"name\":7,\"cpu\":4,\"memoryInGB\":8,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidHostName", "hosts[0].name"},
    {"[{\"name\":\"h\",\"cpu\":0,\"memoryInGB\":8,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidHostResource", "hosts[0].cpu"},
    {"[{\"name\":\"h\",\"cpu\":1.5,\"memoryInGB\":8,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidHostResource", "hosts[0].cpu"},
    {"[{\"name\":\"h\",\"cpu\":\"4\",\"memoryInGB\":8,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidHostResource", "hosts[0].cpu"},
    {"[{\"name\":\"h\",\"cpu\":-2,\"memoryInGB\":8,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidHostResource", "hosts[0].cpu"},
    {"[{\"name\":\"h\",\"cpu\":4,\"memoryInGB\":0,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidHostResource", "hosts[0].memoryInGB"},
    {"[{\"name\":\"h\",\"cpu\":4,\"memoryInGB\":1.0005,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidHostResource", "hosts[0].memoryInGB"},
    {"[{\"name\":\"h\",\"cpu\":4,\"memoryInGB\":\"8\",\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidHostResource", "hosts[0].memoryInGB"},
    {"[{\"name\":\"h\",\"cpu\":4,\"memoryInGB\":1e12,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidHostResource", "hosts[0].memoryInGB"},
    {"[{\"name\":\"h\",\"cpu\":4,\"memoryInGB\":8,\"osType\":\"linux\"}]", BERTH_EINVAL,
     "InvalidOsType", "hosts[0].osType"},
    {"[{\"name\":\"h\",\"cpu\":4,\"memoryInGB\":8,\"osType\":\"Windows\"}]", BERTH_EINVAL,
     "InvalidOsBuild", "hosts[0].osBuild"},
    {"[{\"name\":\"h\",\"cpu\":4,\"memoryInGB\":8,\"osType\":\"Windows\",\"osBuild\":\"20348\"}]",
     BERTH_EINVAL, "InvalidOsBuild", "hosts[0].osBuild"},
    {"[{\"name\":\"h\",\"cpu\":4,\"memoryInGB\":8,\"osType\":\"Windows\",\"osBuild\":7}]",
     BERTH_EINVAL, "InvalidOsBuild", "hosts[0].osBuild"},
    {H(",\"osBuild\":20348"), BERTH_EINVAL, "InvalidOsBuild", "hosts[0].osBuild"},
    {H(",\"gpu\":{\"sku\":\"H100\",\"count\":1}"), BERTH_EINVAL, "UnknownGpuSku",
     "hosts[0].gpu.sku"},
    {H(",\"gpu\":{\"sku\":\"V100\",\"count\":0}"), BERTH_EINVAL, "InvalidHostResource",
     "hosts[0].gpu.count"},
    {H(",\"gpu\":{\"sku\":\"V100\"}"), BERTH_EINVAL, "InvalidRequestContent",
     "hosts[0].gpu.count"},
    {H(",\"gpu\":{\"sku\":\"V100\",\"count\":2,\"vram\":16}"), BERTH_EINVAL,
     "InvalidRequestContent", "hosts[0].gpu.vram"},
    {H(",\"gpu\":4"), BERTH_EINVAL, "InvalidHostResource", "hosts[0].gpu"},
    {H(",\"gpu\":{\"sku\":\"V100\",\"count\":64}"), BERTH_EINVAL, "InvalidHostResource",
     "hosts[0].gpu.count"},
    {"[{\"name\":\"h\",\"cpu\":4097,\"memoryInGB\":8,\"osType\":\"Linux\"}]", BERTH_EINVAL,
     "InvalidHostResource", "hosts[0].cpu"},
    {H(",\"features\":[\"confidential\",\"fast\"]"), BERTH_EINVAL, "InvalidHostFeature",
     "hosts[0].features[1]"},
    {H(",\"features\":[\"dedicated\",\"dedicated\"]"), BERTH_EINVAL, "InvalidHostFeature",
     "hosts[0].features[1]"},
    {H(",\"features\":\"hyperv\""), BERTH_EINVAL, "InvalidHostFeature", "hosts[0].features"},
    {H(",\"features\":[\"hyperv\"]"), BERTH_EINVAL, "InvalidHostFeature", "hosts[0].features"},
    {H(",\"state\":\"sleeping\""), BERTH_EINVAL, "InvalidHostState", "hosts[0].state"},
    {H(",\"zone\":\"\""), BERTH_EINVAL, "InvalidZone", "hosts[0].zone"},
    {H(",\"zone\":1"), BERTH_EINVAL, "InvalidZone", "hosts[0].zone"},
    {"[7]", BERTH_EINVAL, "InvalidRequestContent", "hosts[0]"},
    {"{\"hosts\":[],\"cells\":[]}", BERTH_EINVAL, "InvalidRequestContent", "cells"},
    {"{\"gpuSkus\":[]}", BERTH_EINVAL, "InvalidRequestContent", "hosts"},
    {"{\"hosts\":{}}", BERTH_EINVAL, "InvalidRequestContent", "hosts"},
    {"{\"gpuSkus\":{},\"hosts\":[]}", BERTH_EINVAL, "InvalidRequestContent", "gpuSkus"},
    {"{\"gpuSkus\":[{\"name\":\"ABCDEFGHIJKLMNOPQ\",\"offers\":[{\"count\":1,\"cpu\":1,"
     "\"memoryInGB\":1}]}],\"hosts\":[]}",
     BERTH_EINVAL, "InvalidGpuSku", "gpuSkus[0].name"},
    {"{\"gpuSkus\":[{\"name\":\"T4\",\"offers\":[]}],\"hosts\":[]}", BERTH_EINVAL,
     "InvalidGpuSku", "gpuSkus[0].offers"},
    {"{\"gpuSkus\":[{\"name\":\"T4\",\"offers\":[{\"count\":1,\"cpu\":8,\"memoryInGB\":32},"
     "{\"count\":1,\"cpu\":16,\"memoryInGB\":64}]}],\"hosts\":[]}",
     BERTH_EINVAL, "InvalidGpuSku", "gpuSkus[0].offers[1].count"},
    {"{\"gpuSkus\":[{\"name\":\"T4\",\"offers\":[{\"count\":1,\"cpu\":8,\"memoryInGB\":32,"
     "\"watts\":70}]}],\"hosts\":[]}",
     BERTH_EINVAL, "InvalidRequestContent", "gpuSkus[0].offers[0].watts"},
    {"{\"gpuSkus\":[{\"name\":\"T4\",\"offers\":[{\"count\":1,\"cpu\":0,\"memoryInGB\":32}]}],"
     "\"hosts\":[]}",
     BERTH_EINVAL, "InvalidGpuSku", "gpuSkus[0].offers[0].cpu"},
    {"{\"gpuSkus\":[{\"name\":\"T4\",\"offers\":[{\"count\":1,\"cpu\":8,\"memoryInGB\":32}]},"
     "{\"name\":\"T4\",\"offers\":[{\"count\":2,\"cpu\":8,\"memoryInGB\":32}]}],\"hosts\":[]}",
     BERTH_EINVAL, "DuplicateGpuSku", "gpuSkus[1].name"},
    {"[{\"name\":\"a\",\"cpu\":1,\"memoryInGB\":1,\"osType\":\"Linux\"},"
     "{\"name\":\"b\",\"cpu\":1,\"memoryInGB\":1,\"osType\":\"Linux\"},"
     "{\"name\":\"a\",\"cpu\":1,\"memoryInGB\":1,\"osType\":\"Linux\"}]",
     BERTH_EEXIST, "DuplicateHostName", "hosts[2].name"},
#define L(limits) "{\"limits\":" limits ",\"hosts\":[]}"
    {L("[]"), BERTH_EINVAL, "InvalidLimits", "limits"},
    {L("{\"cores\":16}"), BERTH_EINVAL, "InvalidRequestContent", "limits.cores"},
    {L("{\"cpu\":0}"), BERTH_EINVAL, "InvalidLimits", "limits.cpu"},
    {L("{\"cpu\":2.5}"), BERTH_EINVAL, "InvalidLimits", "limits.cpu"},
    {L("{\"cpu\":\"16\"}"), BERTH_EINVAL, "InvalidLimits", "limits.cpu"},
    {L("{\"cpu\":4097}"), BERTH_EINVAL, "InvalidLimits", "limits.cpu"},
    {L("{\"memoryInGB\":0}"), BERTH_EINVAL, "InvalidLimits", "limits.memoryInGB"},
    {L("{\"memoryInGB\":1.0005}"), BERTH_EINVAL, "InvalidLimits", "limits.memoryInGB"},
    {L("{\"memoryInGB\":-64}"), BERTH_EINVAL, "InvalidLimits", "limits.memoryInGB"},
    {L("{\"containers\":0}"), BERTH_EINVAL, "InvalidLimits", "limits.containers"},
    {L("{\"containers\":1.5}"), BERTH_EINVAL, "InvalidLimits", "limits.containers"},
    {L("{\"volumes\":-1}"), BERTH_EINVAL, "InvalidLimits", "limits.volumes"},
    {L("{\"volumes\":100001}"), BERTH_EINVAL, "InvalidLimits", "limits.volumes"},
    {L("{\"ports\":0}"), BERTH_EINVAL, "InvalidLimits", "limits.ports"},
    {L("{\"ports\":true}"), BERTH_EINVAL, "InvalidLimits", "limits.ports"},
#undef L
    {"{\"sandbox\":\"mixed\",\"hosts\":[]}", BERTH_EINVAL, "InvalidSandboxPolicy", "sandbox"},
    {"{\"sandbox\":true,\"hosts\":[]}", BERTH_EINVAL, "InvalidSandboxPolicy", "sandbox"},
    {H(",\"features\":[\"sandbox\",\"gvisor\"]"), BERTH_EINVAL, "InvalidHostFeature",
     "hosts[0].features[1]"},
    {"{\"hosts\":[],\"limits\":{\"cpu\":16},\"limit\":{}}", BERTH_EINVAL,
     "InvalidRequestContent", "limit"},
    {"[{\"name\":\"h\",\"cpu\":1}, {\"name\":\"h\",\"cpu\":1}]", BERTH_EINVAL,
     "InvalidRequestContent", "hosts[0].memoryInGB"},
    {"\"hosts\"", BERTH_EINVAL, "InvalidRequestContent", ""},
    {"[{\"name\":\"h\",}]", BERTH_EINVAL, "InvalidRequestContent", ""},
    {"[[[[[[[[[[[[[[]]]]]]]]]]]]]]", BERTH_ETOOBIG, "RequestNestingTooDeep", ""},
    {"[{\"name\":\"h\",\"name\":\"g\"}]", BERTH_EINVAL, "InvalidRequestContent", ""},
#undef H
};

static void test_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < BERTH__ARRAY_LEN(refusals); i++) {
        const struct refusal *r = &refusals[i];
        berth_engine_t *e = new_engine();
        berth_error_t err;
        int rc = load(e, r->doc, &err);
        if (rc != r->code || err.code != r->code || strcmp(err.name, r->name) != 0 ||
            strcmp(err.target, r->target) != 0)
            fail_msg("%s\n  expected %d %s at '%s'\n  got %d %s at '%s': %s", r->doc, r->code,
                     r->name, r->target, rc, err.name, err.target, err.message);
        assert_true(err.message[0] != '\0');
        assert_int_equal(berth_engine_host_count(e), 0);
        berth_engine_free(e);
    }
}

/* A group of `cores` cores and `gb` GB in one Linux container. */
static berth_group_t *group(int cores, int gb)
{
    char doc[512];
    snprintf(doc, sizeof doc,
             "{\"name\": \"web\", \"properties\": {\"osType\": \"Linux\", \"containers\": ["
             "{\"name\": \"a\", \"properties\": {\"image\": \"nginx\", \"resources\": "
             "{\"requests\": {\"cpu\": %d, \"memoryInGB\": %d}}}}]}}", cores, gb);
    berth_group_t *g = NULL;
    berth_error_t err;
    assert_int_equal(berth_group_parse(doc, strlen(doc), &g, &err), 0);
    return g;
}

/* `limits` replaces the members it gives and keeps the others; group
 * validation follows; GPU offers keep their own limits. */
static void test_limits(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    berth_limits_t l;
    berth_engine_limits_get(e, &l);
    assert_int_equal(l.max_millicores, 4000);
    assert_int_equal(l.max_memory_mib, 16 * 1024);
    berth_group_t *big = group(12, 48);
    assert_int_equal(berth_engine_group_validate(e, big, &err), BERTH_EINVAL);

    /* An inventory without `limits` leaves them alone. */
    assert_int_equal(load(e, "{\"hosts\":[{\"name\":\"h\",\"cpu\":32,\"memoryInGB\":128,"
                             "\"osType\":\"Linux\"}]}", &err), 0);
    berth_limits_t same;
    berth_engine_limits_get(e, &same);
    assert_memory_equal(&same, &l, sizeof l);

    assert_int_equal(load(e, "{\"limits\":{\"cpu\":16,\"memoryInGB\":64.5,\"containers\":90,"
                             "\"volumes\":30,\"ports\":12},\"hosts\":[]}", &err), 0);
    berth_engine_limits_get(e, &l);
    assert_int_equal(l.max_millicores, 16000);
    assert_int_equal(l.max_memory_mib, 66048); /* 64.5 GB in MiB */
    assert_int_equal(l.max_containers, 90);
    assert_int_equal(l.max_volumes, 30);
    assert_int_equal(l.max_ip_ports, 12);
    assert_int_equal(berth_engine_group_validate(e, big, &err), 0);
    berth_group_free(big);
    big = group(17, 8);
    assert_int_equal(berth_engine_group_validate(e, big, &err), BERTH_EINVAL);
    berth_group_free(big);
    big = group(8, 65);
    assert_int_equal(berth_engine_group_validate(e, big, &err), BERTH_EINVAL);
    berth_group_free(big);

    /* Members left out keep the engine's value. */
    assert_int_equal(load(e, "{\"limits\":{\"ports\":7},\"hosts\":[]}", &err), 0);
    berth_engine_limits_get(e, &l);
    assert_int_equal(l.max_millicores, 16000);
    assert_int_equal(l.max_ip_ports, 7);

    /* A GPU group keeps its offer's limits (V100 x1: 6 cores). */
    const char gpu_doc[] =
        "{\"name\": \"g\", \"properties\": {\"osType\": \"Linux\", \"containers\": ["
        "{\"name\": \"a\", \"properties\": {\"image\": \"cuda\", \"resources\": "
        "{\"requests\": {\"cpu\": 8, \"memoryInGB\": 8, \"gpu\": {\"count\": 1, "
        "\"sku\": \"V100\"}}}}}]}}";
    berth_group_t *g = NULL;
    assert_int_equal(berth_group_parse(gpu_doc, sizeof gpu_doc - 1, &g, &err), 0);
    assert_int_equal(berth_engine_group_validate(e, g, &err), BERTH_EINVAL);
    berth_group_free(g);

    /* The engine call refuses a zero member and changes nothing. */
    berth_limits_t zero = l;
    zero.max_volumes = 0;
    assert_int_equal(berth_engine_limits_set(e, &zero, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "volumes");
    berth_engine_limits_get(e, &same);
    assert_memory_equal(&same, &l, sizeof l);
    assert_int_equal(berth_engine_limits_set(e, NULL, &err), BERTH_EINVAL);
    berth_engine_free(e);
}

/* Every violation is reported at once, each with its own path. */
static void test_every_violation_reported(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    const char *doc =
        "[{\"name\":\"a\",\"cpu\":0,\"memoryInGB\":8,\"osType\":\"Linux\"},"
        " {\"name\":\"b\",\"cpu\":4,\"memoryInGB\":8,\"osType\":\"Windows\"},"
        " {\"name\":\"a\",\"cpu\":4,\"memoryInGB\":8,\"osType\":\"Linux\",\"state\":\"off\"}]";
    assert_int_equal(load(e, doc, &err), BERTH_EINVAL);
    assert_int_equal(err.ndetails, 4);
    assert_string_equal(err.details[0].target, "hosts[0].cpu");
    assert_string_equal(err.details[1].target, "hosts[1].osBuild");
    assert_string_equal(err.details[2].target, "hosts[2].state");
    assert_string_equal(err.details[3].target, "hosts[2].name");
    assert_string_equal(err.details[3].name, "DuplicateHostName");
    assert_int_equal(berth_engine_host_count(e), 0);
    berth_engine_free(e);
}

static void test_name_already_in_engine(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    assert_int_equal(load(e, "[{\"name\":\"h1\",\"cpu\":4,\"memoryInGB\":8,"
                             "\"osType\":\"Linux\"}]", &err), 0);
    int rc = load(e, "[{\"name\":\"h2\",\"cpu\":4,\"memoryInGB\":8,\"osType\":\"Linux\"},"
                     "{\"name\":\"h1\",\"cpu\":8,\"memoryInGB\":8,\"osType\":\"Linux\"}]", &err);
    assert_int_equal(rc, BERTH_EEXIST);
    assert_string_equal(err.name, "HostAlreadyExists");
    assert_string_equal(err.target, "hosts[1].name");
    assert_int_equal(berth_engine_host_count(e), 1);
    assert_int_equal(berth_engine_host_get(e, "h2", NULL, NULL), BERTH_ENOENT);
    berth_engine_free(e);
}

/* A file whose last host is bad changes nothing: no host, no SKU, no zone. */
static void test_all_or_nothing(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    assert_int_equal(load(e, "[{\"name\":\"old\",\"cpu\":4,\"memoryInGB\":8,"
                             "\"osType\":\"Linux\",\"zone\":\"1\"}]", &err), 0);
    berth__config_t before = *berth__engine_config(e);
    const char *doc =
        "{\"gpuSkus\":[{\"name\":\"T4\",\"offers\":[{\"count\":1,\"cpu\":8,\"memoryInGB\":32}]},"
        "  {\"name\":\"K80\",\"offers\":[{\"count\":8,\"cpu\":8,\"memoryInGB\":32}]}],"
        " \"limits\":{\"cpu\":16,\"memoryInGB\":64}, \"sandbox\":\"all\","
        " \"hosts\":["
        "  {\"name\":\"n1\",\"cpu\":48,\"memoryInGB\":192,\"osType\":\"Linux\",\"zone\":\"2\","
        "   \"gpu\":{\"sku\":\"T4\",\"count\":4}},"
        "  {\"name\":\"n2\",\"cpu\":16,\"memoryInGB\":64,\"osType\":\"Linux\",\"zone\":\"3\"},"
        "  {\"name\":\"n3\",\"cpu\":16,\"memoryInGB\":64,\"osType\":\"Windows\",\"zone\":\"4\"}]}";
    assert_int_equal(load(e, doc, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "hosts[2].osBuild");
    assert_int_equal(berth_engine_host_count(e), 1);
    assert_int_equal(berth_engine_host_get(e, "n1", NULL, NULL), BERTH_ENOENT);
    assert_null(berth_engine_gpu_sku_find(e, "T4", NULL));
    const berth_gpu_sku_t *k80 = berth_engine_gpu_sku_find(e, "K80", NULL);
    assert_non_null(k80);
    assert_int_equal(k80->offers[0].count, 1);
    const berth__config_t *after = berth__engine_config(e);
    assert_int_equal(after->nzones, before.nzones);
    assert_int_equal(after->nskus, before.nskus);
    assert_memory_equal(after->skus, before.skus, sizeof before.skus);
    assert_memory_equal(&after->limits, &before.limits, sizeof before.limits);
    assert_int_equal(after->sandbox, BERTH_SANDBOX_NONE);

    /* The same file fixed loads whole. */
    char fixed[1024];
    snprintf(fixed, sizeof fixed, "%.*s,\"osBuild\":17763}]}",
             (int)(strrchr(doc, '}') - doc - 2), doc);
    assert_int_equal(load(e, fixed, &err), 0);
    assert_int_equal(berth_engine_host_count(e), 4);
    assert_non_null(berth_engine_gpu_sku_find(e, "T4", NULL));
    berth_limits_t l;
    berth_engine_limits_get(e, &l);
    assert_int_equal(l.max_millicores, 16000);
    assert_int_equal(berth_engine_sandbox_get(e), BERTH_SANDBOX_ALL);
    berth_engine_free(e);
}

/* A host's "sandbox" feature and the document's sandbox policy: "all"
 * makes groups need a sandbox host; a document without `sandbox` keeps
 * the engine's policy. */
static void test_sandbox(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    assert_int_equal(load(e, "{\"sandbox\":\"all\",\"hosts\":["
                             "{\"name\":\"plain\",\"cpu\":32,\"memoryInGB\":128,"
                             "\"osType\":\"Linux\"},"
                             "{\"name\":\"gv\",\"cpu\":4,\"memoryInGB\":8,"
                             "\"osType\":\"Linux\",\"features\":[\"sandbox\"]}]}", &err), 0);
    assert_int_equal(berth_engine_sandbox_get(e), BERTH_SANDBOX_ALL);
    berth_host_t h;
    assert_int_equal(berth_engine_host_get(e, "gv", &h, NULL), 0);
    assert_int_equal(h.features, BERTH_HOST_SANDBOX);
    berth_group_t *g = group(2, 2);
    berth_placement_t p;
    assert_int_equal(berth_engine_group_place(e, "rg/a", g, &p, &err), 0);
    assert_string_equal(p.host, "gv");
    assert_int_equal(berth_engine_group_place(e, "rg/b", g, &p, &err), 0);
    assert_string_equal(p.host, "gv");
    assert_int_equal(berth_engine_group_place(e, "rg/c", g, &p, &err), BERTH_ENOSPC);
    assert_int_equal(load(e, "{\"hosts\":[]}", &err), 0);
    assert_int_equal(berth_engine_sandbox_get(e), BERTH_SANDBOX_ALL);
    assert_int_equal(load(e, "{\"sandbox\":\"none\",\"hosts\":[]}", &err), 0);
    assert_int_equal(berth_engine_group_place(e, "rg/c", g, &p, &err), 0);
    assert_string_equal(p.host, "plain");
    berth_group_free(g);
    berth_engine_free(e);
}

static void test_sku_table_limit(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    size_t have = berth__engine_config(e)->nskus;
    size_t cap = 64 * 1024;
    char *doc = malloc(cap);
    assert_non_null(doc);
    size_t n = (size_t)snprintf(doc, cap, "{\"gpuSkus\":[");
    size_t total = BERTH_GPU_SKUS_MAX - have + 1;
    for (size_t i = 0; i < total; i++)
        n += (size_t)snprintf(doc + n, cap - n,
                              "%s{\"name\":\"X%zu\",\"offers\":[{\"count\":1,\"cpu\":1,"
                              "\"memoryInGB\":1}]}", i ? "," : "", i);
    snprintf(doc + n, cap - n, "],\"hosts\":[]}");
    berth_error_t err;
    assert_int_equal(load(e, doc, &err), BERTH_ELIMIT);
    char target[64];
    snprintf(target, sizeof target, "gpuSkus[%zu].name", total - 1);
    assert_string_equal(err.target, target);
    assert_int_equal(berth__engine_config(e)->nskus, have);
    free(doc);
    berth_engine_free(e);
}

static void test_zone_table_limit(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    size_t cap = 64 * 1024;
    char *doc = malloc(cap);
    assert_non_null(doc);
    size_t n = (size_t)snprintf(doc, cap, "[");
    for (int i = 0; i <= BERTH_ZONES_MAX; i++)
        n += (size_t)snprintf(doc + n, cap - n,
                              "%s{\"name\":\"h%d\",\"cpu\":1,\"memoryInGB\":1,"
                              "\"osType\":\"Linux\",\"zone\":\"z%d\"}", i ? "," : "", i, i);
    snprintf(doc + n, cap - n, "]");
    berth_error_t err;
    assert_int_equal(load(e, doc, &err), BERTH_ELIMIT);
    char target[64];
    snprintf(target, sizeof target, "hosts[%d].zone", BERTH_ZONES_MAX);
    assert_string_equal(err.target, target);
    assert_string_equal(err.name, "TooManyZones");
    assert_int_equal(berth_engine_host_count(e), 0);
    assert_int_equal(berth__engine_config(e)->nzones, 0);
    free(doc);
    berth_engine_free(e);
}

/* 100,000 hosts load (the size limit is the inventory's, not a document's),
 * and a duplicate at the very end is still found and changes nothing. */
static void test_large_inventory(void **state)
{
    (void)state;
    const size_t hosts = 100000;
    size_t cap = hosts * 128 + 64;
    char *doc = malloc(cap);
    assert_non_null(doc);
    size_t n = (size_t)snprintf(doc, cap, "[");
    for (size_t i = 0; i < hosts; i++)
        n += (size_t)snprintf(doc + n, cap - n,
                              "%s{\"name\":\"host-%06zu\",\"cpu\":32,\"memoryInGB\":128,"
                              "\"osType\":\"Linux\",\"zone\":\"%zu\"}", i ? "," : "", i,
                              i % 3 + 1);
    size_t body = n;
    snprintf(doc + n, cap - n, ",{\"name\":\"host-000007\",\"cpu\":1,\"memoryInGB\":1,"
                               "\"osType\":\"Linux\"}]");
    berth_engine_t *e = new_engine();
    berth_error_t err;
    assert_int_equal(load(e, doc, &err), BERTH_EEXIST);
    char target[64];
    snprintf(target, sizeof target, "hosts[%zu].name", hosts);
    assert_string_equal(err.target, target);
    assert_int_equal(berth_engine_host_count(e), 0);

    snprintf(doc + body, cap - body, "]");
    assert_int_equal(load(e, doc, &err), 0);
    assert_int_equal(berth_engine_host_count(e), hosts);
    berth_engine_stats_t st;
    berth_engine_stats(e, &st);
    assert_int_equal(st.capacity_millicores, (uint64_t)hosts * 32000);
    free(doc);
    berth_engine_free(e);
}

static void test_size_limit(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    size_t len = ((size_t)64 << 20) + 1;
    char *doc = malloc(len);
    assert_non_null(doc);
    memset(doc, ' ', len);
    doc[0] = '[';
    doc[len - 1] = ']';
    berth_error_t err;
    assert_int_equal(berth_engine_inventory_load(e, doc, len, &err), BERTH_ETOOBIG);
    assert_string_equal(err.name, "RequestTooLarge");
    /* One byte less is within the limit. */
    doc[len - 2] = ']';
    assert_int_equal(berth_engine_inventory_load(e, doc, len - 1, &err), 0);
    free(doc);
    berth_engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_array_form),
        cmocka_unit_test(test_memory_conversion),
        cmocka_unit_test(test_sku_declared_and_used),
        cmocka_unit_test(test_empty_inventories),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_every_violation_reported),
        cmocka_unit_test(test_name_already_in_engine),
        cmocka_unit_test(test_all_or_nothing),
        cmocka_unit_test(test_sandbox),
        cmocka_unit_test(test_sku_table_limit),
        cmocka_unit_test(test_zone_table_limit),
        cmocka_unit_test(test_large_inventory),
        cmocka_unit_test(test_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
