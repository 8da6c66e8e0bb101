/*
 * test_failover.c: a Redis Cluster master killed under load loses no
 * commit the store acknowledged, and the stores follow the cluster to the
 * promoted replica without being reopened.
 *
 * A local cluster of three masters with two replicas each (nine
 * redis-server processes on loopback ports): once a master is lost, its
 * promoted replica still has a replica to confirm a WAIT (with one replica
 * each, nothing could be acknowledged until a replica came back).  Two
 * cells whose slots sit on different masters; on each, a synchronous store (one placement, then a batch of
 * three, in turns) and an asynchronous store commit placements in a loop,
 * all with wait_replicas = 1, so that a success means a replica had the
 * commit.  Mid-run the master of the first cell is killed with SIGKILL;
 * the loop goes on while the cluster promotes its replica (calls fail with
 * BERTH_EIO meanwhile: such a commit may or may not be there).  Then:
 *
 *   - every store, never reopened, commits successfully again (the
 *     killed node stays dead: the stores find the promoted replica
 *     through the other nodes they know);
 *   - every placement any store acknowledged (status 0) is in its cell's
 *     group hash on the slot's master now, the promoted replica for the
 *     first cell;
 *   - berth_store_fsck finds nothing wrong in either cell (host usage equal
 *     to the sum of its groups, the log's sequence consistent).
 *
 * Before that, a URL listing several nodes (the first one dead) opens the
 * store, and lists with anything but redis:// nodes are refused.  After
 * it, berthd (--replicas 1) creates groups in a third cell while that
 * cell's master is killed: every create it answered 200 or 201 is in the
 * cell on the promoted replica, and fsck is clean.
 *
 * Every wait is bounded (the whole binary by TEST_SECONDS); no timing is
 * judged.  Every server is stopped by its pid (redis-harness.c).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "../core/berth.h"
#include "berthd-harness.h"
#include "lib/clock.h"
#include "lib/redis-server.h"
#include "redis-harness.h"
#include "store-outcome.h"

#define TEST_SECONDS 240            /* the whole binary, at most            */
#define WAIT_MS 2000u               /* the stores' wait for a replica       */
#define CELLS 2
#define BEFORE 40                   /* loop turns before the kill           */
#define AFTER_OK 10                 /* successes each store needs after it  */
#define LOOP_MS 60000               /* the loop after the kill, at most     */
#define MAX_ACKED 4096

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_failover: timed out\n";
    (void)!write(2, msg, sizeof msg - 1);
    berth_test_redis_cleanup_all();
    _exit(1);
}

/* One cell and its two writers. */
typedef struct cell {
    char name[32];
    char probe[64];                 /* a key in the cell's slot             */
    berth_engine_t *se, *ae;
    berth_store_t *s;
    berth_store_async_t *a;
    int sync_ok_after, async_ok_after; /* successes after the kill          */
    int failed;                     /* calls that failed (any time)         */
} cell_t;

typedef struct acked {
    int cell;
    char key[32];
} acked_t;

static acked_t acked[MAX_ACKED];
static int nacked;

static void ack(int cell, const char *key)
{
    assert_true(nacked < MAX_ACKED);
    acked[nacked].cell = cell;
    snprintf(acked[nacked].key, sizeof acked[nacked].key, "%s", key);
    nacked++;
}

static berth_request_t request(void)
{
    berth_request_t r;
    memset(&r, 0, sizeof r);
    r.demand.millicores = 1000;
    r.demand.requested_millicores = 1000;
    r.demand.memory_mib = 64;
    r.os = BERTH_OS_LINUX;
    return r;
}

/* Puts hosts h0 .. h<n-1> of `cores` cores and 256 GiB into the cell. */
static void put_hosts(berth_store_t *s, int n, uint32_t cores)
{
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "h%d", i);
        berth_host_t h;
        memset(&h, 0, sizeof h);
        h.name = name;
        h.cores = cores;
        h.memory_mib = 262144;
        h.os = BERTH_OS_LINUX;
        h.state = BERTH_HOST_READY;
        berth_error_t err;
        if (berth_store_host_put(s, &h, &err) != 0)
            fail_msg("host put: %s: %s", err.name, err.message);
    }
}

/* Two cell names whose slots are on different masters. */
static void pick_cells(const berth_test_cluster_t *c, cell_t *cells)
{
    const berth_test_redis_t *first = NULL;
    int found = 0;
    for (int i = 0; i < 200 && found < CELLS; i++) {
        char name[32], key[64];
        snprintf(name, sizeof name, "fo%d", i);
        snprintf(key, sizeof key, "berth:{%s}:meta", name);
        const berth_test_redis_t *m = berth_test_cluster_node_for_key(c, key);
        assert_non_null(m);
        if (found == 1 && m == first)
            continue;
        first = found == 0 ? m : first;
        snprintf(cells[found].name, sizeof cells[found].name, "%s", name);
        snprintf(cells[found].probe, sizeof cells[found].probe, "%s", key);
        found++;
    }
    assert_int_equal(found, CELLS);
}

