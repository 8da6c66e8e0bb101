/*
 * test_store_concurrency.c: the Redis store under several scheduler
 * processes, crashes of a scheduler, crashes of Redis, and a Redis Cluster.
 *
 * Each scheduler is a forked process with its own engine and store on the
 * same cell; it places groups under keys of its own ("s<k>-g<i>") until the
 * cell is full and writes every key Redis acknowledged to a file of its own
 * (one write() per line, so a SIGKILL loses nothing already acknowledged).
 * The parent then loads the cell into a fresh replica and checks Berth's
 * promises: fsck clean, no host over capacity, every acknowledged key
 * present exactly once, the cell really full.
 *
 * Every test is bounded (alarm(), bounded waits); every child is reaped or
 * killed; every server and temporary directory is removed, also on a
 * timeout.  Nothing is written into the source tree.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "berth.h"
#include "redis-harness.h"

/* The test cell: HOSTS hosts of HOST_CORES cores; memory never binds. */
#define HOSTS 6
#define HOST_CORES 8
#define HOST_MEMORY_MIB 32768
#define GROUP_MEMORY_MIB_PER_CORE 1024

/* A scheduler stops after this many ENOSPC in a row for a 1-core group:
 * one could be a commit that lost max_retries conflicts, several cannot. */
#define FULL_STREAK 5

#define TEST_ALARM_SECONDS 120
#define CHILD_ALARM_SECONDS 90
#define CHILD_WAIT_MS 90000
#define MAX_CHILDREN 16
#define MAX_ACKS 4096

/* ---- process bookkeeping (for the timeout handler) ------------------------ */

static pid_t children[MAX_CHILDREN];
static char scratch_dir[64];

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void kill_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
    }
}

static void remove_scratch(void)
{
    if (scratch_dir[0] == '\0')
        return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", scratch_dir);
    scratch_dir[0] = '\0';
}

/* A test that overran its alarm: leave nothing behind, then fail. */
static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_store_concurrency: test timed out\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    kill_children();
    berth_test_redis_cleanup_all();
    remove_scratch();
    _exit(1);
}

static int setup(void **state)
{
    (void)state;
    snprintf(scratch_dir, sizeof scratch_dir, "/tmp/berth-conc-XXXXXX");
    if (mkdtemp(scratch_dir) == NULL) {
        scratch_dir[0] = '\0';
        return -1;
    }
    signal(SIGALRM, on_alarm);
    alarm(TEST_ALARM_SECONDS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    alarm(0);
    kill_children();
    remove_scratch();
    return 0;
}

static void track_child(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] == 0) {
            children[i] = pid;
            return;
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("more than %d children", MAX_CHILDREN);
}

/* Waits (bounded) for a tracked child; returns its exit status, or -1 when
 * it was killed by a signal or had to be killed after the bound. */
static int wait_child(pid_t pid)
{
    long long deadline = now_ms() + CHILD_WAIT_MS;
    int status = 0;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            break;
        if (got < 0 || now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            status = -1;
            break;
        }
        sleep_ms(5);
    }
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
    if (status != -1 && WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
        print_error("child %d died of signal %d\n", (int)pid, WTERMSIG(status));
    if (status == -1 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void kill_child(pid_t pid)
{
    kill(pid, SIGKILL);
    assert_int_equal(wait_child(pid), -1);
}

/* ---- the cell ----------------------------------------------------------------- */

static void request_for(berth_request_t *req, uint32_t cores)
{
    memset(req, 0, sizeof *req);
    req->demand.millicores = cores * 1000u;
    req->demand.requested_millicores = cores * 1000u;
    req->demand.memory_mib = cores * GROUP_MEMORY_MIB_PER_CORE;
    req->os = BERTH_OS_LINUX;
}

static berth_store_options_t store_options(const char *url, const char *cell)
{
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = url;
    o.cell = cell;
    o.timeout_ms = 2000;
    return o;
}

/* Puts `hosts` empty hosts of HOST_CORES cores into a new cell. */
static void cell_create(const char *url, const char *cell, int hosts)
{
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &engine, &err), 0);
    berth_store_options_t o = store_options(url, cell);
    int rc = berth_store_open(&o, engine, &store, &err);
    if (rc != 0)
        fail_msg("berth_store_open(%s, %s): %d %s", url, cell, rc, err.message);
    for (int i = 0; i < hosts; i++) {
        char name[32];
        snprintf(name, sizeof name, "h%d", i);
        berth_host_t h = { .name = name, .cores = HOST_CORES, .memory_mib = HOST_MEMORY_MIB,
                           .os = BERTH_OS_LINUX, .state = BERTH_HOST_READY };
        rc = berth_store_host_put(store, &h, &err);
        if (rc != 0)
            fail_msg("berth_store_host_put(%s): %d %s", name, rc, err.message);
    }
    berth_store_close(store);
    berth_engine_free(engine);
}

