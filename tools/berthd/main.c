/*
 * main.c: berthd, the container-group scheduler daemon with an ACI REST API.
 *
 * It reads the options, starts and supervises a private redis-server when
 * no --redis is given (a unix socket in the data directory, AOF on,
 * restarted with a back-off when it dies, stopped cleanly with berthd),
 * opens the API (waiting, with a back-off, while Redis cannot be reached)
 * and the HTTP server on one event_base, and runs it until SIGTERM or
 * SIGINT.
 *
 * Exit status: 0 after a clean shutdown (also when stopped while waiting
 * for Redis), 1 when something fails at run time or Redis stays
 * unreachable past --redis-wait-ms, 2 for a usage or configuration error.
 * It must never leave its redis-server behind, never wait without a bound
 * (the wait for Redis ends with SIGTERM or SIGINT, or at --redis-wait-ms),
 * and never listen before the API is open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "berthd.h"
#include "lib/clock.h"
#include "lib/redis-server.h"
#include "lib/spawn.h"

#define BD_REDIS_START_WAIT_MS 10000
#define BD_REDIS_STOP_WAIT_MS 10000
#define BD_REDIS_BACKOFF_MIN_MS 100
#define BD_REDIS_BACKOFF_MAX_MS 5000
#define BD_REDIS_STABLE_MS 30000    /* up this long: the back-off resets    */
#define BD_OPEN_RETRY_MIN_MS 100    /* start-up's tries to reach Redis: the */
#define BD_OPEN_RETRY_MAX_MS 5000   /* pause between them doubles to this   */
#define BD_REDIS_WAIT_MAX_MS 2147483647ULL /* --redis-wait-ms: about 24 days */

/* The embedded redis-server. */
typedef struct bd_redis {
    bool enabled;
    pid_t pid;                      /* 0: not running                       */
    char dir[512];
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    long backoff_ms;
    long long started_ms;
    unsigned restarts;
    bool stopping;
    struct event *restart_timer;
} bd_redis_t;

/* ---- options -------------------------------------------------------------------------- */

static void bd_usage(FILE *out)
{
    fprintf(out,
            "usage: berthd --listen ADDR:PORT [options]\n"
            "\n"
            "  --listen ADDR:PORT     address to serve on: IPv4, [IPv6] or a host name\n"
            "  --redis URL            redis://HOST:PORT or unix:///PATH; without it berthd\n"
            "                         runs its own redis-server in the data directory\n"
            "  --cell NAME            the cell to schedule (default: default)\n"
            "  --tls-cert FILE        PEM certificate chain; with --tls-key: HTTPS\n"
            "  --tls-key FILE         PEM private key\n"
            "  --tokens FILE          bearer tokens, one per line: TOKEN SUB[,SUB...]\n"
            "                         [CLIENT_ID] ('*' for any subscription; with a\n"
            "                         CLIENT_ID, TOKEN is that OAuth client's secret);\n"
            "                         without it: no auth\n"
            "  --secrets-key FILE     the key file that seals secrets before they reach\n"
            "                         Redis (lines \"KEYID KEY\", the first seals, all\n"
            "                         unseal; mode 600); without it a document holding a\n"
            "                         secret is refused\n"
            "  --data-dir DIR         local state and the embedded Redis (default:\n"
            "                         /var/lib/berthd)\n"
            "  --dns-domain D         suffix of group FQDNs (default: berth.local)\n"
            "  --body-max BYTES       largest request body (default: 1048576)\n"
            "  --header-timeout S     deadline for a request's headers and body, from\n"
            "                         accept (the first request) or the request's first\n"
            "                         byte; a late one is answered 408 (default: 10)\n"
            "  --idle-timeout S       idle time of a kept-alive connection (default: 60)\n"
            "  --public-url URL       what clients reach berthd at, http(s)://HOST:PORT,\n"
            "                         named by the Azure CLI's metadata and token\n"
            "                         endpoints (default: from --listen and TLS)\n"
            "  --location LOC         the location resource groups report (default:\n"
            "                         westeurope)\n"
            "  --replicas N           answer a change only once N Redis replicas confirm\n"
            "                         it (WAIT); a change they do not confirm in time is\n"
            "                         answered 503 NotReplicated (default: 0)\n"
            "  --replica-wait-ms MS   how long a change waits for them (default: 1000)\n"
            "  --redis-wait-ms MS     at start, how long to keep trying while Redis cannot\n"
            "                         be reached (every 100 ms doubling to 5 s), then\n"
            "                         exit 1; 0: until it answers or SIGTERM (default: 0)\n"
            "  --help                 this text\n"
            "  --version              berthd's version\n");
}

