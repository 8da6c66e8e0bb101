/*
 * session.c: the docker plugin's interactive sessions: a process started
 * in a running container with its stdin open (the Docker Engine API's exec
 * with AttachStdin, and the same through Podman's compatible service),
 * under a terminal when asked, whose output is read, whose input is
 * written, whose terminal is resized, and whose exit status is collected
 * at the end.
 *
 * The stream.  session_open creates the exec (POST /containers/{id}/exec),
 * then starts it (POST /exec/{id}/start with "Connection: Upgrade" and
 * "Upgrade: tcp") over a unix socket connection of the session's own; once
 * the engine has answered the start (101 UPGRADED, from Docker Engine and
 * from Podman 4's service alike; a 200 that is not chunked is taken too)
 * that socket carries the process's bytes both ways.  With a terminal the
 * output is the terminal's raw bytes; without one it is multiplexed (8-byte
 * frame headers, stdout and stderr frames), which session_read takes apart
 * as the bytes come, however they are cut, and hands over as one output.
 * Shutting the socket's write side is the end of the process's input.  The
 * engine closes the stream when the process has exited; session_close then
 * asks GET /exec/{id}/json (bounded) for the exit status.
 *
 * Threads.  A session runs on a thread of its own, concurrently with the
 * context's operations: it owns everything it uses -- its stream socket
 * and its own engine client (engine_api_open() with the context's socket
 * and API version) for the exec's creation, the container lookup, resizes
 * and the final inspection -- and must never touch the context's shared
 * client (ctx->api) after session_open returns, nor during it.
 *
 * Ending early.  The engines have no call that kills an exec, and closing
 * the stream does not end a process that does not read its input (`sleep
 * 100` under a terminal or not keeps running on both engines).  So closing a session before its
 * output ended closes the stream, gives the process SESSION_KILL_GRACE_MS
 * to end, then kills it with SIGKILL through the process id the engine
 * reports (exec inspection's Pid) -- only when this process sees that id in
 * the pid namespace of the container's own process, so that an agent that
 * does not share the engine's view of processes (another pid namespace, no
 * privilege) never kills a stranger -- waits, bounded, for the engine to
 * record the end, and reports -1.  Where that kill cannot be made, the
 * process outlives the session.
 *
 * It must never block without a bound: every wait (the engine's answer,
 * a write the process does not take, the exit status) has a deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "docker.h"

/* How long the engine may take to answer the start of an exec. */
#define SESSION_START_TIMEOUT_S 30
/* How long a write may wait for the process to take its input. */
#define SESSION_WRITE_TIMEOUT_MS 10000
/* How long session_close waits for the exec to be recorded as ended. */
#define SESSION_EXIT_WAIT_MS 5000
/* How long session_close lets a process end by itself before killing it. */
#define SESSION_KILL_GRACE_MS 1000
/* How long the first resize may be retried while the exec starts. */
#define SESSION_RESIZE_WAIT_MS 3000
/* The most bytes of the engine's answer to the start read as headers. */
#define SESSION_HEADERS_MAX 8192

typedef struct docker_session {
    docker_ctx_t own;               /* host, socket, version, own client    */
    int fd;                         /* the stream; -1 once closed           */
    bool tty;
    bool eof;                       /* the output ended                     */
    bool input_closed;
    char exec_id[80];
    char cid[72];                   /* the container's engine id            */
    /* Demultiplexing state (no tty): the frame header being read and the
     * payload bytes still to come of the current frame. */
    unsigned char header[8];
    size_t header_have;
    size_t frame_left;
    bool garbled;                   /* a frame header made no sense        */
} docker_session_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void session_free(docker_session_t *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    engine_api_close(s->own.api);
    free(s->own.socket);
    free(s->own.api_version);
    free(s);
}

/* The session's own context: the host's name and the engine's socket and
 * version copied from ctx, and an engine client of its own (libcurl's
 * global set-up, which engine_api_open() takes a reference to, is
 * thread-safe from libcurl 7.84, and the context already holds one). */
static docker_session_t *session_new(const docker_ctx_t *ctx)
{
    docker_session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->fd = -1;
    snprintf(s->own.host, sizeof s->own.host, "%s", ctx->host);
    s->own.socket = strdup(ctx->socket);
    s->own.api_version = strdup(ctx->api_version);
    s->own.stop_grace_s = ctx->stop_grace_s;
    if (s->own.socket != NULL && s->own.api_version != NULL)
        s->own.api = engine_api_open(s->own.socket, s->own.api_version);
    if (s->own.api == NULL) {
        session_free(s);
        return NULL;
    }
    return s;
}

