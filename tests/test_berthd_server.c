/*
 * test_berthd_server.c: berthd's HTTP(S) front and process life, against a
 * real redis-server and real berthd processes: /healthz and /metrics,
 * plain HTTP and TLS, bearer tokens scoped to subscriptions, the Azure
 * CLI's routes (metadata, the token endpoint and its clients' access
 * tokens, subscriptions, resource groups), the body and
 * header limits, keep-alive, the request deadline against slow clients,
 * CloudErrors for HTTP-level errors, running out of descriptors, usage
 * errors, waiting at start for a Redis that is not there yet, and the
 * embedded redis-server (restarted when it dies, stopped with berthd).
 *
 * It never writes into the source tree (temporary files live in /tmp) and
 * every wait is bounded; a watchdog alarm ends a stuck run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "berthd-harness.h"
#include "redis-harness.h"
#include "lib/curl.h"

#define SUB_A "11111111-aaaa-4aaa-8aaa-000000000001"
#define SUB_B "22222222-bbbb-4bbb-8bbb-000000000002"
#define TOKEN_A "token-for-sub-a-0123456789"
#define TOKEN_STAR "token-for-any-sub-9876543210"
#define GROUP_PATH(sub, name)                                                                  \
    "/subscriptions/" sub "/resourceGroups/rg1/providers/Microsoft.ContainerInstance/"       \
    "containerGroups/" name "?api-version=2023-05-01"

static berth_test_redis_t *redis;
static char tmpdir[64];

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "# test_berthd_server: watchdog expired\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    berth_test_redis_cleanup_all();
    _exit(1);
}

/* The error code of a CloudError body, or "". */
static const char *error_code(const test_http_t *h)
{
    json_t *e = h->json != NULL ? json_object_get(h->json, "error") : NULL;
    const char *c = e != NULL ? json_string_value(json_object_get(e, "code")) : NULL;
    return c != NULL ? c : "";
}

static const char *berthd_prog(void)
{
    static char prog[512];
    const char *b = getenv("top_builddir");
    snprintf(prog, sizeof prog, "%s/tools/berthd/berthd", b != NULL ? b : ".");
    return prog;
}

/* Runs berthd with `args` (NULL-terminated, after the program name) and
 * waits at most 15 s.  Returns its exit status (-1: still running, killed)
 * and its stderr in `err` (cap bytes). */
static int run_berthd(const char *const *args, char *err, size_t cap)
{
    char log[128];
    snprintf(log, sizeof log, "%s/run.log", tmpdir);
    unlink(log);
    const char *argv[32];
    size_t n = 0;
    argv[n++] = berthd_prog();
    for (size_t i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = -1;
    long long deadline = now_ms() + 15000;
    for (;;) {
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        sleep_ms(20);
    }
    err[0] = '\0';
    FILE *f = fopen(log, "r");
    if (f != NULL) {
        size_t got = fread(err, 1, cap - 1, f);
        err[got] = '\0';
        fclose(f);
    }
    return status;
}

/* The value of the Prometheus sample whose line starts with `prefix`
 * ("name{labels}"), or -1. */
static double metric(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, prefix, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return -1;
}

static int start_plain(test_berthd_t *d, const char *const *extra)
{
    const char *args[24];
    size_t n = 0;
    args[n++] = "--redis";
    args[n++] = redis->url;
    args[n++] = "--cell";
    args[n++] = "srvtest";
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return test_berthd_start(d, false, args);
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    signal(SIGALRM, watchdog);
    alarm(600);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_ALL);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/berthd-srv-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    redis = berth_test_redis_start(NULL);
    return redis != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    berth_test_redis_stop(redis);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
    }
    curl_global_cleanup();
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_healthz_and_request_ids(void **state)
{
    (void)state;
    test_berthd_t d;
    assert_int_equal(start_plain(&d, NULL), 0);
    test_http_t h;
    const char *hdr[] = {"x-ms-client-request-id: client-42", NULL};
    assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, hdr, &h), 0);
    assert_int_equal(h.status, 200);
    assert_non_null(h.json);
    assert_string_equal(json_string_value(json_object_get(h.json, "status")), "ok");
    char *rid = test_http_header(&h, "x-ms-request-id");
    assert_non_null(rid);
    assert_int_equal(strlen(rid), 36);
    assert_int_equal(rid[14], '4');
    char *cid = test_http_header(&h, "x-ms-client-request-id");
    assert_non_null(cid);
    assert_string_equal(cid, "client-42");
    free(cid);
    test_http_free(&h);

    /* A second request gets another id. */
    assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
    char *rid2 = test_http_header(&h, "x-ms-request-id");
    assert_non_null(rid2);
    assert_string_not_equal(rid, rid2);
    assert_null(test_http_header(&h, "x-ms-client-request-id"));
    free(rid);
    free(rid2);
    test_http_free(&h);
    assert_int_equal(test_berthd_stop(&d), 0);
}

static void test_metrics(void **state)
{
    (void)state;
    test_berthd_t d;
    assert_int_equal(start_plain(&d, NULL), 0);
    test_http_t h;
    assert_int_equal(test_http(&d, "GET", "/metrics", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    char *ct = test_http_header(&h, "Content-Type");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "text/plain"));
    assert_non_null(strstr(ct, "version=0.0.4"));
    free(ct);
    assert_non_null(strstr(h.body, "# TYPE berthd_http_requests_total counter\n"));
    assert_non_null(strstr(h.body, "# TYPE berthd_http_request_duration_seconds histogram\n"));
    assert_true(metric(h.body, "berthd_up") == 1);
    assert_true(metric(h.body, "berthd_process_start_time_seconds") > 1.6e9);
    const char *hz = "berthd_http_requests_total{route=\"healthz\",method=\"GET\",status=\"200\"}";
    double before = metric(h.body, hz);
    assert_true(before >= 1); /* the harness's own readiness probe */
    test_http_free(&h);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
        test_http_free(&h);
    }
    assert_int_equal(test_http(&d, "GET", "/nowhere", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 404);
    test_http_free(&h);

    assert_int_equal(test_http(&d, "GET", "/metrics", NULL, NULL, NULL, &h), 0);
    assert_true(metric(h.body, hz) == before + 3);
    assert_true(metric(h.body, "berthd_http_requests_total{route=\"NotFound\",method=\"GET\","
                               "status=\"404\"}") == 1);
    assert_true(metric(h.body, "berthd_http_request_duration_seconds_count{route=\"healthz\"}") ==
                before + 3);
    assert_true(metric(h.body, "berthd_http_request_duration_seconds_bucket{route=\"healthz\","
                               "le=\"+Inf\"}") == before + 3);
    /* the previous /metrics request is counted too */
    assert_true(metric(h.body, "berthd_http_requests_total{route=\"metrics\",method=\"GET\","
                               "status=\"200\"}") == 1);
    test_http_free(&h);
    assert_int_equal(test_berthd_stop(&d), 0);
}