static _Noreturn void bd_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static _Noreturn void bd_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "berthd: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(berthd --help lists the options)\n");
    va_end(ap);
    exit(2);
}

static unsigned long long bd_parse_uint(const char *opt, const char *s, unsigned long long min,
                                        unsigned long long max)
{
    if (s[0] < '0' || s[0] > '9')
        bd_usage_error("%s: \"%s\" is not a number", opt, s);
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        bd_usage_error("%s: \"%s\" is not a number", opt, s);
    if (v < min || v > max)
        bd_usage_error("%s: %llu is out of range (%llu to %llu)", opt, v, min, max);
    return v;
}

/* Splits "ADDR:PORT", "[V6]:PORT" or "NAME:PORT" into cfg. */
static void bd_parse_listen(const char *s, bd_config_t *cfg)
{
    const char *host = s, *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            bd_usage_error("--listen: \"%s\" is not [IPv6]:PORT", s);
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            bd_usage_error("--listen: \"%s\" has no :PORT", s);
        if (memchr(s, ':', (size_t)(colon - s)) != NULL)
            bd_usage_error("--listen: \"%s\": write an IPv6 address as [ADDR]:PORT", s);
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0)
        bd_usage_error("--listen: \"%s\" has no address", s);
    if (hlen >= sizeof cfg->listen_addr)
        bd_usage_error("--listen: the address is longer than %zu characters",
                       sizeof cfg->listen_addr - 1);
    memcpy(cfg->listen_addr, host, hlen);
    cfg->listen_addr[hlen] = '\0';
    cfg->listen_port = (uint16_t)bd_parse_uint("--listen port", colon + 1, 1, 65535);
}

static void bd_copy_opt(char *dst, size_t cap, const char *opt, const char *v)
{
    if (v[0] == '\0')
        bd_usage_error("%s: empty value", opt);
    if (strlen(v) >= cap)
        bd_usage_error("%s: longer than %zu characters", opt, cap - 1);
    memcpy(dst, v, strlen(v) + 1);
}

/* Checks --public-url: http(s)://HOST[:PORT], no path, query or odd
 * character; drops a trailing '/'. */
static void bd_check_public_url(char *url)
{
    size_t n = strlen(url);
    if (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
    const char *host = strncmp(url, "https://", 8) == 0  ? url + 8
                       : strncmp(url, "http://", 7) == 0 ? url + 7
                                                         : NULL;
    if (host == NULL || host[0] == '\0')
        bd_usage_error("--public-url: \"%s\" is not http(s)://HOST[:PORT]", url);
    for (const char *p = host; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("-._:[]", *p) != NULL))
            bd_usage_error("--public-url: \"%s\" has a path or an odd character after the "
                           "scheme (only HOST[:PORT])",
                           url);
}

