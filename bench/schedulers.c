/*
 * schedulers.c: berth-bench's forked scheduler processes (see
 * schedulers.h).  A child opens its replica, says so on the `ready` pipe,
 * waits for the `go` pipe to close, commits its share with
 * berth_store_place_batch() and writes its report on the `report` pipe.
 *
 * It never touches a Redis it was not pointed at, never leaves a child
 * behind (a failed run kills and reaps them), and every wait is bounded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "schedulers.h"
#include "util.h"
#include "lib/spawn.h"

#define SCHEDULER_WAIT_MS 600000
#define SCHEDULERS_MAX 64

/* Contract: schedulers.h. */
int bench_replica_open(const char *url, const char *cell, uint64_t seed, uint32_t wait_replicas,
                       berth_engine_t **engine, berth_store_t **store)
{
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    eo.seed = seed;
    berth_error_t err;
    *engine = NULL;
    *store = NULL;
    if (berth_engine_new(&eo, engine, &err) != 0)
        return -1;
    for (size_t z = 0; z < 3; z++)
        berth_engine_zone_id(*engine, bench_workload_zones[z]);
    berth_store_options_t so;
    berth_store_options_init(&so);
    so.url = url;
    so.cell = cell;
    so.timeout_ms = 30000;
    so.wait_replicas = wait_replicas;
    so.wait_timeout_ms = 5000;
    int rc = berth_store_open(&so, *engine, store, &err);
    if (rc != 0) {
        fprintf(stderr, "berth-bench: opening cell %s at %s: %s\n", cell, url, err.message);
        berth_engine_free(*engine);
        *engine = NULL;
        return -1;
    }
    return 0;
}

/* Contract: schedulers.h. */
int bench_cell_hosts_put(const char *url, const char *cell, uint64_t seed, const workload_t *w,
                         size_t n)
{
    berth_engine_t *engine;
    berth_store_t *store;
    if (bench_replica_open(url, cell, seed, 0, &engine, &store) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        berth_error_t err;
        if (berth_store_host_put(store, &w->hosts[i], &err) != 0) {
            fprintf(stderr, "berth-bench: host %s: %s\n", w->hosts[i].name, err.message);
            rc = -1;
        }
    }
    berth_store_close(store);
    berth_engine_free(engine);
    return rc;
}

/* Waits (bounded) for a child; returns its exit status, or -1 when it died
 * of a signal or had to be killed after `wait_ms`. */
static int reap_child(pid_t pid, uint64_t wait_ms)
{
    int status = 0;
    int rc = berth__spawn_reap(pid, (int64_t)wait_ms, &status);
    if (rc < 0) {
        berth__spawn_stop(pid, SIGKILL, 0);
        return -1;
    }
    return rc == 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* One scheduler process (see the top of this file). */
static void scheduler_main(const scheduler_share_t *sh, size_t k, int ready, int go, int report)
    __attribute__((noreturn));
static void scheduler_main(const scheduler_share_t *sh, size_t k, int ready, int go, int report)
{
    alarm(SCHEDULER_WAIT_MS / 1000);
    scheduler_report_t rep = {0};
    rep.index = k;
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    if (bench_replica_open(sh->url, sh->cell, sh->seed, sh->wait_replicas, &engine, &store) != 0)
        rep.open_failed = 1;
    char byte = 'r';
    if (write(ready, &byte, 1) != 1)
        _exit(1);
    while (read(go, &byte, 1) < 0 && errno == EINTR) {
    }
    uint64_t t0 = bench_now_ns();
    size_t mine = rep.open_failed ? 0 : sh->count;
    const char **keys = malloc(sh->batch * sizeof *keys);
    berth_request_t *reqs = malloc(sh->batch * sizeof *reqs);
    int *results = malloc(sh->batch * sizeof *results);
    if (keys == NULL || reqs == NULL || results == NULL)
        _exit(1);
    for (size_t done = 0; done < mine;) {
        size_t n = mine - done < sh->batch ? mine - done : sh->batch;
        for (size_t j = 0; j < n; j++) {
            size_t i = sh->first + (done + j) * sh->stride;
            keys[j] = sh->w->keys[i];
            reqs[j] = sh->w->requests[i];
        }
        berth_error_t err;
        if (berth_store_place_batch(store, n, keys, reqs, NULL, results, &err) != 0) {
            fprintf(stderr, "berth-bench: scheduler of %s: %s\n", sh->cell, err.message);
            rep.failed += n;
        } else {
            for (size_t j = 0; j < n; j++) {
                if (results[j] == 0)
                    rep.committed++;
                else if (results[j] == BERTH_ENOSPC)
                    rep.rejected++;
                else
                    rep.failed++;
            }
        }
        done += n;
    }
    rep.ns = bench_now_ns() - t0;
    berth_store_close(store);
    berth_engine_free(engine);
    if (write(report, &rep, sizeof rep) != (ssize_t)sizeof rep)
        _exit(1);
    _exit(0);
}

/* Reads one record of `len` bytes from fd within SCHEDULER_WAIT_MS. */
static int read_bounded(int fd, void *buf, size_t len)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    return poll(&pfd, 1, SCHEDULER_WAIT_MS) > 0 && read(fd, buf, len) == (ssize_t)len ? 0 : -1;
}