static void test_not_found(void **state)
{
    (void)state;
    test_berthd_t d;
    assert_int_equal(start_plain(&d, NULL), 0);
    const char *paths[] = {"/", "/nowhere", "/subscriptionsX/a", "/healthz/x", "/metrics2"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        test_http_t h;
        assert_int_equal(test_http(&d, "GET", paths[i], NULL, NULL, NULL, &h), 0);
        assert_int_equal(h.status, 404);
        assert_string_equal(error_code(&h), "NotFound");
        char *rid = test_http_header(&h, "x-ms-request-id");
        assert_non_null(rid);
        free(rid);
        test_http_free(&h);
    }
    assert_int_equal(test_berthd_stop(&d), 0);
}

static void make_cert(char *cert, char *key, size_t cap)
{
    snprintf(cert, cap, "%s/cert.pem", tmpdir);
    snprintf(key, cap, "%s/key.pem", tmpdir);
    if (access(cert, R_OK) == 0 && access(key, R_OK) == 0)
        return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -keyout '%s' "
             "-out '%s' -days 1 >/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
}

static void test_tls(void **state)
{
    (void)state;
    char cert[128], key[128];
    make_cert(cert, key, sizeof cert);
    test_berthd_t d;
    const char *args[] = {"--redis", redis->url, "--tls-cert", cert, "--tls-key", key, NULL};
    assert_int_equal(test_berthd_start(&d, true, args), 0);
    assert_non_null(strstr(d.base_url, "https://"));
    test_http_t h;
    assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET", "/nowhere", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 404);
    assert_string_equal(error_code(&h), "NotFound");
    test_http_free(&h);

    /* Plain HTTP to the TLS port gets no HTTP answer. */
    test_berthd_t plain = d;
    snprintf(plain.base_url, sizeof plain.base_url, "http://127.0.0.1:%d", d.port);
    plain.tls = false;
    test_http(&plain, "GET", "/healthz", NULL, NULL, NULL, &h);
    assert_true(h.status != 200);
    test_http_free(&h);

    /* ... and the daemon still serves TLS afterwards. */
    assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    assert_int_equal(test_berthd_stop(&d), 0);
}

static void test_tls_bad_files(void **state)
{
    (void)state;
    char cert[128], key[128], out[4096], missing[160], junk[160];
    make_cert(cert, key, sizeof cert);
    snprintf(missing, sizeof missing, "%s/no-such-key.pem", tmpdir);
    snprintf(junk, sizeof junk, "%s/junk.pem", tmpdir);
    write_file(junk, "not a certificate\n");
    const char *a1[] = {"--listen", "127.0.0.1:1", "--redis", redis->url, "--tls-cert", cert,
                        "--tls-key", missing, NULL};
    assert_int_equal(run_berthd(a1, out, sizeof out), 2);
    assert_non_null(strstr(out, "--tls-key"));
    assert_non_null(strstr(out, missing));
    const char *a2[] = {"--listen", "127.0.0.1:1", "--redis", redis->url, "--tls-cert", junk,
                        "--tls-key", key, NULL};
    assert_int_equal(run_berthd(a2, out, sizeof out), 2);
    assert_non_null(strstr(out, "--tls-cert"));
    assert_non_null(strstr(out, junk));
    const char *a3[] = {"--listen", "127.0.0.1:1", "--tls-cert", cert, NULL};
    assert_int_equal(run_berthd(a3, out, sizeof out), 2);
    assert_non_null(strstr(out, "--tls-key"));
}

static void test_usage_errors(void **state)
{
    (void)state;
    char out[4096];
    const char *a0[] = {"--redis", "redis://127.0.0.1:1", NULL};
    assert_int_equal(run_berthd(a0, out, sizeof out), 2);
    assert_non_null(strstr(out, "--listen"));
    const char *a1[] = {"--listen", "127.0.0.1:1", "--body-max", "lots", NULL};
    assert_int_equal(run_berthd(a1, out, sizeof out), 2);
    assert_non_null(strstr(out, "--body-max"));
    const char *a2[] = {"--listen", "127.0.0.1:99999", NULL};
    assert_int_equal(run_berthd(a2, out, sizeof out), 2);
    assert_non_null(strstr(out, "--listen"));
    const char *a3[] = {"--listen", "::1:80", NULL};
    assert_int_equal(run_berthd(a3, out, sizeof out), 2);
    assert_non_null(strstr(out, "[ADDR]:PORT"));
    const char *a4[] = {"--listen", "127.0.0.1:1", "--frobnicate", NULL};
    assert_int_equal(run_berthd(a4, out, sizeof out), 2);
    assert_non_null(strstr(out, "--frobnicate"));
    const char *a5[] = {"--listen", "127.0.0.1:1", "--header-timeout", NULL};
    assert_int_equal(run_berthd(a5, out, sizeof out), 2);
    assert_non_null(strstr(out, "--header-timeout"));
    const char *a6[] = {"--help", NULL};
    assert_int_equal(run_berthd(a6, out, sizeof out), 0);
    assert_non_null(strstr(out, "--listen ADDR:PORT"));
    assert_non_null(strstr(out, "--redis-wait-ms MS"));
    const char *a8[] = {"--listen", "127.0.0.1:1", "--redis-wait-ms", "soon", NULL};
    assert_int_equal(run_berthd(a8, out, sizeof out), 2);
    assert_non_null(strstr(out, "--redis-wait-ms"));
    const char *a9[] = {"--listen", "127.0.0.1:1", "--public-url", "https://h:1/path", NULL};
    assert_int_equal(run_berthd(a9, out, sizeof out), 2);
    assert_non_null(strstr(out, "--public-url"));
    const char *a10[] = {"--listen", "127.0.0.1:1", "--public-url", "ftp://h", NULL};
    assert_int_equal(run_berthd(a10, out, sizeof out), 2);
    assert_non_null(strstr(out, "--public-url"));
    const char *a11[] = {"--listen", "127.0.0.1:1", "--location", "west/europe", NULL};
    assert_int_equal(run_berthd(a11, out, sizeof out), 2);
    assert_non_null(strstr(out, "--location"));
    /* --cell: a list of distinct valid names, or '*' alone. */
    const char *a12[] = {"--listen", "127.0.0.1:1", "--cell", "a,,b", NULL};
    assert_int_equal(run_berthd(a12, out, sizeof out), 2);
    assert_non_null(strstr(out, "empty name"));
    const char *a13[] = {"--listen", "127.0.0.1:1", "--cell", "a,b", "--cell", "b", NULL};
    assert_int_equal(run_berthd(a13, out, sizeof out), 2);
    assert_non_null(strstr(out, "\"b\" is named twice"));
    const char *a14[] = {"--listen", "127.0.0.1:1", "--cell", "a", "--cell", "*", NULL};
    assert_int_equal(run_berthd(a14, out, sizeof out), 2);
    assert_non_null(strstr(out, "'*'"));
    const char *a15[] = {"--listen", "127.0.0.1:1", "--cell", "a{b}", NULL};
    assert_int_equal(run_berthd(a15, out, sizeof out), 2);
    assert_non_null(strstr(out, "[A-Za-z0-9._-]"));
    const char *a16[] = {"--listen", "127.0.0.1:1", "--cell",
                         "c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11,c12,c13,c14,c15,c16", NULL};
    assert_int_equal(run_berthd(a16, out, sizeof out), 2);
    assert_non_null(strstr(out, "more than 16 cells"));
    const char *a7[] = {"--version", NULL};
    assert_int_equal(run_berthd(a7, out, sizeof out), 0);
    assert_non_null(strstr(out, "berthd "));
}