/* ---- a scheduler process ---------------------------------------------------------- */

typedef struct scheduler {
    const char *url;
    const char *cell;
    int id;                         /* keys are "s<id>-g<i>"                */
    unsigned pace_ms;               /* sleep between placements (0: none)   */
    long retry_io_ms;               /* retry a key after BERTH_EIO for this long; 0: exit */
    int wait_go;                    /* start placing only once SCRATCH/go exists */
} scheduler_t;

/* Child exit statuses. */
#define SCHED_FULL 0                /* stopped because the cell is full     */
#define SCHED_OPEN_FAILED 3
#define SCHED_UNEXPECTED 4
#define SCHED_IO_GAVE_UP 5

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line to the acknowledgement file, in one write() so that a SIGKILL
 * cannot leave half of it. */
static void ack_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ack_line(int fd, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0 && write(fd, line, (size_t)n) != n)
        _exit(SCHED_UNEXPECTED);
}

static void ack_path(char *buf, size_t cap, int id)
{
    snprintf(buf, cap, "%s/acks-%d", scratch_dir, id);
}

/* The scheduler process's whole life.  Lines: "L <groups>" once opened
 * (the groups its replica loaded), "A <key> <cores> <wall ms>" per
 * acknowledged placement, "E <wall ms> <code>" per failed attempt. */
static void scheduler_main(const scheduler_t *s) __attribute__((noreturn));
static void scheduler_main(const scheduler_t *s)
{
    alarm(CHILD_ALARM_SECONDS);
    signal(SIGALRM, SIG_DFL);
    /* SIGPIPE keeps its default action: the store itself must turn a Redis
     * that died under a connection into BERTH_EIO (test (d) relies on it). */
    char path[128];
    ack_path(path, sizeof path, s->id);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0)
        _exit(SCHED_UNEXPECTED);

    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    eo.seed = (uint64_t)s->id;
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    berth_error_t err;
    if (berth_engine_new(&eo, &engine, &err) != 0)
        _exit(SCHED_UNEXPECTED);
    berth_store_options_t o = store_options(s->url, s->cell);
    int rc = berth_store_open(&o, engine, &store, &err);
    if (rc != 0) {
        fprintf(stderr, "scheduler %d: open: %d %s\n", s->id, rc, err.message);
        _exit(SCHED_OPEN_FAILED);
    }
    ack_line(fd, "L %zu\n", berth_engine_group_count(engine));
    if (s->wait_go) {
        /* All schedulers open first, then race: otherwise the first could
         * fill the cell before the last one has connected. */
        char go[128];
        snprintf(go, sizeof go, "%s/go", scratch_dir);
        long long deadline = now_ms() + 30000;
        while (access(go, F_OK) != 0) {
            if (now_ms() >= deadline)
                _exit(SCHED_UNEXPECTED);
            sleep_ms(1);
        }
    }

    unsigned seed = (unsigned)s->id * 7919u + 1u;
    int ones = 0, streak = 0;
    for (int i = 0;; i++) {
        char key[64];
        snprintf(key, sizeof key, "s%d-g%d", s->id, i);
        /* Mixed sizes until one does not fit, then 1-core groups to fill
         * the last gaps. */
        uint32_t cores = ones ? 1u : 1u + (uint32_t)(rand_r(&seed) % 3);
        berth_request_t req;
        request_for(&req, cores);
        long long io_deadline = 0;
        for (;;) {
            rc = berth_store_place(store, key, &req, NULL, NULL, &err);
            if (rc != BERTH_EIO || s->retry_io_ms == 0)
                break;
            ack_line(fd, "E %lld %d\n", wall_ms(), rc);
            if (io_deadline == 0)
                io_deadline = now_ms() + s->retry_io_ms;
            else if (now_ms() >= io_deadline)
                _exit(SCHED_IO_GAVE_UP);
            sleep_ms(20);
        }
        if (rc == 0) {
            ack_line(fd, "A %s %u %lld\n", key, cores, wall_ms());
            streak = 0;
        } else if (rc == BERTH_ENOSPC) {
            if (!ones) {
                ones = 1;
            } else if (++streak >= FULL_STREAK) {
                break;
            }
        } else {
            fprintf(stderr, "scheduler %d: place %s: %d %s\n", s->id, key, rc, err.message);
            _exit(SCHED_UNEXPECTED);
        }
        if (s->pace_ms > 0)
            sleep_ms(s->pace_ms);
    }
    berth_store_close(store);
    berth_engine_free(engine);
    close(fd);
    _exit(SCHED_FULL);
}

