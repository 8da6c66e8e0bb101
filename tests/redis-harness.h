/*
 * redis-harness.h: starts and stops real redis-server processes for Berth's
 * tests (a single server on a unix socket or a loopback TCP port, with or
 * without AOF, and a local Redis Cluster of several masters, with or
 * without replicas).
 *
 * Every server lives in its own mkdtemp directory under /tmp, listens on
 * 127.0.0.1 or a socket in that directory only, and dies with the process
 * that started it (PR_SET_PDEATHSIG, and an atexit cleanup in that process).
 * The harness never touches a Redis it did not start (never port 6379),
 * never writes into the source tree, and every wait it does is bounded.
 *
 * The harness is not thread-safe.  A process forked from the test process
 * (a scheduler child) must not stop or restart servers; the atexit cleanup
 * runs only in the process that started them, so a child that calls exit()
 * leaves them alone.
 */
#ifndef BERTH_TEST_REDIS_HARNESS_H
#define BERTH_TEST_REDIS_HARNESS_H

#include <sys/types.h>

#include <hiredis/hiredis.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum berth_test_redis_transport {
    BERTH_TEST_REDIS_UNIX = 0,      /* DIR/redis.sock, no TCP listener      */
    BERTH_TEST_REDIS_TCP            /* a free port on 127.0.0.1             */
} berth_test_redis_transport_t;

typedef enum berth_test_redis_aof {
    BERTH_TEST_REDIS_AOF_OFF = 0,   /* no persistence at all                */
    BERTH_TEST_REDIS_AOF_EVERYSEC,  /* appendfsync everysec                 */
    BERTH_TEST_REDIS_AOF_ALWAYS     /* appendfsync always                   */
} berth_test_redis_aof_t;

/* All-zero is a valid set of options: unix socket, no AOF, no cluster. */
typedef struct berth_test_redis_options {
    berth_test_redis_transport_t transport;
    berth_test_redis_aof_t aof;
    int cluster;                    /* nonzero: cluster-enabled yes (TCP only) */
} berth_test_redis_options_t;

/* One redis-server.  Read the fields; never write them. */
typedef struct berth_test_redis {
    pid_t pid;                      /* the running server, 0 after kill     */
    int port;                       /* TCP port, 0 on a unix socket         */
    char dir[64];                   /* its mkdtemp directory                */
    char socket_path[128];          /* DIR/redis.sock (unix transport)      */
    char url[160];                  /* unix:///DIR/redis.sock or redis://127.0.0.1:PORT */
    berth_test_redis_options_t opts;
} berth_test_redis_t;

/* Starts a redis-server with `opts` (NULL: all defaults) and waits (at most
 * 10 s) until it answers PING.  Returns the server (stop it with
 * berth_test_redis_stop()) or NULL, with the reason on stderr; on failure
 * no process and no directory is left behind. */
berth_test_redis_t *berth_test_redis_start(const berth_test_redis_options_t *opts);

/* Kills the server with SIGKILL and reaps it, keeping its directory (and
 * AOF) for berth_test_redis_restart().  Does nothing when it is not
 * running.  Returns 0, or -1 when it could not be reaped within 10 s. */
int berth_test_redis_kill(berth_test_redis_t *r);

/* Starts the server again in the same directory, socket and port with the
 * same options, so that with AOF on the data comes back; kills it first
 * when it is still running.  Waits (at most 10 s, plus the time to load the
 * AOF) for PING.  Returns 0 or -1. */
int berth_test_redis_restart(berth_test_redis_t *r);

/* Stops the server (SIGTERM, then SIGKILL after 10 s), removes its
 * directory and frees r.  Accepts NULL. */
void berth_test_redis_stop(berth_test_redis_t *r);

/* The redis-server a cmocka test group shares (unix socket, no AOF):
 * berth_test_redis_group_setup() starts it and returns 0, or -1 when it
 * does not start; berth_test_redis_group_teardown() stops it and sets
 * berth_test_redis_group back to NULL.  Pass the two to
 * cmocka_run_group_tests() as the group's fixtures; its tests read the
 * server here. */
extern berth_test_redis_t *berth_test_redis_group;
int berth_test_redis_group_setup(void **state);
int berth_test_redis_group_teardown(void **state);

/* A new hiredis connection to the server (5 s timeouts), or NULL when it
 * cannot connect.  The caller frees it with redisFree(). */
redisContext *berth_test_redis_connect(const berth_test_redis_t *r);

/* A local Redis Cluster: cluster-enabled servers on loopback ports, joined
 * with redis-cli --cluster create: `masters` masters, each with the same
 * number of replicas.  Which server became a master is the cluster's
 * choice: ask berth_test_cluster_node_for_key(). */
typedef struct berth_test_cluster {
    int masters;                    /* masters when created                 */
    int count;                      /* all nodes: masters and replicas      */
    berth_test_redis_t **nodes;     /* count entries                        */
    char url[160];                  /* the first node's redis://127.0.0.1:PORT */
} berth_test_cluster_t;

/* Starts a cluster of `masters` (>= 3, redis-cli's minimum) nodes and no
 * replicas, and waits (at most 30 s) until every node's CLUSTER INFO says
 * cluster_state:ok.  Returns it (stop with berth_test_cluster_stop()) or
 * NULL, with the reason on stderr and nothing left running. */
berth_test_cluster_t *berth_test_cluster_start(int masters);

/* The same with `replicas_per_master` replicas of each master
 * (masters * (1 + replicas_per_master) servers, AOF as `aof` on every
 * one); besides cluster_state:ok it waits (at most 30 s) until every
 * master reports all its replicas online, so that a WAIT can be answered
 * from the start.  The nodes time each other out after 2 s (lib/
 * redis-server.c): a master killed with SIGKILL is replaced by its replica
 * within a few seconds. */
berth_test_cluster_t *berth_test_cluster_start_replicas(int masters, int replicas_per_master,
                                                        berth_test_redis_aof_t aof);

/* The node that serves `key`'s slot now (asks the first running node for
 * CLUSTER KEYSLOT and CLUSTER SLOTS, and matches the slot's master against
 * the node ports), or NULL. */
berth_test_redis_t *berth_test_cluster_node_for_key(const berth_test_cluster_t *c,
                                                    const char *key);

/* Waits (at most wait_ms) until every running node says cluster_state:ok
 * and the master of `key`'s slot is a running node that answers a command
 * on `key` (no redirection).  Returns that node, or NULL on timeout. */
berth_test_redis_t *berth_test_cluster_wait_master(const berth_test_cluster_t *c,
                                                   const char *key, long wait_ms);

/* Stops every node and frees c.  Accepts NULL. */
void berth_test_cluster_stop(berth_test_cluster_t *c);

/* Kills every server this process started and removes their directories,
 * without freeing anything.  For a test's timeout handler (SIGALRM) before
 * it exits; also registered with atexit(). */
void berth_test_redis_cleanup_all(void);

#ifdef __cplusplus
}
#endif

#endif /* BERTH_TEST_REDIS_HARNESS_H */