static void open_cell(const berth_test_cluster_t *c, struct event_base *base, cell_t *cell)
{
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = c->url;
    o.cell = cell->name;
    o.timeout_ms = 2 * WAIT_MS;
    o.wait_replicas = 1;
    o.wait_timeout_ms = WAIT_MS;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &cell->se, &err), 0);
    if (berth_store_open(&o, cell->se, &cell->s, &err) != 0)
        fail_msg("open %s: %s: %s", cell->name, err.name, err.message);
    put_hosts(cell->s, 16, 128); /* room for every turn the loop may run */
    assert_int_equal(berth_engine_new(NULL, &cell->ae, &err), 0);
    if (berth_store_async_open(&o, cell->ae, base, &cell->a, &err) != 0)
        fail_msg("async open %s: %s: %s", cell->name, err.name, err.message);
}

/* ---- the asynchronous writer ------------------------------------------------ */

/* One turn of both writers on cell i: returns the number of failures. */
static int turn(struct event_base *base, cell_t *cells, int i, int n, bool killed)
{
    cell_t *cell = &cells[i];
    berth_request_t req = request();
    berth_error_t err;
    int failures = 0;
    char key[32];
    if (n % 2 == 0) {
        berth_placement_t p;
        snprintf(key, sizeof key, "s%d", n);
        int rc = berth_store_place(cell->s, key, &req, NULL, &p, &err);
        if (rc == 0) {
            ack(i, key);
            cell->sync_ok_after += killed;
        } else {
            if (rc != BERTH_EIO)
                fail_msg("place %s: %s: %s", key, err.name, err.message);
            failures++;
        }
    } else {
        char keys[3][32];
        const char *kp[3];
        berth_request_t reqs[3] = {req, req, req};
        int results[3];
        for (int k = 0; k < 3; k++) {
            snprintf(keys[k], sizeof keys[k], "b%d-%d", n, k);
            kp[k] = keys[k];
        }
        int rc = berth_store_place_batch(cell->s, 3, kp, reqs, NULL, results, &err);
        for (int k = 0; k < 3; k++) {
            if (rc == 0 && results[k] == 0) {
                ack(i, keys[k]);
            } else {
                /* not acknowledged: may or may not be there */
                failures++;
            }
        }
        cell->sync_ok_after += killed && rc == 0;
    }
    snprintf(key, sizeof key, "a%d", n);
    test_outcome_t o = {0};
    assert_int_equal(
        berth_store_async_place(cell->a, key, &req, NULL, test_outcome_record, &o, &err), 0);
    /* the store's own timeout answers every call within timeout_ms */
    assert_int_equal(test_outcome_wait(base, &o, 8 * WAIT_MS), 1);
    if (o.status == 0) {
        ack(i, key);
        cell->async_ok_after += killed;
    } else {
        assert_int_equal(o.status, BERTH_EIO);
        failures++;
    }
    cell->failed += failures;
    return failures;
}

static void count_violation(const char *violation, void *data)
{
    fprintf(stderr, "fsck: %s\n", violation);
    (*(int *)data)++;
}

static int setup(void **state)
{
    berth_test_cluster_t *c = berth_test_cluster_start_replicas(3, 2, BERTH_TEST_REDIS_AOF_OFF);
    if (c == NULL) {
        fprintf(stderr, "test_failover: no cluster of three masters with two replicas each\n");
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    berth_test_cluster_stop(*state);
    return 0;
}

/* A URL may list several nodes of one cluster: a dead one is passed over
 * at open; a list with anything but redis:// nodes is refused. */
static void test_url_list(void **state)
{
    berth_test_cluster_t *c = *state;
    int dead = berth__redis_free_port(false);
    assert_true(dead > 0);
    char url[512];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d,%s", dead, c->url);
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = url;
    o.cell = "fo-list";
    berth_engine_t *e;
    berth_store_t *s = NULL;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    if (berth_store_open(&o, e, &s, &err) != 0)
        fail_msg("open through %s: %s: %s", url, err.name, err.message);
    put_hosts(s, 1, 4);
    berth_store_close(s);
    berth_engine_free(e);
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0); /* an empty one again */

    static const char *const bad[] = {"redis://127.0.0.1:1,unix:///tmp/x.sock",
                                      "redis://127.0.0.1:1,redis://", ",,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = NULL;
        o.url = bad[i];
        assert_int_equal(berth_store_open(&o, e, &s, &err), BERTH_EINVAL);
        assert_string_equal(err.name, "InvalidStoreOptions");
        assert_string_equal(err.target, "url");
        assert_null(s);
    }
    berth_engine_free(e);
}

