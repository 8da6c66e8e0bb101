/*
 * runc.c: Berth's runc runtime plugin.  It runs a host's container groups
 * as OCI bundles with the `runc` program, from image root filesystems that
 * are already unpacked on the host (there is no registry to pull from).
 *
 * A group of runtime id ID (common.h) is, on disk,
 *   <data_dir>/groups/ID/group.json        host, key, generation, digest and
 *                                          the containers in document order
 *   <data_dir>/groups/ID/sandbox/          the sandbox's bundle
 *   <data_dir>/groups/ID/init-<i>/         one bundle per init container
 *   <data_dir>/groups/ID/c-<i>/            one bundle per container
 *   <data_dir>/groups/ID/volumes/          emptyDir and gitRepo volumes
 * and, in runc's state directory, the containers "berth-ID-sandbox",
 * "berth-ID-init-<i>" and "berth-ID-c-<i>".  A container's bundle holds its
 * config.json (annotated with the io.berth.* labels) and what its
 * supervisor writes: `log`, `started`, `finished`, `exit` and `shim.pid`.
 * Nothing lives only in memory, so a fresh context (after the agent or the
 * plugin restarted) finds every group again from these files and
 * `runc state`.
 *
 * The sandbox is a runc container running `sleep` from the first
 * container's image with a new network namespace (runc brings its loopback
 * up); it is started at create and does nothing else.  Every container and
 * init container joins the sandbox's network namespace through
 * /proc/<sandbox pid>/ns/net, so the group's containers reach each other on
 * 127.0.0.1.  The group has no other address and publishes no port.
 *
 * Supervision.  A container starts under a detached supervisor ("shim"):
 * the caller forks, the child calls setsid() and forks again, and the
 * grandchild runs `runc run` in the foreground with its output on a pipe,
 * writes each line to the log prefixed with its RFC 3339 time, and, when
 * runc returns, records the exit code and the finish time and deletes what
 * runc left.  The caller does not stay: it only waits (bounded) until the
 * container runs or has already ended.  After fork() the supervisor uses
 * only async-signal-safe calls and memory prepared before the fork.
 *
 * Programs run with fork()/execvp() and an argv, never through a shell;
 * every wait is bounded.  The plugin never restarts a container by itself.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "berth-plugin.h"
#include "../common/common.h"
#include "../common/volumes.h"

#define RUNC_PATH_MAX 4096
#define RUNC_ID_MAX 64
#define RUNC_SUB_MAX 24                     /* "sandbox", "init-<i>", "c-<i>" */
#define RUNC_CMD_TIMEOUT_MS 30000           /* one runc subcommand            */
#define RUNC_EXEC_TIMEOUT_MS 120000         /* exec in a container            */
#define RUNC_START_WAIT_MS 15000            /* until a container runs         */
#define RUNC_SHIM_WAIT_MS 10000             /* a supervisor's last steps      */
#define RUNC_KILL_WAIT_MS 10000             /* after SIGKILL                  */
#define RUNC_OUTPUT_MAX (8u << 20)          /* captured output of a program   */
#define RUNC_LOG_READ_MAX (64u << 20)       /* the part of a log logs() reads */
#define RUNC_DIR_ENTRIES_MAX 100000         /* entries one directory scan reads */
#define RUNC_SHIM_NAME "berth-shim"
#define RUNC_TIME_PREFIX_LEN 25             /* "2024-01-02T03:04:05.678Z "    */
#define RUNC_SANDBOX_SLEEP "2147483647"

/* ---- the context ---------------------------------------------------------- */

typedef struct runc_ctx {
    char *host;
    char *runc;                 /* the runc program                          */
    char *root;                 /* runc --root                               */
    char *data_dir;
    char *images_dir;
    char *secret_dir;
    char *azure_file_root;      /* NULL: azureFile volumes are refused       */
    char *git;
    uint32_t stop_grace_s;
    volumes_config_t volumes;
} runc_ctx_t;

/* One container of a group as group.json records it. */
typedef struct runc_entry {
    char name[BERTH_NAME_MAX + 1];
    char sub[RUNC_SUB_MAX];     /* the bundle directory's name               */
    bool init;
} runc_entry_t;

/* A group as group.json records it. */
typedef struct runc_group {
    char id[PLUGIN_ID_LEN + 1];
    uint64_t generation;
    uint64_t digest;
    size_t n;
    runc_entry_t entries[BERTH_PLUGIN_CONTAINERS_MAX];
} runc_group_t;

/* ---- small helpers ---------------------------------------------------------- */

static bool path_fmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats into buf; false when the result did not fit. */
static bool path_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static bool dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reads at most cap-1 bytes of a small file into buf, NUL-terminated.
 * Returns the length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* Writes data to path through "<path>.tmp" and a rename, so that readers
 * see the old content or the new one.  Uses only async-signal-safe calls
 * (the supervisor calls it after fork()); tmp must hold the temporary
 * name's bytes.  Returns 0 or -errno. */
static int write_atomic(const char *path, const char *tmp, const char *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno ? errno : EIO;
            close(fd);
            unlink(tmp);
            return -e;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    return 0;
}

static int write_file(const char *path, const char *data)
{
    char tmp[RUNC_PATH_MAX];
    if (!path_fmt(tmp, sizeof tmp, "%s.tmp", path))
        return -ENAMETOOLONG;
    return write_atomic(path, tmp, data, strlen(data));
}

/* Reads a decimal integer file; false when missing or unparsable. */
static bool read_i64(const char *path, int64_t *out)
{
    char buf[64];
    if (read_small(path, buf, sizeof buf) <= 0)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || end == buf)
        return false;
    *out = v;
    return true;
}

/* Writes v in decimal to buf (at least 24 bytes); returns the length.
 * Async-signal-safe. */
static size_t fmt_i64(char *buf, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0 && n < sizeof tmp);
    size_t len = 0;
    if (v < 0)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

/* Closes every descriptor from `from` up.  Async-signal-safe. */
static void close_from(int from)
{
    if (close_range((unsigned)from, ~0u, 0) == 0)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = from; fd < max; fd++)
        close(fd);
}

/* ---- running programs --------------------------------------------------------- */

/* The exit status as a shell reports it: the code, or 128 + the signal. */
static int wait_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Waits for pid at most timeout_ms, then kills it with SIGKILL and reaps it.
 * Returns the exit status (wait_code()), or -1 when it timed out. */
static int wait_bounded(pid_t pid, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return wait_code(st);
        if (r < 0 && errno != EINTR)
            return -1;
        if (mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            return -1;
        }
        sleep_ms(5);
    }
}

/* Runs argv (argv[0] looked up in PATH, no shell) with stdin on /dev/null
 * and stdout and stderr together captured into a new NUL-terminated buffer
 * *out (free()) of *len bytes when out is not NULL, or discarded.  Waits at
 * most timeout_ms, then kills the program.  *code receives its exit status
 * (128 + signal when killed; 127 when it could not be executed; -1 on
 * timeout).  Returns 0 when the program ran, or -errno when it could not be
 * started (nothing is stored in *out then). */
static int run_argv(char *const argv[], int timeout_ms, char **out, size_t *len, int *code)
{
    int fds[2] = {-1, -1};
    if (out != NULL) {
        *out = NULL;
        if (pipe2(fds, O_CLOEXEC) != 0)
            return -errno;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        if (out != NULL) {
            close(fds[0]);
            close(fds[1]);
        }
        return -e;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0)
            dup2(null, 0);
        int w = out != NULL ? fds[1] : null;
        if (w >= 0) {
            dup2(w, 1);
            dup2(w, 2);
        }
        close_from(3);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (out == NULL) {
        int c = wait_bounded(pid, timeout_ms);
        *code = c;
        return 0;
    }
    close(fds[1]);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int64_t deadline = mono_ms() + timeout_ms;
    bool exited = false, eof = false, timed_out = false;
    int st = 0;
    /* Read until the program has exited and its output is drained; a
     * grandchild keeping the pipe open does not hold us past its exit. */
    while (!eof) {
        int64_t now = mono_ms();
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int wait = exited ? 0 : (int)(deadline - now < 20 ? deadline - now : 20);
        int pr = poll(&p, 1, wait);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr > 0) {
            char chunk[4096];
            ssize_t r = read(fds[0], chunk, sizeof chunk);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                eof = true;
                break;
            }
            if (buf != NULL && n + (size_t)r < RUNC_OUTPUT_MAX) {
                if (n + (size_t)r + 1 > cap) {
                    size_t ncap = cap;
                    while (n + (size_t)r + 1 > ncap)
                        ncap *= 2;
                    char *nb = realloc(buf, ncap);
                    if (nb == NULL) {
                        free(buf);
                        buf = NULL;
                    } else {
                        buf = nb;
                        cap = ncap;
                    }
                }
                if (buf != NULL) {
                    memcpy(buf + n, chunk, (size_t)r);
                    n += (size_t)r;
                }
            }
            continue;
        }
        if (exited)
            break;  /* exited and nothing more to read right now */
        if (!exited) {
            pid_t r = waitpid(pid, &st, WNOHANG);
            if (r == pid)
                exited = true;
        }
    }
    close(fds[0]);
    int c;
    if (timed_out) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        c = -1;
    } else if (exited) {
        c = wait_code(st);
    } else {
        int64_t left = deadline - mono_ms();
        c = wait_bounded(pid, left > 0 ? (int)left : 0);
    }
    if (buf == NULL)
        return -ENOMEM;
    buf[n] = '\0';
    *out = buf;
    if (len != NULL)
        *len = n;
    *code = c;
    return 0;
}