static void bd_parse_options(int argc, char **argv, bd_config_t *cfg)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"redis", required_argument, NULL, 'r'},
        {"cell", required_argument, NULL, 'c'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"tokens", required_argument, NULL, 't'},
        {"secrets-key", required_argument, NULL, 'S'},
        {"data-dir", required_argument, NULL, 'd'},
        {"dns-domain", required_argument, NULL, 'D'},
        {"body-max", required_argument, NULL, 'b'},
        {"header-timeout", required_argument, NULL, 'H'},
        {"idle-timeout", required_argument, NULL, 'I'},
        {"redis-wait-ms", required_argument, NULL, 'W'},
        {"replicas", required_argument, NULL, 'N'},
        {"replica-wait-ms", required_argument, NULL, 'w'},
        {"public-url", required_argument, NULL, 'P'},
        {"location", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->cell, sizeof cfg->cell, "default");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "/var/lib/berthd");
    cfg->dns_domain = "berth.local";
    cfg->body_max = 1024 * 1024;
    cfg->header_timeout_s = 10;
    cfg->idle_timeout_s = 60;
    cfg->replica_wait_ms = 1000;
    cfg->agent_timeout_ms = 10000;
    snprintf(cfg->location, sizeof cfg->location, "westeurope");
    bool have_listen = false;
    const char *secrets_key = NULL;

    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': bd_parse_listen(optarg, cfg); have_listen = true; break;
        case 'r':
            bd_copy_opt(cfg->redis_url, sizeof cfg->redis_url, "--redis", optarg);
            if (strncmp(optarg, "redis://", 8) != 0 && strncmp(optarg, "unix://", 7) != 0)
                bd_usage_error("--redis: \"%s\" is not redis://HOST:PORT or unix:///PATH",
                               optarg);
            break;
        case 'c':
            bd_copy_opt(cfg->cell, sizeof cfg->cell, "--cell", optarg);
            for (const char *p = optarg; *p != '\0'; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
                    bd_usage_error("--cell: \"%s\" holds a character outside [A-Za-z0-9._-]",
                                   optarg);
            break;
        case 'C': cfg->tls_cert = optarg; break;
        case 'K': cfg->tls_key = optarg; break;
        case 't': cfg->tokens_file = optarg; break;
        case 'S': secrets_key = optarg; break;
        case 'd': bd_copy_opt(cfg->data_dir, sizeof cfg->data_dir, "--data-dir", optarg); break;
        case 'D':
            if (optarg[0] == '\0' || optarg[0] == '.')
                bd_usage_error("--dns-domain: \"%s\" is not a domain", optarg);
            cfg->dns_domain = optarg;
            break;
        case 'b':
            cfg->body_max = (size_t)bd_parse_uint("--body-max", optarg, 1024,
                                                  (unsigned long long)1 << 30);
            break;
        case 'H':
            cfg->header_timeout_s = (uint32_t)bd_parse_uint("--header-timeout", optarg, 1, 3600);
            break;
        case 'I':
            cfg->idle_timeout_s = (uint32_t)bd_parse_uint("--idle-timeout", optarg, 1, 86400);
            break;
        case 'W':
            cfg->redis_wait_ms =
                (uint32_t)bd_parse_uint("--redis-wait-ms", optarg, 0, BD_REDIS_WAIT_MAX_MS);
            break;
        case 'N':
            cfg->replicas = (uint32_t)bd_parse_uint("--replicas", optarg, 0, 64);
            break;
        case 'w':
            cfg->replica_wait_ms =
                (uint32_t)bd_parse_uint("--replica-wait-ms", optarg, 1, 60000);
            break;
        case 'P':
            bd_copy_opt(cfg->public_url, sizeof cfg->public_url, "--public-url", optarg);
            bd_check_public_url(cfg->public_url);
            break;
        case 'L':
            bd_copy_opt(cfg->location, sizeof cfg->location, "--location", optarg);
            for (const char *p = optarg; *p != '\0'; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9')))
                    bd_usage_error("--location: \"%s\" holds a character outside [A-Za-z0-9]",
                                   optarg);
            break;
        case 'h': bd_usage(stdout); exit(0);
        case 'V': printf("berthd %s\n", berth_version()); exit(0);
        case ':': bd_usage_error("%s needs a value", argv[optind - 1]);
        default: bd_usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        bd_usage_error("unexpected argument \"%s\"", argv[optind]);
    if (!have_listen)
        bd_usage_error("--listen ADDR:PORT is required");
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
        bd_usage_error("%s needs %s too", cfg->tls_cert != NULL ? "--tls-cert" : "--tls-key",
                       cfg->tls_cert != NULL ? "--tls-key" : "--tls-cert");
    if (cfg->public_url[0] == '\0') {
        bool v6 = strchr(cfg->listen_addr, ':') != NULL;
        snprintf(cfg->public_url, sizeof cfg->public_url, "%s://%s%s%s:%u",
                 cfg->tls_cert != NULL ? "https" : "http", v6 ? "[" : "", cfg->listen_addr,
                 v6 ? "]" : "", (unsigned)cfg->listen_port);
    }
    if (secrets_key != NULL) {
        /* Read once, here: the keys stay in memory for the process's life. */
        berth__keyring_t *ring = NULL;
        berth_error_t err;
        if (berth__keyring_load(secrets_key, &ring, &err) != 0)
            bd_usage_error("--secrets-key: %s", err.message);
        cfg->secrets = ring;
    }
}

/* ---- the embedded redis-server ---------------------------------------------------------- */

static int bd_mkdir_p(const char *dir)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* The embedded server's options: AOF (everysec) in the data directory, a
 * unix socket only, its own process group (a terminal's ^C reaches berthd
 * only, which then stops Redis in order) and SIGTERM when berthd dies. */
static berth__redis_server_options_t bd_redis_options(const bd_redis_t *rs, char *pidfile,
                                                      size_t cap)
{
    snprintf(pidfile, cap, "%s/redis.pid", rs->dir);
    return (berth__redis_server_options_t){
        .dir = rs->dir,
        .socket_path = rs->socket_path,
        .appendfsync = "everysec",
        .pidfile = pidfile,
        .own_process_group = true,
        .death_signal = SIGTERM,
    };
}

/* Starts redis-server without waiting for it.  Returns 0 or -1. */
static int bd_redis_spawn(bd_redis_t *rs)
{
    char pidfile[600], err[256];
    berth__redis_server_options_t opts = bd_redis_options(rs, pidfile, sizeof pidfile);
    pid_t pid = berth__redis_server_spawn(&opts, err, sizeof err);
    if (pid < 0) {
        bd_log("error", "embedded redis: %s", err);
        return -1;
    }
    rs->pid = pid;
    rs->started_ms = berth__clock_monotonic_ms();
    bd_log("info", "embedded redis: started redis-server (pid %ld) on %s", (long)pid,
           rs->socket_path);
    return 0;
}

/* Starts the server and waits (bounded) until it answers PING, or until
 * it exits.  Returns 0 or -1. */
static int bd_redis_start(bd_redis_t *rs)
{
    if (bd_redis_spawn(rs) != 0)
        return -1;
    char pidfile[600], err[256];
    berth__redis_server_options_t opts = bd_redis_options(rs, pidfile, sizeof pidfile);
    int st = -1;
    if (berth__redis_server_wait(rs->pid, &opts, BD_REDIS_START_WAIT_MS, &st, err,
                                 sizeof err) == 0)
        return 0;
    if (st != -1)
        rs->pid = 0;
    bd_log("error", "embedded redis: %s", err);
    return -1;
}

/* Stops the server: SIGTERM (Redis flushes the AOF and exits), then
 * SIGKILL after the bound. */
static void bd_redis_stop(bd_redis_t *rs)
{
    rs->stopping = true;
    if (rs->pid <= 0)
        return;
    if (berth__spawn_stop(rs->pid, SIGTERM, BD_REDIS_STOP_WAIT_MS) != 0)
        bd_log("warn", "embedded redis: no exit within %d ms of SIGTERM; killed it",
               BD_REDIS_STOP_WAIT_MS);
    bd_log("info", "embedded redis: stopped");
    rs->pid = 0;
}

static void bd_redis_restart_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_redis_t *rs = arg;
    if (rs->stopping || rs->pid > 0)
        return;
    rs->restarts++;
    if (bd_redis_spawn(rs) != 0) {
        rs->backoff_ms = rs->backoff_ms * 2 > BD_REDIS_BACKOFF_MAX_MS ? BD_REDIS_BACKOFF_MAX_MS
                                                                      : rs->backoff_ms * 2;
        struct timeval tv = {rs->backoff_ms / 1000, (rs->backoff_ms % 1000) * 1000};
        evtimer_add(rs->restart_timer, &tv);
    }
}

