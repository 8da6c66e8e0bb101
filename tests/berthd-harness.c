/*
 * berthd-harness.c: berthd processes for the daemon's tests and a small
 * libcurl client to talk to them (see berthd-harness.h for the contract).
 *
 * Every daemon it starts dies with the test process (PR_SET_PDEATHSIG),
 * every wait is bounded, and it never verifies TLS certificates (the tests
 * make self-signed ones).  It never writes into the source tree: logs go to
 * /tmp.
 */
#define _GNU_SOURCE
#include "berthd-harness.h"
#include "agent-harness.h"
#include "lib/clock.h"
#include "lib/spawn.h"
#include "lib/curl.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <curl/curl.h>

#define BD_HARNESS_START_WAIT_MS 20000
#define BD_HARNESS_STOP_WAIT_MS 15000
#define BD_HARNESS_HTTP_TIMEOUT_S 30L
#define BD_HARNESS_MAX_ARGS 96

static void bdh_curl_init_once(void)
{
    static int done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_ALL);
        done = 1;
    }
}

/* Waits for `pid` at most `wait_ms`.  Returns the exit status (128+signal
 * for a signal), or -1 on timeout. */
static int bdh_reap(pid_t pid, long wait_ms)
{
    long long deadline = berth__clock_monotonic_ms() + wait_ms;
    for (;;) {
        int st = 0;
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid) {
            if (WIFEXITED(st))
                return WEXITSTATUS(st);
            if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
            return -1;
        }
        if (got < 0 && errno == ECHILD)
            return -1;
        if (berth__clock_monotonic_ms() >= deadline)
            return -1;
        berth__clock_sleep_ms(20);
    }
}

int test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

void test_berthd_dump(const test_berthd_t *d, int lines)
{
    FILE *f = fopen(d->log_path, "r");
    if (f == NULL) {
        fprintf(stderr, "# berthd log %s: %s\n", d->log_path, strerror(errno));
        return;
    }
    /* Two passes: count, then print the tail. */
    long total = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n')
            total++;
    rewind(f);
    long skip = total > lines ? total - lines : 0;
    char buf[4096];
    long n = 0;
    fprintf(stderr, "# ---- berthd log %s (last %d lines) ----\n", d->log_path, lines);
    while (fgets(buf, sizeof buf, f) != NULL) {
        size_t l = strlen(buf);
        bool whole = l > 0 && buf[l - 1] == '\n';
        if (n >= skip)
            fprintf(stderr, "# %s%s", buf, whole ? "" : "\n");
        if (whole)
            n++;
    }
    fclose(f);
}

static int bdh_start_once(test_berthd_t *d, const test_berthd_options_t *opts,
                          const char *const *args, bool *taken);

int test_berthd_start(test_berthd_t *d, bool tls, const char *const *args)
{
    test_berthd_options_t opts = {.tls = tls};
    return test_berthd_start_with(d, &opts, args);
}

int test_berthd_start_with(test_berthd_t *d, const test_berthd_options_t *opts,
                           const char *const *args)
{
    static const test_berthd_options_t defaults;
    if (opts == NULL)
        opts = &defaults;
    /* The free port may be taken by someone else before berthd binds it
     * (tests run side by side): try another, a few times. */
    for (int attempt = 1;; attempt++) {
        bool taken = false;
        int rc = bdh_start_once(d, opts, args, &taken);
        if (rc == 0 || !taken || attempt == 5)
            return rc;
        fprintf(stderr, "# berthd's port %d was taken; trying another\n", d->port);
        unlink(d->log_path);
    }
}

/* Waits at most wait_ms (already scaled) for /healthz to answer 200.  When
 * the daemon exits meanwhile, *taken (when not NULL) says whether its port
 * was taken, in which case nothing is printed. */