static void test_ipv6_listen(void **state)
{
    (void)state;
    /* A free port on ::1, found by binding port 0 there (also tells
     * whether the machine has IPv6 loopback at all). */
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 probe = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t plen = sizeof probe;
    bool have_v6 = s6 >= 0 && bind(s6, (struct sockaddr *)&probe, sizeof probe) == 0 &&
                   getsockname(s6, (struct sockaddr *)&probe, &plen) == 0;
    if (s6 >= 0)
        close(s6);
    if (!have_v6)
        skip();
    int port = ntohs(probe.sin6_port);
    char listen[64], log[128];
    snprintf(listen, sizeof listen, "[::1]:%d", port);
    snprintf(log, sizeof log, "%s/v6.log", tmpdir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        execl(berthd_prog(), berthd_prog(), "--listen", listen, "--redis", redis->url,
              (char *)NULL);
        _exit(127);
    }
    char url[96];
    snprintf(url, sizeof url, "http://[::1]:%d/healthz", port);
    long status = 0;
    long long deadline = now_ms() + test_deadline_ms(15000);
    while (status != 200 && now_ms() < deadline) {
        CURL *c = curl_easy_init();
        berth__curl_options_t how = {.timeout_ms = 5000};
        berth__curl_buffer_t body = {.max = 65536};
        berth__curl_setup(c, &how);
        berth__curl_buffer_attach(c, &body);
        curl_easy_setopt(c, CURLOPT_URL, url);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        berth__curl_buffer_free(&body);
        if (status != 200)
            sleep_ms(100);
    }
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    assert_int_equal(status, 200);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_tokens(void **state)
{
    (void)state;
    char tokens[128];
    snprintf(tokens, sizeof tokens, "%s/tokens", tmpdir);
    write_file(tokens, "# berthd tokens\n"
                       "\n"
                       TOKEN_A " " SUB_A "\n"
                       "   # indented comment\n" TOKEN_STAR " *\n");
    test_berthd_t d;
    const char *extra[] = {"--tokens", tokens, NULL};
    assert_int_equal(start_plain(&d, extra), 0);
    test_http_t h;

    /* /healthz needs no token; /metrics (every tenant's groups) an
     * operator's. */
    assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET", "/metrics", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 401);
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET", "/metrics", NULL, TOKEN_A, NULL, &h), 0);
    assert_int_equal(h.status, 403);
    assert_string_equal(error_code(&h), "AuthorizationFailed");
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET", "/metrics", NULL, TOKEN_STAR, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    test_http_free(&h);

    /* Missing. */
    assert_int_equal(test_http(&d, "GET", GROUP_PATH(SUB_A, "g1"), NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 401);
    assert_string_equal(error_code(&h), "AuthenticationFailed");
    char *www = test_http_header(&h, "WWW-Authenticate");
    assert_non_null(www);
    assert_string_equal(www, "Bearer");
    free(www);
    test_http_free(&h);
    const char *basic[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
    assert_int_equal(test_http(&d, "GET", GROUP_PATH(SUB_A, "g1"), NULL, NULL, basic, &h), 0);
    assert_int_equal(h.status, 401);
    assert_string_equal(error_code(&h), "AuthenticationFailed");
    test_http_free(&h);

    /* Bad. */
    assert_int_equal(
        test_http(&d, "GET", GROUP_PATH(SUB_A, "g1"), NULL, "token-for-sub-a-012345678X", NULL,
                  &h),
        0);
    assert_int_equal(h.status, 401);
    assert_string_equal(error_code(&h), "InvalidAuthenticationToken");
    www = test_http_header(&h, "WWW-Authenticate");
    assert_non_null(www);
    free(www);
    assert_null(strstr(h.body, "token-for"));
    test_http_free(&h);

    /* A group that exists in B (made with the '*' token, on hosts loaded
     * into the cell). */
    char cmd[1024], berthctl[512];
    const char *b = getenv("top_builddir");
    snprintf(berthctl, sizeof berthctl, "%s/tools/berthctl/berthctl", b != NULL ? b : ".");
    bool have_berthctl = access(berthctl, X_OK) == 0;
    if (!have_berthctl)
        fprintf(stderr, "# %s is missing: comparing two groups that do not exist\n", berthctl);
    snprintf(cmd, sizeof cmd,
             "'%s/tools/berthctl/berthctl' cell load --redis '%s' --cell srvtest --hosts "
             "'%s/fixtures/cluster.json' >/dev/null",
             b != NULL ? b : ".", redis->url, BERTH_SRCDIR);
    if (have_berthctl)
        assert_int_equal(system(cmd), 0);
    const char *doc = "{\"location\":\"westeurope\",\"properties\":{\"osType\":\"Linux\","
                      "\"containers\":[{\"name\":\"c\",\"properties\":{\"image\":\"busybox\","
                      "\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}]}}";
    if (have_berthctl) {
        assert_int_equal(test_http(&d, "PUT", GROUP_PATH(SUB_B, "existing"), doc, TOKEN_STAR,
                                   NULL, &h),
                         0);
        assert_true(h.status == 200 || h.status == 201);
        test_http_free(&h);
        assert_int_equal(test_http(&d, "GET", GROUP_PATH(SUB_B, "existing"), NULL, TOKEN_STAR,
                                   NULL, &h),
                         0);
        assert_int_equal(h.status, 200);
        test_http_free(&h);
    }

    /* A's token on B: 403, the same answer whether the group exists. */
    test_http_t h2;
    assert_int_equal(test_http(&d, "GET", GROUP_PATH(SUB_B, "existing"), NULL, TOKEN_A,
                               NULL, &h),
                     0);
    assert_int_equal(test_http(&d, "GET", GROUP_PATH(SUB_B, "surely-not-there"), NULL, TOKEN_A,
                               NULL, &h2),
                     0);
    assert_int_equal(h.status, 403);
    assert_int_equal(h2.status, 403);
    assert_string_equal(error_code(&h), "AuthorizationFailed");
    assert_string_equal(h.body, h2.body);
    test_http_free(&h);
    test_http_free(&h2);
    assert_int_equal(test_http(&d, "DELETE", GROUP_PATH(SUB_B, "existing"), NULL, TOKEN_A, NULL,
                               &h),
                     0);
    assert_int_equal(test_http(&d, "DELETE", GROUP_PATH(SUB_B, "surely-not-there"), NULL,
                               TOKEN_A, NULL, &h2),
                     0);
    assert_int_equal(h.status, 403);
    assert_string_equal(h.body, h2.body);
    test_http_free(&h);
    test_http_free(&h2);
    assert_int_equal(test_http(&d, "GET", GROUP_PATH(SUB_B, "existing"), NULL, TOKEN_STAR, NULL,
                               &h),
                     0);
    assert_int_equal(h.status, have_berthctl ? 200 : 404); /* the refused DELETE did nothing */
    test_http_free(&h);
    assert_int_equal(test_http(&d, "PUT", GROUP_PATH(SUB_B, "new"), "{}", TOKEN_A, NULL, &h), 0);
    assert_int_equal(h.status, 403);
    test_http_free(&h);

    /* A's token on A (any case) gets past the server to the API. */
    assert_int_equal(test_http(&d, "GET", GROUP_PATH(SUB_A, "g1"), NULL, TOKEN_A, NULL, &h), 0);
    assert_true(h.status != 401 && h.status != 403);
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET",
                               GROUP_PATH("11111111-AAAA-4AAA-8AAA-000000000001", "g1"), NULL,
                               TOKEN_A, NULL, &h),
                     0);
    assert_true(h.status != 401 && h.status != 403);
    test_http_free(&h);
    /* Paths naming no subscription are left to the API. */
    assert_int_equal(test_http(&d, "GET",
                               "/providers/Microsoft.ContainerInstance/operations"
                               "?api-version=2023-05-01",
                               NULL, TOKEN_A, NULL, &h),
                     0);
    assert_true(h.status != 401 && h.status != 403);
    test_http_free(&h);

    /* '*' reaches every subscription. */
    assert_int_equal(test_http(&d, "GET", GROUP_PATH(SUB_B, "g1"), NULL, TOKEN_STAR, NULL, &h),
                     0);
    assert_true(h.status != 401 && h.status != 403);
    test_http_free(&h);

    /* The log holds no token. */
    FILE *f = fopen(d.log_path, "r");
    assert_non_null(f);
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        assert_null(strstr(line, "token-for"));
        lines++;
    }
    fclose(f);
    assert_true(lines > 5);
    assert_int_equal(test_berthd_stop(&d), 0);
}