/* The last non-empty line of a program's output, for error messages. */
static void last_line(const char *text, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (text == NULL)
        return;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    size_t start = n;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    snprintf(buf, cap, "%.*s", (int)(n - start), text + start);
}

/* Runs `runc --root <root> <args...>` (args NULL-terminated, at most 16). */
static int runc_run(runc_ctx_t *ctx, const char *const *args, int timeout_ms, char **out,
                    size_t *len, int *code)
{
    char *argv[20];
    size_t n = 0;
    argv[n++] = ctx->runc;
    argv[n++] = (char *)"--root";
    argv[n++] = ctx->root;
    for (size_t i = 0; args[i] != NULL && n < 19; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return run_argv(argv, timeout_ms, out, len, code);
}

/* A runc container's state as `runc state` reports it. */
typedef enum runc_state {
    RUNC_ABSENT = 0,
    RUNC_CREATED,
    RUNC_RUNNING,
    RUNC_PAUSED,
    RUNC_STOPPED
} runc_state_t;

/* Asks runc for container rid's state and, when it exists, its pid.
 * Returns 0, or BERTH_EIO ("RuntimeUnavailable") when runc cannot run. */
static int runc_state_get(runc_ctx_t *ctx, const char *rid, runc_state_t *state, int *pid,
                          berth_error_t *err)
{
    *state = RUNC_ABSENT;
    if (pid != NULL)
        *pid = 0;
    const char *args[] = {"state", rid, NULL};
    char *out = NULL;
    int code = 0;
    int rc = runc_run(ctx, args, RUNC_CMD_TIMEOUT_MS, &out, NULL, &code);
    if (rc != 0 || code == 127 || code < 0) {
        free(out);
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                               "cannot run %s state %s (%s)", ctx->runc, rid,
                               rc != 0 ? strerror(-rc) : code < 0 ? "timed out" : "not found");
    }
    if (code != 0) {
        free(out);
        return 0;  /* "container does not exist" */
    }
    const char *brace = strchr(out, '{');
    json_t *j = brace ? json_loads(brace, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    free(out);
    if (j == NULL)
        return 0;
    const char *s = json_string_value(json_object_get(j, "status"));
    if (s == NULL)
        *state = RUNC_ABSENT;
    else if (strcmp(s, "running") == 0)
        *state = RUNC_RUNNING;
    else if (strcmp(s, "created") == 0 || strcmp(s, "creating") == 0)
        *state = RUNC_CREATED;
    else if (strcmp(s, "paused") == 0 || strcmp(s, "pausing") == 0)
        *state = RUNC_PAUSED;
    else
        *state = RUNC_STOPPED;
    if (pid != NULL)
        *pid = (int)json_integer_value(json_object_get(j, "pid"));
    json_decref(j);
    return 0;
}

/* Runs `runc <verb> ...` for its effect, ignoring its exit status. */
static void runc_quiet(runc_ctx_t *ctx, const char *const *args, int timeout_ms)
{
    char *out = NULL;
    int code = 0;
    if (runc_run(ctx, args, timeout_ms, &out, NULL, &code) == 0)
        free(out);
}

/* ---- names and paths -------------------------------------------------------- */

static bool group_dir(const runc_ctx_t *ctx, const char *id, char *buf, size_t cap)
{
    return path_fmt(buf, cap, "%s/groups/%s", ctx->data_dir, id);
}

static bool bundle_file(const runc_ctx_t *ctx, const char *id, const char *sub,
                        const char *file, char *buf, size_t cap)
{
    if (file == NULL)
        return path_fmt(buf, cap, "%s/groups/%s/%s", ctx->data_dir, id, sub);
    return path_fmt(buf, cap, "%s/groups/%s/%s/%s", ctx->data_dir, id, sub, file);
}

static void runc_id(const char *id, const char *sub, char rid[RUNC_ID_MAX])
{
    snprintf(rid, RUNC_ID_MAX, "berth-%s-%s", id, sub);
}

/* The directory of image "name[:tag]" under images_dir: '/', ':' and '@'
 * become '_', and a name without a tag means ":latest".  False when the
 * image name is empty or the path does not fit. */
static bool image_dir(const runc_ctx_t *ctx, const char *image, char *buf, size_t cap)
{
    if (image == NULL || image[0] == '\0' || strlen(image) > 1024)
        return false;
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(slash ? slash : image, ':');
    bool tagged = colon != NULL || strchr(image, '@') != NULL;
    char name[1100];
    snprintf(name, sizeof name, "%s%s", image, tagged ? "" : ":latest");
    for (char *p = name; *p != '\0'; p++)
        if (*p == '/' || *p == ':' || *p == '@')
            *p = '_';
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return path_fmt(buf, cap, "%s/%s", ctx->images_dir, name);
}

static bool image_rootfs(const runc_ctx_t *ctx, const char *image, char *buf, size_t cap)
{
    char dir[RUNC_PATH_MAX];
    return image_dir(ctx, image, dir, sizeof dir) && path_fmt(buf, cap, "%s/rootfs", dir);
}

/* ---- group.json --------------------------------------------------------------- */

/* Loads group.json of group id into *g; checks that it belongs to host and
 * key (key NULL: any key of host, stored into key_out when not NULL).
 * Returns true when the group exists for them. */
static bool group_load(const runc_ctx_t *ctx, const char *id, const char *key, runc_group_t *g,
                       char **key_out)
{
    char path[RUNC_PATH_MAX];
    if (!path_fmt(path, sizeof path, "%s/groups/%s/group.json", ctx->data_dir, id))
        return false;
    json_t *j = json_load_file(path, 0, NULL);
    if (j == NULL)
        return false;
    bool ok = false;
    const char *host = json_string_value(json_object_get(j, "host"));
    const char *k = json_string_value(json_object_get(j, "key"));
    const char *gen = json_string_value(json_object_get(j, "generation"));
    const char *dig = json_string_value(json_object_get(j, "digest"));
    json_t *cs = json_object_get(j, "containers");
    if (host == NULL || k == NULL || gen == NULL || dig == NULL || !json_is_array(cs) ||
        strcmp(host, ctx->host) != 0 || (key != NULL && strcmp(k, key) != 0) ||
        json_array_size(cs) > BERTH_PLUGIN_CONTAINERS_MAX)
        goto done;
    memset(g, 0, sizeof *g);
    snprintf(g->id, sizeof g->id, "%s", id);
    g->generation = strtoull(gen, NULL, 10);
    g->digest = strtoull(dig, NULL, 16);
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *sub = json_string_value(json_object_get(c, "bundle"));
        const char *role = json_string_value(json_object_get(c, "role"));
        if (name == NULL || sub == NULL || role == NULL)
            goto done;
        runc_entry_t *e = &g->entries[g->n++];
        snprintf(e->name, sizeof e->name, "%s", name);
        snprintf(e->sub, sizeof e->sub, "%s", sub);
        e->init = strcmp(role, "init") == 0;
    }
    if (key_out != NULL) {
        *key_out = strdup(k);
        if (*key_out == NULL)
            goto done;
    }
    ok = true;
done:
    json_decref(j);
    return ok;
}

/* Finds the group of `key` on this host; BERTH_ENOENT when there is none. */
static int group_find(runc_ctx_t *ctx, const char *key, runc_group_t *g, berth_error_t *err)
{
    if (key == NULL || key[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "key", "no group key");
    char id[PLUGIN_ID_LEN + 1];
    plugin_group_id(ctx->host, key, id);
    if (!group_load(ctx, id, key, g, NULL))
        return berth_error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                               "the runtime holds no group '%s' on host '%s'", key, ctx->host);
    return 0;
}

static const runc_entry_t *entry_find(const runc_group_t *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->entries[i].name, name) == 0)
            return &g->entries[i];
    return NULL;
}

/* ---- the supervisor ------------------------------------------------------------ */

/* Everything the supervisor needs, prepared before fork(). */
typedef struct shim_plan {
    char *run_argv[10];
    char *delete_argv[8];
    char rid[RUNC_ID_MAX];
    char bundle[RUNC_PATH_MAX];
    char log[RUNC_PATH_MAX];
    char exit_file[RUNC_PATH_MAX];
    char exit_tmp[RUNC_PATH_MAX];
    char finished[RUNC_PATH_MAX];
    char finished_tmp[RUNC_PATH_MAX];
    char pid_file[RUNC_PATH_MAX];
    char pid_tmp[RUNC_PATH_MAX];
} shim_plan_t;

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* Writes the current time as "YYYY-MM-DDTHH:MM:SS.mmmZ " (RUNC_TIME_PREFIX_LEN
 * bytes) to buf.  Async-signal-safe (no locale, no time zone). */
