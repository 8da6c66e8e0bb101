/*
 * test_util_curl.c: lib/curl (libberth-curl): the bounded body buffer on
 * its own, and handles set up by berth__curl_setup() talking to a small
 * HTTP server on a unix socket (an answer, a bound passed, a timeout, no
 * server at all).
 *
 * The server is a forked child of this test, on a socket under /tmp; the
 * test never writes into the source tree and leaves no process or file
 * behind.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/clock.h"
#include "lib/curl.h"

/* ---- the buffer ------------------------------------------------------------------------ */

static void test_buffer_bound(void **state)
{
    (void)state;
    berth__curl_buffer_t b = {.max = 8};
    char five[] = "12345";
    assert_int_equal(berth__curl_buffer_write(five, 1, 5, &b), 5);
    assert_string_equal(b.data, "12345");
    assert_int_equal(berth__curl_buffer_write(five, 1, 3, &b), 3);
    assert_int_equal(b.len, 8);
    assert_false(b.too_big);
    /* One byte past the bound: refused whole, the buffer unchanged. */
    assert_int_equal(berth__curl_buffer_write(five, 1, 1, &b), 0);
    assert_true(b.too_big);
    assert_string_equal(b.data, "12345123");
    berth__curl_buffer_free(&b);
    assert_null(b.data);
    berth__curl_buffer_free(NULL);

    /* Nothing received: finish gives the empty string. */
    berth__curl_buffer_t e = {0};
    assert_int_equal(berth__curl_buffer_finish(&e), 0);
    assert_string_equal(e.data, "");
    assert_int_equal(e.len, 0);
    berth__curl_buffer_free(&e);

    /* No bound: it grows past its first allocation. */
    berth__curl_buffer_t big = {0};
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 100; i++)
        assert_int_equal(berth__curl_buffer_write(chunk, 10, 100, &big), 1000);
    assert_int_equal(big.len, 100000);
    assert_int_equal(strlen(big.data), 100000);
    berth__curl_buffer_free(&big);
}

/* ---- handles against a unix-socket server ----------------------------------------------- */

typedef struct server {
    char path[108];
    pid_t pid;
} server_t;

/* Forks a server on a new unix socket that answers one connection with
 * `reply` (NULL: reads and never answers), then exits. */
static void server_start(server_t *s, const char *reply)
{
    snprintf(s->path, sizeof s->path, "/tmp/berth-test-curl-%ld.sock", (long)getpid());
    unlink(s->path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", s->path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        alarm(20);      /* never outlives a broken test */
        int c = accept(fd, NULL, NULL);
        char req[4096];
        ssize_t r = c >= 0 ? read(c, req, sizeof req) : -1;
        (void)r;
        if (reply != NULL) {
            ssize_t w = write(c, reply, strlen(reply));
            (void)w;
        } else {
            pause();
        }
        _exit(0);
    }
    close(fd);
}

static void server_stop(server_t *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    unlink(s->path);
}

/* GETs http://localhost/x over s's socket with `how` into b. */
static CURLcode get(server_t *s, berth__curl_options_t how, berth__curl_buffer_t *b)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    how.unix_socket = s->path;
    assert_int_equal(berth__curl_setup(h, &how), CURLE_OK);
    berth__curl_buffer_attach(h, b);
    curl_easy_setopt(h, CURLOPT_URL, "http://localhost/x");
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    return rc;
}

#define REPLY "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world"

static void test_answer_over_unix_socket(void **state)
{
    (void)state;
    server_t s;
    server_start(&s, REPLY);
    berth__curl_buffer_t b = {.max = 1024};
    assert_int_equal(get(&s, (berth__curl_options_t){.timeout_ms = 10000,
                                                     .connect_timeout_ms = 5000}, &b),
                     CURLE_OK);
    assert_string_equal(b.data, "hello world");
    berth__curl_buffer_free(&b);
    server_stop(&s);
}

static void test_body_past_bound(void **state)
{
    (void)state;
    server_t s;
    server_start(&s, REPLY);
    berth__curl_buffer_t b = {.max = 5};
    assert_int_equal(get(&s, (berth__curl_options_t){.timeout_ms = 10000}, &b),
                     CURLE_WRITE_ERROR);
    assert_true(b.too_big);
    assert_true(b.len <= 5);
    berth__curl_buffer_free(&b);
    server_stop(&s);
}

static void test_timeout_and_no_server(void **state)
{
    (void)state;
    server_t s;
    server_start(&s, NULL);
    berth__curl_buffer_t b = {.max = 1024};
    int64_t t0 = berth__clock_monotonic_ms();
    assert_int_equal(get(&s, (berth__curl_options_t){.timeout_ms = 300}, &b),
                     CURLE_OPERATION_TIMEDOUT);
    int64_t took = berth__clock_monotonic_ms() - t0;
    assert_true(took >= 250 && took < 5000);
    assert_null(b.data);
    server_stop(&s);

    /* The socket is gone: no connection. */
    assert_int_equal(get(&s, (berth__curl_options_t){.timeout_ms = 5000}, &b),
                     CURLE_COULDNT_CONNECT);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_bound),
        cmocka_unit_test(test_answer_over_unix_socket),
        cmocka_unit_test(test_body_past_bound),
        cmocka_unit_test(test_timeout_and_no_server),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