/* Waits until fd polls for `events` or deadline (now_ms()) passes: 1 when
 * ready, 0 at the deadline, -1 on a poll failure. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* Sends all of data on the non-blocking fd before deadline: 0, or -1 with
 * errno (ETIMEDOUT at the deadline). */
static int send_all(int fd, const char *data, size_t len, int64_t deadline)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = send(fd, data + done, len - done, MSG_NOSIGNAL);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r <= 0) {
            if (r == 0)
                errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

/* Connects a non-blocking stream socket to the engine's unix socket. */
static int connect_engine(const char *path, berth_error_t *err)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.socket",
                               "the engine's socket path %s is too long", path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "", "socket: %s",
                               strerror(errno));
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS &&
        errno != EAGAIN) {
        int e = errno;
        close(fd);
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                               "the container engine at %s cannot be reached: %s", path,
                               strerror(e));
    }
    if (wait_fd(fd, POLLOUT, now_ms() + ENGINE_API_CONNECT_TIMEOUT_S * 1000L) != 1) {
        close(fd);
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                               "the container engine at %s did not accept a connection",
                               path);
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        close(fd);
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                               "the container engine at %s cannot be reached: %s", path,
                               strerror(soerr ? soerr : errno));
    }
    return fd;
}

/* Reads the engine's answer to the start, up to the blank line that ends
 * its headers and not one byte further (what follows is the stream), into
 * buf (NUL-terminated).  0, or -1 with why in buf. */
static int read_headers(int fd, char *buf, size_t cap, int64_t deadline)
{
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            snprintf(buf, cap, "the engine's answer has headers too long");
            return -1;
        }
        /* One byte at a time: the headers are short, and a byte past them
         * belongs to the process's output. */
        ssize_t r = recv(fd, buf + n, 1, 0);
        if (r == 1) {
            n++;
            buf[n] = '\0';
            if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
                return 0;
            continue;
        }
        if (r == 0) {
            buf[n] = '\0';
            if (n == 0)
                snprintf(buf, cap, "the engine closed the connection without answering");
            return n == 0 ? -1 : 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            snprintf(buf, cap, "%s", strerror(errno));
            return -1;
        }
        int w = wait_fd(fd, POLLIN, deadline);
        if (w <= 0) {
            snprintf(buf, cap, w == 0 ? "the engine did not answer in time" : "poll failed");
            return -1;
        }
    }
}

/* Reads what is left of a refused start's answer (its body, for the
 * engine's message), bounded in time and size, into buf after `have`. */
static void read_rest(int fd, char *buf, size_t cap, size_t have, int64_t deadline)
{
    while (have + 1 < cap) {
        ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
        if (r > 0) {
            have += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ||
            wait_fd(fd, POLLIN, deadline) != 1)
            break;
    }
    buf[have] = '\0';
}

/* Starts the exec over a connection of its own, which becomes the stream. */
static int start_stream(docker_session_t *s, berth_error_t *err)
{
    int fd = connect_engine(s->own.socket, err);
    if (fd < 0)
        return fd;
    char body[64];
    int blen = snprintf(body, sizeof body, "{\"Detach\":false,\"Tty\":%s}",
                        s->tty ? "true" : "false");
    char req[512];
    int rlen = snprintf(req, sizeof req,
                        "POST /v%s/exec/%s/start HTTP/1.1\r\n"
                        "Host: localhost\r\n"
                        "User-Agent: berth-docker/" DOCKER_PLUGIN_VERSION "\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %d\r\n"
                        "Connection: Upgrade\r\n"
                        "Upgrade: tcp\r\n"
                        "\r\n%s",
                        s->own.api_version, s->exec_id, blen, body);
    int64_t deadline = now_ms() + SESSION_START_TIMEOUT_S * 1000L;
    if (rlen <= 0 || (size_t)rlen >= sizeof req || send_all(fd, req, (size_t)rlen, deadline)) {
        int e = errno;
        close(fd);
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                               "the container engine at %s did not take the exec's start: %s",
                               s->own.socket, strerror(e));
    }
    char *head = malloc(SESSION_HEADERS_MAX);
    if (head == NULL) {
        close(fd);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    if (read_headers(fd, head, SESSION_HEADERS_MAX, deadline) != 0) {
        int rc = berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                                 "the container engine at %s did not start the exec: %s",
                                 s->own.socket, head);
        free(head);
        close(fd);
        return rc;
    }
    int major = 0, minor = 0, status = 0;
    if (sscanf(head, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
        free(head);
        close(fd);
        return berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "",
                               "starting the exec: the engine's answer is not HTTP");
    }
    /* Docker Engine switches protocols (101); an engine that answers 200
     * streams on the same connection as well.  A chunked 200 would wrap
     * the stream in chunks this reader does not take apart. */
    bool chunked = strcasestr(head, "\r\nTransfer-Encoding: chunked") != NULL;
    if ((status != 101 && status != 200) || chunked) {
        size_t hl = strlen(head);
        read_rest(fd, head, SESSION_HEADERS_MAX, hl, now_ms() + 2000);
        engine_response_t r = {.status = status, .body = head + hl,
                               .len = strlen(head + hl)};
        int rc = engine_failure(&r,
                                status == 404 ? BERTH_ENOENT
                                : status == 409 ? BERTH_EINVAL
                                                : BERTH_EIO,
                                status == 409 ? "ContainerNotRunning" : "ContainerExecFailed",
                                chunked ? "starting the exec (a chunked stream)"
                                        : "starting the exec",
                                NULL, err);
        free(head);
        close(fd);
        return rc;
    }
    free(head);
    s->fd = fd;
    return 0;
}