/* The Azure CLI's routes (server_arm.c): the metadata and the authority are
 * open and name --public-url (never the Host header); the token endpoint
 * issues access tokens to the clients of the tokens file and refuses bad
 * forms with OAuth errors; the access token reaches its subscriptions and
 * no others; resource groups report --location. */
static void test_arm_clients(void **state)
{
    (void)state;
    char tokens[128];
    snprintf(tokens, sizeof tokens, "%s/client-tokens", tmpdir);
    write_file(tokens, TOKEN_A " " SUB_A "\n"
                       "client-secret-0123456789 " SUB_A "," SUB_B " app-1 # a client\n"
                       "other-secret-0123456789 " SUB_B " app-2\n");
    test_berthd_t d;
    const char *extra[] = {"--tokens", tokens, "--public-url", "https://berth.example:8443/",
                           "--location", "northeurope", NULL};
    assert_int_equal(start_plain(&d, extra), 0);
    test_http_t h;
    const char *evil_host[] = {"Host: evil.example", NULL};

    /* The metadata: open, from --public-url, the double-slash form too. */
    assert_int_equal(test_http(&d, "GET", "/metadata/endpoints?api-version=2015-01-01", NULL,
                               NULL, evil_host, &h),
                     0);
    assert_int_equal(h.status, 200);
    json_t *auth = json_object_get(h.json, "authentication");
    assert_string_equal(json_string_value(json_object_get(auth, "loginEndpoint")),
                        "https://berth.example:8443/adfs");
    assert_string_equal(json_string_value(json_array_get(json_object_get(auth, "audiences"), 0)),
                        "https://berth.example:8443/");
    assert_string_equal(json_string_value(json_object_get(h.json, "graphEndpoint")),
                        "https://berth.example:8443/");
    assert_null(strstr(h.body, "evil"));
    test_http_free(&h);
    assert_int_equal(
        test_http(&d, "GET", "//metadata/endpoints?api-version=2015-01-01", NULL, NULL, NULL, &h),
        0);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET", "/metadata/endpoints", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 400);
    assert_string_equal(error_code(&h), "MissingApiVersionParameter");
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET", "/metadata/other", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 404);
    assert_string_equal(error_code(&h), "NotFound");
    test_http_free(&h);

    /* The authority's configuration, also under a tenant name. */
    assert_int_equal(test_http(&d, "GET", "/adfs/.well-known/openid-configuration", NULL, NULL,
                               evil_host, &h),
                     0);
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(h.json, "token_endpoint")),
                        "https://berth.example:8443/adfs/oauth2/token");
    assert_non_null(json_string_value(json_object_get(h.json, "authorization_endpoint")));
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET", "/adfs/contoso.example/.well-known/openid-configuration",
                               NULL, NULL, NULL, &h),
                     0);
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(h.json, "issuer")),
                        "https://berth.example:8443/adfs");
    test_http_free(&h);

    /* Bad token requests: OAuth errors, the secret never echoed. */
    static const struct {
        const char *body;
        long status;
        const char *error;
    } bad[] = {
        {"grant_type=password&client_id=app-1&client_secret=client-secret-0123456789", 400,
         "unsupported_grant_type"},
        {"client_id=app-1&client_secret=client-secret-0123456789", 400, "invalid_request"},
        {"grant_type=client_credentials&client_id=app-1", 400, "invalid_request"},
        {"grant_type=client_credentials&client_id=app-1&client_secret=%zz", 400,
         "invalid_request"},
        {"grant_type=client_credentials&client_id=app-1&client_secret=wrong-secret-42", 401,
         "invalid_client"},
        {"grant_type=client_credentials&client_id=app-2&client_secret=client-secret-0123456789",
         401, "invalid_client"},
        {"grant_type=client_credentials&client_id=nobody&client_secret=" TOKEN_A, 401,
         "invalid_client"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(test_http(&d, "POST", "/adfs/oauth2/token", bad[i].body, NULL, NULL, &h),
                         0);
        assert_int_equal(h.status, bad[i].status);
        assert_string_equal(json_string_value(json_object_get(h.json, "error")), bad[i].error);
        assert_null(strstr(h.body, "secret-"));
        test_http_free(&h);
    }
    assert_int_equal(test_http(&d, "GET", "/adfs/oauth2/token", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 405);
    test_http_free(&h);

    /* A good one: an access token for A and B. */
    assert_int_equal(test_http(&d, "POST", "/adfs/oauth2/token",
                               "grant_type=client_credentials&client_id=app-1&client_secret="
                               "client-secret-0123456789&scope=https%3A%2F%2Fberth.example%3A8443"
                               "%2F.default&client_info=1",
                               NULL, NULL, &h),
                     0);
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(h.json, "token_type")), "Bearer");
    assert_int_equal(json_integer_value(json_object_get(h.json, "expires_in")), 3600);
    char *cc = test_http_header(&h, "Cache-Control");
    assert_non_null(cc);
    assert_string_equal(cc, "no-store");
    free(cc);
    char access[512];
    snprintf(access, sizeof access, "%s",
             json_string_value(json_object_get(h.json, "access_token")));
    test_http_free(&h);
    assert_int_equal(strncmp(access, "berth1.", 7), 0);

    assert_int_equal(test_http(&d, "GET", "/subscriptions?api-version=2019-11-01", NULL, access,
                               NULL, &h),
                     0);
    assert_int_equal(h.status, 200);
    json_t *value = json_object_get(h.json, "value");
    assert_int_equal(json_array_size(value), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(value, 1), "id")),
                        "/subscriptions/" SUB_B);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(value, 0), "subscriptionId")), SUB_A);
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET", GROUP_PATH(SUB_B, "nothing-here"), NULL, access, NULL,
                               &h),
                     0);
    assert_int_equal(h.status, 404);
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET",
                               "/subscriptions/33333333-cccc-4ccc-8ccc-000000000003/"
                               "resourcegroups/rg1?api-version=2021-04-01",
                               NULL, access, NULL, &h),
                     0);
    assert_int_equal(h.status, 403);
    test_http_free(&h);

    /* Tampered: another expiry, another client, a changed signature. */
    char forged[600];
    snprintf(forged, sizeof forged, "berth1.9%s", access + 7);
    assert_int_equal(test_http(&d, "GET", "/subscriptions?api-version=1", NULL, forged, NULL, &h),
                     0);
    assert_int_equal(h.status, 401);
    test_http_free(&h);
    snprintf(forged, sizeof forged, "%s", access);
    char *id = strstr(forged, ".app-1.");
    assert_non_null(id);
    id[5] = '2';
    assert_int_equal(test_http(&d, "GET", "/subscriptions?api-version=1", NULL, forged, NULL, &h),
                     0);
    assert_int_equal(h.status, 401);
    test_http_free(&h);
    snprintf(forged, sizeof forged, "%s", access);
    forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == '0' ? '1' : '0';
    assert_int_equal(test_http(&d, "GET", "/subscriptions?api-version=1", NULL, forged, NULL, &h),
                     0);
    assert_int_equal(h.status, 401);
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET", "/subscriptions?api-version=1", NULL, NULL, NULL, &h),
                     0);
    assert_int_equal(h.status, 401);
    test_http_free(&h);

    /* Resource groups: every valid name, in --location. */
    assert_int_equal(test_http(&d, "GET",
                               "/subscriptions/" SUB_A
                               "/resourcegroups/rg-x?api-version=2021-04-01",
                               NULL, TOKEN_A, NULL, &h),
                     0);
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(h.json, "location")), "northeurope");
    assert_string_equal(json_string_value(json_object_get(h.json, "id")),
                        "/subscriptions/" SUB_A "/resourceGroups/rg-x");
    test_http_free(&h);
    assert_int_equal(test_http(&d, "HEAD",
                               "/subscriptions/" SUB_A
                               "/resourceGroups/rg-x?api-version=2021-04-01",
                               NULL, TOKEN_A, NULL, &h),
                     0);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET", "/subscriptions/" SUB_A "/resourcegroups/rg-x", NULL,
                               TOKEN_A, NULL, &h),
                     0);
    assert_int_equal(h.status, 400);
    assert_string_equal(error_code(&h), "MissingApiVersionParameter");
    test_http_free(&h);
    assert_int_equal(test_http(&d, "GET",
                               "/subscriptions/" SUB_A "/resourcegroups/bad.?api-version=1", NULL,
                               TOKEN_A, NULL, &h),
                     0);
    assert_int_equal(h.status, 400);
    assert_string_equal(error_code(&h), "InvalidResourceGroupName");
    test_http_free(&h);
    assert_int_equal(test_http(&d, "PUT",
                               "/subscriptions/" SUB_A "/resourcegroups/rg-x?api-version=1", "{}",
                               TOKEN_A, NULL, &h),
                     0);
    assert_int_equal(h.status, 405);
    test_http_free(&h);
    assert_int_equal(test_berthd_stop(&d), 0);

    /* Neither a secret nor an access token reached the log. */
    FILE *f = fopen(d.log_path, "r");
    assert_non_null(f);
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL) {
        assert_null(strstr(line, "secret-0123456789"));
        assert_null(strstr(line, "berth1."));
    }
    fclose(f);
}

