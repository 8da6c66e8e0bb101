/*
 * store-outcome.h: waiting for one asynchronous store call's callback in
 * the store tests: the callback records its status (and error name), and
 * the test runs the event loop until it came.
 *
 * The wait is bounded and never judges a time: it only stops a test that
 * would otherwise hang.
 */
#ifndef BERTH_TEST_STORE_OUTCOME_H
#define BERTH_TEST_STORE_OUTCOME_H

#include <stdio.h>

#include <event2/event.h>

#include "../core/berth.h"
#include "lib/clock.h"

/* What a call's callback said. */
typedef struct test_outcome {
    int calls, status;
    char name[BERTH_ERROR_NAME_MAX];
    int quiet;                      /* nonzero: no line on stderr on failure */
} test_outcome_t;

/* A berth_store_done_cb for `data` a test_outcome_t: counts the call and
 * keeps its status and error name (a failure also printed unless quiet). */
static inline void test_outcome_record(int status, const berth_placement_t *placement,
                                       const berth_error_t *err, void *data)
{
    (void)placement;
    test_outcome_t *o = data;
    o->calls++;
    o->status = status;
    if (err != NULL && status != 0) {
        snprintf(o->name, sizeof o->name, "%s", err->name);
        if (!o->quiet)
            fprintf(stderr, "async call: %s: %s\n", err->name, err->message);
    }
}

static inline void test_outcome_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

/* Runs `base` in turns of at most 20 ms until o has its callback or
 * `wait_ms` passed.  Returns how many callbacks o had (1 expected). */
static inline int test_outcome_wait(struct event_base *base, const test_outcome_t *o,
                                    long wait_ms)
{
    struct event *t = evtimer_new(base, test_outcome_tick, NULL);
    if (t == NULL)
        return o->calls;
    long long end = berth__clock_monotonic_ms() + wait_ms;
    while (o->calls == 0 && berth__clock_monotonic_ms() < end) {
        struct timeval tv = {0, 20000};
        evtimer_add(t, &tv);
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(t);
    return o->calls;
}

#endif /* BERTH_TEST_STORE_OUTCOME_H */
