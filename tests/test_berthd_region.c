/*
 * test_berthd_region.c: a region of four cells on a local Redis Cluster
 * (three masters, tests/redis-harness.c), each cell with one berth-agent
 * of the simulator plugin (4 cores, tests/agent-harness.c), and two
 * berthds serving all four cells (tests/berthd-harness.c).  The cells'
 * names are chosen so that their hash slots fall on every master.
 *
 * Covers: creates through both berthds spread over the cells, each
 * group's GET, stop, start, logs, exec (berthctl, over the WebSocket) and
 * DELETE through the berthd that did not create it; the lists merged over
 * the cells, page by page through nextLink on the other berthd, and the
 * usages added; the directory (one entry per group, naming the cell that
 * holds it, none left by a refused create -- a bad document, no room
 * anywhere -- or a delete); every cell full: a create refused 409
 * ResourceNotAvailable after every cell was tried; a cell with room again
 * takes the next create whatever cell its key hashes to, and a dangling
 * directory entry naming a full cell is re-pointed to it; a group made by
 * a berthd serving its cell alone entered in the directory by a berthd
 * opening the region with --cell '*' (which finds the four cells on the
 * three masters); a group made from a container group profile placed in
 * the home cell; an exec session made through one berthd run over
 * another's WebSocket; the metrics added over the cells; berthctl fsck
 * (through the cluster's first node) clean on every cell, with groups
 * placed and at the end.  Every wait is bounded; every process started is
 * stopped.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
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

#define SUB "0000-sub-1"
#define APIV "2023-05-01"
#define WAIT_MS 20000
#define NCELLS 4
#define NGROUPS 8

typedef struct region {
    berth_test_cluster_t *cluster;
    char cells[NCELLS][16];
    test_agent_t agents[NCELLS];
    int nagents;
    test_berthd_t d[2];
    int nd;
} region_t;

static region_t R;

/* ---- Redis --------------------------------------------------------------------------------- */

/* The master holding `key`'s slot. */
static redisContext *node_for(const char *key)
{
    berth_test_redis_t *n = berth_test_cluster_node_for_key(R.cluster, key);
    return n != NULL ? berth_test_redis_connect(n) : NULL;
}

/* Four cell names whose slots cover every master: one per master first,
 * then any. */
static int choose_cells(void)
{
    int found = 0;
    int per_master[16] = {0};
    for (int pass = 0; pass < 2 && found < NCELLS; pass++)
        for (int i = 0; i < 200 && found < NCELLS; i++) {
            char name[16], key[48];
            snprintf(name, sizeof name, "cell%d", i);
            bool taken = false;
            for (int j = 0; j < found; j++)
                taken = taken || strcmp(R.cells[j], name) == 0;
            snprintf(key, sizeof key, "berth:{%s}:x", name);
            berth_test_redis_t *n = berth_test_cluster_node_for_key(R.cluster, key);
            int m = -1;
            for (int j = 0; n != NULL && j < R.cluster->masters; j++)
                if (R.cluster->nodes[j] == n)
                    m = j;
            if (m < 0 || m >= 16)
                return -1;
            if (taken || (pass == 0 && per_master[m] > 0))
                continue;
            per_master[m]++;
            snprintf(R.cells[found++], sizeof R.cells[0], "%s", name);
        }
    return found == NCELLS ? 0 : -1;
}

/* The cell the directory names for group `name` ("" when none; at most
 * one shard may hold it). */
static void dir_cell(const char *name, char *out, size_t cap)
{
    char field[128];
    snprintf(field, sizeof field, "%s/rg/%s", SUB, name);
    out[0] = '\0';
    int held = 0;
    for (int s = 0; s < 16; s++) {
        char key[32];
        snprintf(key, sizeof key, "berth:dir:{%02d}", s);
        redisContext *c = node_for(key);
        assert_non_null(c);
        redisReply *r = redisCommand(c, "HGET %s %s", key, field);
        assert_non_null(r);
        if (r->type == REDIS_REPLY_STRING) {
            snprintf(out, cap, "%s", r->str);
            held++;
        }
        freeReplyObject(r);
        redisFree(c);
    }
    assert_true(held <= 1);
}

