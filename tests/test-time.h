/*
 * test-time.h: deadlines for Berth's tests on slow runs.
 *
 * A deadline is how long a test waits for something another process does
 * (an agent's report, berthd's timer, a daemon's start).  Under the
 * sanitizers or valgrind those processes run several times slower, so the
 * runs that use them set $BERTH_TEST_TIME_SCALE (tests/run-all.sh,
 * tests/valgrind.sh) and every deadline is multiplied by it.  Only waits
 * scale: a test that checks something does NOT happen within a time keeps
 * its own bound.
 */
#ifndef BERTH_TEST_TIME_H
#define BERTH_TEST_TIME_H

#include <stdlib.h>

/* Returns `ms` times $BERTH_TEST_TIME_SCALE (a whole number from 1 to 20;
 * unset, empty or anything else counts as 1). */
static inline int test_deadline_ms(int ms)
{
    const char *s = getenv("BERTH_TEST_TIME_SCALE");
    char *end = NULL;
    long k = s != NULL ? strtol(s, &end, 10) : 1;
    if (s == NULL || end == s || *end != '\0' || k < 1 || k > 20)
        k = 1;
    return (int)(ms * k);
}

#endif /* BERTH_TEST_TIME_H */
