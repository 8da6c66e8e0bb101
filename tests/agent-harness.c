/*
 * agent-harness.c: berth-agent processes, a scheduler side and bounded
 * waits on instance views, for the agent tests (agent-harness.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent-harness.h"
#include "lib/clock.h"
#include "lib/spawn.h"

int64_t test_now_ms(void)
{
    return berth__clock_monotonic_ms();
}

void test_sleep_ms(int ms)
{
    berth__clock_sleep_ms(ms);
}

bool test_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static char secrets_key_path[64];
static pid_t secrets_key_owner;

/* At exit of the process that wrote it (not of a forked child). */
static void secrets_key_remove(void)
{
    if (getpid() == secrets_key_owner)
        unlink(secrets_key_path);
}

const char *test_secrets_key(void)
{
    if (secrets_key_path[0] != '\0')
        return secrets_key_path;
    char path[sizeof secrets_key_path];
    snprintf(path, sizeof path, "/tmp/berth-test-%d.key", (int)getpid());
    static const char key[] =
        "test 5f1c2a9e0b7d4e369a513c2d8e7f6a105f1c2a9e0b7d4e369a513c2d8e7f6a10\n";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, key, sizeof key - 1) != (ssize_t)(sizeof key - 1)) {
        fprintf(stderr, "agent-harness: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    close(fd);
    memcpy(secrets_key_path, path, sizeof path);
    secrets_key_owner = getpid();
    atexit(secrets_key_remove);
    return secrets_key_path;
}

bool test_args_have(const char *const *args, const char *option)
{
    for (size_t i = 0; args != NULL && args[i] != NULL; i++)
        if (strcmp(args[i], option) == 0)
            return true;
    return false;
}

int test_agent_start(test_agent_t *a, const char *url, const char *cell, const char *host,
                     const char *plugin, const char *config, const char *const *extra)
{
    const char *b = getenv("top_builddir");
    char prog[512];
    snprintf(prog, sizeof prog, "%s/tools/berth-agent/berth-agent", b != NULL ? b : ".");
    snprintf(a->host, sizeof a->host, "%s", host);
    snprintf(a->log_path, sizeof a->log_path, "/tmp/berth-agent-%d-%s.log", (int)getpid(), host);
    /* $BERTH_TEST_AGENT_WRAPPER (e.g. "valgrind --error-exitcode=9") runs
     * the agent under a checker: its words come first. */
    static char wrapper[512];
    const char *argv[80];
    size_t n = 0;
    const char *w = getenv("BERTH_TEST_AGENT_WRAPPER");
    if (w != NULL && w[0] != '\0') {
        snprintf(wrapper, sizeof wrapper, "%s", w);
        for (char *save = NULL, *tok = strtok_r(wrapper, " ", &save); tok != NULL && n < 16;
             tok = strtok_r(NULL, " ", &save))
            argv[n++] = tok;
    }
    const char *base[] = {prog, "--redis", url, "--cell", cell, "--host", host, "--plugin",
                          plugin, "--plugin-config", config != NULL ? config : "{}"};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        argv[n++] = base[i];
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 77; i++)
        argv[n++] = extra[i];
    if (!test_args_have(extra, "--secrets-key")) {
        const char *key = test_secrets_key();
        if (key == NULL)
            return -1;
        argv[n++] = "--secrets-key";
        argv[n++] = key;
    }
    argv[n] = NULL;
    /* stderr to the agent's log; it dies with the test process. */
    berth__spawn_options_t so = {.death_signal = SIGKILL, .log_path = a->log_path};
    char err[160];
    pid_t pid = berth__spawn_start((char *const *)argv, &so, err, sizeof err);
    if (pid < 0) {
        fprintf(stderr, "agent-harness: %s\n", err);
        return -1;
    }
    a->pid = pid;
    return 0;
}

static int reap(pid_t pid, int timeout_ms)
{
    int64_t end = test_now_ms() + test_deadline_ms(timeout_ms);
    int status;
    while (test_now_ms() < end) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r < 0)
            return -1;
        test_sleep_ms(20);
    }
    return -2;
}

int test_agent_stop(test_agent_t *a)
{
    if (a->pid <= 0)
        return -1;
    kill(a->pid, SIGTERM);
    int rc = reap(a->pid, 15000);
    if (rc == -2) {
        kill(a->pid, SIGKILL);
        rc = reap(a->pid, 5000);
        rc = -1;
    }
    a->pid = 0;
    return rc;
}

void test_agent_kill(test_agent_t *a)
{
    if (a->pid <= 0)
        return;
    kill(a->pid, SIGKILL);
    (void)reap(a->pid, 10000);
    a->pid = 0;
}

void test_agent_dump(const test_agent_t *a, int lines)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "tail -n %d '%s' >&2", lines, a->log_path);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log at %s)\n", a->log_path);
}