static void shim_time_prefix(char *buf)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t secs = ts.tv_sec;
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    /* Howard Hinnant's civil_from_days. */
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    unsigned yy = (unsigned)(y < 0 ? 0 : y > 9999 ? 9999 : y);
    put2(buf, yy / 100);
    put2(buf + 2, yy % 100);
    buf[4] = '-';
    put2(buf + 5, m);
    buf[7] = '-';
    put2(buf + 8, d);
    buf[10] = 'T';
    put2(buf + 11, (unsigned)(rem / 3600));
    buf[13] = ':';
    put2(buf + 14, (unsigned)(rem / 60 % 60));
    buf[16] = ':';
    put2(buf + 17, (unsigned)(rem % 60));
    buf[19] = '.';
    buf[20] = (char)('0' + ms / 100);
    put2(buf + 21, ms % 100);
    buf[23] = 'Z';
    buf[24] = ' ';
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* The supervisor: runs in the grandchild, never returns. */
static __attribute__((noreturn)) void shim_main(const shim_plan_t *plan)
{
    prctl(PR_SET_NAME, RUNC_SHIM_NAME, 0, 0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);   /* the caller may ignore it; we wait for runc */
    close_from(0);
    int null = open("/dev/null", O_RDWR);   /* fd 0 */
    if (null != 0)
        _exit(1);
    dup2(0, 1);
    dup2(0, 2);
    int logfd = open(plan->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        _exit(1);
    pid_t child = fork();
    if (child == 0) {
        signal(SIGPIPE, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        execvp(plan->run_argv[0], plan->run_argv);
        static const char msg[] = "berth: cannot execute the runc program\n";
        write_all(2, msg, sizeof msg - 1);
        _exit(127);
    }
    close(fds[1]);
    int code = 127;
    if (child > 0) {
        /* Copy the output to the log, each line prefixed with its time. */
        bool line_start = true;
        char buf[4096];
        for (;;) {
            ssize_t r = read(fds[0], buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            if (logfd < 0)
                continue;
            ssize_t i = 0;
            while (i < r) {
                if (line_start) {
                    char prefix[RUNC_TIME_PREFIX_LEN];
                    shim_time_prefix(prefix);
                    write_all(logfd, prefix, sizeof prefix);
                    line_start = false;
                }
                const char *nl = memchr(buf + i, '\n', (size_t)(r - i));
                ssize_t end = nl ? (ssize_t)(nl - buf) + 1 : r;
                write_all(logfd, buf + i, (size_t)(end - i));
                if (nl != NULL)
                    line_start = true;
                i = end;
            }
        }
        if (!line_start && logfd >= 0)
            write_all(logfd, "\n", 1);
        int st;
        while (waitpid(child, &st, 0) < 0) {
            if (errno != EINTR) {
                st = -1;
                break;
            }
        }
        code = st == -1 ? 255 : wait_code(st);
    }
    close(fds[0]);
    /* `runc run` deletes the container itself; this covers a runc that was
     * killed before it could. */
    pid_t del = fork();
    if (del == 0) {
        execvp(plan->delete_argv[0], plan->delete_argv);
        _exit(127);
    }
    if (del > 0)
        wait_bounded(del, RUNC_CMD_TIMEOUT_MS);
    char num[32];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t n = fmt_i64(num, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    num[n++] = '\n';
    write_atomic(plan->finished, plan->finished_tmp, num, n);
    n = fmt_i64(num, code);
    num[n++] = '\n';
    write_atomic(plan->exit_file, plan->exit_tmp, num, n);
    if (logfd >= 0)
        close(logfd);
    _exit(0);
}

/* Starts the supervisor of bundle `sub` detached from the caller: the
 * caller's child calls setsid() and forks the supervisor, records its pid
 * in shim.pid and exits at once.  Returns 0 or -errno. */
static int shim_spawn(runc_ctx_t *ctx, const char *id, const char *sub)
{
    shim_plan_t *plan = calloc(1, sizeof *plan);
    if (plan == NULL)
        return -ENOMEM;
    runc_id(id, sub, plan->rid);
    bool ok = bundle_file(ctx, id, sub, NULL, plan->bundle, sizeof plan->bundle) &&
              bundle_file(ctx, id, sub, "log", plan->log, sizeof plan->log) &&
              bundle_file(ctx, id, sub, "exit", plan->exit_file, sizeof plan->exit_file) &&
              bundle_file(ctx, id, sub, "exit.tmp", plan->exit_tmp, sizeof plan->exit_tmp) &&
              bundle_file(ctx, id, sub, "finished", plan->finished, sizeof plan->finished) &&
              bundle_file(ctx, id, sub, "finished.tmp", plan->finished_tmp,
                          sizeof plan->finished_tmp) &&
              bundle_file(ctx, id, sub, "shim.pid", plan->pid_file, sizeof plan->pid_file) &&
              bundle_file(ctx, id, sub, "shim.pid.tmp", plan->pid_tmp, sizeof plan->pid_tmp);
    if (!ok) {
        free(plan);
        return -ENAMETOOLONG;
    }
    char **a = plan->run_argv;
    a[0] = ctx->runc;
    a[1] = (char *)"--root";
    a[2] = ctx->root;
    a[3] = (char *)"run";
    a[4] = (char *)"--bundle";
    a[5] = plan->bundle;
    a[6] = plan->rid;
    a[7] = NULL;
    char **d = plan->delete_argv;
    d[0] = ctx->runc;
    d[1] = (char *)"--root";
    d[2] = ctx->root;
    d[3] = (char *)"delete";
    d[4] = plan->rid;
    d[5] = NULL;
    unlink(plan->pid_file);
    pid_t a_pid = fork();
    if (a_pid < 0) {
        int e = errno;
        free(plan);
        return -e;
    }
    if (a_pid == 0) {
        setsid();
        pid_t b = fork();
        if (b == 0)
            shim_main(plan);
        if (b < 0)
            _exit(1);
        char num[32];
        size_t n = fmt_i64(num, b);
        num[n++] = '\n';
        write_atomic(plan->pid_file, plan->pid_tmp, num, n);
        _exit(0);
    }
    /* The child writes shim.pid once the supervisor exists: that file,
     * not the child's exit status, says whether the supervisor started. */
    wait_bounded(a_pid, RUNC_CMD_TIMEOUT_MS);
    bool started = file_exists(plan->pid_file);
    free(plan);
    return started ? 0 : -ECHILD;
}

/* Whether the supervisor recorded for bundle `sub` is still at work (alive
 * and not a zombie). */
static bool shim_alive(const runc_ctx_t *ctx, const char *id, const char *sub)
{
    char path[RUNC_PATH_MAX];
    int64_t pid;
    if (!bundle_file(ctx, id, sub, "shim.pid", path, sizeof path) || !read_i64(path, &pid) ||
        pid <= 1)
        return false;
    char stat_path[64], buf[512];
    snprintf(stat_path, sizeof stat_path, "/proc/%" PRId64 "/stat", pid);
    if (read_small(stat_path, buf, sizeof buf) <= 0)
        return false;
    /* "pid (comm) S ...": the name must be the supervisor's, the state not Z/X. */
    char *open_paren = strchr(buf, '(');
    char *close_paren = strrchr(buf, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren)
        return false;
    size_t nlen = (size_t)(close_paren - open_paren - 1);
    if (nlen != strlen(RUNC_SHIM_NAME) || memcmp(open_paren + 1, RUNC_SHIM_NAME, nlen) != 0)
        return false;
    char state = close_paren[1] == ' ' ? close_paren[2] : '?';
    return state != 'Z' && state != 'X' && state != 'x';
}

/* Waits at most ms until the supervisor of `sub` has finished. */
static bool shim_wait_done(const runc_ctx_t *ctx, const char *id, const char *sub, int ms)
{
    int64_t deadline = mono_ms() + ms;
    while (shim_alive(ctx, id, sub)) {
        if (mono_ms() >= deadline)
            return false;
        sleep_ms(20);
    }
    return true;
}

/* ---- bundles ------------------------------------------------------------------ */

static int oom(berth_error_t *err)
{
    return berth_error_set(err, BERTH_ENOMEM, "InternalError", "", "out of memory");
}

static json_t *str_array(const char *const *items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

static json_t *mount_new(const char *dest, const char *type, const char *source,
                         const char *const *options, size_t noptions)
{
    json_t *m = json_object();
    json_object_set_new(m, "destination", json_string(dest));
    json_object_set_new(m, "type", json_string(type));
    json_object_set_new(m, "source", json_string(source));
    if (noptions > 0)
        json_object_set_new(m, "options", str_array(options, noptions));
    return m;
}

/* The mounts every bundle has. */
static json_t *base_mounts(void)
{
    static const char *const dev[] = {"nosuid", "strictatime", "mode=755", "size=65536k"};
    static const char *const pts[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                      "mode=0620", "gid=5"};
    static const char *const shm[] = {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"};
    static const char *const mq[] = {"nosuid", "noexec", "nodev"};
    static const char *const sys[] = {"nosuid", "noexec", "nodev", "ro"};
    static const char *const cg[] = {"nosuid", "noexec", "nodev", "relatime", "ro"};
    static const char *const tmp[] = {"nosuid", "nodev", "mode=1777"};
    json_t *a = json_array();
    json_array_append_new(a, mount_new("/proc", "proc", "proc", NULL, 0));
    json_array_append_new(a, mount_new("/dev", "tmpfs", "tmpfs", dev, 4));
    json_array_append_new(a, mount_new("/dev/pts", "devpts", "devpts", pts, 6));
    json_array_append_new(a, mount_new("/dev/shm", "tmpfs", "shm", shm, 5));
    json_array_append_new(a, mount_new("/dev/mqueue", "mqueue", "mqueue", mq, 3));
    json_array_append_new(a, mount_new("/sys", "sysfs", "sysfs", sys, 4));
    json_array_append_new(a, mount_new("/sys/fs/cgroup", "cgroup", "cgroup", cg, 5));
    json_array_append_new(a, mount_new("/tmp", "tmpfs", "tmpfs", tmp, 3));
    return a;
}

/* Docker's default capability set. */
static json_t *capabilities(void)
{
    static const char *const caps[] = {
        "CAP_CHOWN",      "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
        "CAP_MKNOD",      "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
        "CAP_SETFCAP",    "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
        "CAP_KILL",       "CAP_AUDIT_WRITE"};
    size_t n = sizeof caps / sizeof caps[0];
    json_t *c = json_object();
    json_object_set_new(c, "bounding", str_array(caps, n));
    json_object_set_new(c, "effective", str_array(caps, n));
    json_object_set_new(c, "permitted", str_array(caps, n));
    return c;
}

typedef struct bundle_spec {
    const char *role;           /* "sandbox", "init", "container"            */
    const char *name;           /* the container's name ("" for the sandbox) */
    size_t index;
    const char *rootfs;
    const berth_container_t *c; /* NULL for the sandbox                      */
    uint32_t cpu_millicores;    /* 0: no CPU limit                           */
    uint64_t memory_bytes;      /* 0: no memory limit                        */
    const volume_mount_t *mounts;
    size_t nmounts;
} bundle_spec_t;

/* Builds a bundle's config.json.  The network namespace of a container
 * gets its path at start (bundle_set_netns()). */
static json_t *bundle_config(const runc_ctx_t *ctx, const berth_runtime_group_t *group,
                             const char *rid, const bundle_spec_t *b)
{
    json_t *root = json_object();
    json_object_set_new(root, "ociVersion", json_string("1.0.2"));

    json_t *proc = json_object();
    json_object_set_new(proc, "terminal", json_false());
    json_t *user = json_object();
    json_object_set_new(user, "uid", json_integer(0));
    json_object_set_new(user, "gid", json_integer(0));
    json_object_set_new(proc, "user", user);
    json_t *args = json_array();
    if (b->c == NULL) {
        json_array_append_new(args, json_string("sleep"));
        json_array_append_new(args, json_string(RUNC_SANDBOX_SLEEP));
    } else if (b->c->has_command && b->c->ncommand > 0) {
        for (size_t i = 0; i < b->c->ncommand; i++)
            json_array_append_new(args, json_string(b->c->command[i]));
    } else {
        json_array_append_new(args, json_string("sh"));
    }
    json_object_set_new(proc, "args", args);
    json_t *env = json_array();
    bool has_path = false;
    for (size_t i = 0; b->c != NULL && i < b->c->nenv; i++) {
        const berth_env_var_t *e = &b->c->env[i];
        const char *v = e->value ? e->value : e->secure_value ? e->secure_value : "";
        size_t n = strlen(e->name) + strlen(v) + 2;
        char *kv = malloc(n);
        if (kv == NULL)
            continue;
        snprintf(kv, n, "%s=%s", e->name, v);
        json_array_append_new(env, json_string(kv));
        free(kv);
        if (strcmp(e->name, "PATH") == 0)
            has_path = true;
    }
    if (!has_path)
        json_array_insert_new(
            env, 0, json_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    json_object_set_new(proc, "env", env);
    json_object_set_new(proc, "cwd", json_string("/"));
    json_object_set_new(proc, "capabilities", capabilities());
    json_t *rl = json_object();
    json_object_set_new(rl, "type", json_string("RLIMIT_NOFILE"));
    json_object_set_new(rl, "hard", json_integer(1024));
    json_object_set_new(rl, "soft", json_integer(1024));
    json_t *rls = json_array();
    json_array_append_new(rls, rl);
    json_object_set_new(proc, "rlimits", rls);
    json_object_set_new(proc, "noNewPrivileges", json_true());
    json_object_set_new(root, "process", proc);

    json_t *r = json_object();
    json_object_set_new(r, "path", json_string(b->rootfs));
    json_object_set_new(r, "readonly", json_true());
    json_object_set_new(root, "root", r);
    char hostname[BERTH_NAME_MAX + 1];
    snprintf(hostname, sizeof hostname, "%s",
             group->spec->name && group->spec->name[0] ? group->spec->name : "berth");
    json_object_set_new(root, "hostname", json_string(hostname));

    json_t *mounts = base_mounts();
    for (size_t i = 0; i < b->nmounts; i++) {
        const char *opts[] = {"rbind", "rprivate", b->mounts[i].read_only ? "ro" : "rw"};
        json_array_append_new(mounts, mount_new(b->mounts[i].target, "bind",
                                                b->mounts[i].source, opts, 3));
    }
    json_object_set_new(root, "mounts", mounts);

    json_t *ann = json_object();
    char num[32];
    json_object_set_new(ann, PLUGIN_LABEL_HOST, json_string(ctx->host));
    json_object_set_new(ann, PLUGIN_LABEL_KEY, json_string(group->key));
    snprintf(num, sizeof num, "%" PRIu64, group->generation);
    json_object_set_new(ann, PLUGIN_LABEL_GENERATION, json_string(num));
    snprintf(num, sizeof num, "%016" PRIx64, group->digest);
    json_object_set_new(ann, PLUGIN_LABEL_DIGEST, json_string(num));
    json_object_set_new(ann, PLUGIN_LABEL_ROLE, json_string(b->role));
    json_object_set_new(ann, PLUGIN_LABEL_CONTAINER, json_string(b->name));
    snprintf(num, sizeof num, "%zu", b->index);
    json_object_set_new(ann, PLUGIN_LABEL_INDEX, json_string(num));
    json_object_set_new(root, "annotations", ann);

    json_t *linux_ = json_object();
    json_t *res = json_object();
    json_t *devs = json_array();
    json_t *deny = json_object();
    json_object_set_new(deny, "allow", json_false());
    json_object_set_new(deny, "access", json_string("rwm"));
    json_array_append_new(devs, deny);
    json_object_set_new(res, "devices", devs);
    if (b->cpu_millicores > 0) {
        json_t *cpu = json_object();
        json_object_set_new(cpu, "quota", json_integer((json_int_t)b->cpu_millicores * 100));
        json_object_set_new(cpu, "period", json_integer(100000));
        uint64_t shares = (uint64_t)b->cpu_millicores * 1024 / 1000;
        json_object_set_new(cpu, "shares", json_integer((json_int_t)(shares < 2 ? 2 : shares)));
        json_object_set_new(res, "cpu", cpu);
    }
    if (b->memory_bytes > 0) {
        json_t *mem = json_object();
        json_object_set_new(mem, "limit", json_integer((json_int_t)b->memory_bytes));
        json_object_set_new(res, "memory", mem);
    }
    json_object_set_new(linux_, "resources", res);
    char cgpath[RUNC_ID_MAX + 16];
    snprintf(cgpath, sizeof cgpath, "/berth/%s", rid);
    json_object_set_new(linux_, "cgroupsPath", json_string(cgpath));
    json_t *ns = json_array();
    static const char *const kinds[] = {"pid", "network", "ipc", "uts", "mount"};
    for (size_t i = 0; i < 5; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(kinds[i]));
        json_array_append_new(ns, o);
    }
    json_object_set_new(linux_, "namespaces", ns);
    static const char *const masked[] = {
        "/proc/acpi",        "/proc/asound",      "/proc/kcore",      "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/sys/firmware",     "/proc/scsi"};
    static const char *const ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                     "/proc/sysrq-trigger"};
    json_object_set_new(linux_, "maskedPaths", str_array(masked, 10));
    json_object_set_new(linux_, "readonlyPaths", str_array(ro, 5));
    json_object_set_new(root, "linux", linux_);
    return root;
}

/* Writes config.json for bundle `sub`. */
static int bundle_write(const runc_ctx_t *ctx, const char *id, const char *sub, json_t *config,
                        berth_error_t *err)
{
    char dir[RUNC_PATH_MAX], path[RUNC_PATH_MAX], tmp[RUNC_PATH_MAX];
    if (!bundle_file(ctx, id, sub, NULL, dir, sizeof dir) ||
        !bundle_file(ctx, id, sub, "config.json", path, sizeof path) ||
        !bundle_file(ctx, id, sub, "config.json.tmp", tmp, sizeof tmp))
        return berth_error_set(err, BERTH_EINVAL, "ContainerCreateFailed", "",
                               "data_dir path too long");
    int rc = plugin_mkdir_p(dir, 0700);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "cannot create %s: %s", dir, strerror(-rc));
    if (json_dump_file(config, tmp, JSON_INDENT(1)) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "cannot write %s", path);
    }
    return 0;
}

/* Points bundle `sub`'s network namespace at the sandbox's. */
static int bundle_set_netns(const runc_ctx_t *ctx, const char *id, const char *sub,
                            int sandbox_pid, berth_error_t *err)
{
    char path[RUNC_PATH_MAX], tmp[RUNC_PATH_MAX];
    if (!bundle_file(ctx, id, sub, "config.json", path, sizeof path) ||
        !bundle_file(ctx, id, sub, "config.json.tmp", tmp, sizeof tmp))
        return berth_error_set(err, BERTH_EINVAL, "ContainerStartFailed", "",
                               "data_dir path too long");
    json_t *config = json_load_file(path, 0, NULL);
    if (config == NULL)
        return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                               "cannot read %s", path);
    json_t *ns = json_object_get(json_object_get(config, "linux"), "namespaces");
    size_t i;
    json_t *o;
    char netns[64];
    snprintf(netns, sizeof netns, "/proc/%d/ns/net", sandbox_pid);
    json_array_foreach(ns, i, o) {
        const char *t = json_string_value(json_object_get(o, "type"));
        if (t != NULL && strcmp(t, "network") == 0)
            json_object_set_new(o, "path", json_string(netns));
    }
    int rc = 0;
    if (json_dump_file(config, tmp, JSON_INDENT(1)) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        rc = berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "", "cannot write %s",
                             path);
    }
    json_decref(config);
    return rc;
}

/* ---- the sandbox ---------------------------------------------------------------- */

/* Makes the group's sandbox run (starting it again when it died) and
 * stores its pid in *pid. */
static int sandbox_ensure(runc_ctx_t *ctx, const char *id, int *pid, berth_error_t *err)
{
    char rid[RUNC_ID_MAX];
    runc_id(id, "sandbox", rid);
    runc_state_t st;
    int rc = runc_state_get(ctx, rid, &st, pid, err);
    if (rc != 0)
        return rc;
    if (st == RUNC_RUNNING && *pid > 0)
        return 0;
    if (st != RUNC_ABSENT) {
        const char *del[] = {"delete", "--force", rid, NULL};
        runc_quiet(ctx, del, RUNC_CMD_TIMEOUT_MS);
    }
    char bundle[RUNC_PATH_MAX], log[RUNC_PATH_MAX];
    if (!bundle_file(ctx, id, "sandbox", NULL, bundle, sizeof bundle) ||
        !bundle_file(ctx, id, "sandbox", "runc.log", log, sizeof log))
        return berth_error_set(err, BERTH_EINVAL, "ContainerCreateFailed", "",
                               "data_dir path too long");
    unlink(log);
    /* The sandbox's process keeps runc's stdio, so runc runs with its
     * output on /dev/null and its own errors in runc.log. */
    char *argv[] = {ctx->runc, (char *)"--root", ctx->root, (char *)"--log", log,
                    (char *)"run", (char *)"--detach", (char *)"--bundle", bundle, rid, NULL};
    int code = 0;
    rc = run_argv(argv, RUNC_CMD_TIMEOUT_MS, NULL, NULL, &code);
    if (rc != 0 || code != 0) {
        char text[4096] = "", detail[512] = "";
        if (read_small(log, text, sizeof text) > 0)
            last_line(text, detail, sizeof detail);
        const char *del[] = {"delete", "--force", rid, NULL};
        runc_quiet(ctx, del, RUNC_CMD_TIMEOUT_MS);
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "cannot start the group's sandbox %s: %s", rid,
                               rc != 0 ? strerror(-rc) : detail[0] ? detail : "runc failed");
    }
    rc = runc_state_get(ctx, rid, &st, pid, err);
    if (rc != 0)
        return rc;
    if (st != RUNC_RUNNING || *pid <= 0)
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "the group's sandbox %s is not running", rid);
    return 0;
}

