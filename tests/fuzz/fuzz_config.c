/* fuzz_config.c - libFuzzer target for config_parse_string(): arbitrary bytes
 * must give either a configuration or a one-line error, never a crash, a
 * leak or an error message spanning lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) return 0;
    char *text = malloc(size + 1);
    struct config *cfg = malloc(sizeof(*cfg));   /* ~20 KiB: keep it off the stack */
    if (!text || !cfg) {
        free(text);
        free(cfg);
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';

    char err[CONFIG_ERR];
    config_defaults(cfg);
    if (config_parse_string(cfg, text, "fuzz.conf", err, sizeof(err)) == 0) {
        char *js = config_to_json(cfg);
        free(js);
    } else if (strchr(err, '\n') || strncmp(err, "fuzz.conf:", 10) != 0) {
        abort();
    }
    free(cfg);
    free(text);
    return 0;
}
