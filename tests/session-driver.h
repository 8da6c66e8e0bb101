/*
 * session-driver.h: a test's side of one interactive session of a runtime
 * plugin (berth-plugin.h's session operations): open it, read its output
 * as the agent does (poll the descriptor, then session_read), wait for
 * text in it, write to it, close it.  Shared by the plugin tests
 * (test_plugin.c for the sim, test_plugin_runc.c).
 *
 * Every wait is bounded by the session's wait_ms (a test's own bound,
 * already scaled); a failure fails the cmocka test with what was read.
 * Nothing here is thread-safe: one session, one thread.
 */
#ifndef BERTH_TEST_SESSION_DRIVER_H
#define BERTH_TEST_SESSION_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/berth-plugin.h"

typedef struct test_session {
    const berth_plugin_ops_t *ops;
    void *s;
    int fd;
    int wait_ms;                    /* every wait's bound                    */
    char out[65536];                /* everything read, NUL-terminated       */
    size_t len;
    size_t seen;                    /* what test_session_expect() matched    */
    bool ended;
} test_session_t;

/* Opens a session of argv on container `container` of group `key` through
 * ops/ctx, or fails the test. */
void test_session_open(test_session_t *t, const berth_plugin_ops_t *ops, void *ctx,
                       const char *key, const char *container, const char *const *argv,
                       size_t argc, bool tty, uint16_t rows, uint16_t cols, int wait_ms);

/* Reads what is waiting once the descriptor polls readable (at most ms);
 * true when something was read or the output ended. */
bool test_session_pump(test_session_t *t, int ms);

/* Reads until `want` appears after what earlier calls matched. */
void test_session_expect(test_session_t *t, const char *want);

/* Reads until the output ends. */
void test_session_to_end(test_session_t *t);

/* Writes `text` to the process's stdin, or fails the test. */
void test_session_send(test_session_t *t, const char *text);

/* Closes the session (successfully, or the test fails); its exit code. */
int test_session_finish(test_session_t *t);

#endif