static int bdh_wait_healthy(test_berthd_t *d, int wait_ms, bool *taken)
{
    long long deadline = berth__clock_monotonic_ms() + wait_ms;
    while (berth__clock_monotonic_ms() < deadline) {
        int st = 0;
        if (d->pid > 0 && waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            if (taken != NULL) {
                *taken = test_file_contains(d->log_path, "Address already in use");
                if (*taken)
                    return -1;
            }
            fprintf(stderr, "# berthd exited early (status %d)\n",
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            test_berthd_dump(d, 40);
            return -1;
        }
        test_http_t h;
        if (test_http(d, "GET", "/healthz", NULL, NULL, NULL, &h) == 0 && h.status == 200) {
            test_http_free(&h);
            return 0;
        }
        test_http_free(&h);
        berth__clock_sleep_ms(100);
    }
    fprintf(stderr, "# berthd did not become healthy within %d ms\n", wait_ms);
    test_berthd_dump(d, 40);
    return -1;
}

int test_berthd_wait_healthy(test_berthd_t *d, int ms)
{
    return bdh_wait_healthy(d, test_deadline_ms(ms), NULL);
}

static int bdh_start_once(test_berthd_t *d, const test_berthd_options_t *opts,
                          const char *const *args, bool *taken)
{
    bool tls = opts->tls;
    memset(d, 0, sizeof *d);
    bdh_curl_init_once();
    d->port = test_free_port();
    if (d->port <= 0)
        return -1;
    d->tls = tls;
    snprintf(d->base_url, sizeof d->base_url, "%s://127.0.0.1:%d", tls ? "https" : "http",
             d->port);
    static unsigned seq;
    snprintf(d->log_path, sizeof d->log_path, "/tmp/berthd-%d-%u.log", (int)getpid(), seq++);
    unlink(d->log_path);

    const char *b = getenv("top_builddir");
    char prog[512], listen[64];
    /* The program sits in its sources' folder (tools/berthd/berthd): a
     * build tree cannot hold both a file and a folder named tools/berthd. */
    snprintf(prog, sizeof prog, "%s/tools/berthd/berthd", b != NULL ? b : ".");
    if (access(prog, X_OK) != 0)
        snprintf(prog, sizeof prog, "%s/tools/berthd", b != NULL ? b : ".");
    snprintf(listen, sizeof listen, "127.0.0.1:%d", d->port);

    /* $BERTH_TEST_BERTHD_WRAPPER (e.g. "valgrind --error-exitcode=9") runs
     * the daemon under a checker: its words come first. */
    static char wrapper[512];
    const char *argv[BD_HARNESS_MAX_ARGS];
    size_t n = 0;
    const char *w = getenv("BERTH_TEST_BERTHD_WRAPPER");
    if (w != NULL && w[0] != '\0') {
        snprintf(wrapper, sizeof wrapper, "%s", w);
        for (char *save = NULL, *tok = strtok_r(wrapper, " ", &save); tok != NULL && n < 16;
             tok = strtok_r(NULL, " ", &save))
            argv[n++] = tok;
    }
    argv[n++] = prog;
    argv[n++] = "--listen";
    argv[n++] = listen;
    for (size_t i = 0; args != NULL && args[i] != NULL && n < BD_HARNESS_MAX_ARGS - 3; i++)
        argv[n++] = args[i];
    if (!opts->no_secrets_key && !test_args_have(args, "--secrets-key")) {
        const char *key = test_secrets_key();
        if (key == NULL)
            return -1;
        argv[n++] = "--secrets-key";
        argv[n++] = key;
    }
    argv[n] = NULL;

    /* stdout and stderr to berthd's log; it dies with the test process. */
    berth__spawn_options_t so = {
        .death_signal = SIGKILL,
        .log_path = d->log_path,
        .log_stdout = true,
        .nofile = opts->nofile,
    };
    char err[160];
    pid_t pid = berth__spawn_start((char *const *)argv, &so, err, sizeof err);
    if (pid < 0) {
        fprintf(stderr, "berthd-harness: %s\n", err);
        return -1;
    }
    d->pid = pid;
    if (opts->no_wait)
        return 0;
    if (bdh_wait_healthy(d, test_deadline_ms(BD_HARNESS_START_WAIT_MS), taken) == 0)
        return 0;
    test_berthd_kill(d);
    return -1;
}

int test_berthd_stop(test_berthd_t *d)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    int stop_wait = test_deadline_ms(BD_HARNESS_STOP_WAIT_MS);
    int rc = bdh_reap(d->pid, stop_wait);
    if (rc < 0) {
        fprintf(stderr, "# berthd %d did not stop within %d ms; killing it\n", (int)d->pid,
                stop_wait);
        kill(d->pid, SIGKILL);
        bdh_reap(d->pid, 5000);
    }
    d->pid = 0;
    return rc;
}