/* FNV-1a of group `name`'s store key, as region.c hashes it: modulo 16
 * its directory shard, divided by 16 modulo the cells the first cell a
 * create tries. */
static uint32_t name_hash(const char *name)
{
    char field[128];
    snprintf(field, sizeof field, "%s/rg/%s", SUB, name);
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)field; *c != '\0'; c++)
        h = (h ^ *c) * 16777619u;
    return h;
}

/* A group name "<prefix><n>" whose creates try another cell than the home
 * cell first (when every cell has room), into out[cap]. */
static void name_elsewhere(const char *prefix, char *out, size_t cap)
{
    for (int i = 0; i < 100; i++) {
        snprintf(out, cap, "%s%d", prefix, i);
        if ((name_hash(out) / 16) % NCELLS != 0)
            return;
    }
    fail_msg("no name %s<n> hashes outside the home cell", prefix);
}

/* Sets group `name`'s directory entry to `cell` by hand, in its shard. */
static void dir_set(const char *name, const char *cell)
{
    char field[128], key[32];
    snprintf(field, sizeof field, "%s/rg/%s", SUB, name);
    snprintf(key, sizeof key, "berth:dir:{%02u}", (unsigned)(name_hash(name) % 16));
    redisContext *c = node_for(key);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "HSET %s %s %s", key, field, cell);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    redisFree(c);
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

static char *gpath(const char *name, const char *tail)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/rg/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s%s?api-version=" APIV,
                 name, tail ? tail : "") < 0)
        abort();
    return p;
}

static char *gdoc(int cpu)
{
    char *doc = NULL;
    if (asprintf(&doc,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
                 "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": "
                 "\"busybox:latest\", \"resources\": {\"requests\": {\"cpu\": %d, "
                 "\"memoryInGB\": 1}}}}]}}",
                 cpu) < 0)
        abort();
    return doc;
}

/* PUT group `name` asking `cpu` cores through berthd d: its status. */
static long put_group_on(const test_berthd_t *d, const char *name, int cpu)
{
    char *p = gpath(name, NULL);
    char *doc = gdoc(cpu);
    test_http_t h = test_http_send(d, "PUT", p, doc, NULL);
    long status = h.status;
    if (status != 201)
        fprintf(stderr, "PUT %s on %s: %ld %s\n", name, d->base_url, h.status, h.body);
    test_http_free(&h);
    free(doc);
    free(p);
    return status;
}

static long put_group(int d, const char *name, int cpu)
{
    return put_group_on(&R.d[d], name, cpu);
}

static long request(int d, const char *method, const char *name, const char *tail)
{
    char *p = gpath(name, tail);
    test_http_t h = test_http_send(&R.d[d], method, p, NULL, NULL);
    long status = h.status;
    test_http_free(&h);
    free(p);
    return status;
}

static const char *jpath(json_t *o, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    return json_string_value(c != NULL ? json_object_get(v, c) : v) ?: "";
}

/* Waits until group `name`, read through berthd d, is `state` (its
 * instanceView's state: "Running", "Stopped").  Returns whether it was. */
static bool wait_state(int d, const char *name, const char *state)
{
    char *p = gpath(name, NULL);
    bool ok = false;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (!ok && test_now_ms() < end) {
        test_http_t h = test_http_send(&R.d[d], "GET", p, NULL, NULL);
        ok = h.status == 200 && strcmp(jpath(h.json, "properties", "instanceView", "state"),
                                       state) == 0;
        test_http_free(&h);
        if (!ok)
            test_sleep_ms(100);
    }
    if (!ok)
        fprintf(stderr, "group %s never %s\n", name, state);
    free(p);
    return ok;
}

/* The host group `name` runs on, from /berth/containerGroups through
 * berthd d (a new string; "" when it is not placed). */
static char *host_of(int d, const char *name)
{
    char path[256];
    snprintf(path, sizeof path,
             "/berth/containerGroups?subscription=" SUB "&resourceGroup=rg&name=%s", name);
    test_http_t h = test_http_send(&R.d[d], "GET", path, NULL, NULL);
    assert_int_equal(h.status, 200);
    json_t *v = json_object_get(h.json, "value");
    assert_int_equal(json_array_size(v), 1);
    char *host = strdup(json_string_value(json_object_get(json_array_get(v, 0), "host")) ?: "");
    test_http_free(&h);
    return host;
}