/* SIGCHLD: reaps children; a dead embedded Redis is restarted after a
 * back-off that doubles while it keeps dying soon after each start. */
static void bd_sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    bd_redis_t *rs = arg;
    for (int i = 0; i < 64; i++) {
        int st = 0;
        pid_t got = waitpid(-1, &st, WNOHANG);
        if (got <= 0)
            break;
        if (!rs->enabled || got != rs->pid)
            continue;
        rs->pid = 0;
        if (rs->stopping)
            continue;
        long long up = berth__clock_monotonic_ms() - rs->started_ms;
        if (up >= BD_REDIS_STABLE_MS)
            rs->backoff_ms = BD_REDIS_BACKOFF_MIN_MS;
        else
            rs->backoff_ms = rs->backoff_ms * 2 > BD_REDIS_BACKOFF_MAX_MS
                                 ? BD_REDIS_BACKOFF_MAX_MS
                                 : (rs->backoff_ms < BD_REDIS_BACKOFF_MIN_MS
                                        ? BD_REDIS_BACKOFF_MIN_MS
                                        : rs->backoff_ms * 2);
        bd_log("warn", "embedded redis: redis-server exited (%s %d) after %lld ms; restarting "
                       "in %ld ms",
               WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
               up, rs->backoff_ms);
        struct timeval tv = {rs->backoff_ms / 1000, (rs->backoff_ms % 1000) * 1000};
        evtimer_add(rs->restart_timer, &tv);
    }
}

