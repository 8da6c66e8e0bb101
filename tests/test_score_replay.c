/*
 * test_score_replay.c: a small replay with arrivals and departures
 * (fixtures/replay-score.csv, a synthetic trace fixtures/replay-score-gen.py
 * made: most groups in the hosts' proportion, the rest out of it) on which
 * binpack's lexicographic best fit rejects more groups than first fit, and
 * binpack with the vector score (engine option vector_score) rejects no
 * more than first fit and fewer than the lexicographic score.  Counts
 * rejected groups only; never asserts on timings.
 *
 * The fixture's lines (CSV, '#' starts a comment):
 *   host,NAME,CORES,MEMORY_GIB
 *   group,ARRIVAL,DEPARTURE,CORES,MEMORY_GIB
 * Events run in time order, departures before arrivals at the same time;
 * a rejected group's departure is ignored.  BERTH_SCORE_REPLAY names
 * another file of the same form instead of the fixture.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth.h"

#define MAX_HOSTS 64
#define MAX_GROUPS 1024

typedef struct fixture {
    char names[MAX_HOSTS][16];
    uint32_t host_cores[MAX_HOSTS], host_gib[MAX_HOSTS];
    size_t nhosts;
    double arrive[MAX_GROUPS], depart[MAX_GROUPS];
    uint32_t cores[MAX_GROUPS], gib[MAX_GROUPS];
    size_t ngroups;
} fixture_t;

typedef struct event {
    double t;
    bool departure;
    uint32_t group;
} event_t;

static fixture_t fx;
static event_t events[2 * MAX_GROUPS];

static void load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        char name[16];
        unsigned c, g;
        double a, d;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "host,%15[^,],%u,%u", name, &c, &g) == 3) {
            assert_true(fx.nhosts < MAX_HOSTS);
            snprintf(fx.names[fx.nhosts], sizeof fx.names[0], "%s", name);
            fx.host_cores[fx.nhosts] = c;
            fx.host_gib[fx.nhosts++] = g;
        } else if (sscanf(line, "group,%lf,%lf,%u,%u", &a, &d, &c, &g) == 4) {
            assert_true(fx.ngroups < MAX_GROUPS);
            fx.arrive[fx.ngroups] = a;
            fx.depart[fx.ngroups] = d;
            fx.cores[fx.ngroups] = c;
            fx.gib[fx.ngroups++] = g;
        } else {
            fail_msg("%s: bad line: %s", path, line);
        }
    }
    fclose(f);
    assert_true(fx.nhosts > 0 && fx.ngroups > 0);
}

static int event_cmp(const void *a, const void *b)
{
    const event_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->departure != y->departure)
        return x->departure ? -1 : 1;
    return x->group < y->group ? -1 : x->group > y->group;
}

/* Replays the fixture on a new engine; returns the groups rejected. */
static unsigned replay(berth_policy_t policy, bool vector)
{
    berth_engine_options_t o;
    berth_engine_options_init(&o);
    o.policy = policy;
    o.vector_score = vector;
    o.limits.max_millicores = 1000u * 1000u;
    o.limits.max_memory_mib = 1024u * 1024u * 1024u;
    berth_engine_t *e = NULL;
    assert_int_equal(berth_engine_new(&o, &e, NULL), 0);
    for (size_t i = 0; i < fx.nhosts; i++) {
        berth_host_t h;
        memset(&h, 0, sizeof h);
        h.name = fx.names[i];
        h.cores = fx.host_cores[i];
        h.memory_mib = fx.host_gib[i] * 1024u;
        h.os = BERTH_OS_LINUX;
        berth_error_t err;
        if (berth_engine_host_add(e, &h, &err) != 0)
            fail_msg("host %s: %s", fx.names[i], err.message);
    }
    size_t n = 0;
    for (uint32_t g = 0; g < fx.ngroups; g++) {
        events[n++] = (event_t){fx.arrive[g], false, g};
        events[n++] = (event_t){fx.depart[g], true, g};
    }
    qsort(events, n, sizeof *events, event_cmp);
    static bool placed[MAX_GROUPS];
    unsigned rejected = 0;
    char key[16];
    for (size_t i = 0; i < n; i++) {
        uint32_t g = events[i].group;
        snprintf(key, sizeof key, "g%u", g);
        if (events[i].departure) {
            if (placed[g])
                assert_int_equal(berth_engine_group_release(e, key, NULL), 0);
            continue;
        }
        berth_request_t r;
        memset(&r, 0, sizeof r);
        r.os = BERTH_OS_LINUX;
        r.demand.millicores = fx.cores[g] * 1000u;
        r.demand.requested_millicores = r.demand.millicores;
        r.demand.memory_mib = fx.gib[g] * 1024u;
        int rc = berth_engine_request_place(e, key, &r, NULL, NULL);
        if (rc != 0 && rc != BERTH_ENOSPC)
            fail_msg("group %u: placement failed with %d", g, rc);
        placed[g] = rc == 0;
        rejected += rc != 0;
    }
    berth_engine_free(e);
    return rejected;
}

static void test_vector_score_wins_the_replay(void **state)
{
    (void)state;
    const char *path = getenv("BERTH_SCORE_REPLAY");
    char buf[1024];
    if (path == NULL) {
        snprintf(buf, sizeof buf, "%s/fixtures/replay-score.csv", BERTH_SRCDIR);
        path = buf;
    }
    load(path);
    unsigned binpack = replay(BERTH_POLICY_BINPACK, false);
    unsigned firstfit = replay(BERTH_POLICY_FIRSTFIT, false);
    unsigned vector = replay(BERTH_POLICY_BINPACK, true);
    printf("# %zu groups on %zu hosts rejected: binpack %u, firstfit %u, binpack-vector %u\n",
           fx.ngroups, fx.nhosts, binpack, firstfit, vector);
    assert_true(binpack > firstfit);
    assert_true(vector <= firstfit);
    assert_true(vector < binpack);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_score_wins_the_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