/* The value of metric line `name` (with its labels) on berthd d. */
static long long metric(int d, const char *name)
{
    test_http_t h = test_http_send(&R.d[d], "GET", "/metrics", NULL, NULL);
    assert_int_equal(h.status, 200);
    const char *at = strstr(h.body, name);
    long long v = -1;
    while (at != NULL && at > h.body && at[-1] != '\n')
        at = strstr(at + 1, name);
    if (at != NULL)
        v = atoll(at + strlen(name));
    test_http_free(&h);
    return v;
}

/* `berthctl container exec` of "echo hello" in group `name` through
 * berthd d: 0 when it printed hello and exited 0. */
static int exec_echo(const test_berthd_t *d, const char *name)
{
    const char *top = getenv("top_builddir");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "BERTH_SUBSCRIPTION=" SUB " timeout 60 %s/tools/berthctl/berthctl container exec "
             "-g rg -n %s --exec-command 'echo hello' --endpoint %s </dev/null",
             top != NULL ? top : ".", name, d->base_url);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    char out[256] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    if (st != 0 || strstr(out, "hello") == NULL) {
        fprintf(stderr, "exec in %s through %s: status %d, output '%s'\n", name, d->base_url,
                st, out);
        return -1;
    }
    return 0;
}

/* ---- the region ------------------------------------------------------------------------------ */

static int region_setup(void **state)
{
    (void)state;
    R.cluster = berth_test_cluster_start(3);
    if (R.cluster == NULL || choose_cells() != 0)
        return -1;
    const char *args[] = {"--cores", "4", "--memory-mib", "65536", "--tick-ms", "50",
                          "--heartbeat-ms", "200", "--ttl-ms", "10000", NULL};
    for (int i = 0; i < NCELLS; i++) {
        char host[32];
        snprintf(host, sizeof host, "h-%s", R.cells[i]);
        if (test_agent_start(&R.agents[i], R.cluster->url, R.cells[i], host, "sim",
                             "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 20}",
                             args) != 0)
            return -1;
        R.nagents++;
    }
    char list[80];
    snprintf(list, sizeof list, "%s,%s,%s,%s", R.cells[0], R.cells[1], R.cells[2], R.cells[3]);
    fprintf(stderr, "region: cells %s on %s\n", list, R.cluster->url);
    setenv("BERTHD_TICK_MS", "200", 1);
    for (int i = 0; i < 2; i++) {
        const char *dargs[] = {"--redis", R.cluster->url, "--cell", list, NULL};
        if (test_berthd_start(&R.d[i], false, dargs) != 0)
            return -1;
        R.nd++;
    }
    unsetenv("BERTHD_TICK_MS");
    /* Every cell's host, ready, in both berthds' replicas. */
    for (int i = 0; i < 2; i++) {
        bool ready = false;
        int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
        while (!ready && test_now_ms() < end) {
            test_http_t h = test_http_send(&R.d[i], "GET", "/berth/hosts", NULL, NULL);
            size_t n = 0, j;
            json_t *v;
            json_array_foreach(json_object_get(h.json, "value"), j, v)
                n += strcmp(json_string_value(json_object_get(v, "state")) ?: "", "ready") == 0;
            ready = h.status == 200 && n == NCELLS;
            test_http_free(&h);
            if (!ready)
                test_sleep_ms(100);
        }
        if (!ready) {
            fprintf(stderr, "berthd %d never saw the four hosts ready\n", i);
            test_berthd_dump(&R.d[i], 40);
            return -1;
        }
    }
    return 0;
}

static int region_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < R.nd; i++)
        assert_int_equal(test_berthd_stop(&R.d[i]), 0);
    for (int i = 0; i < R.nagents; i++)
        test_agent_stop(&R.agents[i]);
    berth_test_cluster_stop(R.cluster);
    return 0;
}

/* berthctl fsck of every cell, given the cluster's first node: the
 * library's records and berthd's agree. */