int test_sched_open(test_sched_t *s, const char *url, const char *cell)
{
    berth_error_t err;
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = url;
    o.cell = cell;
    s->store = NULL;
    if (berth_engine_new(NULL, &s->engine, &err) != 0)
        return -1;
    if (berth_store_open(&o, s->engine, &s->store, &err) != 0) {
        fprintf(stderr, "store: %s\n", err.message);
        berth_engine_free(s->engine);
        return -1;
    }
    return 0;
}

void test_sched_close(test_sched_t *s)
{
    berth_store_close(s->store);
    berth_engine_free(s->engine);
    s->store = NULL;
    s->engine = NULL;
}

bool test_sched_wait_host(test_sched_t *s, const char *name, int timeout_ms)
{
    int64_t end = test_now_ms() + test_deadline_ms(timeout_ms);
    while (test_now_ms() < end) {
        berth_host_t h;
        berth_host_usage_t u;
        if (berth_store_sync(s->store, NULL) == 0 &&
            berth_engine_host_get(s->engine, name, &h, &u) == 0 && h.state == BERTH_HOST_READY)
            return true;
        test_sleep_ms(50);
    }
    fprintf(stderr, "host %s never registered\n", name);
    return false;
}

int test_sched_place(test_sched_t *s, const char *key, const char *doc, berth_placement_t *out)
{
    berth_group_t *g = NULL;
    berth_error_t err;
    int rc = berth_group_parse(doc, strlen(doc), &g, &err);
    if (rc != 0) {
        fprintf(stderr, "document refused: %s at %s\n", err.message, err.target);
        return rc;
    }
    berth_request_t r;
    rc = berth_engine_group_request(s->engine, g, &r, &err);
    if (rc == 0)
        rc = berth_store_place(s->store, key, &r, doc, out, &err);
    if (rc != 0)
        fprintf(stderr, "place %s: %s\n", key, err.message);
    berth_group_free(g);
    return rc;
}

json_t *test_view(test_sched_t *s, const char *key)
{
    char *text = NULL;
    if (berth_store_view_read(s->store, key, &text, NULL) != 0)
        return NULL;
    json_t *v = json_loads(text, 0, NULL);
    berth_free(text);
    return v;
}

json_t *test_view_wait(test_sched_t *s, const char *key, test_view_pred pred, void *data,
                       int timeout_ms, const char *what)
{
    timeout_ms = test_deadline_ms(timeout_ms);
    int64_t end = test_now_ms() + timeout_ms;
    json_t *v = NULL;
    for (;;) {
        json_decref(v);
        v = test_view(s, key);
        if (pred(v, data))
            return v != NULL ? v : json_object();
        if (test_now_ms() >= end)
            break;
        test_sleep_ms(50);
    }
    char *text = v != NULL ? json_dumps(v, JSON_INDENT(1)) : NULL;
    fprintf(stderr, "timed out after %d ms waiting for %s: %s; last view: %s\n", timeout_ms,
            key, what, text != NULL ? text : "(none)");
    free(text);
    json_decref(v);
    return NULL;
}

json_t *test_view_container(json_t *view, const char *name)
{
    const char *lists[] = {"containers", "initContainers"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(view, lists[l]), i, x) {
            const char *n = json_string_value(json_object_get(x, "name"));
            if (n != NULL && strcmp(n, name) == 0)
                return x;
        }
    }
    return NULL;
}

const char *test_view_cstate(json_t *view, const char *name)
{
    json_t *c = test_view_container(view, name);
    return json_string_value(json_object_get(
        json_object_get(json_object_get(c, "instanceView"), "currentState"), "state"));
}

int test_view_restarts(json_t *view, const char *name)
{
    json_t *rc = json_object_get(json_object_get(test_view_container(view, name),
                                                 "instanceView"), "restartCount");
    return json_is_integer(rc) ? (int)json_integer_value(rc) : -1;
}

bool test_view_has_event(json_t *view, const char *name, const char *event,
                         const char *message_part)
{
    json_t *holder = name != NULL
        ? json_object_get(test_view_container(view, name), "instanceView")
        : json_object_get(view, "instanceView");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(holder, "events"), i, e) {
        const char *n = json_string_value(json_object_get(e, "name"));
        const char *m = json_string_value(json_object_get(e, "message"));
        if (n != NULL && strcmp(n, event) == 0 &&
            (message_part == NULL || (m != NULL && strstr(m, message_part) != NULL)))
            return true;
    }
    return false;
}

const char *test_view_group_state(json_t *view)
{
    return json_string_value(json_object_get(json_object_get(view, "instanceView"), "state"));
}

bool test_pred_running(json_t *view, void *data)
{
    const char *ps = json_string_value(json_object_get(view, "provisioningState"));
    const char *st = test_view_cstate(view, data);
    return ps != NULL && strcmp(ps, "Succeeded") == 0 && st != NULL &&
           strcmp(st, "Running") == 0;
}

bool test_pred_gone(json_t *view, void *data)
{
    return view == NULL;
}