/* ---- opening the API ------------------------------------------------------------------------ */

/* Start-up's tries to open the API.  They run on the loop (a timer), so
 * that SIGTERM and SIGINT end the wait through the loop's own signal
 * events, and a dying embedded Redis is restarted meanwhile. */
typedef struct bd_opening {
    const bd_config_t *cfg;
    struct event_base *base;
    bd_server_t *srv;
    const bd_redis_t *rs;
    struct event *timer;
    bd_api_t *api;                  /* once open                            */
    long pause_ms;                  /* before the next try                  */
    long long began_ms;
    unsigned tries;
    int rc;                         /* 1 once it gave up (the loop exits)   */
} bd_opening_t;

/* One try: opens the API and starts the server; or, while Redis cannot be
 * reached (BERTH_EIO) and --redis-wait-ms allows, logs why and tries again
 * after a pause; or gives up (exit status 1) and ends the loop. */
static void bd_open_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_opening_t *op = arg;
    const bd_config_t *cfg = op->cfg;
    op->tries++;
    berth_error_t err;
    berth_error_clear(&err);
    int rc = bd_api_open(cfg, op->base, &op->api, &err);
    if (rc == 0) {
        char why[768] = "";
        if (bd_server_start(op->srv, op->api, why, sizeof why) != 0) {
            fprintf(stderr, "berthd: %s\n", why);
            op->rc = 1;
            event_base_loopexit(op->base, NULL);
            return;
        }
        if (op->tries > 1)
            bd_log("info", "Redis answered after %u tries (%lld ms)", op->tries,
                   berth__clock_monotonic_ms() - op->began_ms);
        bd_log("info", "berthd %s: cell %s, redis %s%s", berth_version(), cfg->cell,
               op->rs->enabled ? "embedded at " : "",
               op->rs->enabled ? op->rs->socket_path : "(given by --redis)");
        return;
    }
    char reason[BERTH_ERROR_NAME_MAX + BERTH_ERROR_MESSAGE_MAX + 8];
    snprintf(reason, sizeof reason, "%s%s%s",
             err.name[0] != '\0' ? err.name : berth_strerror(err.code),
             err.message[0] != '\0' ? ": " : "", err.message);
    long long waited = berth__clock_monotonic_ms() - op->began_ms;
    if (rc != BERTH_EIO) {
        fprintf(stderr, "berthd: cannot open the API: %s\n", reason);
        op->rc = 1;
        event_base_loopexit(op->base, NULL);
        return;
    }
    if (cfg->redis_wait_ms > 0 && waited >= (long long)cfg->redis_wait_ms) {
        fprintf(stderr,
                "berthd: cannot open the API: %s (Redis still unreachable after %lld ms, "
                "--redis-wait-ms %u)\n",
                reason, waited, (unsigned)cfg->redis_wait_ms);
        op->rc = 1;
        event_base_loopexit(op->base, NULL);
        return;
    }
    long pause = op->pause_ms;
    if (cfg->redis_wait_ms > 0 && waited + pause > (long long)cfg->redis_wait_ms)
        pause = (long)((long long)cfg->redis_wait_ms - waited);
    bd_log("warn", "waiting for Redis (try %u): %s; trying again in %ld ms", op->tries, reason,
           pause);
    struct timeval tv = {pause / 1000, (pause % 1000) * 1000};
    evtimer_add(op->timer, &tv);
    op->pause_ms = op->pause_ms * 2 > BD_OPEN_RETRY_MAX_MS ? BD_OPEN_RETRY_MAX_MS
                                                           : op->pause_ms * 2;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void bd_stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct event_base *base = arg;
    bd_log("info", "%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    event_base_loopexit(base, NULL);
}