/* Contract: schedulers.h. */
int bench_schedulers_run(const scheduler_share_t *shares, size_t n, scheduler_report_t *reports,
                         uint64_t *ns)
{
    if (n == 0 || n > SCHEDULERS_MAX)
        return -1;
    pid_t pids[SCHEDULERS_MAX] = {0};
    int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}; /* ready, go, report */
    int rc = -1;
    for (int p = 0; p < 3; p++)
        if (pipe(fds[p]) != 0)
            goto done;
    fflush(NULL);
    for (size_t k = 0; k < n; k++) {
        pids[k] = fork();
        if (pids[k] < 0)
            goto done;
        if (pids[k] == 0) {
            close(fds[0][0]);
            close(fds[1][1]);
            close(fds[2][0]);
            scheduler_main(&shares[k], k, fds[0][1], fds[1][0], fds[2][1]);
        }
    }
    close(fds[0][1]);
    fds[0][1] = -1;
    close(fds[1][0]);
    fds[1][0] = -1;
    close(fds[2][1]);
    fds[2][1] = -1;
    /* Every scheduler has loaded its replica before the clock starts. */
    for (size_t k = 0; k < n; k++) {
        char byte;
        if (read_bounded(fds[0][0], &byte, 1) != 0) {
            fputs("berth-bench: a scheduler did not get ready\n", stderr);
            goto done;
        }
    }
    uint64_t t0 = bench_now_ns();
    close(fds[1][1]);
    fds[1][1] = -1;
    /* Reports come in the order the schedulers end, each naming its share. */
    size_t got = 0;
    bool failed = false;
    memset(reports, 0, n * sizeof *reports);
    for (; got < n; got++) {
        scheduler_report_t rep;
        if (read_bounded(fds[2][0], &rep, sizeof rep) != 0 || rep.index >= n)
            break;
        reports[rep.index] = rep;
        failed = failed || rep.open_failed;
    }
    *ns = bench_now_ns() - t0;
    rc = got == n && !failed ? 0 : -1;
    if (rc != 0)
        fputs("berth-bench: not every scheduler reported\n", stderr);

done:
    for (int p = 0; p < 3; p++)
        for (int e = 0; e < 2; e++)
            if (fds[p][e] >= 0)
                close(fds[p][e]);
    for (size_t k = 0; k < n; k++) {
        if (pids[k] <= 0)
            continue;
        if (rc != 0)
            kill(pids[k], SIGKILL); /* a failed run: do not wait for the rest */
        if (reap_child(pids[k], SCHEDULER_WAIT_MS) != 0 && rc == 0)
            fprintf(stderr, "berth-bench: scheduler %zu failed\n", k);
    }
    return rc;
}