static void fsck_every_cell(void)
{
    const char *top = getenv("top_builddir");
    for (int i = 0; i < NCELLS; i++) {
        /* Through the cluster's first node: fsck follows MOVED to the
         * master of the cell's slot. */
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "%s/tools/berthctl/berthctl fsck --redis '%s' --cell '%s'",
                 top != NULL ? top : ".", R.cluster->url, R.cells[i]);
        int st = system(cmd);
        if (st != 0)
            fprintf(stderr, "fsck of cell %s: status %d\n", R.cells[i], st);
        assert_int_equal(st, 0);
    }
}

/* ---- tests ------------------------------------------------------------------------------------ */

/* Creates through both berthds spread over the cells; every route of a
 * group works through the berthd that did not create it; the lists merge
 * the cells, page by page. */
static void test_spread_and_routes(void **state)
{
    (void)state;
    char names[NGROUPS][16];
    char cells_used[NCELLS] = {0};
    /* A bad document is refused and leaves no directory entry. */
    char *bad = gpath("bad", NULL);
    test_http_t h = test_http_send(&R.d[0], "PUT", bad, "{\"location\": \"westeurope\"}", NULL);
    assert_int_equal(h.status, 400);
    test_http_free(&h);
    free(bad);
    char none[32];
    dir_cell("bad", none, sizeof none);
    assert_string_equal(none, "");
    for (int i = 0; i < NGROUPS; i++) {
        snprintf(names[i], sizeof names[i], "g%d", i);
        assert_int_equal(put_group(i % 2, names[i], 1), 201);
    }
    for (int i = 0; i < NGROUPS; i++) {
        int other = 1 - i % 2;
        /* GET through the other berthd. */
        char *p = gpath(names[i], NULL);
        h = test_http_send(&R.d[other], "GET", p, NULL, NULL);
        assert_int_equal(h.status, 200);
        assert_string_equal(json_string_value(json_object_get(h.json, "name")), names[i]);
        test_http_free(&h);
        free(p);
        /* The directory names the cell whose host runs it. */
        char cell[32];
        dir_cell(names[i], cell, sizeof cell);
        char *host = host_of(other, names[i]);
        char want[40];
        snprintf(want, sizeof want, "h-%s", cell);
        assert_string_equal(host, want);
        free(host);
        for (int c = 0; c < NCELLS; c++)
            if (strcmp(R.cells[c], cell) == 0)
                cells_used[c] = 1;
    }
    int spread = 0;
    for (int c = 0; c < NCELLS; c++)
        spread += cells_used[c];
    assert_true(spread >= 2);

    /* The resource group's list, 3 a page, through the other berthd's
     * nextLinks: every group once, in name order. */
    char path[512];
    snprintf(path, sizeof path,
             "/subscriptions/" SUB "/resourceGroups/rg/providers/"
             "Microsoft.ContainerInstance/containerGroups?api-version=" APIV "&$top=3");
    int seen = 0, pages = 0;
    char last[32] = "";
    while (path[0] != '\0' && pages < 10) {
        h = test_http_send(&R.d[pages % 2], "GET", path, NULL, NULL);
        assert_int_equal(h.status, 200);
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(h.json, "value"), j, v)
        {
            const char *name = json_string_value(json_object_get(v, "name"));
            assert_non_null(name);
            assert_true(strcmp(last, name) < 0);
            snprintf(last, sizeof last, "%s", name);
            seen++;
        }
        assert_true(json_array_size(json_object_get(h.json, "value")) <= 3);
        const char *next = json_string_value(json_object_get(h.json, "nextLink"));
        path[0] = '\0';
        if (next != NULL) {
            const char *rel = strstr(next, "/subscriptions/");
            assert_non_null(rel);
            snprintf(path, sizeof path, "%s", rel);
        }
        test_http_free(&h);
        pages++;
    }
    assert_int_equal(seen, NGROUPS);
    assert_true(pages >= 3);
    /* The subscription's list in one page. */
    h = test_http_send(&R.d[1], "GET",
                                   "/subscriptions/" SUB "/providers/"
                                   "Microsoft.ContainerInstance/containerGroups?api-version=" APIV,
                                   NULL, NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), NGROUPS);
    assert_null(json_object_get(h.json, "nextLink"));
    test_http_free(&h);
    /* Usages add the cells' counts. */
    h = test_http_send(&R.d[0], "GET",
                       "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/"
                       "westeurope/usages?api-version=" APIV,
                       NULL, NULL);
    assert_int_equal(h.status, 200);
    long long groups = -1;
    size_t j;
    json_t *v;
    json_array_foreach(json_object_get(h.json, "value"), j, v)
        if (strcmp(jpath(v, "name", "value", NULL), "ContainerGroups") == 0)
            groups = json_integer_value(json_object_get(v, "currentValue"));
    assert_int_equal(groups, NGROUPS);
    test_http_free(&h);

    fsck_every_cell();

    bool exec_done = false;
    /* Stop, start, logs and delete through the berthd that did not create
     * the group. */
    for (int i = 0; i < NGROUPS; i++) {
        int other = 1 - i % 2;
        assert_true(wait_state(other, names[i], "Running"));
        char *logs = gpath(names[i], "/containers/app/logs");
        test_http_t l = test_http_send(&R.d[other], "GET", logs, NULL, NULL);
        assert_int_equal(l.status, 200);
        assert_non_null(json_string_value(json_object_get(l.json, "content")));
        test_http_free(&l);
        free(logs);
        char cell[32];
        dir_cell(names[i], cell, sizeof cell);
        if (strcmp(cell, R.cells[0]) != 0 && !exec_done) {
            /* An exec session (POST .../exec, then its WebSocket) of a
             * group outside the home cell, through the other berthd. */
            assert_int_equal(exec_echo(&R.d[other], names[i]), 0);
            exec_done = true;
            /* A session made through one berthd, run (the POST form)
             * through the other: the cells are asked in turn. */
            char *exec = gpath(names[i], "/containers/app/exec");
            h = test_http_send(&R.d[i % 2], "POST", exec, "{\"command\": \"echo region\"}",
                               NULL);
            assert_int_equal(h.status, 200);
            const char *uri = json_string_value(json_object_get(h.json, "webSocketUri"));
            const char *pw = json_string_value(json_object_get(h.json, "password"));
            assert_non_null(uri);
            assert_non_null(pw);
            assert_non_null(strstr(uri, "/berth/exec/"));
            char route[256], body[256];
            snprintf(route, sizeof route, "%s", strstr(uri, "/berth/exec/"));
            snprintf(body, sizeof body, "{\"password\": \"%s\"}", pw);
            test_http_free(&h);
            free(exec);
            h = test_http_send(&R.d[other], "POST", route, body, NULL);
            assert_int_equal(h.status, 200);
            assert_non_null(strstr(json_string_value(json_object_get(h.json, "output")) ?: "",
                                   "echo region"));
            test_http_free(&h);
            h = test_http_send(&R.d[i % 2], "POST", route, body, NULL);   /* single use */
            assert_int_equal(h.status, 404);
            test_http_free(&h);
        }
        if (i < 2) {
            assert_int_equal(request(other, "POST", names[i], "/stop"), 204);
            assert_true(wait_state(i % 2, names[i], "Stopped"));
            assert_int_equal(request(other, "POST", names[i], "/start"), 202);
            assert_true(wait_state(i % 2, names[i], "Running"));
        }
        assert_int_equal(request(other, "DELETE", names[i], NULL), 200);
        assert_int_equal(request(i % 2, "GET", names[i], NULL), 404);
        dir_cell(names[i], cell, sizeof cell);
        assert_string_equal(cell, "");
    }
    assert_true(exec_done);
}