/* ---- container lifecycle ---------------------------------------------------------- */

/* Starts bundle `sub` under a new supervisor and waits (bounded) until it
 * runs or has already ended.  A running container is left alone. */
static int container_start(runc_ctx_t *ctx, const char *id, const runc_entry_t *e,
                           int sandbox_pid, berth_error_t *err)
{
    char rid[RUNC_ID_MAX];
    runc_id(id, e->sub, rid);
    runc_state_t st;
    int rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc != 0)
        return rc;
    if (st == RUNC_RUNNING || st == RUNC_PAUSED)
        return 0;
    /* A supervisor still finishing must be done before its container starts
     * again, or its cleanup would hit the new container. */
    if (!shim_wait_done(ctx, id, e->sub, RUNC_SHIM_WAIT_MS))
        return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                               "container '%s' is still being started or stopped", e->name);
    rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc != 0)
        return rc;
    if (st != RUNC_ABSENT) {
        const char *del[] = {"delete", "--force", rid, NULL};
        runc_quiet(ctx, del, RUNC_CMD_TIMEOUT_MS);
    }
    rc = bundle_set_netns(ctx, id, e->sub, sandbox_pid, err);
    if (rc != 0)
        return rc;
    char exit_path[RUNC_PATH_MAX], fin[RUNC_PATH_MAX], started[RUNC_PATH_MAX],
        pidf[RUNC_PATH_MAX];
    if (!bundle_file(ctx, id, e->sub, "exit", exit_path, sizeof exit_path) ||
        !bundle_file(ctx, id, e->sub, "finished", fin, sizeof fin) ||
        !bundle_file(ctx, id, e->sub, "started", started, sizeof started) ||
        !bundle_file(ctx, id, e->sub, "shim.pid", pidf, sizeof pidf))
        return berth_error_set(err, BERTH_EINVAL, "ContainerStartFailed", "",
                               "data_dir path too long");
    unlink(exit_path);
    unlink(fin);
    unlink(pidf);
    char num[32];
    snprintf(num, sizeof num, "%" PRId64 "\n", plugin_now_ms());
    if (write_file(started, num) != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                               "cannot write %s", started);
    rc = shim_spawn(ctx, id, e->sub);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                               "cannot start the supervisor of '%s': %s", e->name,
                               strerror(-rc));
    int64_t deadline = mono_ms() + RUNC_START_WAIT_MS;
    for (;;) {
        if (file_exists(exit_path))
            return 0;  /* ran and ended already: status tells how */
        rc = runc_state_get(ctx, rid, &st, NULL, err);
        if (rc != 0)
            return rc;
        if (st == RUNC_RUNNING || st == RUNC_STOPPED)
            return 0;
        if (!shim_alive(ctx, id, e->sub) && !file_exists(exit_path))
            return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                                   "the supervisor of '%s' ended without a result", e->name);
        if (mono_ms() >= deadline)
            return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                                   "container '%s' did not start within %d s", e->name,
                                   RUNC_START_WAIT_MS / 1000);
        sleep_ms(20);
    }
}

