/* fuzz_token.c - libFuzzer target: token endpoint responses and JWT exp.
 *
 * The first input byte picks the HTTP status; the rest is the body, handed
 * over in an exact-size heap copy so ASan sees any read past its end. The
 * body is also tried as a JWT (NUL-terminated copy). Invariants checked: a
 * success leaves a header-safe access token, a failure leaves the previous
 * one, and in_flight is always cleared.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

static const int statuses[] = { 200, 201, 204, 400, 401, 403, 500, 503, 0, 302 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    char *jwt = malloc(len + 1);
    static struct auth a;  /* 12 KiB: keep it off the fuzzer's stack */
    if (!body || !jwt) goto out;
    memcpy(body, data + 1, len);
    memcpy(jwt, data + 1, len);
    jwt[len] = '\0';

    if (auth_init_oauth(&a, "https://idp.example/token", "client", "secret", "rt") != 0) abort();
    if (auth_set_access_token(&a, "previous", 0) != 0) abort();
    auth_refresh_begin(&a);
    char err[256];
    int rc = auth_handle_token_response(&a, status, body, len, 1000000, err, sizeof err);
    if (a.in_flight) abort();
    if (rc == AUTH_OK) {
        for (const char *p = a.access_token; *p; p++)
            if (*p < 0x21 || *p > 0x7e) abort();
        if (!a.access_token[0] || (a.expires_at != 0 && a.expires_at <= 1000000)) abort();
        char h[AUTH_TOKEN_MAX + 64];
        if (auth_header(&a, h, sizeof h) != 0) abort();
    } else if (strcmp(a.access_token, "previous") != 0 || !err[0]) {
        abort();
    }
    char *form = auth_refresh_body(&a);
    if (!form) abort();
    free(form);

    long long exp = 0;
    if (auth_jwt_exp(jwt, &exp) == 0 && exp < 1) abort();
out:
    free(body);
    free(jwt);
    return 0;
}
