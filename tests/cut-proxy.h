/*
 * cut-proxy.h: a TCP proxy in front of a redis-server that cuts its
 * clients' connections right after a commit, for Berth's fault tests.
 *
 * Armed, the proxy watches the commands its clients (berthd) send; when
 * one is an FCALL of a commit Function (berth_place_fx, berth_place_many,
 * berth_release_fx, berth_records, berth_restart_fx, berth_preempt_fx) it
 * lets the command through, waits for Redis's reply to it (counting
 * replies on that connection; at most CUT_PROXY_REPLY_WAIT_MS, scaled by
 * test-time.h) and closes both sides of every proxied connection without
 * forwarding that reply: the commit applied and the client never learns
 * it.  New connections are forwarded as usual afterwards.  Unarmed, it
 * forwards bytes unchanged.
 *
 * The proxy runs in a thread of its own, listens on 127.0.0.1 only and
 * must never alter, reorder or invent a byte it forwards.  Test-only code:
 * tests/test_berthd_cut.c runs one in-process, tests/redis-cut-proxy.c
 * wraps one in a program the shell tests arm with a signal.
 */
#ifndef BERTH_TEST_CUT_PROXY_H
#define BERTH_TEST_CUT_PROXY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CUT_PROXY_REPLY_WAIT_MS 5000     /* the commit's reply, before the cut */
#define CUT_PROXY_LINKS_MAX 64

/* Bytes received and not yet taken as whole RESP values. */
typedef struct cut_proxy_buf {
    char *p;
    size_t len, cap;
} cut_proxy_buf_t;

/* One proxied connection: the client's side (down) and Redis's (up). */
typedef struct cut_proxy_link {
    int down, up;
    cut_proxy_buf_t from_down, from_up;
    uint64_t commands, replies;     /* whole values seen each way           */
    uint64_t cut_at;                /* nonzero: cut at this reply's arrival */
} cut_proxy_link_t;

/* The proxy.  The thread alone touches listen_fd's connections (links);
 * the rest is shared under mu.  Read `port` once started. */
typedef struct cut_proxy {
    pthread_t thread;
    bool started;
    int listen_fd;
    int port;                       /* where it listens on 127.0.0.1        */
    int wake[2];                    /* the caller wakes the thread to stop it */
    int up_port;                    /* 0: up_path, a unix socket            */
    char up_path[128];
    cut_proxy_link_t links[CUT_PROXY_LINKS_MAX];
    size_t nlinks;
    int64_t cut_deadline;           /* nonzero: a cut is due by then        */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    bool armed;
    int cuts;                       /* cuts done                            */
    char cut_function[32];          /* the commit the last cut let through  */
    bool cut_reply_seen;            /* its reply reached the proxy          */
    bool cut_applied;               /* and said it applied ([1, ...])       */
    char cut_reply[96];             /* the reply's first bytes, printable   */
} cut_proxy_t;

/* What the proxy's cuts saw, as of one moment. */
typedef struct cut_info {
    int cuts;
    bool armed;                     /* still armed: no commit seen          */
    char function[32];              /* the last cut's commit Function       */
    bool reply_seen, applied;
    char reply[96];
} cut_info_t;

/* Starts a proxy listening on 127.0.0.1:`listen_port` (0: a free port,
 * then read x->port) that forwards to Redis on 127.0.0.1:`up_port`, or,
 * when up_port is 0, on the unix socket `up_path`.  Returns 0, or -1 with
 * nothing left running (the reason printed on stderr).  A connection made
 * while Redis is down is accepted and closed. */
int cut_proxy_start(cut_proxy_t *x, int listen_port, int up_port, const char *up_path);

/* Stops the thread, joins it, closes every connection and the listening
 * socket.  Accepts a proxy that did not start. */
void cut_proxy_stop(cut_proxy_t *x);

/* Arms the proxy: the next commit FCALL, on any connection, is cut after
 * its reply.  Arming an armed proxy changes nothing.  Thread-safe. */
void cut_proxy_arm(cut_proxy_t *x);

/* Waits (at most timeout_ms, scaled by test-time.h; 0: not at all) until
 * the proxy has cut `cuts` times in all; returns what it saw then. */
cut_info_t cut_proxy_wait(cut_proxy_t *x, int cuts, int timeout_ms);

#endif /* BERTH_TEST_CUT_PROXY_H */
