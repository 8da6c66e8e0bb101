/*
 * test_subnets.c: the engine's virtual network subnets: CIDR parsing, the
 * table's validation (every violation with its path, nothing changed on a
 * refusal), an inventory's `subnets`, the placement constraint (a subnet's
 * group goes only to the hosts that carry the subnet, hosts move when the
 * table changes, hosts added later take their subnets from the table), the
 * refusal's explanation, and a document's subnetIds and ipAddress.type.
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

#define GB 1024u

static berth_engine_t *new_engine(void)
{
    berth_engine_t *e = NULL;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    return e;
}

static void add_host(berth_engine_t *e, const char *name)
{
    berth_host_t h = {.name = name, .cores = 8, .memory_mib = 32 * GB, .os = BERTH_OS_LINUX,
                      .state = BERTH_HOST_READY};
    berth_error_t err;
    assert_int_equal(berth_engine_host_add(e, &h, &err), 0);
}

static berth_request_t request(uint64_t subnet_mask)
{
    berth_request_t r;
    memset(&r, 0, sizeof r);
    r.os = BERTH_OS_LINUX;
    r.demand.millicores = 1000;
    r.demand.requested_millicores = 1000;
    r.demand.memory_mib = GB;
    r.subnet_mask = subnet_mask;
    return r;
}

/* Places `key` and returns the host's name (a static buffer), or NULL. */
static const char *place(berth_engine_t *e, const char *key, const berth_request_t *r,
                         berth_error_t *err)
{
    static berth_placement_t p;
    return berth_engine_request_place(e, key, r, &p, err) == 0 ? p.host : NULL;
}