/* POST /exec/{id}/resize; 0, or a negative code. */
static int resize_exec(docker_session_t *s, uint16_t rows, uint16_t cols, berth_error_t *err)
{
    char path[192];
    snprintf(path, sizeof path, "/exec/%s/resize?h=%u&w=%u", s->exec_id, (unsigned)rows,
             (unsigned)cols);
    engine_response_t r;
    int rc = call(&s->own, "POST", path, NULL, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    if (rc != 0)
        return rc;
    if (r.status != 200 && r.status != 201 && r.status != 204)
        rc = engine_failure(&r, r.status == 404 ? BERTH_ENOENT : BERTH_EIO,
                            "ContainerExecFailed", "resizing the exec's terminal", NULL, err);
    engine_response_free(&r);
    return rc;
}

/* Creates the exec in container cid; fills s->exec_id. */
static int create_exec(docker_session_t *s, const char *cid, const char *container,
                       const char *const *argv, size_t argc, berth_error_t *err)
{
    json_t *cmd = json_array();
    for (size_t i = 0; cmd != NULL && i < argc; i++)
        json_array_append_new(cmd, json_string(argv[i] ? argv[i] : ""));
    json_t *body = cmd ? json_pack("{s:b, s:b, s:b, s:b, s:o}", "AttachStdin", 1,
                                   "AttachStdout", 1, "AttachStderr", 1, "Tty", s->tty,
                                   "Cmd", cmd)
                       : NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    char path[192];
    snprintf(path, sizeof path, "/containers/%s/exec", cid);
    engine_response_t r;
    int rc = call(&s->own, "POST", path, text, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    free(text);
    if (rc != 0)
        return rc;
    if (r.status == 409) {
        engine_response_free(&r);
        return berth_error_set(err, BERTH_EINVAL, "ContainerNotRunning", "",
                               "container %s is not running", container);
    }
    if (r.status != 201 && r.status != 200) {
        rc = engine_failure(&r, r.status == 404 ? BERTH_ENOENT : BERTH_EIO,
                            "ContainerExecFailed", "creating the exec", NULL, err);
        engine_response_free(&r);
        return rc;
    }
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    engine_response_free(&r);
    const char *eid = json_string_value(json_object_get(j, "Id"));
    snprintf(s->exec_id, sizeof s->exec_id, "%s", eid ? eid : "");
    json_decref(j);
    if (s->exec_id[0] == '\0' || strspn(s->exec_id, "0123456789abcdefABCDEF") !=
                                     strlen(s->exec_id))
        return berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "",
                               "the engine sent no usable exec id");
    return 0;
}

/* berth_plugin_ops_t.session_open: the container found and its state
 * checked with the session's own engine client, the exec created and
 * started on a connection of its own; with a terminal of opts' size (its
 * first resize retried while the engine starts the process, bounded).
 * *fd is the stream's non-blocking socket, owned by the session. */
int docker_session_open(void *c, const char *key, const char *container,
                        const char *const *argv, size_t argc,
                        const berth_session_opts_t *opts, void **session, int *fd,
                        berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    *session = NULL;
    *fd = -1;
    if (argv == NULL || argc == 0)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "command",
                               "a session needs a command");
    docker_session_t *s = session_new(ctx);
    if (s == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    s->tty = opts != NULL && opts->tty;
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL) {
        session_free(s);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    group_object_t *o;
    int rc = find_named(&s->own, key, container, g, &o, err);
    if (rc == 0 && strcmp(o->state, "running") != 0)
        rc = berth_error_set(err, BERTH_EINVAL, "ContainerNotRunning", "",
                             "container %s is not running", container);
    if (rc == 0)
        snprintf(s->cid, sizeof s->cid, "%s", o->id);
    free(g);
    if (rc == 0)
        rc = create_exec(s, s->cid, container, argv, argc, err);
    if (rc == 0)
        rc = start_stream(s, err);
    if (rc == 0 && s->tty && opts->rows > 0 && opts->cols > 0) {
        /* Docker Engine answers the start before it runs the process, and
         * a resize before that is refused: retry for a moment. */
        int64_t deadline = now_ms() + SESSION_RESIZE_WAIT_MS;
        for (;;) {
            rc = resize_exec(s, opts->rows, opts->cols, err);
            if (rc == 0 || rc == BERTH_ENOMEM || now_ms() >= deadline)
                break;
            sleep_ms(50);
        }
    }
    if (rc != 0) {
        session_free(s);
        return rc;
    }
    *session = s;
    *fd = s->fd;
    return 0;
}

/* One recv: >0 bytes, 0 at EOF, -1 nothing now (EAGAIN), -2 failure. */
static ssize_t recv_some(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t r = recv(fd, buf, len, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : -2;
    }
}

/* berth_plugin_ops_t.session_read: the output waiting, never blocking:
 * raw under a terminal, demultiplexed (stdout and stderr frames, in the
 * order they came) without; a frame cut anywhere is resumed on the next
 * call.  1 once the engine closed the stream. */
int docker_session_read(void *session, char *buf, size_t cap, size_t *n, berth_error_t *err)
{
    docker_session_t *s = session;
    *n = 0;
    if (s->eof)
        return 1;
    if (s->fd < 0)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                               "the session's stream is closed");
    if (s->garbled)
        return berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "",
                               "the exec's output is not a multiplexed stream");
    size_t out = 0;
    while (out < cap) {
        ssize_t r;
        if (s->tty) {
            r = recv_some(s->fd, buf + out, cap - out);
            if (r > 0)
                out += (size_t)r;
        } else if (s->frame_left == 0) {
            r = recv_some(s->fd, s->header + s->header_have, 8 - s->header_have);
            if (r > 0) {
                s->header_have += (size_t)r;
                if (s->header_have == 8) {
                    const unsigned char *h = s->header;
                    /* stdin, stdout or stderr, then three zero bytes: any
                     * other header means the stream is not what it seems. */
                    if (h[0] > 2 || h[1] != 0 || h[2] != 0 || h[3] != 0) {
                        s->garbled = true;
                        break;
                    }
                    s->frame_left = ((size_t)h[4] << 24) | ((size_t)h[5] << 16) |
                                    ((size_t)h[6] << 8) | h[7];
                    s->header_have = 0;
                }
            }
        } else {
            size_t want = cap - out < s->frame_left ? cap - out : s->frame_left;
            r = recv_some(s->fd, buf + out, want);
            if (r > 0) {
                out += (size_t)r;
                s->frame_left -= (size_t)r;
            }
        }
        if (r == 0) {
            /* The output ended; what was read now goes out first. */
            s->eof = true;
            break;
        }
        if (r == -1)
            break;
        if (r == -2) {
            *n = out;
            if (out > 0)
                return 0;
            return berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "",
                                   "reading the exec's output: %s", strerror(errno));
        }
    }
    *n = out;
    if (s->garbled && out == 0)
        return berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "",
                               "the exec's output is not a multiplexed stream");
    return s->eof && out == 0 ? 1 : 0;
}