static pid_t scheduler_start(const scheduler_t *s)
{
    /* Scenarios on several cells reuse ids: start each file afresh. */
    char path[128];
    ack_path(path, sizeof path, s->id);
    unlink(path);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        scheduler_main(s);
    track_child(pid);
    return pid;
}

/* ---- acknowledgements ------------------------------------------------------------ */

typedef struct ack {
    char key[64];
    uint32_t cores;
    long long at_ms;
} ack_t;

typedef struct acks {
    ack_t v[MAX_ACKS];
    size_t n;
    long loaded;                    /* the "L" line, -1 when absent         */
    size_t errors;                  /* "E" lines                            */
    long long error_first_ms, error_last_ms;
} acks_t;

/* Reads scheduler `id`'s file, appending its acknowledgements to *a. */
static void acks_read(acks_t *a, int id)
{
    char path[128], line[256];
    ack_path(path, sizeof path, id);
    FILE *f = fopen(path, "r");
    a->loaded = -1;
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        long long ms;
        int code;
        if (line[0] == 'L') {
            a->loaded = strtol(line + 2, NULL, 10);
        } else if (line[0] == 'E' && sscanf(line, "E %lld %d", &ms, &code) == 2) {
            if (a->errors++ == 0)
                a->error_first_ms = ms;
            a->error_last_ms = ms;
        } else if (line[0] == 'A') {
            assert_true(a->n < MAX_ACKS);
            ack_t *k = &a->v[a->n];
            if (sscanf(line, "A %63s %u %lld", k->key, &k->cores, &k->at_ms) == 3)
                a->n++;
        }
    }
    fclose(f);
}

/* Lines of scheduler `id`'s file starting with 'A' so far. */
static size_t acks_count(int id)
{
    char path[128], line[256];
    ack_path(path, sizeof path, id);
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += line[0] == 'A';
    fclose(f);
    return n;
}

/* Waits (bounded) until scheduler `id` has `n` acknowledgements. */
static void wait_acks(int id, size_t n)
{
    long long deadline = now_ms() + 30000;
    while (acks_count(id) < n) {
        if (now_ms() >= deadline)
            fail_msg("scheduler %d did not reach %zu acknowledgements", id, n);
        sleep_ms(2);
    }
}

/* ---- checking a cell ----------------------------------------------------------------- */

static void print_violation(const char *violation, void *data)
{
    (*(int *)data)++;
    print_error("fsck: %s\n", violation);
}

typedef struct check {
    int exact;                      /* groups in the cell == acknowledged   */
    int first_generation;           /* every acknowledged key at generation 1 */
    int full;                       /* no 1-core group fits anywhere        */
} check_t;

