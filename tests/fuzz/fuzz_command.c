/* fuzz_command.c - libFuzzer target for the command layer.
 *
 * Byte 0 picks the topic suffix (and whether the message is retained), byte 1
 * the policy and vehicle; the rest is the payload. Every accepted command is
 * planned and its result JSON built, and must satisfy the invariants below.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "command.h"

static const char *const suffixes[] = {
    "command", "lock/set", "climate/mode/set", "climate/preset/set",
    "climate/temperature/set", "climate/fan/set", "alias/set", "lock", "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const char *suffix = suffixes[data[0] % (sizeof suffixes / sizeof suffixes[0])];
    bool retained = (data[0] & 0x80) != 0;
    bool with_code = data[1] & 1;
    struct command_policy pol = {
        (data[1] & 2) ? ((1u << CMD_COUNT) - 1) : ((1u << CMD_COUNT) - 1) & ~((1u << CMD_UNLOCK) |
                          (1u << CMD_TRUNK_OPEN) | (1u << CMD_PANIC_ON)),
        with_code ? "1234" : "",
    };
    /* The payload in its own allocation so ASan sees reads past its end. */
    size_t len = size - 2;
    char *payload = malloc(len ? len : 1);
    if (!payload) return 0;
    if (len) memcpy(payload, data + 2, len);

    struct command_req req;
    char err[COMMAND_ERR];
    int rc = command_parse(suffix, payload, len, retained, &pol, &req, err, sizeof err);
    if (rc == 0) {
        if (retained) abort();                                  /* never fires when retained */
        if (!(pol.allow & (1u << req.cmd))) abort();            /* never bypasses the allow-list */
        if (with_code && (req.cmd == CMD_UNLOCK || req.cmd == CMD_TRUNK_OPEN) &&
            !memmem(payload, len, "1234", 4))
            abort();                                            /* never unlocks without the code */
        struct api_vehicle v;
        memset(&v, 0, sizeof v);
        snprintf(v.vin, sizeof v.vin, "JTDKN3DU0A0123456");
        if (data[1] & 4) snprintf(v.guid, sizeof v.guid, "guid-1");
        struct command_call calls[COMMAND_MAX_CALLS];
        int n = command_plan(&req, &v, "dev", "bridge", calls, err, sizeof err);
        if (n == 0 || n > COMMAND_MAX_CALLS) abort();
        for (int i = 0; i < n; i++) {
            if (calls[i].body) {
                cJSON *j = cJSON_Parse(calls[i].body);
                if (!cJSON_IsObject(j)) abort();                /* bodies are JSON objects */
                cJSON_Delete(j);
            }
        }
        if (n > 0) command_calls_free(calls, n);
    } else if (strstr(err, "1234") && with_code) {
        /* The code must never reach an error; "1234" may appear only if the
         * payload put it in a field name or value echoed back. */
        if (!memmem(payload, len, "1234", 4)) abort();
    }
    char *res = command_result_json(&req, rc == 0, NULL, rc ? err : NULL, -1);
    free(res);
    free(payload);
    return 0;
}
