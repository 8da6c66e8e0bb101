/*
 * endpoint.h: where the `redis` scenario's Redis listens, the commands it
 * sends there, and the private redis-server it starts when it is given
 * none (endpoint.c).  It never touches a Redis it was not pointed at.
 */
#ifndef BERTH_BENCH_ENDPOINT_H
#define BERTH_BENCH_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Where Redis listens, as redis-cli and redis-benchmark take it. */
typedef struct endpoint {
    bool is_unix;
    char path[108];
    char host[256];
    char port[8];
} endpoint_t;

/* The private redis-server. */
typedef struct server {
    pid_t pid;
    char dir[64];
} server_t;

/* Parses redis://HOST:PORT or unix:///PATH into *ep.  Returns 0, or -1
 * when `url` is neither. */
int bench_endpoint_parse(const char *url, endpoint_t *ep);


/* Sends one command and reads its reply, which must be a simple string, an
 * integer, a bulk string or a flat array of those; stores its text in *out
 * (free(); an array's elements joined by '\n', a nil element as nothing).
 * Returns 0, or -1 (I/O failure, a nil or nested reply, an error reply or
 * element: its text in *out when there is one). */
int bench_endpoint_command(const endpoint_t *ep, int argc, const char *const *argv, char **out);

/* Stops the private redis-server (SIGTERM, then SIGKILL, each wait
 * bounded) and removes its directory; does nothing for a server_t that
 * holds neither. */
void bench_server_stop(server_t *sv);

/* Starts a private redis-server as a deployment would run it (AOF with
 * the given appendfsync policy, "everysec" or "always"; no RDB snapshots)
 * on a unix socket in a new temporary directory, and waits for PING.
 * Returns 0 with *ep set, or -1. */
int bench_server_start(server_t *sv, endpoint_t *ep, const char *appendfsync);

/* The same as a Redis Cluster node (cluster-enabled, lib/redis-server.c's
 * node timeout) listening on a free port of 127.0.0.1 (ep->host and
 * ep->port), not yet part of a cluster (berth__redis_cluster_create()).
 * Returns 0 with *ep set, or -1. */
int bench_cluster_node_start(server_t *sv, endpoint_t *ep, const char *appendfsync);

/* FCALLs Redis has run, from INFO commandstats; 0 when it does not say. */
uint64_t bench_endpoint_fcalls(const endpoint_t *ep);

/* The AOF fsync policy a server runs with, into out[cap]: its appendfsync
 * ("everysec", "always", "no"), or "no AOF" when AOF is off.  Returns 0,
 * or -1 when the server does not say (CONFIG may be disabled). */
int bench_endpoint_appendfsync(const endpoint_t *ep, char *out, size_t cap);

#endif /* BERTH_BENCH_ENDPOINT_H */