static void test_tokens_malformed(void **state)
{
    (void)state;
    char tokens[128], out[4096];
    snprintf(tokens, sizeof tokens, "%s/bad-tokens", tmpdir);
    write_file(tokens, "# ok\n" TOKEN_A " " SUB_A "\nonly-a-token-here\n");
    const char *a[] = {"--listen", "127.0.0.1:1", "--redis", redis->url, "--tokens", tokens,
                       NULL};
    assert_int_equal(run_berthd(a, out, sizeof out), 2);
    assert_non_null(strstr(out, "line 3"));
    assert_null(strstr(out, "only-a-token-here"));
    write_file(tokens, TOKEN_A " sub,bad/sub\n");
    assert_int_equal(run_berthd(a, out, sizeof out), 2);
    assert_non_null(strstr(out, "line 1"));
    write_file(tokens, TOKEN_A " " SUB_A " app-1\n" TOKEN_STAR " * app-1\n");
    assert_int_equal(run_berthd(a, out, sizeof out), 2);
    assert_non_null(strstr(out, "line 2: client id \"app-1\" listed twice"));
    write_file(tokens, TOKEN_A " " SUB_A " app/1\n");
    assert_int_equal(run_berthd(a, out, sizeof out), 2);
    assert_non_null(strstr(out, "line 1"));
    write_file(tokens, TOKEN_A " " SUB_A " app-1 more\n");
    assert_int_equal(run_berthd(a, out, sizeof out), 2);
    assert_null(strstr(out, TOKEN_A));
    write_file(tokens, "# nothing\n\n");
    assert_int_equal(run_berthd(a, out, sizeof out), 2);
    snprintf(tokens, sizeof tokens, "%s/no-such-file", tmpdir);
    assert_int_equal(run_berthd(a, out, sizeof out), 2);
    assert_non_null(strstr(out, "--tokens"));
}