/* Loads the cell into a fresh replica and checks it against `a`. */
static void cell_check(const char *url, const char *cell, const acks_t *a, check_t c)
{
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &engine, &err), 0);
    berth_store_options_t o = store_options(url, cell);
    int rc = berth_store_open(&o, engine, &store, &err);
    if (rc != 0)
        fail_msg("check: berth_store_open(%s): %d %s", cell, rc, err.message);

    int printed = 0;
    int violations = berth_store_fsck(store, print_violation, &printed, &err);
    if (violations != 0)
        fail_msg("fsck of cell %s: %d (%s)", cell, violations, violations < 0 ? err.message : "");
    assert_int_equal(printed, 0);

    size_t hosts = berth_engine_host_count(engine), groups_on_hosts = 0;
    assert_int_equal(hosts, HOSTS);
    uint64_t used = 0;
    for (size_t i = 0; i < hosts; i++) {
        berth_host_t h;
        berth_host_usage_t u;
        assert_int_equal(berth_engine_host_at(engine, i, &h, &u), 0);
        if (u.millicores > h.cores * 1000u || u.memory_mib > h.memory_mib)
            fail_msg("host %s over capacity: %u/%u millicores, %u/%u MiB", h.name, u.millicores,
                     h.cores * 1000u, u.memory_mib, h.memory_mib);
        if (c.full && h.cores * 1000u - u.millicores >= 1000u)
            fail_msg("cell %s not full: host %s has %u millicores free", cell, h.name,
                     h.cores * 1000u - u.millicores);
        groups_on_hosts += u.groups;
        used += u.millicores;
    }
    size_t groups = berth_engine_group_count(engine);
    assert_int_equal(groups_on_hosts, groups);

    uint64_t acked_millicores = 0;
    for (size_t i = 0; i < a->n; i++) {
        const ack_t *k = &a->v[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->v[j].key, k->key) == 0)
                fail_msg("key %s acknowledged twice", k->key);
        berth_placement_t p;
        if (berth_engine_group_get(engine, k->key, &p) != 0)
            fail_msg("acknowledged key %s is not in cell %s", k->key, cell);
        assert_int_equal(p.demand.millicores, k->cores * 1000u);
        uint64_t generation = 0;
        rc = berth_store_group_read(store, k->key, NULL, &generation, &err);
        if (rc != 0)
            fail_msg("berth_store_group_read(%s): %d %s", k->key, rc, err.message);
        if (c.first_generation)
            assert_int_equal(generation, 1);
        else
            assert_true(generation >= 1);
        acked_millicores += p.demand.millicores;
    }
    if (c.exact) {
        assert_int_equal(groups, a->n);
        assert_int_equal(used, acked_millicores);
    } else {
        assert_true(groups >= a->n);
    }
    berth_store_close(store);
    berth_engine_free(engine);
}

/* ---- the scenarios, on one server or a cluster ------------------------------------ */

/* (a)/(b): `n` schedulers fill `cell` concurrently. */
static void run_fill(const char *url, const char *cell, int n)
{
    cell_create(url, cell, HOSTS);
    scheduler_t s[MAX_CHILDREN];
    pid_t pids[MAX_CHILDREN];
    char go[128];
    snprintf(go, sizeof go, "%s/go", scratch_dir);
    unlink(go);
    for (int k = 0; k < n; k++) {
        s[k] = (scheduler_t){ .url = url, .cell = cell, .id = k + 1, .wait_go = 1 };
        pids[k] = scheduler_start(&s[k]);
    }
    /* Every scheduler has opened (its "L" line) before any places. */
    long long deadline = now_ms() + 30000;
    for (int k = 0; k < n; k++) {
        static acks_t opened;
        for (;;) {
            memset(&opened, 0, sizeof opened);
            acks_read(&opened, k + 1);
            if (opened.loaded >= 0)
                break;
            if (now_ms() >= deadline)
                fail_msg("scheduler %d did not open the store", k + 1);
            sleep_ms(2);
        }
    }
    FILE *f = fopen(go, "w");
    assert_non_null(f);
    fclose(f);
    for (int k = 0; k < n; k++)
        assert_int_equal(wait_child(pids[k]), SCHED_FULL);
    static acks_t a;
    memset(&a, 0, sizeof a);
    for (int k = 0; k < n; k++)
        acks_read(&a, k + 1);
    assert_true(a.n > 0);
    cell_check(url, cell, &a, (check_t){ .exact = 1, .first_generation = 1, .full = 1 });
}

/* (c): a scheduler killed with SIGKILL mid-run, another resuming. */
static void run_kill_resume(const char *url, const char *cell, int first_id)
{
    cell_create(url, cell, HOSTS);
    scheduler_t victim = { .url = url, .cell = cell, .id = first_id, .pace_ms = 2 };
    pid_t pid = scheduler_start(&victim);
    wait_acks(first_id, 5);
    kill_child(pid);

    static acks_t before;
    memset(&before, 0, sizeof before);
    acks_read(&before, first_id);
    /* The cell must be sound right after the crash, before anyone resumes. */
    cell_check(url, cell, &before, (check_t){ .first_generation = 1 });

    scheduler_t heir = { .url = url, .cell = cell, .id = first_id + 1 };
    pid = scheduler_start(&heir);
    assert_int_equal(wait_child(pid), SCHED_FULL);

    static acks_t after;
    memset(&after, 0, sizeof after);
    acks_read(&after, first_id + 1);
    /* The heir's replica loaded at least everything acknowledged before. */
    assert_true(after.loaded >= (long)before.n);
    static acks_t all;
    memset(&all, 0, sizeof all);
    acks_read(&all, first_id);
    acks_read(&all, first_id + 1);
    cell_check(url, cell, &all, (check_t){ .first_generation = 1, .full = 1 });
}