static void test_master_killed(void **state)
{
    berth_test_cluster_t *c = *state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    cell_t cells[CELLS];
    memset(cells, 0, sizeof cells);
    pick_cells(c, cells);
    for (int i = 0; i < CELLS; i++)
        open_cell(c, base, &cells[i]);

    for (int n = 0; n < BEFORE; n++)
        for (int i = 0; i < CELLS; i++)
            assert_int_equal(turn(base, cells, i, n, false), 0);

    /* The master of the first cell dies without a word. */
    berth_test_redis_t *old = berth_test_cluster_node_for_key(c, cells[0].probe);
    assert_non_null(old);
    assert_int_equal(berth_test_redis_kill(old), 0);

    /* The loop goes on through the election; the killed node stays dead,
     * so the stores must find the promoted replica by themselves. */
    bool done = false;
    long long end = berth__clock_monotonic_ms() + LOOP_MS;
    for (int n = BEFORE; !done; n++) {
        /* bounded: the stores must have found the new master by then */
        assert_true(n < BEFORE + MAX_ACKED / 8);
        assert_true(berth__clock_monotonic_ms() < end);
        int failures = 0;
        for (int i = 0; i < CELLS; i++)
            failures += turn(base, cells, i, n, true);
        if (failures > 0)
            berth__clock_sleep_ms(50); /* the cluster is still electing: give it a moment */
        done = true;
        for (int i = 0; i < CELLS; i++)
            done = done && cells[i].sync_ok_after >= AFTER_OK &&
                   cells[i].async_ok_after >= AFTER_OK;
    }

    /* The first cell is on the promoted replica now, the second where it was. */
    berth_test_redis_t *now = berth_test_cluster_wait_master(c, cells[0].probe, 30000);
    assert_non_null(now);
    assert_ptr_not_equal(now, old);
    assert_true(cells[0].failed > 0); /* the kill was felt */

    for (int i = 0; i < CELLS; i++) {
        berth_test_redis_t *m = berth_test_cluster_wait_master(c, cells[i].probe, 30000);
        assert_non_null(m);
        redisContext *ctx = berth_test_redis_connect(m);
        assert_non_null(ctx);
        int held = 0, want = 0;
        for (int k = 0; k < nacked; k++) {
            if (acked[k].cell != i)
                continue;
            want++;
            redisReply *r = redisCommand(ctx, "HEXISTS berth:{%s}:groups %s", cells[i].name,
                                         acked[k].key);
            assert_non_null(r);
            if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
                held++;
            else
                fprintf(stderr, "cell %s lost acknowledged group %s\n", cells[i].name,
                        acked[k].key);
            freeReplyObject(r);
        }
        redisFree(ctx);
        assert_true(want > 0);
        assert_int_equal(held, want);

        int violations = 0;
        berth_error_t err;
        assert_int_equal(berth_store_fsck(cells[i].s, count_violation, &violations, &err), 0);
        assert_int_equal(violations, 0);
    }

    for (int i = 0; i < CELLS; i++) {
        berth_store_async_close(cells[i].a);
        berth_engine_free(cells[i].ae);
        berth_store_close(cells[i].s);
        berth_engine_free(cells[i].se);
    }
    event_base_free(base);
}

/* ---- berthd ---------------------------------------------------------------------------------- */

#define SUB "0000-sub-1"
#define RG "rg"
#define BD_BEFORE 30                /* creates before the kill              */
#define BD_AFTER 30                 /* creates once the replica serves      */

/* PUT of group `name` through berthd: its HTTP status (0: no answer). */
static long create(const test_berthd_t *d, const char *name)
{
    char path[256], doc[512];
    snprintf(path, sizeof path,
             "/subscriptions/" SUB "/resourceGroups/" RG "/providers/"
             "Microsoft.ContainerInstance/containerGroups/%s?api-version=2023-05-01", name);
    snprintf(doc, sizeof doc,
             "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
             " \"containers\": [{\"name\": \"app\", \"properties\": {\"image\":"
             " \"busybox:latest\", \"resources\": {\"requests\": {\"cpu\": 1,"
             " \"memoryInGB\": 1}}}}]}}");
    test_http_t h = test_http_send(d, "PUT", path, doc, NULL);
    long status = h.status;
    if (status != 200 && status != 201)
        fprintf(stderr, "PUT %s: %ld %.300s\n", name, status, h.body);
    test_http_free(&h);
    return status;
}