/* Waits at most ms until the container of bundle `sub` no longer runs. */
static bool container_wait_stopped(runc_ctx_t *ctx, const char *id, const char *sub,
                                   const char *rid, int ms)
{
    int64_t deadline = mono_ms() + ms;
    for (;;) {
        if (!shim_alive(ctx, id, sub)) {
            runc_state_t st;
            if (runc_state_get(ctx, rid, &st, NULL, NULL) != 0 || st == RUNC_ABSENT ||
                st == RUNC_STOPPED)
                return true;
        }
        if (mono_ms() >= deadline)
            return false;
        sleep_ms(shim_alive(ctx, id, sub) ? 20 : 100);
    }
}

/* Stops bundle `sub`: SIGTERM, grace_s seconds, then SIGKILL; waits until
 * its supervisor has recorded the exit. */
static int container_stop(runc_ctx_t *ctx, const char *id, const runc_entry_t *e,
                          uint32_t grace_s, berth_error_t *err)
{
    char rid[RUNC_ID_MAX];
    runc_id(id, e->sub, rid);
    runc_state_t st;
    int rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc != 0)
        return rc;
    if (st == RUNC_RUNNING || st == RUNC_CREATED || st == RUNC_PAUSED) {
        if (st == RUNC_PAUSED) {
            const char *resume[] = {"resume", rid, NULL};
            runc_quiet(ctx, resume, RUNC_CMD_TIMEOUT_MS);
        }
        const char *term[] = {"kill", rid, "TERM", NULL};
        runc_quiet(ctx, term, RUNC_CMD_TIMEOUT_MS);
        uint32_t grace = grace_s > 3600 ? 3600 : grace_s;
        if (!container_wait_stopped(ctx, id, e->sub, rid, (int)grace * 1000)) {
            const char *kill9[] = {"kill", rid, "KILL", NULL};
            runc_quiet(ctx, kill9, RUNC_CMD_TIMEOUT_MS);
            if (!container_wait_stopped(ctx, id, e->sub, rid, RUNC_KILL_WAIT_MS))
                return berth_error_set(err, BERTH_EIO, "ContainerStopFailed", "",
                                       "container '%s' did not stop after SIGKILL", e->name);
        }
    }
    if (!shim_wait_done(ctx, id, e->sub, RUNC_SHIM_WAIT_MS))
        return berth_error_set(err, BERTH_EIO, "ContainerStopFailed", "",
                               "the supervisor of '%s' did not finish", e->name);
    return 0;
}

/* Fills *cs for bundle `e` from runc's state and the supervisor's files. */
static int container_status(runc_ctx_t *ctx, const char *id, const runc_entry_t *e,
                            berth_container_status_t *cs, berth_error_t *err)
{
    memset(cs, 0, sizeof *cs);
    snprintf(cs->name, sizeof cs->name, "%s", e->name);
    char path[RUNC_PATH_MAX];
    cs->exists = bundle_file(ctx, id, e->sub, "config.json", path, sizeof path) &&
                 file_exists(path);
    /* The supervisor writes `exit` before it ends: asking whether it is
     * alive before reading `exit` means a dead one has left its result. */
    bool shim = shim_alive(ctx, id, e->sub);
    char rid[RUNC_ID_MAX];
    runc_id(id, e->sub, rid);
    runc_state_t st;
    int rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc != 0)
        return rc;
    int64_t started = 0, finished = 0, code = 0;
    bool has_started = bundle_file(ctx, id, e->sub, "started", path, sizeof path) &&
                       read_i64(path, &started);
    bool has_exit = bundle_file(ctx, id, e->sub, "exit", path, sizeof path) &&
                    read_i64(path, &code);
    if (bundle_file(ctx, id, e->sub, "finished", path, sizeof path))
        read_i64(path, &finished);
    cs->started_ms = has_started ? started : 0;
    if (st == RUNC_RUNNING || st == RUNC_PAUSED) {
        cs->state = BERTH_CONTAINER_RUNNING;
        snprintf(cs->detail, sizeof cs->detail, "%s", st == RUNC_PAUSED ? "Paused" : "Running");
        return 0;
    }
    if (has_exit) {
        cs->state = BERTH_CONTAINER_TERMINATED;
        cs->exit_code = (int)code;
        cs->finished_ms = finished;
        snprintf(cs->detail, sizeof cs->detail, "%s", code == 0 ? "Completed" : "Error");
        return 0;
    }
    if (st == RUNC_CREATED || (shim && st == RUNC_ABSENT)) {
        cs->state = BERTH_CONTAINER_WAITING;
        snprintf(cs->detail, sizeof cs->detail, "ContainerCreating");
    } else if (shim) {
        cs->state = BERTH_CONTAINER_RUNNING;   /* ended; its exit is being recorded */
        snprintf(cs->detail, sizeof cs->detail, "Running");
    } else if (has_started || st == RUNC_STOPPED) {
        /* Started, but nobody recorded how it ended (the host restarted). */
        cs->state = BERTH_CONTAINER_TERMINATED;
        cs->exit_code = -1;
        snprintf(cs->detail, sizeof cs->detail, "Unknown");
    } else {
        cs->state = BERTH_CONTAINER_WAITING;
        snprintf(cs->detail, sizeof cs->detail, "Created");
    }
    return 0;
}

