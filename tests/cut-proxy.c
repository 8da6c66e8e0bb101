/*
 * cut-proxy.c: the proxy that cuts a Redis client's connections right
 * after a commit (cut-proxy.h says what it does and for whom).
 *
 * One thread polls the listening socket and every link; it parses just
 * enough RESP2 to count whole commands and replies on each link and to
 * name the Function an FCALL calls.  It must never alter a forwarded byte,
 * never block longer than a socket's 5 s send timeout, and never listen
 * beyond 127.0.0.1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cut-proxy.h"
#include "test-time.h"

#define RESP_DEPTH_MAX 16

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *const COMMIT_FUNCTIONS[] = {"berth_place_fx", "berth_place_many",
                                               "berth_release_fx", "berth_records",
                                               "berth_restart_fx", "berth_preempt_fx", NULL};

static int buf_append(cut_proxy_buf_t *b, const char *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static void buf_consume(cut_proxy_buf_t *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* The length of the whole RESP2 value at p[0..len): 0 while incomplete, -1
 * when it is not RESP. */
static long resp_value_len(const char *p, size_t len, int depth)
{
    if (len == 0)
        return 0;
    if (depth > RESP_DEPTH_MAX)
        return -1;
    const char *eol = memmem(p, len, "\r\n", 2);
    if (eol == NULL)
        return 0;
    size_t head = (size_t)(eol - p) + 2;
    long n = strtol(p + 1, NULL, 10);
    switch (p[0]) {
    case '+':
    case '-':
    case ':':
        return (long)head;
    case '$':
        if (n < 0)
            return (long)head;
        return len < head + (size_t)n + 2 ? 0 : (long)(head + (size_t)n + 2);
    case '*': {
        size_t off = head;
        for (long i = 0; i < n; i++) {
            long l = resp_value_len(p + off, len - off, depth + 1);
            if (l <= 0)
                return l;
            off += (size_t)l;
        }
        return (long)off;
    }
    default:
        return -1;
    }
}

/* The i-th bulk string (0-based, i < 2) of the whole command at p, or
 * NULL. */
static const char *resp_arg(const char *p, size_t len, int i, size_t *arg_len)
{
    if (len == 0 || p[0] != '*' || strtol(p + 1, NULL, 10) <= i)
        return NULL;
    const char *q = memchr(p, '\n', len);
    for (int k = 0; q != NULL && k <= i; k++) {
        q++;
        if (q >= p + len || *q != '$')
            return NULL;
        long n = strtol(q + 1, NULL, 10);
        const char *s = memchr(q, '\n', (size_t)(p + len - q));
        if (s == NULL || n < 0 || s + 1 + n > p + len)
            return NULL;
        if (k == i) {
            *arg_len = (size_t)n;
            return s + 1;
        }
        q = s + n + 2;
    }
    return NULL;
}

/* The commit Function the command calls, or NULL. */
static const char *commit_function(const char *p, size_t len)
{
    size_t n0 = 0, n1 = 0;
    const char *a0 = resp_arg(p, len, 0, &n0);
    const char *a1 = resp_arg(p, len, 1, &n1);
    if (a0 == NULL || a1 == NULL || n0 != 5 || strncasecmp(a0, "FCALL", 5) != 0)
        return NULL;
    for (size_t i = 0; COMMIT_FUNCTIONS[i] != NULL; i++)
        if (strlen(COMMIT_FUNCTIONS[i]) == n1 && memcmp(COMMIT_FUNCTIONS[i], a1, n1) == 0)
            return COMMIT_FUNCTIONS[i];
    return NULL;
}

/* Writes all of data (blocking, bounded by the socket's send timeout). */
static int write_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

static void link_close(cut_proxy_link_t *l)
{
    if (l->down >= 0)
        close(l->down);
    if (l->up >= 0)
        close(l->up);
    free(l->from_down.p);
    free(l->from_up.p);
    memset(l, 0, sizeof *l);
    l->down = l->up = -1;
}

