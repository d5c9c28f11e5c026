/* fuzz_state.c - libFuzzer target: state_parse on arbitrary bytes.
 *
 * The input goes over in an exact-size heap copy (no NUL) so ASan sees any
 * read past its end. Whatever parses must serialise, and the serialisation
 * must parse back to the same text (the file we write is the file we read).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    struct state st, st2;
    state_init(&st);
    state_init(&st2);
    char err[STATE_ERR];
    if (state_parse(&st, buf, size, err, sizeof err) == 0) {
        char *text = state_serialize(&st);
        if (!text) abort();
        if (state_parse(&st2, text, strlen(text), err, sizeof err) != 0) abort();
        char *again = state_serialize(&st2);
        if (!again || strcmp(text, again) != 0) abort();
        /* the accessors must cope with whatever was loaded */
        state_seen_add(&st2, "JTDKB20U793012345", "fuzz");
        state_calls_add(&st2, "JTDKB20U793012345", "2026-11-27", true);
        free(again);
        free(text);
    } else if (!err[0]) {
        abort();
    }
    state_free(&st);
    state_free(&st2);
    free(buf);
    return 0;
}
