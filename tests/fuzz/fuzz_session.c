/* fuzz_session.c - libFuzzer target for the retained session record the
 * bridge reads back from the broker (<base>/bridge/session). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy so ASan sees any read past the end. */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    long long t = -1;
    if (mqtt_parse_session_record(buf, size, &t) == 0 && t < 0) abort();
    free(buf);
    return 0;
}