/* ---- configuration ------------------------------------------------------------------ */

static void ctx_free(runc_ctx_t *c)
{
    if (c == NULL)
        return;
    free(c->host);
    free(c->runc);
    free(c->root);
    free(c->data_dir);
    free(c->images_dir);
    free(c->secret_dir);
    free(c->azure_file_root);
    free(c->git);
    free(c);
}

static int config_string(json_t *v, const char *member, char **dst, berth_error_t *err)
{
    char target[BERTH_ERROR_TARGET_MAX];
    snprintf(target, sizeof target, "config.%s", member);
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", target,
                               "%s must be a non-empty string", target);
    char *copy = strdup(s);
    if (copy == NULL)
        return oom(err);
    free(*dst);
    *dst = copy;
    return 0;
}

/* ---- operations ------------------------------------------------------------------------ */

static int op_open(const char *config_json, const char *host, void **out, berth_error_t *err)
{
    *out = NULL;
    if (host == NULL || host[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "host",
                               "no host name given");
    runc_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return oom(err);
    c->host = strdup(host);
    c->runc = strdup("runc");
    c->root = strdup("/run/berth-runc");
    c->data_dir = strdup("/var/lib/berth/runc");
    c->images_dir = strdup("/var/lib/berth/images");
    c->secret_dir = strdup("/run/berth-runc-secrets");
    c->git = strdup("git");
    c->stop_grace_s = 10;
    if (!c->host || !c->runc || !c->root || !c->data_dir || !c->images_dir || !c->secret_dir ||
        !c->git) {
        ctx_free(c);
        return oom(err);
    }
    if (config_json != NULL) {
        json_error_t jerr;
        json_t *j = json_loads(config_json, JSON_REJECT_DUPLICATES, &jerr);
        if (j == NULL || !json_is_object(j)) {
            json_decref(j);
            ctx_free(c);
            return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config",
                                   "the configuration is not a JSON object%s%s",
                                   j == NULL ? ": " : "", j == NULL ? jerr.text : "");
        }
        const char *k;
        json_t *v;
        int rc = 0;
        json_object_foreach(j, k, v) {
            if (strcmp(k, "runc") == 0)
                rc = config_string(v, k, &c->runc, err);
            else if (strcmp(k, "root") == 0)
                rc = config_string(v, k, &c->root, err);
            else if (strcmp(k, "data_dir") == 0)
                rc = config_string(v, k, &c->data_dir, err);
            else if (strcmp(k, "images_dir") == 0)
                rc = config_string(v, k, &c->images_dir, err);
            else if (strcmp(k, "secret_dir") == 0)
                rc = config_string(v, k, &c->secret_dir, err);
            else if (strcmp(k, "azure_file_root") == 0)
                rc = config_string(v, k, &c->azure_file_root, err);
            else if (strcmp(k, "git") == 0)
                rc = config_string(v, k, &c->git, err);
            else if (strcmp(k, "stop_grace_s") == 0) {
                if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                    json_integer_value(v) > 3600)
                    rc = berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration",
                                         "config.stop_grace_s",
                                         "config.stop_grace_s must be an integer in 0..3600");
                else
                    c->stop_grace_s = (uint32_t)json_integer_value(v);
            } else {
                char target[BERTH_ERROR_TARGET_MAX];
                snprintf(target, sizeof target, "config.%s", k);
                rc = berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", target,
                                     "unknown configuration member %s", target);
            }
            if (rc != 0)
                break;
        }
        json_decref(j);
        if (rc != 0) {
            ctx_free(c);
            return rc;
        }
    }
    c->volumes.data_dir = c->data_dir;
    c->volumes.secret_dir = c->secret_dir;
    c->volumes.azure_file_root = c->azure_file_root;
    c->volumes.git = c->git;
    *out = c;
    return 0;
}

static void op_close(void *ctx)
{
    ctx_free(ctx);
}

static int op_probe(void *vctx, berth_plugin_host_info_t *info, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    memset(info, 0, sizeof *info);
    char *argv[] = {ctx->runc, (char *)"--version", NULL};
    char *out = NULL;
    int code = 0;
    int rc = run_argv(argv, RUNC_CMD_TIMEOUT_MS, &out, NULL, &code);
    if (rc != 0 || code != 0) {
        free(out);
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "config.runc",
                               "cannot run %s --version", ctx->runc);
    }
    /* "runc version 1.1.5+ds1\ncommit: ..." */
    const char *v = strstr(out, "version ");
    if (v != NULL) {
        v += strlen("version ");
        snprintf(info->runtime, sizeof info->runtime, "runc %.*s", (int)strcspn(v, " \r\n"), v);
    } else {
        snprintf(info->runtime, sizeof info->runtime, "runc");
    }
    free(out);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    info->cores = cpus > 0 ? (uint32_t)cpus : 0;
    info->memory_mib = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page >> 20 : 0;
    info->os = BERTH_OS_LINUX;
    return 0;
}

static int op_image_ensure(void *vctx, const char *image, const berth_registry_credential_t *cred,
                           bool *cached, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    (void)cred;
    if (cached != NULL)
        *cached = false;
    char rootfs[RUNC_PATH_MAX];
    if (!image_rootfs(ctx, image, rootfs, sizeof rootfs))
        return berth_error_set(err, BERTH_EINVAL, "InvalidImage", "image",
                               "'%s' is not an image name", image ? image : "");
    if (!dir_exists(rootfs))
        return berth_error_set(err, BERTH_EIO, "ImagePullFailed", "image",
                               "image '%s': the runc runtime has no registry to pull from and "
                               "no unpacked root filesystem for it under %s (expected %s)",
                               image, ctx->images_dir, rootfs);
    if (cached != NULL)
        *cached = true;
    return 0;
}

static int op_images(void *vctx, berth_plugin_image_cb cb, void *data, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    DIR *d = opendir(ctx->images_dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "config.images_dir",
                               "cannot read %s: %s", ctx->images_dir, strerror(errno));
    }
    struct dirent *de;
    for (size_t i = 0; i < RUNC_DIR_ENTRIES_MAX && (de = readdir(d)) != NULL; i++) {
        if (de->d_name[0] == '.')
            continue;
        char rootfs[RUNC_PATH_MAX];
        if (!path_fmt(rootfs, sizeof rootfs, "%s/%s/rootfs", ctx->images_dir, de->d_name) ||
            !dir_exists(rootfs))
            continue;
        /* "name_tag" -> "name:tag" (a '/' in the name also became '_'). */
        char name[256];
        snprintf(name, sizeof name, "%s", de->d_name);
        char *us = strrchr(name, '_');
        if (us != NULL)
            *us = ':';
        cb(name, data);
    }
    closedir(d);
    return 0;
}

/* Removes everything of group id: containers, sandbox, volumes, bundles. */
static int group_destroy(runc_ctx_t *ctx, const char *id, berth_error_t *err)
{
    char dir[RUNC_PATH_MAX];
    if (!group_dir(ctx, id, dir, sizeof dir))
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.data_dir",
                               "data_dir path too long");
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *de;
        for (size_t i = 0; i < RUNC_DIR_ENTRIES_MAX && (de = readdir(d)) != NULL; i++) {
            if (de->d_name[0] == '.' || strcmp(de->d_name, "sandbox") == 0 ||
                strlen(de->d_name) >= RUNC_SUB_MAX ||
                (strncmp(de->d_name, "init-", 5) != 0 && strncmp(de->d_name, "c-", 2) != 0))
                continue;
            char rid[RUNC_ID_MAX];
            runc_id(id, de->d_name, rid);
            const char *del[] = {"delete", "--force", rid, NULL};
            runc_quiet(ctx, del, RUNC_CMD_TIMEOUT_MS);
            shim_wait_done(ctx, id, de->d_name, RUNC_SHIM_WAIT_MS);
        }
        closedir(d);
    }
    char rid[RUNC_ID_MAX];
    runc_id(id, "sandbox", rid);
    const char *del[] = {"delete", "--force", rid, NULL};
    runc_quiet(ctx, del, RUNC_CMD_TIMEOUT_MS);
    berth_error_t verr;
    int rc = volumes_remove(&ctx->volumes, id, &verr);
    int trc = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        trc = plugin_remove_tree(dir);
        if (trc == 0)
            break;
        sleep_ms(100);
    }
    if (rc != 0) {
        if (err != NULL)
            *err = verr;
        return rc;
    }
    if (trc != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerGroupDeleteFailed", "",
                               "cannot remove %s: %s", dir, strerror(-trc));
    return 0;
}

