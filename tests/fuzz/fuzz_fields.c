/* fuzz_fields.c - libFuzzer target for fields_derive() and fields_flatten()
 * (the input parsed as JSON and given to every resource: each derived
 * payload must be a JSON object, each value non-empty text or a string the
 * API gave), and for hass_owns_config() (first line the topic, the rest the
 * retained payload). No crash, leak or undefined behaviour. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fields.h"
#include "hass.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_derived(void *ud, const char *sub, const char *payload)
{
    (void)ud;
    cJSON *j = cJSON_Parse(payload);
    if (!sub || !sub[0] || !cJSON_IsObject(j)) abort();
    cJSON_Delete(j);
}

static void check_value(void *ud, const char *key, const char *value)
{
    (void)ud;
    if (!key || !fields_find(key) || !value) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024) return 0;
    cJSON *obj = cJSON_ParseWithLength((const char *)data, size);
    for (int r = 0; r < RES_COUNT; r++) {
        if (fields_derive((enum resource)r, obj, check_derived, NULL) < 0) abort();
        if (fields_flatten((enum resource)r, obj, check_value, NULL) < 0) abort();
    }
    cJSON_Delete(obj);

    const char *nl = memchr(data, '\n', size);
    if (nl) {
        size_t tl = (size_t)(nl - (const char *)data);
        char *topic = malloc(tl + 1);
        if (!topic) return 0;
        memcpy(topic, data, tl);
        topic[tl] = '\0';
        struct hass_opts o = { .prefix = "homeassistant", .base = "toyota2mqtt", .version = "fuzz" };
        char node[64];
        (void)hass_owns_config(&o, topic, nl + 1, size - tl - 1, node, sizeof node);
        free(topic);
    }
    return 0;
}