/* berth_plugin_ops_t.session_write: all of data to the stream, waiting at
 * most SESSION_WRITE_TIMEOUT_MS for the process to take it; len 0 shuts
 * the stream's write side, which the engine passes on as the end of the
 * process's input. */
int docker_session_write(void *session, const char *data, size_t len, berth_error_t *err)
{
    docker_session_t *s = session;
    if (s->fd < 0 || s->eof)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                               "the process's output has ended: it takes no more input");
    if (s->input_closed)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                               "the process's input is closed");
    if (len == 0) {
        s->input_closed = true;
        if (shutdown(s->fd, SHUT_WR) != 0 && errno != ENOTCONN)
            return berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "",
                                   "closing the exec's input: %s", strerror(errno));
        return 0;
    }
    if (send_all(s->fd, data, len, now_ms() + SESSION_WRITE_TIMEOUT_MS) != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "",
                               "writing to the exec's input: %s",
                               errno == ETIMEDOUT ? "the process took no input for 10 s"
                                                  : strerror(errno));
    return 0;
}

/* berth_plugin_ops_t.session_resize: POST /exec/{id}/resize with the
 * session's own client; nothing without a terminal. */
int docker_session_resize(void *session, uint16_t rows, uint16_t cols, berth_error_t *err)
{
    docker_session_t *s = session;
    if (!s->tty || rows == 0 || cols == 0)
        return 0;
    return resize_exec(s, rows, cols, err);
}