/* The memory limit of container c in bytes: its limit, else its request. */
static uint64_t memory_bytes(const berth_container_t *c)
{
    uint32_t milli_gb = c->has_limits && c->limits.memory_milli_gb > 0
                            ? c->limits.memory_milli_gb
                            : c->requests.memory_milli_gb;
    return (uint64_t)milli_gb * 1024u * 1024u * 1024u / 1000u;
}

static int create_container_bundle(runc_ctx_t *ctx, const berth_runtime_group_t *group,
                                   const char *id, const berth_container_t *c, bool init,
                                   size_t index, berth_error_t *err)
{
    char sub[RUNC_SUB_MAX], rid[RUNC_ID_MAX], rootfs[RUNC_PATH_MAX];
    snprintf(sub, sizeof sub, "%s-%zu", init ? "init" : "c", index);
    runc_id(id, sub, rid);
    char target[128];
    snprintf(target, sizeof target, "properties.%s[%zu].properties.image",
             init ? "initContainers" : "containers", index);
    if (!image_rootfs(ctx, c->image, rootfs, sizeof rootfs) || !dir_exists(rootfs))
        return berth_error_set(err, BERTH_EIO, "ImagePullFailed", target,
                               "image '%s': no unpacked root filesystem under %s",
                               c->image ? c->image : "", ctx->images_dir);
    volume_mount_t *mounts = calloc(BERTH_PLUGIN_CONTAINERS_MAX, sizeof *mounts);
    if (mounts == NULL)
        return oom(err);
    size_t nmounts = 0;
    int rc = volumes_mounts(&ctx->volumes, id, group->spec, c, mounts,
                            BERTH_PLUGIN_CONTAINERS_MAX, &nmounts, err);
    if (rc != 0) {
        free(mounts);
        return rc;
    }
    bundle_spec_t b = {
        .role = init ? "init" : "container",
        .name = c->name,
        .index = index,
        .rootfs = rootfs,
        .c = c,
        .cpu_millicores = init ? group->millicores
                          : c->has_limits && c->limits.cpu_millicores > 0
                              ? c->limits.cpu_millicores
                              : (group->shares ? group->shares[index] : c->requests.cpu_millicores),
        .memory_bytes = init ? 0 : memory_bytes(c),
        .mounts = mounts,
        .nmounts = nmounts,
    };
    json_t *config = bundle_config(ctx, group, rid, &b);
    free(mounts);
    if (config == NULL)
        return oom(err);
    rc = bundle_write(ctx, id, sub, config, err);
    json_decref(config);
    return rc;
}

static int write_group_state(runc_ctx_t *ctx, const berth_runtime_group_t *group,
                             const char *id, berth_error_t *err)
{
    const berth_group_t *s = group->spec;
    json_t *j = json_object();
    char num[32];
    json_object_set_new(j, "host", json_string(ctx->host));
    json_object_set_new(j, "key", json_string(group->key));
    snprintf(num, sizeof num, "%" PRIu64, group->generation);
    json_object_set_new(j, "generation", json_string(num));
    snprintf(num, sizeof num, "%016" PRIx64, group->digest);
    json_object_set_new(j, "digest", json_string(num));
    json_t *cs = json_array();
    for (size_t pass = 0; pass < 2; pass++) {
        bool init = pass == 0;
        size_t n = init ? s->ninit_containers : s->ncontainers;
        for (size_t i = 0; i < n; i++) {
            const berth_container_t *c = init ? &s->init_containers[i] : &s->containers[i];
            char sub[RUNC_SUB_MAX];
            snprintf(sub, sizeof sub, "%s-%zu", init ? "init" : "c", i);
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(c->name));
            json_object_set_new(o, "role", json_string(init ? "init" : "container"));
            json_object_set_new(o, "index", json_integer((json_int_t)i));
            json_object_set_new(o, "bundle", json_string(sub));
            json_array_append_new(cs, o);
        }
    }
    json_object_set_new(j, "containers", cs);
    char *text = json_dumps(j, JSON_INDENT(1));
    json_decref(j);
    if (text == NULL)
        return oom(err);
    char path[RUNC_PATH_MAX];
    int rc = -ENAMETOOLONG;
    if (path_fmt(path, sizeof path, "%s/groups/%s/group.json", ctx->data_dir, id))
        rc = write_file(path, text);
    free(text);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "cannot write the group's state: %s", strerror(-rc));
    return 0;
}

static int op_create(void *vctx, const berth_runtime_group_t *group, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    if (group == NULL || group->spec == NULL || group->key == NULL || group->key[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "group",
                               "no group given");
    const berth_group_t *s = group->spec;
    if (s->ncontainers == 0)
        return berth_error_set(err, BERTH_EINVAL, "ContainerCreateFailed",
                               "properties.containers", "the group has no container");
    if (s->ncontainers + s->ninit_containers > BERTH_PLUGIN_CONTAINERS_MAX)
        return berth_error_set(err, BERTH_EINVAL, "ContainerCreateFailed",
                               "properties.containers", "more than %d containers",
                               BERTH_PLUGIN_CONTAINERS_MAX);
    if (s->os_type == BERTH_OS_WINDOWS)
        return berth_error_set(err, BERTH_EINVAL, "UnsupportedOsType", "properties.osType",
                               "the runc runtime runs Linux containers only");
    for (size_t i = 0; i < s->ncontainers; i++)
        if (s->containers[i].requests.gpu.count > 0 || s->containers[i].limits.gpu.count > 0) {
            char target[128];
            snprintf(target, sizeof target,
                     "properties.containers[%zu].properties.resources.requests.gpu", i);
            return berth_error_set(err, BERTH_EINVAL, "GpuNotSupported", target,
                                   "the runc runtime has no GPUs");
        }
    char id[PLUGIN_ID_LEN + 1], dir[RUNC_PATH_MAX], rid[RUNC_ID_MAX];
    plugin_group_id(ctx->host, group->key, id);
    runc_id(id, "sandbox", rid);
    if (!group_dir(ctx, id, dir, sizeof dir))
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.data_dir",
                               "data_dir path too long");
    runc_state_t st;
    int rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc != 0)
        return rc;
    if (file_exists(dir) || st != RUNC_ABSENT)
        return berth_error_set(err, BERTH_EEXIST, "ContainerGroupExists", "key",
                               "the runtime already holds group '%s' on host '%s'", group->key,
                               ctx->host);
    /* Every image first, so that a missing one changes nothing. */
    for (size_t pass = 0; pass < 2; pass++) {
        size_t n = pass == 0 ? s->ninit_containers : s->ncontainers;
        for (size_t i = 0; i < n; i++) {
            const berth_container_t *c = pass == 0 ? &s->init_containers[i] : &s->containers[i];
            char rootfs[RUNC_PATH_MAX];
            if (!image_rootfs(ctx, c->image, rootfs, sizeof rootfs) || !dir_exists(rootfs)) {
                char target[128];
                snprintf(target, sizeof target, "properties.%s[%zu].properties.image",
                         pass == 0 ? "initContainers" : "containers", i);
                return berth_error_set(err, BERTH_EIO, "ImagePullFailed", target,
                                       "image '%s': the runc runtime has no registry to pull "
                                       "from and no unpacked root filesystem for it under %s",
                                       c->image ? c->image : "", ctx->images_dir);
            }
        }
    }
    rc = plugin_mkdir_p(dir, 0700);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "cannot create %s: %s", dir, strerror(-rc));
    berth_error_t ignored;
    rc = volumes_prepare(&ctx->volumes, id, s, err);
    if (rc != 0) {
        plugin_remove_tree(dir);
        return rc;
    }
    char rootfs[RUNC_PATH_MAX];
    image_rootfs(ctx, s->containers[0].image, rootfs, sizeof rootfs);
    bundle_spec_t sb = {.role = "sandbox", .name = "", .index = 0, .rootfs = rootfs};
    json_t *config = bundle_config(ctx, group, rid, &sb);
    if (config == NULL) {
        group_destroy(ctx, id, &ignored);
        return oom(err);
    }
    rc = bundle_write(ctx, id, "sandbox", config, err);
    json_decref(config);
    for (size_t i = 0; rc == 0 && i < s->ninit_containers; i++)
        rc = create_container_bundle(ctx, group, id, &s->init_containers[i], true, i, err);
    for (size_t i = 0; rc == 0 && i < s->ncontainers; i++)
        rc = create_container_bundle(ctx, group, id, &s->containers[i], false, i, err);
    int pid = 0;
    if (rc == 0)
        rc = sandbox_ensure(ctx, id, &pid, err);
    if (rc == 0)
        rc = write_group_state(ctx, group, id, err);
    if (rc != 0) {
        group_destroy(ctx, id, &ignored);
        return rc;
    }
    return 0;
}

static int op_start(void *vctx, const char *key, const char *container, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    int rc = group_find(ctx, key, g, err);
    const runc_entry_t *one = NULL;
    if (rc == 0 && container != NULL) {
        one = entry_find(g, container);
        if (one == NULL)
            rc = berth_error_set(err, BERTH_ENOENT, "ContainerNotFound", "container",
                                 "group '%s' has no container '%s'", key, container);
    }
    int pid = 0;
    if (rc == 0)
        rc = sandbox_ensure(ctx, g->id, &pid, err);
    if (rc == 0 && one != NULL) {
        rc = container_start(ctx, g->id, one, pid, err);
    } else if (rc == 0) {
        /* Every container; init containers are the agent's to run, one at
         * a time, before it starts the group. */
        for (size_t i = 0; rc == 0 && i < g->n; i++)
            if (!g->entries[i].init)
                rc = container_start(ctx, g->id, &g->entries[i], pid, err);
    }
    free(g);
    return rc;
}