static void test_cidr_parse(void **state)
{
    (void)state;
    uint32_t net;
    unsigned prefix;
    berth_error_t err;
    assert_int_equal(berth_subnet_cidr_parse("10.1.0.0/16", &net, &prefix, &err), 0);
    assert_int_equal(net, 0x0a010000u);
    assert_int_equal(prefix, 16);
    assert_int_equal(berth_subnet_cidr_parse("192.168.7.8/29", &net, &prefix, &err), 0);
    assert_int_equal(net, 0xc0a80708u);
    static const char *const bad[] = {
        "", "10.0.0.0", "10.0.0/16", "10.0.0.0.0/16", "10.0.0.256/24", "010.0.0.0/8",
        "10.0.0.0/7", "10.0.0.0/30", "10.0.0.1/24", "10.0.0.0/16 ", " 10.0.0.0/16",
        "10.0.0.0/016", "a.b.c.d/8", "10.0.0.0/", "10.0.0.0/33", "-1.0.0.0/8",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        net = 7;
        if (berth_subnet_cidr_parse(bad[i], &net, &prefix, &err) != BERTH_EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(net, 7);
        assert_string_equal(err.name, "InvalidSubnetCidr");
    }
    assert_int_equal(berth_subnet_cidr_parse("10.0.0.1/24", &net, &prefix, &err),
                     BERTH_EINVAL);
    assert_non_null(strstr(err.message, "10.0.0.0/24"));
    assert_int_equal(berth_subnet_cidr_parse(NULL, &net, &prefix, &err), BERTH_EINVAL);
}

/* Every violation at once, each at its path; a refusal keeps the table. */
static void test_table_refusals(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    const char *hosts_a[] = {"h1"};
    berth_subnet_t good = {.id = "sn-a", .cidr = "10.0.0.0/24", .hosts = hosts_a, .nhosts = 1};
    assert_int_equal(berth_engine_subnets_set(e, &good, 1, &err), 0);

    const char *dup_hosts[] = {"h1", "bad name", "h1"};
    berth_subnet_t bad[] = {
        {.id = "sn-x", .cidr = "10.0.0.0/16", .hosts = NULL, .nhosts = 0},
        {.id = "SN-X", .cidr = "10.0.1.0/24", .hosts = dup_hosts, .nhosts = 3},
        {.id = "has space", .cidr = "10.2.0.0/33", .hosts = NULL, .nhosts = 0},
        {.id = NULL, .cidr = NULL, .hosts = NULL, .nhosts = 0},
    };
    assert_int_equal(berth_engine_subnets_set(e, bad, 4, &err), BERTH_EINVAL);
    static const char *const targets[] = {
        "subnets[1].id", "subnets[1].cidr", "subnets[1].hosts[1]", "subnets[1].hosts[2]",
        "subnets[2].id", "subnets[2].cidr", "subnets[3].id", "subnets[3].cidr",
    };
    assert_int_equal(err.ndetails, sizeof targets / sizeof targets[0]);
    for (size_t i = 0; i < err.ndetails; i++)
        assert_string_equal(err.details[i].target, targets[i]);
    assert_string_equal(err.details[0].name, "DuplicateSubnet");
    assert_string_equal(err.details[1].name, "OverlappingSubnets");
    assert_string_equal(err.details[3].name, "DuplicateHostName");

    berth_subnet_t no_hosts = {.id = "q", .cidr = "10.7.0.0/24", .hosts = NULL, .nhosts = 2};
    assert_int_equal(berth_engine_subnets_set(e, &no_hosts, 1, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "subnets[0].hosts");
    static const berth_subnet_t many[BERTH_SUBNETS_MAX + 1];
    assert_int_equal(berth_engine_subnets_set(e, many, BERTH_SUBNETS_MAX + 1, &err),
                     BERTH_ELIMIT);
    /* Nothing changed. */
    assert_int_equal(berth_engine_subnet_count(e), 1);
    berth_subnet_t s;
    assert_int_equal(berth_engine_subnet_at(e, 0, &s), 0);
    assert_string_equal(s.id, "sn-a");
    assert_string_equal(s.cidr, "10.0.0.0/24");
    assert_int_equal(s.nhosts, 1);
    assert_string_equal(s.hosts[0], "h1");
    assert_int_equal(berth_engine_subnet_at(e, 1, &s), BERTH_ENOENT);
    assert_int_equal(berth_engine_subnet_find(e, "SN-A"), 0);
    assert_int_equal(berth_engine_subnet_find(e, "sn-b"), BERTH_ENOENT);
    assert_int_equal(berth_engine_subnets_set(e, NULL, 0, &err), 0);
    assert_int_equal(berth_engine_subnet_count(e), 0);
    berth_engine_free(e);
}

/* A subnet's groups go only to its hosts; the others go anywhere; a table
 * change moves hosts; a host added later takes its subnets from the table. */
static void test_placement(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    add_host(e, "h1");
    add_host(e, "h2");
    add_host(e, "h3");
    const char *a_hosts[] = {"h2", "h4"};
    const char *b_hosts[] = {"h3"};
    berth_subnet_t t[] = {
        {.id = "sn-a", .cidr = "10.0.0.0/24", .hosts = a_hosts, .nhosts = 2},
        {.id = "sn-b", .cidr = "10.0.1.0/24", .hosts = b_hosts, .nhosts = 1},
    };
    assert_int_equal(berth_engine_subnets_set(e, t, 2, &err), 0);
    berth_request_t ra = request(1u << 0), rb = request(1u << 1);
    char key[32];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "rg/a%d", i);
        const char *host = place(e, key, &ra, &err);
        assert_non_null(host);
        assert_string_equal(host, "h2");
    }
    /* h2 is full (8 cores): the subnet has no room left. */
    assert_null(place(e, "rg/a8", &ra, &err));
    assert_int_equal(err.code, BERTH_ENOSPC);
    assert_non_null(strstr(err.message, "no host with 1 free CPU cores"));
    const char *host = place(e, "rg/b0", &rb, &err);
    assert_non_null(host);
    assert_string_equal(host, "h3");
    /* A group in no subnet may go to any host. */
    berth_request_t free_req = request(0);
    assert_non_null(place(e, "rg/any", &free_req, &err));

    /* h4 joins: it carries sn-a from the table. */
    add_host(e, "h4");
    host = place(e, "rg/a8", &ra, &err);
    assert_non_null(host);
    assert_string_equal(host, "h4");

    /* sn-b moves to h1: h3's groups stay, new ones go to h1. */
    const char *b2[] = {"h1"};
    t[1].hosts = b2;
    assert_int_equal(berth_engine_subnets_set(e, t, 2, &err), 0);
    host = place(e, "rg/b1", &rb, &err);
    assert_non_null(host);
    assert_string_equal(host, "h1");
    berth_placement_t p;
    assert_int_equal(berth_engine_group_get(e, "rg/b0", &p), 0);
    assert_string_equal(p.host, "h3");

    /* No host carries a subnet: the refusal names it. */
    const char *none[] = {"h9"};
    t[1].hosts = none;
    assert_int_equal(berth_engine_subnets_set(e, t, 2, &err), 0);
    assert_null(place(e, "rg/b2", &rb, &err));
    assert_int_equal(err.code, BERTH_ENOSPC);
    assert_non_null(strstr(err.message, "no Linux host carries subnet 'sn-b'"));

    /* A request naming two subnets, or one the engine lacks, is refused. */
    berth_request_t two = request(3);
    assert_null(place(e, "rg/x", &two, &err));
    assert_int_equal(err.code, BERTH_EINVAL);
    assert_string_equal(err.target, "properties.subnetIds");
    berth_request_t unknown = request(1u << 5);
    assert_null(place(e, "rg/x", &unknown, &err));
    assert_int_equal(err.code, BERTH_EINVAL);
    berth_engine_free(e);
}