/* Closes every proxied connection, both sides: the cut. */
static void proxy_cut(cut_proxy_t *x, const char *reply, size_t reply_len)
{
    for (size_t i = 0; i < x->nlinks; i++) {
        shutdown(x->links[i].down, SHUT_RDWR);
        shutdown(x->links[i].up, SHUT_RDWR);
        link_close(&x->links[i]);
    }
    x->nlinks = 0;
    x->cut_deadline = 0;
    pthread_mutex_lock(&x->mu);
    x->cuts++;
    x->cut_reply_seen = reply != NULL;
    /* A Function's answer is an array whose first element is 1 when the
     * commit applied (core/store/store_commit.c, berth__store_fcall_result()); a batch's
     * (berth_place_many) is an array of those, and the test's request is
     * its first. */
    const char *eol = reply != NULL ? memmem(reply, reply_len, "\r\n", 2) : NULL;
    if (eol != NULL && strcmp(x->cut_function, "berth_place_many") == 0 &&
        (size_t)(reply + reply_len - eol) > 3 && eol[2] == '*') {
        reply_len -= (size_t)(eol + 2 - reply);
        reply = eol + 2;
        eol = memmem(reply, reply_len, "\r\n", 2);
    }
    x->cut_applied = eol != NULL && reply[0] == '*' &&
                     (size_t)(reply + reply_len - eol) >= 6 && memcmp(eol, "\r\n:1\r\n", 6) == 0;
    size_t k = 0;
    for (size_t i = 0; reply != NULL && i < reply_len && k + 1 < sizeof x->cut_reply; i++)
        x->cut_reply[k++] = reply[i] == '\r' || reply[i] == '\n' ? ' ' : reply[i];
    x->cut_reply[k] = '\0';
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

static int upstream_connect(const cut_proxy_t *x)
{
    int fd;
    if (x->up_port != 0) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)x->up_port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
    } else {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        size_t n = strlen(x->up_path);
        if (n >= sizeof a.sun_path) {
            close(fd);
            return -1;
        }
        memcpy(a.sun_path, x->up_path, n + 1);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

static void proxy_accept(cut_proxy_t *x)
{
    int down = accept4(x->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (down < 0)
        return;
    int up = x->nlinks < CUT_PROXY_LINKS_MAX ? upstream_connect(x) : -1;
    if (up < 0) {
        close(down);
        return;
    }
    /* A peer that stops reading stalls the proxy 5 s at most. */
    struct timeval tv = {5, 0};
    setsockopt(down, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(up, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    cut_proxy_link_t *l = &x->links[x->nlinks++];
    memset(l, 0, sizeof *l);
    l->down = down;
    l->up = up;
}

/* berthd sent data: count its whole commands (looking for the armed
 * commit) before forwarding the bytes, so a cut is due before Redis can
 * answer.  Returns -1 when the link failed. */
static int from_berthd(cut_proxy_t *x, cut_proxy_link_t *l, const char *data, size_t n)
{
    if (buf_append(&l->from_down, data, n) != 0)
        return -1;
    for (;;) {
        long v = resp_value_len(l->from_down.p, l->from_down.len, 0);
        if (v < 0)
            return -1;
        if (v == 0)
            break;
        l->commands++;
        const char *fn = commit_function(l->from_down.p, (size_t)v);
        if (fn != NULL) {
            pthread_mutex_lock(&x->mu);
            bool armed = x->armed;
            if (armed) {
                x->armed = false;
                snprintf(x->cut_function, sizeof x->cut_function, "%s", fn);
            }
            pthread_mutex_unlock(&x->mu);
            if (armed) {
                l->cut_at = l->commands;
                x->cut_deadline = now_ms() + test_deadline_ms(CUT_PROXY_REPLY_WAIT_MS);
            }
        }
        buf_consume(&l->from_down, (size_t)v);
    }
    return write_all(l->up, data, n);
}

/* Redis answered: forward whole replies, except the armed commit's, which
 * is the cut.  Returns -1 when the link failed, 1 after a cut. */
static int from_redis(cut_proxy_t *x, cut_proxy_link_t *l, const char *data, size_t n)
{
    if (buf_append(&l->from_up, data, n) != 0)
        return -1;
    size_t off = 0;
    int rc = 0;
    while (rc == 0) {
        long v = resp_value_len(l->from_up.p + off, l->from_up.len - off, 0);
        if (v < 0)
            return -1;
        if (v == 0)
            break;
        l->replies++;
        if (l->cut_at != 0 && l->replies == l->cut_at) {
            if (off > 0 && write_all(l->down, l->from_up.p, off) != 0)
                return -1;
            char head[96];
            size_t k = (size_t)v < sizeof head ? (size_t)v : sizeof head;
            memcpy(head, l->from_up.p + off, k);
            proxy_cut(x, head, k);      /* frees l's buffers */
            return 1;
        }
        off += (size_t)v;
    }
    if (off > 0 && write_all(l->down, l->from_up.p, off) != 0)
        return -1;
    buf_consume(&l->from_up, off);
    return 0;
}

static void *proxy_main(void *arg)
{
    cut_proxy_t *x = arg;
    struct pollfd pfd[2 + 2 * CUT_PROXY_LINKS_MAX];
    char chunk[65536];
    for (;;) {
        pthread_mutex_lock(&x->mu);
        bool stop = x->stop;
        pthread_mutex_unlock(&x->mu);
        if (stop)
            break;
        if (x->cut_deadline != 0 && now_ms() >= x->cut_deadline) {
            proxy_cut(x, NULL, 0);      /* no reply in time: cut anyway */
            continue;
        }
        size_t np = 0;
        pfd[np++] = (struct pollfd){.fd = x->wake[0], .events = POLLIN};
        pfd[np++] = (struct pollfd){.fd = x->listen_fd, .events = POLLIN};
        for (size_t i = 0; i < x->nlinks; i++) {
            pfd[np++] = (struct pollfd){.fd = x->links[i].down, .events = POLLIN};
            pfd[np++] = (struct pollfd){.fd = x->links[i].up, .events = POLLIN};
        }
        int timeout = -1;
        if (x->cut_deadline != 0) {
            int64_t left = x->cut_deadline - now_ms();
            timeout = left < 0 ? 0 : (int)left;
        }
        int r = poll(pfd, np, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        if (pfd[0].revents != 0) {
            char drain[16];
            (void)!read(x->wake[0], drain, sizeof drain);
        }
        /* Links before the accept: pfd follows the table as it was polled. */
        size_t nlinks = x->nlinks;
        bool cut = false;
        for (size_t i = nlinks; i-- > 0 && !cut;) {
            for (int side = 0; side < 2 && !cut; side++) {
                struct pollfd *p = &pfd[2 + 2 * i + (size_t)side];
                if (p->revents == 0)
                    continue;
                cut_proxy_link_t *l = &x->links[i];
                ssize_t got = recv(p->fd, chunk, sizeof chunk, 0);
                int rc = -1;
                if (got > 0)
                    rc = side == 0 ? from_berthd(x, l, chunk, (size_t)got)
                                   : from_redis(x, l, chunk, (size_t)got);
                if (rc == 1) {
                    cut = true;
                } else if (rc < 0) {
                    link_close(l);
                    x->links[i] = x->links[--x->nlinks];
                    break;
                }
            }
        }
        if (!cut && pfd[1].revents != 0)
            proxy_accept(x);
    }
    for (size_t i = 0; i < x->nlinks; i++)
        link_close(&x->links[i]);
    x->nlinks = 0;
    return NULL;
}

/* Contract: cut-proxy.h. */
int cut_proxy_start(cut_proxy_t *x, int listen_port, int up_port, const char *up_path)
{
    memset(x, 0, sizeof *x);
    x->listen_fd = x->wake[0] = x->wake[1] = -1;
    x->up_port = up_port;
    snprintf(x->up_path, sizeof x->up_path, "%s", up_path != NULL ? up_path : "");
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    x->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (x->listen_fd < 0 || bind(x->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(x->listen_fd, 64) != 0 ||
        getsockname(x->listen_fd, (struct sockaddr *)&a, &alen) != 0 ||
        pipe2(x->wake, O_CLOEXEC) != 0) {
        perror("proxy");
        goto fail;
    }
    x->port = ntohs(a.sin_port);
    if (pthread_create(&x->thread, NULL, proxy_main, x) != 0)
        goto fail;
    x->started = true;
    return 0;
fail:
    if (x->listen_fd >= 0)
        close(x->listen_fd);
    if (x->wake[0] >= 0) {
        close(x->wake[0]);
        close(x->wake[1]);
    }
    return -1;
}

/* Contract: cut-proxy.h. */
void cut_proxy_stop(cut_proxy_t *x)
{
    if (!x->started)
        return;
    pthread_mutex_lock(&x->mu);
    x->stop = true;
    pthread_mutex_unlock(&x->mu);
    (void)!write(x->wake[1], "x", 1);
    pthread_join(x->thread, NULL);
    close(x->listen_fd);
    close(x->wake[0]);
    close(x->wake[1]);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    x->started = false;
}

/* Contract: cut-proxy.h. */
void cut_proxy_arm(cut_proxy_t *x)
{
    pthread_mutex_lock(&x->mu);
    x->armed = true;
    pthread_mutex_unlock(&x->mu);
}

/* Contract: cut-proxy.h. */
cut_info_t cut_proxy_wait(cut_proxy_t *x, int cuts, int timeout_ms)
{
    int64_t end = now_ms() + test_deadline_ms(timeout_ms);
    cut_info_t info;
    pthread_mutex_lock(&x->mu);
    while (x->cuts < cuts) {
        int64_t left = end - now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ms = left > 100 ? 100 : (long)left;
        ts.tv_nsec += ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&x->cv, &x->mu, &ts);
    }
    info.cuts = x->cuts;
    info.armed = x->armed;
    snprintf(info.function, sizeof info.function, "%s", x->cut_function);
    info.reply_seen = x->cut_reply_seen;
    info.applied = x->cut_applied;
    snprintf(info.reply, sizeof info.reply, "%s", x->cut_reply);
    pthread_mutex_unlock(&x->mu);
    return info;
}