void test_berthd_kill(test_berthd_t *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    bdh_reap(d->pid, 10000);
    d->pid = 0;
}

/* ---- HTTP ------------------------------------------------------------------------------- */

int test_http(const test_berthd_t *d, const char *method, const char *path, const char *body,
              const char *token, const char *const *extra_headers, test_http_t *out)
{
    memset(out, 0, sizeof *out);
    bdh_curl_init_once();
    berth__curl_buffer_t bbody = {0}, bhead = {0};     /* unbounded */
    berth__curl_buffer_finish(&bbody);
    berth__curl_buffer_finish(&bhead);

    size_t ulen = strlen(d->base_url) + strlen(path) + 1;
    char *url = malloc(ulen);
    char *auth = NULL;
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    int rc = -1;
    if (url == NULL || c == NULL)
        goto done;
    snprintf(url, ulen, "%s%s", d->base_url, path);
    berth__curl_options_t how = {.timeout_ms = BD_HARNESS_HTTP_TIMEOUT_S * 1000,
                                 .connect_timeout_ms = 10000, .insecure = true};
    berth__curl_setup(c, &how);
    berth__curl_buffer_attach(c, &bbody);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, berth__curl_buffer_write);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &bhead);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0 || body != NULL)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    /* evhttp answers Expect: 100-continue, but a round trip less is simpler. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (token != NULL) {
        size_t alen = strlen(token) + 32;
        auth = malloc(alen);
        if (auth == NULL)
            goto done;
        snprintf(auth, alen, "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    for (size_t i = 0; extra_headers != NULL && extra_headers[i] != NULL; i++)
        hdrs = curl_slist_append(hdrs, extra_headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        rc = 0;
    }
done:
    if (hdrs != NULL)
        curl_slist_free_all(hdrs);
    if (c != NULL)
        curl_easy_cleanup(c);
    free(url);
    free(auth);
    out->body = bbody.data != NULL ? bbody.data : strdup("");
    out->body_len = bbody.len;
    out->headers = bhead.data != NULL ? bhead.data : strdup("");
    if (rc == 0 && out->body_len > 0)
        out->json = json_loadb(out->body, out->body_len, 0, NULL);
    return rc;
}

test_http_t test_http_send(const test_berthd_t *d, const char *method, const char *path,
                           const char *body, const char *token)
{
    test_http_t h;
    if (test_http(d, method, path, body, token, NULL, &h) != 0)
        fprintf(stderr, "no answer to %s %s\n", method, path);
    return h;
}

char *test_http_header(const test_http_t *h, const char *name)
{
    if (h == NULL || h->headers == NULL)
        return NULL;
    size_t nlen = strlen(name);
    char *found = NULL;
    /* The last occurrence wins: after a 100 Continue or a redirect the
     * final response's headers come last. */
    for (const char *line = h->headers; *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t llen = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            const char *end = line + llen;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
            free(found);
            found = strndup(v, (size_t)(end - v));
        }
        if (eol == NULL)
            break;
        line = eol + 1;
    }
    return found;
}

void test_http_free(test_http_t *h)
{
    if (h == NULL)
        return;
    free(h->body);
    free(h->headers);
    if (h->json != NULL)
        json_decref(h->json);
    memset(h, 0, sizeof *h);
}

char *test_group_path(const char *sub, const char *rg, const char *name, const char *apiv)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/%s/resourceGroups/%s/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s?api-version=%s",
                 sub, rg, name, apiv) < 0)
        abort();
    return p;
}