/* The exec's state: 1 ended (exit code in *code), 0 still running (its
 * process's id, as the engine's host sees it, in *pid when known), or a
 * negative code. */
static int exec_ended(docker_session_t *s, int *code, long *pid, berth_error_t *err)
{
    char path[160];
    snprintf(path, sizeof path, "/exec/%s/json", s->exec_id);
    json_t *info = NULL;
    int rc = get_json(&s->own, path, "ContainerExecFailed", &info, NULL, err);
    if (rc != 0)
        return rc;
    json_t *exit = json_object_get(info, "ExitCode");
    bool running = json_is_true(json_object_get(info, "Running"));
    int ended = !running && json_is_integer(exit);
    if (ended)
        *code = (int)json_integer_value(exit);
    if (pid != NULL)
        *pid = (long)json_integer_value(json_object_get(info, "Pid"));
    json_decref(info);
    return ended;
}

/* Whether processes a and b are in one pid namespace (false when either
 * cannot be seen). */
static bool same_pid_namespace(long a, long b)
{
    char pa[64], pb[64], la[128], lb[128];
    snprintf(pa, sizeof pa, "/proc/%ld/ns/pid", a);
    snprintf(pb, sizeof pb, "/proc/%ld/ns/pid", b);
    ssize_t na = readlink(pa, la, sizeof la - 1);
    ssize_t nb = readlink(pb, lb, sizeof lb - 1);
    if (na <= 0 || nb <= 0)
        return false;
    la[na] = lb[nb] = '\0';
    return strcmp(la, lb) == 0;
}

/* Kills the exec's process `pid` (the engine's host's view), and only
 * when this process sees it in the pid namespace of the container's own
 * process and that namespace is not this process's: an agent that does
 * not share the engine's view of processes kills nothing. */
static void kill_exec(docker_session_t *s, long pid)
{
    if (pid <= 1)
        return;
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/json", s->cid);
    json_t *info = NULL;
    berth_error_t ignored;
    if (get_json(&s->own, path, "ContainerExecFailed", &info, NULL, &ignored) != 0)
        return;
    long cpid = (long)json_integer_value(json_object_get(json_object_get(info, "State"), "Pid"));
    json_decref(info);
    if (cpid <= 1 || cpid == pid || !same_pid_namespace(pid, cpid) ||
        same_pid_namespace(pid, (long)getpid()))
        return;
    kill((pid_t)pid, SIGKILL);
}

/* berth_plugin_ops_t.session_close: after the output ended, the exit code
 * from the exec's inspection, waited for at most SESSION_EXIT_WAIT_MS
 * (BERTH_EIO when it never came); before, the stream closed (the process's
 * input and terminal), SESSION_KILL_GRACE_MS for the process to end, then
 * its process killed when this process sees it in the container (neither
 * engine has a call that kills an exec), the rest of the same bounded
 * wait, and -1.  A process this cannot kill may outlive the session.
 * Frees the session in every case. */
int docker_session_close(void *session, int *exit_code, berth_error_t *err)
{
    docker_session_t *s = session;
    *exit_code = -1;
    if (s == NULL)
        return 0;
    bool ended_output = s->eof;
    if (s->fd >= 0) {
        shutdown(s->fd, SHUT_RDWR);
        close(s->fd);
        s->fd = -1;
    }
    int64_t start = now_ms();
    int64_t deadline = start + SESSION_EXIT_WAIT_MS;
    bool killed = ended_output;
    int rc = 0, code = -1;
    for (;;) {
        long pid = 0;
        int e = exec_ended(s, &code, &pid, err);
        if (e < 0) {
            rc = e;
            break;
        }
        if (e == 1)
            break;
        if (now_ms() >= deadline) {
            if (ended_output)
                rc = berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "",
                                     "the exec's exit code never came");
            break;
        }
        if (!killed && now_ms() - start >= SESSION_KILL_GRACE_MS) {
            killed = true;
            kill_exec(s, pid);
        }
        sleep_ms(50);
    }
    if (ended_output && rc == 0)
        *exit_code = code;
    /* Before the output ended the session ended the process: its status is
     * no exit status of its own, and an exec the engine has forgotten is
     * no failure. */
    if (!ended_output && rc == BERTH_ENOENT)
        rc = 0;
    session_free(s);
    return rc;
}