/* berthd with --replicas 1, given the cell's master and then the other
 * nodes (--redis as a list), creating groups while that master is killed:
 * every create it answered 200 or 201 is in the cell on the promoted
 * replica, berthd answers creates again once the replica is promoted (it
 * follows the new master without a restart), and the cell passes fsck. */
static void test_berthd_creates(void **state)
{
    berth_test_cluster_t *c = *state;
    const char *cell = "fo-berthd";
    char probe[64];
    snprintf(probe, sizeof probe, "berth:{%s}:meta", cell);
    berth_test_redis_t *m = berth_test_cluster_wait_master(c, probe, 30000);
    assert_non_null(m);

    /* hosts, put as an operator would (c->url's node may be the one killed
     * by the test before: the store starts at the cell's master) */
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = m->url;
    o.cell = cell;
    berth_engine_t *e;
    berth_store_t *s;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    if (berth_store_open(&o, e, &s, &err) != 0)
        fail_msg("open: %s: %s", err.name, err.message);
    put_hosts(s, 4, 64);

    /* berthd is given the cell's master first, then every other node
     * still running: the list it falls back on when its node dies. */
    char seeds[2048];
    int at = snprintf(seeds, sizeof seeds, "%s", m->url);
    for (int i = 0; i < c->count; i++)
        if (c->nodes[i] != m && c->nodes[i]->pid > 0 && at < (int)sizeof seeds - 200)
            at += snprintf(seeds + at, sizeof seeds - (size_t)at, ",%s", c->nodes[i]->url);
    test_berthd_t d;
    const char *args[] = {"--redis", seeds, "--cell", cell, "--replicas", "1",
                          "--replica-wait-ms", "2000", NULL};
    assert_int_equal(test_berthd_start(&d, false, args), 0);
    char names[BD_BEFORE + BD_AFTER + 64][16];
    bool answered[BD_BEFORE + BD_AFTER + 64];
    int n = 0, after_ok = 0, served_ok = 0;
    for (; n < BD_BEFORE; n++) {
        snprintf(names[n], sizeof names[n], "g%d", n);
        long st = create(&d, names[n]);
        answered[n] = st == 200 || st == 201;
        assert_true(answered[n]); /* the cluster is whole: every create is answered */
    }
    assert_int_equal(berth_test_redis_kill(m), 0);
    /* Creates go on through the election and a while after it. */
    int served = 0;
    for (long long end = berth__clock_monotonic_ms() + LOOP_MS;
         served < BD_AFTER && n < (int)(sizeof answered / sizeof answered[0]) &&
         berth__clock_monotonic_ms() < end;
         n++) {
        /* the slot's owner in the cluster's view: the killed master until
         * its replica is promoted */
        berth_test_redis_t *owner = berth_test_cluster_wait_master(c, probe, 0);
        if (owner != NULL && owner != m && owner->pid > 0)
            served++;
        else
            berth__clock_sleep_ms(100); /* a create a tenth of a second until then */
        snprintf(names[n], sizeof names[n], "g%d", n);
        long st = create(&d, names[n]);
        answered[n] = st == 200 || st == 201;
        after_ok += answered[n];
        served_ok += answered[n] && served > 0;
    }
    assert_true(d.pid > 0 && kill(d.pid, 0) == 0); /* berthd is still there */
    fprintf(stderr, "berthd: %d creates answered 200/201 after the kill, of %d sent; %d of "
            "them once the replica served\n", after_ok, n - BD_BEFORE, served_ok);
    /* berthd followed the new master without a restart */
    if (served_ok == 0)
        test_berthd_dump(&d, 30);
    assert_true(served_ok > 0);

    berth_test_redis_t *now = berth_test_cluster_wait_master(c, probe, 30000);
    assert_non_null(now);
    redisContext *ctx = berth_test_redis_connect(now);
    assert_non_null(ctx);
    for (int i = 0; i < n; i++) {
        if (!answered[i])
            continue;
        redisReply *r = redisCommand(ctx, "HEXISTS berth:{%s}:groups " SUB "/" RG "/%s", cell,
                                     names[i]);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_INTEGER || r->integer != 1)
            fail_msg("group %s was answered %s but is not in the cell", names[i],
                     i < BD_BEFORE ? "before the kill" : "after the kill");
        freeReplyObject(r);
    }
    redisFree(ctx);
    test_berthd_stop(&d);
    int violations = 0;
    assert_int_equal(berth_store_fsck(s, count_violation, &violations, &err), 0);
    assert_int_equal(violations, 0);
    berth_store_close(s);
    berth_engine_free(e);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(TEST_SECONDS);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_list),
        cmocka_unit_test(test_master_killed),  /* kills the master of one cell */
        cmocka_unit_test(test_berthd_creates), /* and of another */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