static void test_body_limit(void **state)
{
    (void)state;
    test_berthd_t d;
    const char *extra[] = {"--body-max", "2048", NULL};
    assert_int_equal(start_plain(&d, extra), 0);
    size_t n = 64 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[0] = '"';
    big[n - 1] = '"';
    big[n] = '\0';
    test_http_t h;
    /* evhttp reads the oversized body to its end, dropping it, then
     * answers 413 (its page, which berthd replaces with a CloudError) and
     * closes the connection. */
    assert_int_equal(test_http(&d, "PUT", GROUP_PATH(SUB_A, "big"), big, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 413);
    assert_string_equal(error_code(&h), "RequestEntityTooLarge");
    test_http_free(&h);
    free(big);

    /* A body under the limit reaches the API. */
    assert_int_equal(test_http(&d, "PUT", GROUP_PATH(SUB_A, "small"), "{\"location\":\"x\"}",
                               NULL, NULL, &h),
                     0);
    assert_true(h.status != 413 && h.status != 0);
    test_http_free(&h);

    assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    assert_int_equal(test_berthd_stop(&d), 0);
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Waits (at most `ms`) for the peer to close fd.  Returns the time it took,
 * or -1. */
static long long wait_closed(int fd, long ms)
{
    struct timeval tv = {0, 200 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    long long t0 = now_ms();
    char buf[512];
    while (now_ms() - t0 < ms) {
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return now_ms() - t0;
    }
    return -1;
}

static void test_slow_client(void **state)
{
    (void)state;
    test_berthd_t d;
    const char *extra[] = {"--header-timeout", "2", "--idle-timeout", "30", NULL};
    assert_int_equal(start_plain(&d, extra), 0);
    int fd = connect_port(d.port);
    const char *half = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    assert_int_equal(send(fd, half, strlen(half), 0), (ssize_t)strlen(half));
    /* The daemon serves others meanwhile. */
    test_http_t h;
    assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    /* Closed by the 2 s header timeout, not much later (the bound
     * lengthens on slow runs). */
    int late = 2000 + test_deadline_ms(2500);
    long long took = wait_closed(fd, late + 4000);
    close(fd);
    assert_true(took >= 0);
    assert_true(took <= late);

    /* A connection that never sends a byte goes too, not before its time. */
    fd = connect_port(d.port);
    took = wait_closed(fd, late + 4000);
    close(fd);
    assert_true(took >= 1000 && took <= late);

    assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    assert_int_equal(test_berthd_stop(&d), 0);
}

static void test_keep_alive(void **state)
{
    (void)state;
    test_berthd_t d;
    const char *extra[] = {"--header-timeout", "2", "--idle-timeout", "30", NULL};
    assert_int_equal(start_plain(&d, extra), 0);
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", d.base_url);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    berth__curl_options_t how = {.timeout_ms = 30000};
    berth__curl_buffer_t body = {.max = 65536};
    berth__curl_setup(c, &how);
    berth__curl_buffer_attach(c, &body);
    curl_easy_setopt(c, CURLOPT_URL, url);
    long conns = -1, status = 0;
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    assert_int_equal(conns, 1);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    assert_int_equal(conns, 0);
    /* Idle past the header timeout: the kept-alive connection follows the
     * (longer) idle timeout and is still there. */
    sleep_ms(3000);
    snprintf(url, sizeof url, "%s/nowhere", d.base_url);
    curl_easy_setopt(c, CURLOPT_URL, url);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 404);
    assert_int_equal(conns, 0);
    curl_easy_cleanup(c);
    berth__curl_buffer_free(&body);
    assert_int_equal(test_berthd_stop(&d), 0);
}

static pid_t read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

static redisContext *embedded_connect(const char *dir)
{
    char sock[160];
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectUnixWithTimeout(sock, tv);
    if (c != NULL && c->err != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static void test_embedded_redis(void **state)
{
    (void)state;
    char dir[128], pidfile[160];
    snprintf(dir, sizeof dir, "%s/data", tmpdir);
    snprintf(pidfile, sizeof pidfile, "%s/redis.pid", dir);
    test_berthd_t d;
    const char *args[] = {"--data-dir", dir, "--cell", "embedded", NULL};
    assert_int_equal(test_berthd_start(&d, false, args), 0);
    test_http_t h;
    assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    test_http_free(&h);

    pid_t first = 0;
    for (long long dl = now_ms() + 5000; first <= 0 && now_ms() < dl; sleep_ms(50))
        first = read_pid(pidfile);
    assert_true(first > 0);
    assert_int_equal(kill(first, 0), 0);

    /* A key written now survives the restart (AOF, fsync every second). */
    redisContext *c = embedded_connect(dir);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "SET berthd-test-key survived");
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
    sleep_ms(1500);

    assert_int_equal(kill(first, SIGKILL), 0);
    pid_t second = 0;
    bool healthy = false;
    long long dl = now_ms() + 10000;
    while (now_ms() < dl && !(healthy && second > 0)) {
        pid_t p = read_pid(pidfile);
        if (p > 0 && p != first && kill(p, 0) == 0)
            second = p;
        if (second > 0) {
            c = embedded_connect(dir);
            if (c != NULL) {
                r = redisCommand(c, "PING");
                if (r != NULL) {
                    healthy = r->type == REDIS_REPLY_STATUS;
                    freeReplyObject(r);
                }
                redisFree(c);
            }
        }
        if (healthy && test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h) == 0) {
            healthy = h.status == 200;
            test_http_free(&h);
        }
        if (!(healthy && second > 0))
            sleep_ms(100);
    }
    if (!healthy || second <= 0)
        test_berthd_dump(&d, 30);
    assert_true(second > 0);
    assert_true(healthy);

    c = embedded_connect(dir);
    assert_non_null(c);
    r = redisCommand(c, "GET berthd-test-key");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "survived");
    freeReplyObject(r);
    redisFree(c);

    /* SIGTERM: exit 0, and Redis goes with berthd. */
    assert_int_equal(test_berthd_stop(&d), 0);
    assert_int_equal(kill(second, 0), -1);
    assert_int_equal(errno, ESRCH);

    /* A second start on the same data directory finds the data again. */
    assert_int_equal(test_berthd_start(&d, false, args), 0);
    c = embedded_connect(dir);
    assert_non_null(c);
    r = redisCommand(c, "GET berthd-test-key");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "survived");
    freeReplyObject(r);
    redisFree(c);
    assert_int_equal(test_berthd_stop(&d), 0);
}

/* ---- hardening: deadlines, HTTP-level errors, descriptors, Redis at start -------------------- */

/* How many lines of `path` hold `needle` (0 when it cannot be read). */
static int lines_with(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

/* Waits (at most `ms`, scaled) until a line of `path` holds `needle`. */
static bool wait_for_line(const char *path, const char *needle, int ms)
{
    long long deadline = now_ms() + test_deadline_ms(ms);
    while (lines_with(path, needle) == 0) {
        if (now_ms() >= deadline)
            return false;
        sleep_ms(50);
    }
    return true;
}

/* Whether the daemon still runs (reaping it, and clearing d->pid, when it
 * exited). */
static bool still_running(test_berthd_t *d)
{
    if (d->pid <= 0)
        return false;
    if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
        d->pid = 0;
        return false;
    }
    return true;
}

/* One exchange on a new raw connection to d: sends `len` bytes of `req`
 * (a send the server refuses ends the sending), then reads until the
 * server closes, at most `ms` in all.  Fills *out like test_http(): status
 * (0: no status line), the headers, the body and its JSON.  Returns 0 when
 * a status line came back, -1 otherwise. */
