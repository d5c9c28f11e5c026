/* testhelp.h - a tiny unit-test harness in the spirit of redis' testhelp.h.
 *
 * Each check prints one line, "PASS name" or "FAIL name (file:line)", which
 * tests/run.sh counts; a test program exits non-zero when any check failed.
 *
 *   TEST_CHECK("parses the VIN", strcmp(v.vin, "JT...") == 0);
 *   return TEST_REPORT();
 */
#ifndef TESTHELP_H
#define TESTHELP_H

#include <stdio.h>

static int test_passed_ = 0;
static int test_failed_ = 0;

#define TEST_CHECK(name, cond) do {                                         \
        if (cond) {                                                         \
            test_passed_++;                                                 \
            printf("PASS %s\n", (name));                                    \
        } else {                                                            \
            test_failed_++;                                                 \
            printf("FAIL %s (%s:%d: %s)\n", (name), __FILE__, __LINE__, #cond); \
        }                                                                   \
        fflush(stdout);                                                     \
    } while (0)

#define TEST_REPORT() (fprintf(stderr, "%s: %d passed, %d failed\n", __FILE__, \
                               test_passed_, test_failed_), test_failed_ ? 1 : 0)

#endif