static berth_group_t *doc(const char *ip, const char *subnets)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"name\": \"g\", \"properties\": {\"osType\": \"Linux\", %s%s"
             "\"containers\": [{\"name\": \"a\", \"properties\": {\"image\": \"busybox\", "
             "\"ports\": [{\"port\": 80}], \"resources\": {\"requests\": {\"cpu\": 1, "
             "\"memoryInGB\": 1}}}}]}}",
             ip, subnets);
    berth_group_t *g = NULL;
    berth_error_t err;
    if (berth_group_parse(buf, strlen(buf), &g, &err) != 0)
        fail_msg("%s: %s %s", buf, err.target, err.message);
    return g;
}

/* Checks what berth_engine_group_request() makes of a document. */
static void expect(berth_engine_t *e, const char *ip, const char *subnets, int code,
                   const char *target, uint64_t mask)
{
    berth_group_t *g = doc(ip, subnets);
    berth_request_t r;
    berth_error_t err;
    int rc = berth_engine_group_request(e, g, &r, &err);
    if (rc != code)
        fail_msg("%s%s: %d (%s %s), expected %d", ip, subnets, rc, err.target, err.message,
                 code);
    if (rc == 0)
        assert_int_equal(r.subnet_mask, mask);
    else
        assert_string_equal(err.target, target);
    assert_int_equal(berth_engine_group_validate(e, g, &err), code);
    berth_group_free(g);
}

#define SUBNET_A "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/" \
                 "virtualNetworks/vn/subnets/a"
#define PRIVATE "\"ipAddress\": {\"type\": \"Private\", \"ports\": [{\"port\": 80}]}, "
#define PUBLIC "\"ipAddress\": {\"type\": \"Public\", \"ports\": [{\"port\": 80}]}, "

static void test_documents(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    /* Without subnets, subnetIds and the IP type are data. */
    expect(e, PRIVATE, "", 0, NULL, 0);
    expect(e, PUBLIC, "\"subnetIds\": [{\"id\": \"nowhere\"}], ", 0, NULL, 0);

    const char *hosts[] = {"h1"};
    berth_subnet_t t[] = {
        {.id = "other", .cidr = "10.9.0.0/16", .hosts = hosts, .nhosts = 1},
        {.id = SUBNET_A, .cidr = "10.0.0.0/24", .hosts = hosts, .nhosts = 1},
    };
    assert_int_equal(berth_engine_subnets_set(e, t, 2, &err), 0);
    expect(e, PRIVATE, "\"subnetIds\": [{\"id\": \"" SUBNET_A "\", \"name\": \"a\"}], ", 0,
           NULL, 1u << 1);
    /* ARM ids compare without case; no ipAddress is a private group too. */
    expect(e, "", "\"subnetIds\": [{\"id\": \"/SUBSCRIPTIONS/s/resourcegroups/rg/providers/"
           "microsoft.network/virtualnetworks/vn/subnets/A\"}], ", 0, NULL, 1u << 1);
    expect(e, "", "\"subnetIds\": [{\"id\": \"other\"}], ", 0, NULL, 1u << 0);
    expect(e, "", "", 0, NULL, 0);
    expect(e, PUBLIC, "", 0, NULL, 0);
    expect(e, "", "\"subnetIds\": [], ", 0, NULL, 0);
    expect(e, PRIVATE, "\"subnetIds\": [{\"id\": \"nowhere\"}], ", BERTH_EINVAL,
           "properties.subnetIds[0].id", 0);
    expect(e, PRIVATE, "", BERTH_EINVAL, "properties.ipAddress.type", 0);
    expect(e, PUBLIC, "\"subnetIds\": [{\"id\": \"other\"}], ", BERTH_EINVAL,
           "properties.ipAddress.type", 0);
    expect(e, "", "\"subnetIds\": [{\"id\": \"other\"}, {\"id\": \"" SUBNET_A "\"}], ",
           BERTH_EINVAL, "properties.subnetIds", 0);
    expect(e, "", "\"subnetIds\": [{\"name\": \"other\"}], ", BERTH_EINVAL,
           "properties.subnetIds[0].id", 0);
    expect(e, "", "\"subnetIds\": [{\"id\": \"other\", \"name\": 3}], ", BERTH_EINVAL,
           "properties.subnetIds[0].name", 0);
    berth_engine_free(e);
}