static int raw_http(const test_berthd_t *d, const char *req, size_t len, long ms,
                    test_http_t *out)
{
    memset(out, 0, sizeof out[0]);
    int fd = connect_port(d->port);
    struct timeval tv = {0, 100 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    long long deadline = now_ms() + ms;
    size_t sent = 0;
    while (sent < len && now_ms() < deadline) {
        ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            break;
    }
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    while (now_ms() < deadline) {
        if (got == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            break;
    }
    close(fd);
    buf[got] = '\0';
    const char *end = strstr(buf, "\r\n\r\n");
    int status = 0;
    if (strncmp(buf, "HTTP/1.", 7) == 0 && sscanf(buf + 8, " %d", &status) != 1)
        status = 0;
    out->status = status;
    out->headers = strndup(buf, end != NULL ? (size_t)(end - buf) + 2 : got);
    out->body = strdup(end != NULL ? end + 4 : "");
    assert_non_null(out->headers);
    assert_non_null(out->body);
    out->body_len = strlen(out->body);
    if (out->body_len > 0)
        out->json = json_loadb(out->body, out->body_len, 0, NULL);
    free(buf);
    return status != 0 ? 0 : -1;
}

/* Asserts that h is a CloudError with `status` and `code`, labelled JSON. */
static void assert_cloud_error(const test_http_t *h, long status, const char *code)
{
    if (h->status != status || strcmp(error_code(h), code) != 0)
        fprintf(stderr, "# expected %ld %s, got %ld:\n# %s\n# %s\n", status, code, h->status,
                h->headers != NULL ? h->headers : "", h->body != NULL ? h->body : "");
    assert_int_equal(h->status, status);
    assert_string_equal(error_code(h), code);
    json_t *e = json_object_get(h->json, "error");
    assert_non_null(json_string_value(json_object_get(e, "message")));
    char *ct = test_http_header(h, "Content-Type");
    assert_non_null(ct);
    assert_string_equal(ct, "application/json");
    free(ct);
    char *rid = test_http_header(h, "x-ms-request-id");
    assert_non_null(rid);
    free(rid);
}

/* A client sending its head a byte every 300 ms is cut off at the request's
 * deadline (the old per-byte timeout never fired), answered 408 when the
 * answer still gets through, while others are served meanwhile. */
static void test_slowloris(void **state)
{
    (void)state;
    test_berthd_t d;
    const char *extra[] = {"--header-timeout", "2", "--idle-timeout", "30", NULL};
    assert_int_equal(start_plain(&d, extra), 0);
    int fd = connect_port(d.port);
    const char *head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    size_t head_len = strlen(head);
    long bound = 2000 + test_deadline_ms(3000);
    long long t0 = now_ms();
    bool closed = false, served_other = false;
    char got[512];
    size_t ngot = 0;
    for (size_t i = 0; !closed && now_ms() - t0 <= bound; i++) {
        char ch = i < head_len ? head[i] : 'a';
        if (send(fd, &ch, 1, MSG_NOSIGNAL) != 1) {
            closed = true; /* reset after the close */
            break;
        }
        if (i == 3) {
            test_http_t h;
            assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
            assert_int_equal(h.status, 200);
            test_http_free(&h);
            served_other = true;
        }
        /* The next byte in 300 ms, unless the server speaks or closes. */
        long long next = now_ms() + 300;
        while (!closed && now_ms() < next) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, (int)(next - now_ms() > 0 ? next - now_ms() : 0)) <= 0)
                continue;
            ssize_t n = recv(fd, got + ngot, sizeof got - 1 - ngot, MSG_DONTWAIT);
            if (n > 0)
                ngot += (size_t)n;
            else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                closed = true;
        }
    }
    long long took = now_ms() - t0;
    close(fd);
    got[ngot] = '\0';
    if (!closed || took > bound)
        test_berthd_dump(&d, 20);
    assert_true(closed);
    assert_true(took <= bound);
    assert_true(served_other);
    /* When the answer arrived before the reset, it is the timeout's. */
    if (ngot >= 12)
        assert_memory_equal(got, "HTTP/1.1 408", 12);
    assert_true(lines_with(d.log_path, "\"RequestTimeout\"") >= (ngot >= 12 ? 1 : 0));

    test_http_t h;
    assert_int_equal(test_http(&d, "GET", "/healthz", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    assert_int_equal(test_berthd_stop(&d), 0);
}

/* What berthd cannot take at the HTTP level is answered with a CloudError
 * of the right status, never with libevent's HTML pages. */
static void test_http_errors_are_cloud_errors(void **state)
{
    (void)state;
    test_berthd_t d;
    const char *extra[] = {"--body-max", "2048", NULL};
    assert_int_equal(start_plain(&d, extra), 0);
    long wait = test_deadline_ms(10000);
    test_http_t h;

    const char *bad_length = "PUT " GROUP_PATH(SUB_A, "g") " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Content-Length: abc\r\n\r\n";
    assert_int_equal(raw_http(&d, bad_length, strlen(bad_length), wait, &h), 0);
    assert_cloud_error(&h, 400, "BadRequest");
    test_http_free(&h);

    const char *negative = "PUT " GROUP_PATH(SUB_A, "g") " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Length: -5\r\n\r\n";
    assert_int_equal(raw_http(&d, negative, strlen(negative), wait, &h), 0);
    assert_cloud_error(&h, 400, "BadRequest");
    test_http_free(&h);

    const char *garbage = "this is not HTTP\r\n\r\n";
    assert_int_equal(raw_http(&d, garbage, strlen(garbage), wait, &h), 0);
    assert_cloud_error(&h, 400, "BadRequest");
    test_http_free(&h);

    /* A 64 KiB header: past the 64 KiB limit of a request's head. */
    size_t big = 64 * 1024;
    const char *pre = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ";
    char *req = malloc(strlen(pre) + big + 8);
    assert_non_null(req);
    size_t n = strlen(pre);
    memcpy(req, pre, n);
    memset(req + n, 'h', big);
    n += big;
    memcpy(req + n, "\r\n\r\n", 4);
    n += 4;
    assert_int_equal(raw_http(&d, req, n, wait, &h), 0);
    assert_cloud_error(&h, 431, "RequestHeaderFieldsTooLarge");
    test_http_free(&h);
    free(req);

    const char *brew = "BREW /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_int_equal(raw_http(&d, brew, strlen(brew), wait, &h), 0);
    assert_cloud_error(&h, 405, "MethodNotAllowed");
    char *allow = test_http_header(&h, "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "GET"));
    free(allow);
    test_http_free(&h);
    assert_int_equal(test_http(&d, "TRACE", "/healthz", NULL, NULL, NULL, &h), 0);
    assert_cloud_error(&h, 405, "MethodNotAllowed");
    test_http_free(&h);

    /* A body over --body-max, sent whole: read to its end, then 413. */
    size_t blen = 8 * 1024;
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      GROUP_PATH(SUB_A, "big"), blen);
    req = malloc((size_t)hl + blen);
    assert_non_null(req);
    memcpy(req, head, (size_t)hl);
    memset(req + hl, ' ', blen);
    assert_int_equal(raw_http(&d, req, (size_t)hl + blen, wait, &h), 0);
    assert_cloud_error(&h, 413, "RequestEntityTooLarge");
    test_http_free(&h);
    free(req);

    /* The same after a first request on a kept-alive connection. */
    const char *two = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                      "PUT /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1x\r\n\r\n";
    assert_int_equal(raw_http(&d, two, strlen(two), wait, &h), 0);
    assert_int_equal(h.status, 200);
    assert_non_null(strstr(h.body, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(h.body, "\"code\":\"BadRequest\""));
    assert_null(strstr(h.body, "<HTML>"));
    test_http_free(&h);

    /* Counted like any request, and the daemon serves on. */
    assert_int_equal(test_http(&d, "GET", "/metrics", NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.status, 200);
    assert_true(metric(h.body, "berthd_http_requests_total{route=\"BadRequest\",method=\"-\","
                               "status=\"400\"}") == 4);
    assert_true(metric(h.body, "berthd_http_requests_total{route=\"RequestHeaderFieldsTooLarge\","
                               "method=\"-\",status=\"431\"}") == 1);
    test_http_free(&h);
    assert_int_equal(test_berthd_stop(&d), 0);
}

/* CPU time (user + system) of a process, in seconds, or -1. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                            &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* With its descriptors used up, berthd refuses waiting connections with a
 * clean close, pauses its listener instead of spinning on accept(), logs
 * that once, and serves again once descriptors are free. */
static void test_descriptor_exhaustion(void **state)
{
    (void)state;
    enum { NOFILE = 64, CONNS = 120 };
    struct rlimit own;
    if (getrlimit(RLIMIT_NOFILE, &own) != 0 || own.rlim_cur < CONNS + 64)
        skip();
    test_berthd_t d;
    test_berthd_options_t o = {.nofile = NOFILE};
    const char *args[] = {"--redis", redis->url, "--cell", "srvtest", "--header-timeout", "600",
                          "--idle-timeout", "600", NULL};
    assert_int_equal(test_berthd_start_with(&d, &o, args), 0);

    /* Many more connections than berthd has descriptors for: it takes
     * what it can, then accept() fails (and says so: berthd, or libevent
     * for a listener with no error callback). */
    int fds[CONNS];
    for (int i = 0; i < CONNS; i++)
        fds[i] = connect_port(d.port);
    if (!wait_for_line(d.log_path, "accept()", 10000))
        test_berthd_dump(&d, 20);
    assert_true(lines_with(d.log_path, "accept()") >= 1);

    /* Still out of descriptors (every accepted connection stays open), it
     * does not spin on accept(): well under a quarter of the time on the
     * CPU, and one log line per run of failures, not one per failure. */
    double c0 = cpu_seconds(d.pid);
    sleep_ms(2000);
    double c1 = cpu_seconds(d.pid);
    assert_true(c0 >= 0 && c1 >= 0);
    if (c1 - c0 >= 0.5)
        fprintf(stderr, "# berthd used %.2f s of CPU in 2 s\n", c1 - c0);
    assert_true(c1 - c0 < 0.5);
    /* (A descriptor berthd frees meanwhile, such as the harness's last
     * readiness probe's, lets one accept() through and starts a new run.) */
    int lines = lines_with(d.log_path, "accept()");
    if (lines > 5)
        fprintf(stderr, "# %d log lines about accept()\n", lines);
    assert_true(lines >= 1 && lines <= 5);

    /* A refused client sees its connection closed, not left hanging. */
    bool refused = false;
    long long deadline = now_ms() + test_deadline_ms(5000);
    while (!refused && now_ms() < deadline) {
        struct pollfd p[CONNS];
        for (int i = 0; i < CONNS; i++)
            p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        if (poll(p, CONNS, 100) > 0)
            for (int i = 0; i < CONNS; i++)
                if (p[i].revents != 0) {
                    char c;
                    ssize_t n = recv(fds[i], &c, 1, MSG_DONTWAIT);
                    refused = refused || n == 0 || (n < 0 && errno == ECONNRESET);
                }
    }
    assert_true(refused);

    for (int i = 0; i < CONNS; i++)
        close(fds[i]);
    assert_int_equal(test_berthd_wait_healthy(&d, 15000), 0);
    assert_true(wait_for_line(d.log_path, "accepting connections again", 5000));
    assert_int_equal(test_berthd_stop(&d), 0);
}

/* At start berthd waits for a Redis that does not answer yet (logging each
 * try), ends the wait cleanly on SIGTERM, gives up after --redis-wait-ms,
 * and serves once Redis is there. */
static void test_redis_wait(void **state)
{
    (void)state;
    berth_test_redis_options_t ro = {.transport = BERTH_TEST_REDIS_TCP};
    berth_test_redis_t *late = berth_test_redis_start(&ro);
    assert_non_null(late);
    /* Its port stays reserved for it, with nothing listening. */
    assert_int_equal(berth_test_redis_kill(late), 0);

    test_berthd_t waiting, stopped;
    test_berthd_options_t o = {.no_wait = true};
    const char *args[] = {"--redis", late->url, "--cell", "waittest", NULL};
    assert_int_equal(test_berthd_start_with(&waiting, &o, args), 0);
    assert_int_equal(test_berthd_start_with(&stopped, &o, args), 0);
    sleep_ms(1000);
    assert_true(still_running(&waiting));
    assert_true(still_running(&stopped));
    assert_true(wait_for_line(waiting.log_path, "waiting for Redis", 10000));
    assert_true(wait_for_line(stopped.log_path, "waiting for Redis", 10000));
    assert_true(lines_with(waiting.log_path, "\"level\":\"warn\"") >= 1);

    /* SIGTERM while waiting: a clean exit. */
    assert_int_equal(test_berthd_stop(&stopped), 0);

    /* With a limit, it gives up: exit 1 and why. */
    char out[4096];
    const char *limited[] = {"--listen", "127.0.0.1:1", "--redis", late->url, "--redis-wait-ms",
                             "300", NULL};
    assert_int_equal(run_berthd(limited, out, sizeof out), 1);
    assert_non_null(strstr(out, "--redis-wait-ms 300"));
    assert_non_null(strstr(out, "cannot open the API"));

    /* Redis comes: the waiting berthd opens and serves. */
    assert_int_equal(berth_test_redis_restart(late), 0);
    assert_int_equal(test_berthd_wait_healthy(&waiting, 20000), 0);
    assert_true(wait_for_line(waiting.log_path, "Redis answered after", 1000));
    assert_int_equal(test_berthd_stop(&waiting), 0);
    berth_test_redis_stop(late);
}

static void test_methods_reach_api(void **state)
{
    (void)state;
    test_berthd_t d;
    assert_int_equal(start_plain(&d, NULL), 0);
    const char *methods[] = {"GET", "PUT", "PATCH", "DELETE", "POST", "HEAD"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        test_http_t h;
        assert_int_equal(test_http(&d, methods[i], GROUP_PATH(SUB_A, "m"),
                                   strcmp(methods[i], "PUT") == 0 ? "{}" : NULL, NULL, NULL, &h),
                         0);
        /* Whatever the API answers, the server let the method through to
         * it: evhttp's own refusals (405, 501) carry no x-ms-request-id. */
        assert_true(h.status >= 200);
        char *rid = test_http_header(&h, "x-ms-request-id");
        assert_non_null(rid);
        free(rid);
        test_http_free(&h);
    }
    assert_int_equal(test_berthd_stop(&d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz_and_request_ids),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_ipv6_listen),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_tls_bad_files),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_tokens_malformed),
        cmocka_unit_test(test_arm_clients),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_slow_client),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_methods_reach_api),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_http_errors_are_cloud_errors),
        cmocka_unit_test(test_descriptor_exhaustion),
        cmocka_unit_test(test_redis_wait),
        cmocka_unit_test(test_embedded_redis),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