/* Every cell full: a create is refused after every cell was tried, and
 * leaves no directory entry; a cell with room again takes the next
 * create, whatever cell its key hashes to. */
static void test_full_cell_overflows(void **state)
{
    (void)state;
    char hosts[NCELLS][40];
    for (int i = 0; i < NCELLS; i++) {
        char name[16];
        snprintf(name, sizeof name, "big%d", i);
        /* A whole host each: a key hashed to a full cell passes on. */
        assert_int_equal(put_group(i % 2, name, 4), 201);
        char *host = host_of(1 - i % 2, name);
        snprintf(hosts[i], sizeof hosts[i], "%s", host);
        free(host);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(hosts[i], hosts[j]);
    }
    /* The metrics add the cells up: four hosts, all allocated; every
     * cell up. */
    for (int i = 0; i < NCELLS; i++) {
        char line[64];
        snprintf(line, sizeof line, "berthd_region_cell_up{cell=\"%s\"} ", R.cells[i]);
        assert_int_equal(metric(0, line), 1);
    }
    assert_int_equal(metric(1, "berthd_hosts{state=\"ready\"} "), NCELLS);
    assert_int_equal(metric(1, "berthd_allocated{dimension=\"millicores\",sku=\"none\"} "),
                     NCELLS * 4000);
    long long before = metric(0, "berthd_region_overflows_total ");
    assert_true(before >= 0);
    char *p = gpath("toomany", NULL);
    char *doc = gdoc(4);
    test_http_t h = test_http_send(&R.d[0], "PUT", p, doc, NULL);
    assert_int_equal(h.status, 409);
    assert_string_equal(jpath(h.json, "error", "code", NULL), "ResourceNotAvailable");
    test_http_free(&h);
    assert_int_equal(metric(0, "berthd_region_overflows_total ") - before, NCELLS - 1);
    char cell[32];
    dir_cell("toomany", cell, sizeof cell);
    assert_string_equal(cell, "");
    assert_int_equal(request(1, "GET", "toomany", NULL), 404);

    /* A dangling entry (as a create that failed with a 5xx leaves) names
     * a full cell holding no record of "ghost". */
    dir_set("ghost", hosts[0] + 2);
    dir_cell("ghost", cell, sizeof cell);
    assert_string_equal(cell, hosts[0] + 2);
    assert_int_equal(request(1, "GET", "ghost", NULL), 404);

    /* Room again in one cell (deleted through the other berthd): the
     * next create lands there whatever its key's cell, the dangling
     * entry re-pointed. */
    assert_int_equal(request(1, "DELETE", "big2", NULL), 200);
    free(p);
    p = gpath("ghost", NULL);
    bool placed = false;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (!placed && test_now_ms() < end) {
        h = test_http_send(&R.d[0], "PUT", p, doc, NULL);
        placed = h.status == 201;
        test_http_free(&h);
        if (!placed)
            test_sleep_ms(100);     /* the host's release reaches the replica */
    }
    assert_true(placed);
    char *host = host_of(1, "ghost");
    assert_string_equal(host, hosts[2]);
    free(host);
    dir_cell("ghost", cell, sizeof cell);
    assert_string_equal(cell, hosts[2] + 2);
    free(doc);
    free(p);
    for (int i = 0; i < NCELLS; i++) {
        char name[16];
        snprintf(name, sizeof name, "big%d", i);
        if (i != 2)
            assert_int_equal(request(i % 2, "DELETE", name, NULL), 200);
    }
    assert_int_equal(request(0, "DELETE", "ghost", NULL), 200);
}