static int load(berth_engine_t *e, const char *doc_text, berth_error_t *err)
{
    return berth_engine_inventory_load(e, doc_text, strlen(doc_text), err);
}

#define HOST(n) "{\"name\": \"" n "\", \"cpu\": 8, \"memoryInGB\": 32, \"osType\": \"Linux\"}"

/* An inventory's `subnets`: loaded after its hosts, refused with paths and
 * then nothing loaded at all.  Host names are data: a subnet may name a
 * host that joins the cell later. */
static void test_inventory(void **state)
{
    (void)state;
    berth_engine_t *e = new_engine();
    berth_error_t err;
    add_host(e, "old");
    assert_int_equal(load(e, "{\"hosts\": [" HOST("n1") ", " HOST("n2") "], \"subnets\": ["
                             "{\"id\": \"x\", \"cidr\": \"10.0.0.0/24\", \"hosts\": "
                             "[\"n2\", \"old\"]}, "
                             "{\"id\": \"y\", \"cidr\": \"10.0.1.0/24\", \"hosts\": []}]}",
                         &err), 0);
    assert_int_equal(berth_engine_subnet_count(e), 2);
    berth_request_t rx = request(1u << 0);
    const char *host = place(e, "rg/x", &rx, &err);
    assert_non_null(host);
    assert_true(strcmp(host, "n2") == 0 || strcmp(host, "old") == 0);

    /* Refusals: each with its path, and the engine unchanged. */
    assert_int_equal(load(e, "{\"hosts\": [" HOST("n3") "], \"subnets\": ["
                             "{\"id\": \"z\", \"cidr\": \"10.0.0.0/8\", \"hosts\": "
                             "[\"n3\", \"later\", 7], \"vni\": 1}, 5]}", &err), BERTH_EINVAL);
    static const char *const targets[] = {"subnets[0].vni", "subnets[1]",
                                          "subnets[0].hosts[2]", "subnets[1].id",
                                          "subnets[1].cidr"};
    assert_int_equal(err.ndetails, sizeof targets / sizeof targets[0]);
    for (size_t i = 0; i < err.ndetails; i++)
        assert_string_equal(err.details[i].target, targets[i]);
    assert_int_equal(berth_engine_host_get(e, "n3", NULL, NULL), BERTH_ENOENT);
    assert_int_equal(berth_engine_subnet_count(e), 2);
    assert_int_equal(load(e, "{\"hosts\": [], \"subnets\": {}}", &err), BERTH_EINVAL);
    assert_string_equal(err.target, "subnets");
    assert_int_equal(load(e, "{\"hosts\": [], \"subnets\": [{\"id\": \"q\", \"cidr\": "
                             "\"10.0.0.0/24\"}]}", &err), BERTH_EINVAL);
    assert_string_equal(err.target, "subnets[0].hosts");
    assert_int_equal(load(e, "{\"hosts\": [], \"subnets\": [{\"id\": \"q\", \"cidr\": "
                             "\"10.0.0.0/24\", \"hosts\": \"n1\"}]}", &err), BERTH_EINVAL);
    assert_string_equal(err.target, "subnets[0].hosts");
    assert_int_equal(berth_engine_subnet_count(e), 2);

    /* An inventory without `subnets` keeps the table; one with replaces it. */
    assert_int_equal(load(e, "{\"hosts\": [" HOST("n4") "]}", &err), 0);
    assert_int_equal(berth_engine_subnet_count(e), 2);
    assert_int_equal(load(e, "{\"hosts\": [], \"subnets\": []}", &err), 0);
    assert_int_equal(berth_engine_subnet_count(e), 0);
    berth_engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_table_refusals),
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_inventory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