int main(int argc, char **argv)
{
    static bd_config_t cfg;
    static bd_redis_t rs;
    bd_parse_options(argc, argv, &cfg);
    signal(SIGPIPE, SIG_IGN);

    /* The worker thread (worker.c) wakes the loop with event_active(): the
     * base needs libevent's locks, which exist only when threading is on
     * before it is made. */
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "berthd: evthread_use_pthreads failed\n");
        return 1;
    }
    struct event_base *base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "berthd: event_base_new failed\n");
        return 1;
    }
    char why[768] = "";
    bd_server_t *srv = NULL;
    int rc = bd_server_open(&cfg, base, &srv, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "berthd: %s\n", why);
        event_base_free(base);
        return rc;
    }

    struct event *ev_term = evsignal_new(base, SIGTERM, bd_stop_cb, base);
    struct event *ev_int = evsignal_new(base, SIGINT, bd_stop_cb, base);
    struct event *ev_chld = evsignal_new(base, SIGCHLD, bd_sigchld_cb, &rs);
    rs.restart_timer = evtimer_new(base, bd_redis_restart_cb, &rs);
    if (ev_term == NULL || ev_int == NULL || ev_chld == NULL || rs.restart_timer == NULL ||
        evsignal_add(ev_term, NULL) != 0 || evsignal_add(ev_int, NULL) != 0 ||
        evsignal_add(ev_chld, NULL) != 0) {
        fprintf(stderr, "berthd: cannot install signal handlers\n");
        rc = 1;
        goto out;
    }

    if (cfg.redis_url[0] == '\0') {
        rs.enabled = true;
        rs.backoff_ms = BD_REDIS_BACKOFF_MIN_MS;
        if (bd_mkdir_p(cfg.data_dir) != 0) {
            fprintf(stderr, "berthd: --data-dir %s: %s\n", cfg.data_dir, strerror(errno));
            rc = 2;
            goto out;
        }
        char real[PATH_MAX];
        if (realpath(cfg.data_dir, real) == NULL) {
            fprintf(stderr, "berthd: --data-dir %s: %s\n", cfg.data_dir, strerror(errno));
            rc = 2;
            goto out;
        }
        if (strlen(real) + sizeof "/redis.sock" > sizeof rs.socket_path ||
            strlen(real) >= sizeof rs.dir) {
            fprintf(stderr, "berthd: --data-dir %s: too long for a unix socket path\n", real);
            rc = 2;
            goto out;
        }
        size_t rlen = strlen(real);
        memcpy(rs.dir, real, rlen + 1);
        memcpy(rs.socket_path, real, rlen);
        memcpy(rs.socket_path + rlen, "/redis.sock", sizeof "/redis.sock");
        snprintf(cfg.redis_url, sizeof cfg.redis_url, "unix://%s", rs.socket_path);
        if (bd_redis_start(&rs) != 0) {
            fprintf(stderr, "berthd: the embedded redis-server did not start (see %s/redis.log)\n",
                    rs.dir);
            rc = 1;
            goto out;
        }
    }

    /* The API opens (and the server starts listening) from the loop's
     * first turn on; SIGTERM or SIGINT end the loop even while it still
     * waits for Redis. */
    static bd_opening_t op;
    op.cfg = &cfg;
    op.base = base;
    op.srv = srv;
    op.rs = &rs;
    op.pause_ms = BD_OPEN_RETRY_MIN_MS;
    op.began_ms = berth__clock_monotonic_ms();
    op.timer = evtimer_new(base, bd_open_cb, &op);
    struct timeval now = {0, 0};
    if (op.timer == NULL || evtimer_add(op.timer, &now) != 0) {
        fprintf(stderr, "berthd: cannot add a timer\n");
        if (op.timer != NULL)
            event_free(op.timer);
        rc = 1;
        goto out;
    }

    event_base_dispatch(base);

    /* Stopping: a repeated SIGTERM or SIGINT (timeout(1), for one, sends its
     * signal to the process and again to its process group) must not cut
     * the shutdown short once the signal events are freed and the default
     * action is back.  Blocked, it stays pending and dies with the process. */
    sigset_t stopping;
    sigemptyset(&stopping);
    sigaddset(&stopping, SIGTERM);
    sigaddset(&stopping, SIGINT);
    sigprocmask(SIG_BLOCK, &stopping, NULL);
    event_free(op.timer);
    bd_server_stop_accepting(srv);
    bd_api_close(op.api);
    rc = op.rc;
out:
    bd_server_close(srv);
    if (rs.enabled)
        bd_redis_stop(&rs);
    if (rs.restart_timer != NULL)
        event_free(rs.restart_timer);
    if (ev_chld != NULL)
        event_free(ev_chld);
    if (ev_int != NULL)
        event_free(ev_int);
    if (ev_term != NULL)
        event_free(ev_term);
    event_base_free(base);
    berth__keyring_free((berth__keyring_t *)cfg.secrets);  /* wiped */
    if (rc == 0)
        bd_log("info", "stopped");
    return rc;
}