/* A group made by a berthd serving its cell alone has no directory
 * entry; a berthd opening the region (--cell '*': every cell the cluster
 * holds) enters it, and every berthd then finds it. */
static void test_cell_groups_entered(void **state)
{
    (void)state;
    test_berthd_t alone, third;
    const char *aargs[] = {"--redis", R.cluster->url, "--cell", R.cells[1], NULL};
    assert_int_equal(test_berthd_start(&alone, false, aargs), 0);
    assert_int_equal(put_group_on(&alone, "old", 1), 201);
    assert_int_equal(test_berthd_stop(&alone), 0);
    char cell[32];
    dir_cell("old", cell, sizeof cell);
    assert_string_equal(cell, "");

    /* The third berthd serves every cell the cluster holds. */
    const char *rargs[] = {"--redis", R.cluster->url, "--cell", "*", NULL};
    assert_int_equal(test_berthd_start(&third, false, rargs), 0);
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (cell[0] == '\0' && test_now_ms() < end) {
        dir_cell("old", cell, sizeof cell);
        if (cell[0] == '\0')
            test_sleep_ms(50);
    }
    assert_string_equal(cell, R.cells[1]);
    test_http_t h = test_http_send(&third, "GET", "/metrics", NULL, NULL);
    assert_int_equal(h.status, 200);
    for (int i = 0; i < NCELLS; i++) {
        char line[64];
        snprintf(line, sizeof line, "berthd_region_hosts{cell=\"%s\"} ", R.cells[i]);
        assert_non_null(strstr(h.body, line));
    }
    test_http_free(&h);
    assert_int_equal(test_berthd_stop(&third), 0);
    assert_int_equal(request(0, "GET", "old", NULL), 200);
    assert_int_equal(request(1, "DELETE", "old", NULL), 200);
    dir_cell("old", cell, sizeof cell);
    assert_string_equal(cell, "");
}

