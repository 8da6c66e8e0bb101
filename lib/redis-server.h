/*
 * lib/redis-server.h: a private redis-server for Berth's daemon (its
 * embedded Redis), the bench and the tests' harness: the command line
 * built from a few options, the start, the wait for PING, the stop, and
 * the joining of several into a local Redis Cluster.
 *
 * A server started here listens on a unix socket or on 127.0.0.1 only,
 * keeps everything in the directory it is given, and never daemonizes.
 * Nothing here may touch a Redis it did not start or wait without a bound;
 * it blocks, so a daemon uses it before or beside its loop, never on it
 * (berthd's PING wait runs before the loop starts).
 */
#ifndef BERTH_LIB_REDIS_SERVER_H
#define BERTH_LIB_REDIS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How to run the server.  `dir` is required; the rest may be zero. */
typedef struct berth__redis_server_options {
    const char *dir;                /* --dir; its log is DIR/redis.log      */
    const char *socket_path;        /* --unixsocket (mode 700); NULL: none  */
    int port;                       /* TCP port on 127.0.0.1; 0: no TCP     */
    const char *appendfsync;        /* "everysec" or "always": AOF on;
                                       NULL: AOF off                        */
    const char *pidfile;            /* --pidfile; NULL: none                */
    bool cluster;                   /* cluster-enabled, DIR/nodes.conf, a
                                       2 s node timeout (TCP only)          */
    bool own_process_group;         /* see berth__spawn_options_t           */
    int death_signal;               /* sent to it when the caller dies      */
} berth__redis_server_options_t;

/* Starts redis-server (from PATH) with `opts`, in the background, without
 * waiting for it.  Returns its pid, or -1 with the reason in err[cap]. */
pid_t berth__redis_server_spawn(const berth__redis_server_options_t *opts, char *err,
                                size_t cap);

/* Whether the server at socket_path (when not NULL) or 127.0.0.1:port
 * answers PING with PONG within timeout_ms (a server still loading its AOF
 * does not). */
bool berth__redis_server_ping(const char *socket_path, int port, int64_t timeout_ms);

/* Waits at most wait_ms until the server `pid` started with `opts` answers
 * PING.  Returns 0; or -1 with the reason in err[cap] when it exited (then
 * reaped, its wait status in *status when status is not NULL) or did not
 * answer in time (then still running: the caller stops it). */
int berth__redis_server_wait(pid_t pid, const berth__redis_server_options_t *opts,
                             int64_t wait_ms, int *status, char *err, size_t cap);

/* Starts the server and waits for it, as the two calls above; on failure
 * nothing is left running.  Returns the pid, or -1 with err set. */
pid_t berth__redis_server_start(const berth__redis_server_options_t *opts, int64_t wait_ms,
                                char *err, size_t cap);

/* A TCP port on 127.0.0.1 that is free right now and not 6379, and (for a
 * cluster node, need_bus) whose cluster bus port, port + 10000, is free
 * too.  The port may be taken before redis-server binds it; the start then
 * fails and the caller tries another.  Returns the port or 0. */
int berth__redis_free_port(bool need_bus);

/* Joins the cluster-enabled servers on 127.0.0.1:ports[0..n-1] into one
 * Redis Cluster (redis-cli --cluster create, which picks the masters) of
 * n / (1 + replicas_per_master) masters, at least 3, each with
 * replicas_per_master replicas; then waits until every node says
 * cluster_state:ok and every replica is online.  Each of the two steps is
 * bounded by wait_ms.  Returns 0, or -1 with the reason in err[cap] (the
 * servers are left running: the caller stops them). */
int berth__redis_cluster_create(const int *ports, int n, int replicas_per_master,
                                int64_t wait_ms, char *err, size_t cap);

#endif
