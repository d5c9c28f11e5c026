/* fuzz_api.c - libFuzzer target for every API response parser (api.c):
 * each resource, the vehicle list, a trips page, a command result, an error
 * body, and the minifier. The first byte picks the resource. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256], msg[128];
    if (size < 1) return 0;
    enum resource r = (enum resource)(data[0] % RES_COUNT);
    /* An exact-size heap copy so ASan sees any read past the end. */
    char *body = malloc(size - 1 ? size - 1 : 1);
    if (!body) return 0;
    memcpy(body, data + 1, size - 1);
    size_t len = size - 1;

    cJSON *tree = api_parse_resource(r, body, len, err, sizeof err);
    if (tree) {
        char *min = api_minify(body, len);
        /* The compact form of a valid document must still be strict JSON
         * and hold as many values. */
        cJSON *again = min ? cJSON_Parse(min) : NULL;
        if (min && (!api_json_valid(min, strlen(min)) || !again ||
                    cJSON_GetArraySize(again) != cJSON_GetArraySize(tree)))
            abort();
        cJSON_Delete(again);
        free(min);
        cJSON_Delete(tree);
    }
    struct api_vehicle *list = NULL;
    size_t n = 0;
    if (api_parse_vehicle_list(body, len, &list, &n, err, sizeof err) == 0)
        for (size_t i = 0; i < n; i++)
            if (!api_vin_valid(list[i].vin)) abort();
    free(list);
    cJSON *acc = cJSON_CreateArray();
    int total, count;
    if (acc) api_trips_page_merge(acc, body, len, &total, &count, err, sizeof err);
    cJSON_Delete(acc);
    struct api_result res;
    api_parse_result(body, len, &res, err, sizeof err);
    api_error_message(body, len, msg, sizeof msg);
    free(body);
    return 0;
}