/* A group made from a container group profile goes to the home cell,
 * where the profiles live, whatever cell its name hashes to. */
static void test_profile_group_home(void **state)
{
    (void)state;
    char name[16];
    name_elsewhere("fromprof", name, sizeof name);
    const char *prof = "/subscriptions/" SUB "/resourceGroups/rg/providers/"
                       "Microsoft.ContainerInstance/containerGroupProfiles/tmpl";
    char path[512], body[1024];
    snprintf(path, sizeof path, "%s?api-version=2025-09-01", prof);
    test_http_t h = test_http_send(
        &R.d[0], "PUT", path,
        "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
        "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"busybox:latest\", "
        "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}",
        NULL);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    snprintf(path, sizeof path,
             "/subscriptions/" SUB "/resourceGroups/rg/providers/"
             "Microsoft.ContainerInstance/containerGroups/%s?api-version=2025-09-01", name);
    snprintf(body, sizeof body,
             "{\"location\": \"westeurope\", \"properties\": {\"containerGroupProfile\": "
             "{\"id\": \"%s\", \"revision\": 1}}}", prof);
    h = test_http_send(&R.d[1], "PUT", path, body, NULL);
    if (h.status != 201)
        fprintf(stderr, "PUT %s: %ld %s\n", name, h.status, h.body);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    char cell[32];
    dir_cell(name, cell, sizeof cell);
    assert_string_equal(cell, R.cells[0]);
    assert_int_equal(request(0, "GET", name, NULL), 200);
    assert_int_equal(request(0, "DELETE", name, NULL), 200);
    snprintf(path, sizeof path, "%s?api-version=2025-09-01", prof);
    h = test_http_send(&R.d[1], "DELETE", path, NULL, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
}

/* Two berthds behind one address: an exec session made through one (its
 * webSocketUri names the other, as --public-url says) runs over the
 * other's WebSocket, which never routed the group. */
static void test_exec_session_elsewhere(void **state)
{
    (void)state;
    char name[16];
    name_elsewhere("wsx", name, sizeof name);
    char list[80];
    snprintf(list, sizeof list, "%s,%s,%s,%s", R.cells[0], R.cells[1], R.cells[2], R.cells[3]);
    test_berthd_t lb;
    const char *args[] = {"--redis", R.cluster->url, "--cell", list, "--public-url",
                          R.d[1].base_url, NULL};
    assert_int_equal(test_berthd_start(&lb, false, args), 0);
    assert_int_equal(put_group_on(&lb, name, 1), 201);
    char cell[32];
    dir_cell(name, cell, sizeof cell);
    assert_string_not_equal(cell, R.cells[0]);
    assert_true(wait_state(0, name, "Running"));
    /* berthctl through lb: the session's WebSocket goes to berthd 1. */
    assert_int_equal(exec_echo(&lb, name), 0);
    assert_int_equal(test_berthd_stop(&lb), 0);
    assert_int_equal(request(1, "DELETE", name, NULL), 200);
}

/* Every cell checks clean after the runs above. */
static void test_fsck_every_cell(void **state)
{
    (void)state;
    fsck_every_cell();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spread_and_routes),
        cmocka_unit_test(test_full_cell_overflows),
        cmocka_unit_test(test_cell_groups_entered),
        cmocka_unit_test(test_profile_group_home),
        cmocka_unit_test(test_exec_session_elsewhere),
        cmocka_unit_test(test_fsck_every_cell),
    };
    return cmocka_run_group_tests(tests, region_setup, region_teardown);
}
