/*
 * heartbeat.c: the heartbeat thread.
 *
 * The heartbeat has a thread of its own, with its own connection, so that
 * a long image pull or a slow runtime call does not let the host expire:
 * it renews the host's alive key every --heartbeat-ms for as long as the
 * loop keeps turning, and withholds it once the loop has not turned for
 * --stall-ms (a stuck runtime call), so that the cell moves the host's
 * groups away.  The thread touches nothing but its beat_t and the log; it
 * must never renew the heartbeat for a loop that has stalled, and never
 * take SIGTERM or SIGINT from the main thread.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "agent.h"

/* Tells the heartbeat thread that the loop is turning. */
void beat_turned(beat_t *b)
{
    atomic_store_explicit(&b->turned_ms, berth__clock_monotonic_ms(), memory_order_relaxed);
}

static void *beat_main(void *data)
{
    beat_t *b = data;
    bool withheld = false;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        pthread_mutex_unlock(&b->mu);
        int64_t idle = berth__clock_monotonic_ms() - atomic_load_explicit(&b->turned_ms, memory_order_relaxed);
        berth_error_t err;
        if (idle >= (int64_t)b->stall_ms) {
            if (!withheld)
                log_error(NULL, "the agent's loop has not turned for %" PRId64
                          " ms: heartbeat withheld until it does", idle);
            withheld = true;
        } else {
            if (withheld)
                log_info(NULL, "the agent's loop turns again: heartbeat resumed");
            withheld = false;
            if (berth_hostlink_heartbeat(b->link, b->ttl_ms, &err) != 0)
                log_warn(NULL, "heartbeat failed: %s", err.message);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += b->period_ms / 1000;
        until.tv_nsec += (long)(b->period_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&b->mu);
        while (!b->stop && pthread_cond_timedwait(&b->cv, &b->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Opens the thread's connection, renews the heartbeat once (so that the
 * host is alive before its first assignment) and starts the thread, with
 * SIGTERM and SIGINT left to the main thread.  Returns 0 or -1, logged. */
int beat_start(agent_t *a, const berth_store_options_t *so)
{
    beat_t *b = &a->beat;
    b->period_ms = a->o.heartbeat_ms;
    b->ttl_ms = a->o.ttl_ms;
    b->stall_ms = a->o.stall_ms;
    beat_turned(b);
    berth_error_t err;
    if (berth_hostlink_open(so, a->o.host, &b->link, &err) != 0) {
        log_error(NULL, "cannot reach the cell: %s", err.message);
        return -1;
    }
    if (berth_hostlink_heartbeat(b->link, b->ttl_ms, &err) != 0)
        log_warn(NULL, "heartbeat failed: %s", err.message);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&b->mu, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&b->thread, NULL, beat_main, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        log_error(NULL, "cannot start the heartbeat: %s", strerror(rc));
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        berth_hostlink_close(b->link);
        b->link = NULL;
        return -1;
    }
    b->started = true;
    return 0;
}

/* Stops and joins the heartbeat thread and closes its connection (the
 * alive key then expires by itself).  Safe when it never started. */
void beat_stop(beat_t *b)
{
    if (b->started) {
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        b->started = false;
    }
    berth_hostlink_close(b->link);
    b->link = NULL;
}