static int op_stop(void *vctx, const char *key, const char *container, uint32_t grace_s,
                   berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    int rc = group_find(ctx, key, g, err);
    if (rc == 0 && container != NULL) {
        const runc_entry_t *e = entry_find(g, container);
        rc = e == NULL ? berth_error_set(err, BERTH_ENOENT, "ContainerNotFound", "container",
                                         "group '%s' has no container '%s'", key, container)
                       : container_stop(ctx, g->id, e, grace_s, err);
    } else if (rc == 0) {
        /* SIGTERM to everything first, so that the grace periods overlap. */
        for (size_t i = 0; i < g->n; i++) {
            char rid[RUNC_ID_MAX];
            runc_id(g->id, g->entries[i].sub, rid);
            const char *term[] = {"kill", rid, "TERM", NULL};
            runc_quiet(ctx, term, RUNC_CMD_TIMEOUT_MS);
        }
        for (size_t i = g->n; rc == 0 && i > 0; i--)
            rc = container_stop(ctx, g->id, &g->entries[i - 1], grace_s, err);
    }
    free(g);
    return rc;
}

static int op_restart(void *vctx, const char *key, uint32_t grace_s, berth_error_t *err)
{
    int rc = op_stop(vctx, key, NULL, grace_s, err);
    return rc != 0 ? rc : op_start(vctx, key, NULL, err);
}

static int op_remove(void *vctx, const char *key, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    if (key == NULL || key[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "key", "no group key");
    char id[PLUGIN_ID_LEN + 1];
    plugin_group_id(ctx->host, key, id);
    /* Containers first get stop_grace_s seconds to end on SIGTERM. */
    berth_error_t ignored;
    (void)op_stop(vctx, key, NULL, ctx->stop_grace_s, &ignored);
    return group_destroy(ctx, id, err);
}

static int op_status(void *vctx, const char *key, berth_group_status_t *out, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    memset(out, 0, sizeof *out);
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    berth_error_t ignored;
    int rc = group_find(ctx, key, g, &ignored);
    if (rc != 0) {
        free(g);
        return rc == BERTH_ENOENT ? 0 : berth_error_set(err, rc, ignored.name, ignored.target,
                                                        "%s", ignored.message);
    }
    out->exists = true;
    out->generation = g->generation;
    out->digest = g->digest;
    for (size_t i = 0; rc == 0 && i < g->n; i++)
        rc = container_status(ctx, g->id, &g->entries[i], &out->containers[i], err);
    out->ncontainers = rc == 0 ? g->n : 0;
    free(g);
    return rc;
}

static int op_logs(void *vctx, const char *key, const char *container, uint32_t tail,
                   bool timestamps, char **out, size_t *len, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    *out = NULL;
    if (len != NULL)
        *len = 0;
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    int rc = group_find(ctx, key, g, err);
    const runc_entry_t *e = NULL;
    if (rc == 0 && (container == NULL || (e = entry_find(g, container)) == NULL))
        rc = berth_error_set(err, BERTH_ENOENT, "ContainerNotFound", "container",
                             "group '%s' has no container '%s'", key,
                             container ? container : "");
    char path[RUNC_PATH_MAX];
    if (rc == 0 && !bundle_file(ctx, g->id, e->sub, "log", path, sizeof path))
        rc = berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.data_dir",
                             "data_dir path too long");
    free(g);
    if (rc != 0)
        return rc;
    char *buf = NULL;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        off_t size = fstat(fd, &st) == 0 ? st.st_size : 0;
        off_t from = size > (off_t)RUNC_LOG_READ_MAX ? size - (off_t)RUNC_LOG_READ_MAX : 0;
        size_t want = (size_t)(size - from);
        buf = malloc(want + 1);
        if (buf == NULL) {
            close(fd);
            return oom(err);
        }
        while (n < want) {
            ssize_t r = pread(fd, buf + n, want - n, from + (off_t)n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            n += (size_t)r;
        }
        close(fd);
    } else if (errno != ENOENT) {
        return berth_error_set(err, BERTH_EIO, "LogsUnavailable", "", "cannot read %s: %s",
                               path, strerror(errno));
    } else {
        buf = malloc(1);
        if (buf == NULL)
            return oom(err);
    }
    plugin_tail_lines(buf, &n, tail);
    if (!timestamps) {
        /* Drop each line's "YYYY-MM-DDTHH:MM:SS.mmmZ " prefix. */
        size_t r = 0, w = 0;
        while (r < n) {
            size_t eol = r;
            while (eol < n && buf[eol] != '\n')
                eol++;
            size_t skip = 0;
            if (eol - r >= RUNC_TIME_PREFIX_LEN && buf[r + 4] == '-' && buf[r + 10] == 'T' &&
                buf[r + 23] == 'Z' && buf[r + 24] == ' ')
                skip = RUNC_TIME_PREFIX_LEN;
            size_t end = eol < n ? eol + 1 : n;
            memmove(buf + w, buf + r + skip, end - r - skip);
            w += end - r - skip;
            r = end;
        }
        n = w;
    }
    buf[n] = '\0';
    *out = buf;
    if (len != NULL)
        *len = n;
    return 0;
}

static int op_exec(void *vctx, const char *key, const char *container, const char *const *argv,
                   size_t argc, char **out, size_t *len, int *exit_code, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    *out = NULL;
    if (len != NULL)
        *len = 0;
    if (argv == NULL || argc == 0 || argc > 4096)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "argv",
                               "exec needs a command");
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    int rc = group_find(ctx, key, g, err);
    const runc_entry_t *e = NULL;
    if (rc == 0 && (container == NULL || (e = entry_find(g, container)) == NULL))
        rc = berth_error_set(err, BERTH_ENOENT, "ContainerNotFound", "container",
                             "group '%s' has no container '%s'", key,
                             container ? container : "");
    char rid[RUNC_ID_MAX];
    if (rc == 0)
        runc_id(g->id, e->sub, rid);
    runc_state_t st = RUNC_ABSENT;
    if (rc == 0)
        rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc == 0 && st != RUNC_RUNNING)
        rc = berth_error_set(err, BERTH_EINVAL, "ContainerNotRunning", "container",
                             "container '%s' is not running", container);
    free(g);
    if (rc != 0)
        return rc;
    char **full = calloc(argc + 6, sizeof *full);
    if (full == NULL)
        return oom(err);
    size_t n = 0;
    full[n++] = ctx->runc;
    full[n++] = (char *)"--root";
    full[n++] = ctx->root;
    full[n++] = (char *)"exec";
    full[n++] = rid;
    for (size_t i = 0; i < argc; i++)
        full[n++] = (char *)argv[i];
    full[n] = NULL;
    int code = 0;
    size_t outlen = 0;
    rc = run_argv(full, RUNC_EXEC_TIMEOUT_MS, out, &outlen, &code);
    free(full);
    if (rc != 0)
        return rc == -ENOMEM ? oom(err)
                             : berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                                               "cannot run %s: %s", ctx->runc, strerror(-rc));
    if (code < 0) {
        free(*out);
        *out = NULL;
        return berth_error_set(err, BERTH_EIO, "ExecTimeout", "",
                               "the command did not finish within %d s",
                               RUNC_EXEC_TIMEOUT_MS / 1000);
    }
    if (len != NULL)
        *len = outlen;
    if (exit_code != NULL)
        *exit_code = code;
    return 0;
}

static int op_list(void *vctx, berth_plugin_list_cb cb, void *data, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    char dir[RUNC_PATH_MAX];
    if (!path_fmt(dir, sizeof dir, "%s/groups", ctx->data_dir))
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.data_dir",
                               "data_dir path too long");
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "config.data_dir",
                               "cannot read %s: %s", dir, strerror(errno));
    }
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL) {
        closedir(d);
        return oom(err);
    }
    struct dirent *de;
    for (size_t i = 0; i < RUNC_DIR_ENTRIES_MAX && (de = readdir(d)) != NULL; i++) {
        if (strlen(de->d_name) != PLUGIN_ID_LEN)
            continue;
        char *key = NULL;
        if (group_load(ctx, de->d_name, NULL, g, &key)) {
            cb(key, g->generation, g->digest, data);
            free(key);
        }
    }
    free(g);
    closedir(d);
    return 0;
}

static const berth_plugin_ops_t runc_ops = {
    .abi_major = BERTH_PLUGIN_ABI_MAJOR,
    .size = sizeof(berth_plugin_ops_t),
    .name = "runc",
    .version = "0.1.0",
    .open = op_open,
    .close = op_close,
    .probe = op_probe,
    .image_ensure = op_image_ensure,
    .images = op_images,
    .create = op_create,
    .start = op_start,
    .stop = op_stop,
    .restart = op_restart,
    .remove = op_remove,
    .status = op_status,
    .logs = op_logs,
    .exec = op_exec,
    .list = op_list,
};

/* The plugin's entry point: returns the static operations table (never
 * NULL); the table lives as long as the loaded module. */
__attribute__((visibility("default"))) const berth_plugin_ops_t *berth_plugin_entry(void);
const berth_plugin_ops_t *berth_plugin_entry(void)
{
    return &runc_ops;
}
