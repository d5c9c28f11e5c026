/* test_mqtt.c - the pure part of mqtt.c: the session record that bounds the
 * age of commands the broker replays (see mqtt.h). */
#include <string.h>

#include "mqtt.h"
#include "testhelp.h"

static int parse(const char *s, long long *t)
{
    return mqtt_parse_session_record(s, strlen(s), t);
}

int main(void)
{
    long long t = -1;
    TEST_CHECK("record: the form the bridge writes", parse("{\"offline_since\":1764220000}", &t) == 0 &&
                                                       t == 1764220000);
    TEST_CHECK("record: 1 is the smallest time", parse("{\"offline_since\":1}", &t) == 0 && t == 1);
    TEST_CHECK("record: 11 digits", parse("{\"offline_since\":99999999999}", &t) == 0 && t == 99999999999LL);
    static const char *const bad[] = {
        "", "{}", "{\"offline_since\":}", "{\"offline_since\":0}", "{\"offline_since\":-5}",
        "{\"offline_since\":01}", "{\"offline_since\":1.5}", "{\"offline_since\":1e9}",
        "{\"offline_since\":100000000000}", "{\"offline_since\": 5}", "{\"offline_since\":5 }",
        "{\"offline_since\":5", "{\"offline_since\":5}x", "{\"Offline_since\":5}", "sync 0123456789abcdef",
        "offline", "{\"offline_since\":\"5\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[96];
        t = 42;
        snprintf(name, sizeof name, "record: rejects %.60s", bad[i][0] ? bad[i] : "(empty)");
        TEST_CHECK(name, parse(bad[i], &t) == -1 && t == 42);
    }
    /* Not NUL-terminated: only len bytes count. */
    const char buf[] = "{\"offline_since\":12345}99";
    TEST_CHECK("record: reads exactly len bytes", mqtt_parse_session_record(buf, sizeof buf - 3, &t) == 0 &&
                                                  t == 12345);
    TEST_CHECK("record: a cut record is refused", mqtt_parse_session_record(buf, 10, &t) == -1);
    TEST_CHECK("record: NULL is refused", mqtt_parse_session_record(NULL, 5, &t) == -1);
    return TEST_REPORT();
}