static berth_test_redis_t *start_unix(berth_test_redis_aof_t aof)
{
    berth_test_redis_options_t o = { BERTH_TEST_REDIS_UNIX, aof, 0 };
    berth_test_redis_t *r = berth_test_redis_start(&o);
    if (r == NULL)
        fail_msg("cannot start redis-server");
    return r;
}

static void test_two_schedulers(void **state)
{
    (void)state;
    berth_test_redis_t *r = start_unix(BERTH_TEST_REDIS_AOF_OFF);
    run_fill(r->url, "two", 2);
    berth_test_redis_stop(r);
}

static void test_four_schedulers(void **state)
{
    (void)state;
    /* Over TCP, the way schedulers on other machines reach Redis. */
    berth_test_redis_options_t o = { BERTH_TEST_REDIS_TCP, BERTH_TEST_REDIS_AOF_OFF, 0 };
    berth_test_redis_t *r = berth_test_redis_start(&o);
    assert_non_null(r);
    run_fill(r->url, "four", 4);
    berth_test_redis_stop(r);
}

static void test_scheduler_killed(void **state)
{
    (void)state;
    berth_test_redis_t *r = start_unix(BERTH_TEST_REDIS_AOF_OFF);
    run_kill_resume(r->url, "killed", 1);
    berth_test_redis_stop(r);
}

/* (d): Redis (AOF, appendfsync always) SIGKILLed while a scheduler places,
 * then restarted from its AOF. */
static void test_redis_killed(void **state)
{
    (void)state;
    berth_test_redis_t *r = start_unix(BERTH_TEST_REDIS_AOF_ALWAYS);
    cell_create(r->url, "crash", HOSTS);
    scheduler_t s = { .url = r->url, .cell = "crash", .id = 1, .pace_ms = 3,
                      .retry_io_ms = 20000 };
    pid_t pid = scheduler_start(&s);
    wait_acks(1, 5);

    assert_int_equal(berth_test_redis_kill(r), 0);
    long long down_from = wall_ms();
    size_t acked_before_kill = acks_count(1);
    /* Long enough for the scheduler to try (and fail) several times. */
    sleep_ms(600);
    long long down_until = wall_ms();
    assert_int_equal(berth_test_redis_restart(r), 0);
    assert_int_equal(wait_child(pid), SCHED_FULL);

    static acks_t a;
    memset(&a, 0, sizeof a);
    acks_read(&a, 1);
    /* The store said so while Redis was down... */
    assert_true(a.errors > 0);
    assert_true(a.error_first_ms >= down_from - 50);
    /* ...and never claimed a commit Redis could not have taken.  The margin
     * covers a reply read just before the kill but stamped after it. */
    for (size_t i = 0; i < a.n; i++)
        if (a.v[i].at_ms > down_from + 50 && a.v[i].at_ms < down_until)
            fail_msg("%s acknowledged while Redis was down", a.v[i].key);
    /* ...and it went on after the restart. */
    assert_true(a.n > acked_before_kill);
    /* A retried commit whose first reply was lost is a redeploy: generation
     * 2 is fine, a missing key is not. */
    cell_check(r->url, "crash", &a, (check_t){ .full = 1 });
    berth_test_redis_stop(r);
}

/* (e): several cells on a three-master cluster, each cell's keys in one
 * slot; the fill and kill/resume scenarios on each. */
static void test_cluster(void **state)
{
    (void)state;
    berth_test_cluster_t *c = berth_test_cluster_start(3);
    if (c == NULL)
        fail_msg("cannot start a Redis Cluster");

    /* Cells whose hash tags land on different masters. */
    const char *names[] = { "east", "west", "north", "south", "alpha", "beta", "gamma", "delta" };
    const char *cells[3] = { NULL, NULL, NULL };
    berth_test_redis_t *owners[3] = { NULL, NULL, NULL };
    size_t ncells = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && ncells < 3; i++) {
        char key[96];
        snprintf(key, sizeof key, "berth:{%s}:hosts", names[i]);
        berth_test_redis_t *node = berth_test_cluster_node_for_key(c, key);
        assert_non_null(node);
        int seen = 0;
        for (size_t j = 0; j < ncells; j++)
            seen |= owners[j] == node;
        if (!seen) {
            cells[ncells] = names[i];
            owners[ncells++] = node;
        }
    }
    assert_true(ncells >= 2);

    for (size_t i = 0; i < ncells; i++) {
        char cell[64];
        snprintf(cell, sizeof cell, "%s", cells[i]);
        run_fill(c->url, cell, 2);
        snprintf(cell, sizeof cell, "%s-k", cells[i]);
        run_kill_resume(c->url, cell, 10);
    }

    /* Every key of every cell sits on its cell's node, in its cell's slot. */
    for (int n = 0; n < c->masters; n++) {
        redisContext *ctx = berth_test_redis_connect(c->nodes[n]);
        assert_non_null(ctx);
        redisReply *keys = redisCommand(ctx, "KEYS berth:*");
        assert_non_null(keys);
        assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
        for (size_t k = 0; k < keys->elements; k++) {
            const char *key = keys->element[k]->str;
            const char *open = strchr(key, '{'), *close = open ? strchr(open, '}') : NULL;
            if (open == NULL || close == NULL)
                fail_msg("key without a hash tag: %s", key);
            char tag_key[96];
            snprintf(tag_key, sizeof tag_key, "berth:%.*s:hosts", (int)(close - open + 1), open);
            redisReply *slot = redisCommand(ctx, "CLUSTER KEYSLOT %s", key);
            redisReply *tag_slot = redisCommand(ctx, "CLUSTER KEYSLOT %s", tag_key);
            assert_non_null(slot);
            assert_non_null(tag_slot);
            assert_int_equal(slot->integer, tag_slot->integer);
            freeReplyObject(slot);
            freeReplyObject(tag_slot);
            assert_ptr_equal(berth_test_cluster_node_for_key(c, key), c->nodes[n]);
        }
        freeReplyObject(keys);
        redisFree(ctx);
    }
    berth_test_cluster_stop(c);
}

/* berthctl fsck against a real server: clean -> 0; after a raw write that
 * puts a host over capacity -> 1 with the violation on stdout. */
static int run_berthctl(const char *const *argv, char *out, size_t cap)
{
    char path[256];
    const char *b = getenv("top_builddir");
    snprintf(path, sizeof path, "%s/tools/berthctl/berthctl", b != NULL ? b : ".");
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    track_child(pid);
    close(pipefd[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(pipefd[0], out + n, cap - n - 1)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(pipefd[0]);
    return wait_child(pid);
}

static void test_berthctl_fsck(void **state)
{
    (void)state;
    char path[256];
    const char *b = getenv("top_builddir");
    snprintf(path, sizeof path, "%s/tools/berthctl/berthctl", b != NULL ? b : ".");
    if (access(path, X_OK) != 0)
        skip();
    berth_test_redis_t *r = start_unix(BERTH_TEST_REDIS_AOF_OFF);
    run_fill(r->url, "ctl", 1);
    char out[8192];
    const char *argv[] = { "berthctl", "fsck", "--redis", r->url, "--cell", "ctl", NULL };
    assert_int_equal(run_berthctl(argv, out, sizeof out), 0);
    assert_string_equal(out, "");

    /* Unreachable Redis: a usage-class failure, not a verdict. */
    const char *argv_down[] = { "berthctl", "fsck", "--redis", "unix:///nonexistent/redis.sock",
                                "--cell", "ctl", NULL };
    assert_int_equal(run_berthctl(argv_down, out, sizeof out), 2);

    /* Corrupt h0's record: its usage says twice its capacity. */
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &engine, &err), 0);
    berth_store_options_t o = store_options(r->url, "ctl");
    assert_int_equal(berth_store_open(&o, engine, &store, &err), 0);
    berth_store_close(store);
    berth_engine_free(engine);
    redisContext *ctx = berth_test_redis_connect(r);
    assert_non_null(ctx);
    /* Keep the record's shape and change one number: Redis's own Lua
     * (cmsgpack) decodes it, sets used_mc past the host's 8 cores and
     * encodes it back. */
    redisReply *reply = redisCommand(
        ctx, "EVAL %s 1 %s %s",
        "local r = cmsgpack.unpack(redis.call('HGET', KEYS[1], ARGV[1])) "
        "if type(r) ~= 'table' or r.used_mc == nil then "
        "  return redis.error_reply('no used_mc member') end "
        "r.used_mc = 17000 "
        "redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack(r)) return 1",
        "berth:{ctl}:hosts", "h0");
    assert_non_null(reply);
    if (reply->type == REDIS_REPLY_ERROR)
        fail_msg("corrupting h0: %s", reply->str);
    freeReplyObject(reply);
    redisFree(ctx);

    assert_int_equal(run_berthctl(argv, out, sizeof out), 1);
    assert_non_null(strstr(out, "h0"));
    berth_test_redis_stop(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_schedulers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_four_schedulers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduler_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_berthctl_fsck, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
