/* test_auth.c - the bearer/OAuth2 state machine: body encoding, token
 * response parsing, JWT exp, refresh timing, backoff, 401 handling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "testhelp.h"

#define NOW 1000000LL

/* base64url without padding, for building JWTs. */
static void b64url(const char *in, char *out, size_t outlen)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n && o + 5 < outlen; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = tab[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = tab[v & 63];
    }
    out[o] = '\0';
}

static void make_jwt(const char *claims, char *out, size_t outlen)
{
    char h[128], p[512];
    b64url("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", h, sizeof h);
    b64url(claims, p, sizeof p);
    snprintf(out, outlen, "%s.%s.c2lnbmF0dXJl", h, p);
}

static struct auth *new_oauth(void)
{
    struct auth *a = malloc(sizeof *a);
    if (a && auth_init_oauth(a, "https://idp.example/token", "client", "", "rt-0") != 0) {
        free(a);
        return NULL;
    }
    return a;
}

static int respond(struct auth *a, int status, const char *body, long long now, char *err,
                   size_t errlen)
{
    err[0] = '\0';
    return auth_handle_token_response(a, status, body, body ? strlen(body) : 0, now, err, errlen);
}

static void test_init_and_header(void)
{
    struct auth *a = malloc(sizeof *a);
    if (!a) return;
    char h[256];
    TEST_CHECK("auth: static init", auth_init_static(a, "static-tok") == 0);
    TEST_CHECK("auth: static header", auth_header(a, h, sizeof h) == 0 &&
               strcmp(h, "Authorization: Bearer static-tok") == 0);
    TEST_CHECK("auth: header too small", auth_header(a, h, 10) == -1);
    TEST_CHECK("auth: static never refreshes", !auth_needs_refresh(a, NOW));
    TEST_CHECK("auth: static 401 is not retryable", !auth_on_unauthorized(a));
    TEST_CHECK("auth: static refresh body is NULL", auth_refresh_body(a) == NULL);
    TEST_CHECK("auth: static rejects empty token", auth_init_static(a, "") == -1);
    TEST_CHECK("auth: static rejects CRLF in token", auth_init_static(a, "a\r\nX-Evil: 1") == -1);
    TEST_CHECK("auth: static rejects space in token", auth_init_static(a, "a b") == -1);

    TEST_CHECK("auth: oauth needs token_url", auth_init_oauth(a, "", "c", NULL, "r") == -1);
    TEST_CHECK("auth: oauth needs client_id", auth_init_oauth(a, "u", NULL, NULL, "r") == -1);
    TEST_CHECK("auth: oauth without refresh token", auth_init_oauth(a, "u", "c", NULL, NULL) == 0);
    TEST_CHECK("auth: no refresh token, no refresh", !auth_needs_refresh(a, NOW) &&
               auth_refresh_body(a) == NULL);
    TEST_CHECK("auth: oauth no header before a token", auth_header(a, h, sizeof h) == -1);
    TEST_CHECK("auth: set_refresh_token", auth_set_refresh_token(a, "from-state") == 0 &&
               strcmp(a->refresh_token, "from-state") == 0);
    TEST_CHECK("auth: set_refresh_token rejects empty", auth_set_refresh_token(a, "") == -1);
    TEST_CHECK("auth: set_refresh_token rejects control chars",
               auth_set_refresh_token(a, "x\ny") == -1 && strcmp(a->refresh_token, "from-state") == 0);
    TEST_CHECK("auth: oauth with no token needs refresh", auth_needs_refresh(a, NOW));
    char *big = malloc(AUTH_TOKEN_MAX + 1);
    if (big) {
        memset(big, 'x', AUTH_TOKEN_MAX);
        big[AUTH_TOKEN_MAX] = '\0';
        TEST_CHECK("auth: oversized refresh token refused", auth_set_refresh_token(a, big) == -1);
        big[AUTH_TOKEN_MAX - 1] = '\0';
        TEST_CHECK("auth: maximal refresh token accepted", auth_set_refresh_token(a, big) == 0);
        char *body = auth_refresh_body(a);
        TEST_CHECK("auth: body with maximal token", body && strlen(body) > AUTH_TOKEN_MAX);
        free(body);
        free(big);
    }
    free(a);
}

static void test_body(void)
{
    struct auth *a = malloc(sizeof *a);
    if (!a) return;
    auth_init_oauth(a, "https://idp.example/token", "my client/1",
                    "s&e=c+r%t", "a b+c&d=e/~._-?#");
    char *body = auth_refresh_body(a);
    TEST_CHECK("auth: body percent-encodes", body && strcmp(body,
        "grant_type=refresh_token&refresh_token=a%20b%2Bc%26d%3De%2F~._-%3F%23"
        "&client_id=my%20client%2F1&client_secret=s%26e%3Dc%2Br%25t") == 0);
    if (body) printf("# body: %s\n", body);
    free(body);
    auth_init_oauth(a, "https://idp.example/token", "cid", NULL, "RT");
    body = auth_refresh_body(a);
    TEST_CHECK("auth: body without secret", body && strcmp(body,
        "grant_type=refresh_token&refresh_token=RT&client_id=cid") == 0);
    free(body);
    free(a);
}

static void test_response_happy(void)
{
    struct auth *a = new_oauth();
    if (!a) return;
    char err[256], h[256];
    auth_refresh_begin(a);
    TEST_CHECK("auth: in flight blocks another refresh", !auth_needs_refresh(a, NOW));
    int rc = respond(a, 200, "{\"access_token\":\"tok1\",\"token_type\":\"bearer\","
                     "\"expires_in\":3600,\"scope\":\"x\"}", NOW, err, sizeof err);
    TEST_CHECK("auth: happy path", rc == AUTH_OK && !a->in_flight);
    TEST_CHECK("auth: expires_at from expires_in", a->expires_at == NOW + 3600);
    TEST_CHECK("auth: header carries new token", auth_header(a, h, sizeof h) == 0 &&
               strcmp(h, "Authorization: Bearer tok1") == 0);
    TEST_CHECK("auth: no rotation without refresh_token", !auth_take_rotated(a) &&
               strcmp(a->refresh_token, "rt-0") == 0);

    rc = respond(a, 200, "{\"access_token\":\"tok2\",\"expires_in\":60,"
                 "\"refresh_token\":\"rt-1\"}", NOW, err, sizeof err);
    TEST_CHECK("auth: rotation accepted", rc == AUTH_OK && strcmp(a->refresh_token, "rt-1") == 0);
    TEST_CHECK("auth: rotation flagged once", auth_take_rotated(a) && !auth_take_rotated(a));
    rc = respond(a, 201, "{\"access_token\":\"tok3\",\"expires_in\":60,"
                 "\"refresh_token\":\"rt-1\"}", NOW, err, sizeof err);
    TEST_CHECK("auth: same refresh token is not a rotation", rc == AUTH_OK && !auth_take_rotated(a));

    char jwt[1024], body[1200];
    make_jwt("{\"sub\":\"u\",\"exp\":1003600}", jwt, sizeof jwt);
    snprintf(body, sizeof body, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\"}", jwt);
    rc = respond(a, 200, body, NOW, err, sizeof err);
    TEST_CHECK("auth: expiry from JWT exp", rc == AUTH_OK && a->expires_at == 1003600);
    snprintf(body, sizeof body, "{\"access_token\":\"%s\",\"expires_in\":120}", jwt);
    rc = respond(a, 200, body, NOW, err, sizeof err);
    TEST_CHECK("auth: expires_in wins over JWT exp", rc == AUTH_OK && a->expires_at == NOW + 120);
    rc = respond(a, 200, "{\"access_token\":\"opaque\"}", NOW, err, sizeof err);
    TEST_CHECK("auth: opaque token without expiry", rc == AUTH_OK && a->expires_at == 0);
    TEST_CHECK("auth: unknown expiry does not refresh by itself",
               !auth_needs_refresh(a, NOW + 100000000));
    make_jwt("{\"exp\":999999}", jwt, sizeof jwt);
    snprintf(body, sizeof body, "{\"access_token\":\"%s\"}", jwt);
    rc = respond(a, 200, body, NOW, err, sizeof err);
    TEST_CHECK("auth: JWT already expired is an error", rc == AUTH_RETRY &&
               strcmp(a->access_token, "opaque") == 0);
    free(a);
}

/* Each body must fail with AUTH_RETRY and leave the token alone; errors must
 * not echo the token. */
static void test_response_bad(void)
{
    struct auth *a = new_oauth();
    if (!a) return;
    char err[256];
    respond(a, 200, "{\"access_token\":\"good\",\"expires_in\":3600}", NOW, err, sizeof err);
    static const char *const bad[] = {
        "",
        "not json",
        "[\"access_token\"]",
        "{\"access_token\":42,\"expires_in\":3600}",
        "{\"expires_in\":3600}",
        "{\"access_token\":\"\",\"expires_in\":3600}",
        "{\"access_token\":\"SECRETVALUE with space\"}",
        "{\"access_token\":\"SECRETVALUE\\r\\nX-Evil: 1\"}",
        "{\"access_token\":\"t\",\"expires_in\":\"3600\"}",
        "{\"access_token\":\"t\",\"expires_in\":0}",
        "{\"access_token\":\"t\",\"expires_in\":-5}",
        "{\"access_token\":\"t\",\"expires_in\":1.5}",
        "{\"access_token\":\"t\",\"expires_in\":31536001}",
        "{\"access_token\":\"t\",\"expires_in\":1e400}",
        "{\"access_token\":\"t\",\"token_type\":\"mac\"}",
        "{\"access_token\":\"t\",\"token_type\":7}",
        "{\"access_token\":\"t\",\"refresh_token\":7}",
        "{\"access_token\":\"t\",\"refresh_token\":\"\"}",
        "{\"access_token\":\"t\",\"refresh_token\":\"a\\u0001b\"}",
        "{\"access_token\":null}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[96];
        int rc = respond(a, 200, bad[i], NOW, err, sizeof err);
        snprintf(name, sizeof name, "auth: bad response %zu refused", i);
        TEST_CHECK(name, rc == AUTH_RETRY && strcmp(a->access_token, "good") == 0 &&
                   strcmp(a->refresh_token, "rt-0") == 0 && err[0] && !strchr(err, '\n'));
        snprintf(name, sizeof name, "auth: bad response %zu error hides the token", i);
        TEST_CHECK(name, !strstr(err, "SECRETVALUE"));
        a->failures = 0;
        a->next_attempt_at = 0;
    }
    /* oversized token and oversized body */
    size_t n = AUTH_TOKEN_MAX + 64;
    char *body = malloc(n);
    if (body) {
        memcpy(body, "{\"access_token\":\"", 17);
        memset(body + 17, 'x', AUTH_TOKEN_MAX);
        snprintf(body + 17 + AUTH_TOKEN_MAX, n - 17 - AUTH_TOKEN_MAX, "\"}");
        TEST_CHECK("auth: oversized token refused", respond(a, 200, body, NOW, err, sizeof err) ==
                   AUTH_RETRY && strstr(err, "access_token"));
        free(body);
    }
    TEST_CHECK("auth: oversized body refused",
               auth_handle_token_response(a, 200, "{}", AUTH_BODY_MAX + 1, NOW, err, sizeof err) ==
               AUTH_RETRY && strstr(err, "too large"));
    TEST_CHECK("auth: no response is retryable", respond(a, 0, NULL, NOW, err, sizeof err) ==
               AUTH_RETRY);
    TEST_CHECK("auth: 500 is retryable", respond(a, 500, "<html>oops</html>", NOW, err, sizeof err) ==
               AUTH_RETRY && strstr(err, "HTTP 500") && !a->permanent_failure);
    TEST_CHECK("auth: other 400 error is retryable with its code",
               respond(a, 400, "{\"error\":\"invalid_request\"}", NOW, err, sizeof err) ==
               AUTH_RETRY && strstr(err, "invalid_request"));
    TEST_CHECK("auth: a failure keeps the old token usable", strcmp(a->access_token, "good") == 0);
    free(a);
}

static void test_invalid_grant(void)
{
    struct auth *a = new_oauth();
    if (!a) return;
    char err[256];
    auth_refresh_begin(a);
    int rc = respond(a, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"expired\"}",
                     NOW, err, sizeof err);
    TEST_CHECK("auth: invalid_grant is fatal", rc == AUTH_FATAL && a->permanent_failure &&
               !a->in_flight);
    TEST_CHECK("auth: invalid_grant message", strcmp(err,
               "refresh token rejected (invalid_grant): re-authorise and set "
               "api.oauth.refresh_token") == 0);
    TEST_CHECK("auth: no refresh after permanent failure", !auth_needs_refresh(a, NOW + 100000));
    TEST_CHECK("auth: no 401 retry after permanent failure", !auth_on_unauthorized(a));
    TEST_CHECK("auth: a new refresh token clears it", auth_set_refresh_token(a, "rt-new") == 0 &&
               !a->permanent_failure && auth_needs_refresh(a, NOW));
    rc = respond(a, 401, "{\"error\":\"invalid_client\"}", NOW, err, sizeof err);
    TEST_CHECK("auth: invalid_client is fatal", rc == AUTH_FATAL && strstr(err, "invalid_client"));
    auth_set_refresh_token(a, "rt-new");
    rc = respond(a, 400, "{\"error\":\"invalid_grant\"", NOW, err, sizeof err);
    TEST_CHECK("auth: truncated error body is retryable", rc == AUTH_RETRY);
    free(a);
}

static void test_timing(void)
{
    struct auth *a = new_oauth();
    if (!a) return;
    char err[256];
    respond(a, 200, "{\"access_token\":\"t\",\"expires_in\":3600}", NOW, err, sizeof err);
    TEST_CHECK("auth: fresh token needs no refresh", !auth_needs_refresh(a, NOW));
    TEST_CHECK("auth: 61 s before expiry: no refresh", !auth_needs_refresh(a, NOW + 3539));
    TEST_CHECK("auth: 60 s before expiry: refresh", auth_needs_refresh(a, NOW + 3540));
    TEST_CHECK("auth: next refresh time is expiry minus the margin",
               auth_next_refresh_at(a) == NOW + 3540);
    respond(a, 200, "{\"access_token\":\"t\",\"expires_in\":300}", NOW, err, sizeof err);
    TEST_CHECK("auth: short token: margin is 10% (not yet)", !auth_needs_refresh(a, NOW + 269));
    TEST_CHECK("auth: short token: margin is 10%", auth_needs_refresh(a, NOW + 270));
    TEST_CHECK("auth: restore access token", auth_set_access_token(a, "saved", NOW + 200) == 0);
    TEST_CHECK("auth: restored token: 60 s margin", !auth_needs_refresh(a, NOW + 139) &&
               auth_needs_refresh(a, NOW + 140));
    TEST_CHECK("auth: restore rejects bad token", auth_set_access_token(a, "a b", 5) == -1 &&
               strcmp(a->access_token, "saved") == 0);

    /* backoff: 5 s, then 10 s, ... capped at 300 s; success resets it */
    auth_set_access_token(a, "saved", 0);
    a->expired = true;
    respond(a, 503, "", NOW, err, sizeof err);
    TEST_CHECK("auth: backoff after first failure", a->failures == 1 &&
               !auth_needs_refresh(a, NOW + 4) && auth_needs_refresh(a, NOW + 5));
    TEST_CHECK("auth: next refresh time follows the backoff", auth_next_refresh_at(a) == NOW + 5);
    auth_refresh_begin(a);
    TEST_CHECK("auth: no next refresh time while one is in flight",
               auth_next_refresh_at(a) == AUTH_NEVER);
    respond(a, 503, "", NOW - 5, err, sizeof err);
    a->failures = 1;
    a->next_attempt_at = NOW + 5;
    respond(a, 503, "", NOW, err, sizeof err);
    TEST_CHECK("auth: backoff doubles", !auth_needs_refresh(a, NOW + 9) &&
               auth_needs_refresh(a, NOW + 10));
    for (int i = 0; i < 40; i++) respond(a, 503, "", NOW, err, sizeof err);
    TEST_CHECK("auth: backoff capped", !auth_needs_refresh(a, NOW + 299) &&
               auth_needs_refresh(a, NOW + 300));
    respond(a, 200, "{\"access_token\":\"t\",\"expires_in\":3600}", NOW, err, sizeof err);
    TEST_CHECK("auth: success resets failures", a->failures == 0 && a->next_attempt_at == 0);
    free(a);
}

static void test_unauthorized(void)
{
    struct auth *a = new_oauth();
    if (!a) return;
    char err[256];
    respond(a, 200, "{\"access_token\":\"t1\",\"expires_in\":3600}", NOW, err, sizeof err);
    TEST_CHECK("auth: first 401 is worth a retry", auth_on_unauthorized(a));
    TEST_CHECK("auth: 401 forces a refresh", auth_needs_refresh(a, NOW + 1));
    TEST_CHECK("auth: second 401 on the same token is not", !auth_on_unauthorized(a));
    auth_refresh_begin(a);
    respond(a, 200, "{\"access_token\":\"t2\",\"expires_in\":3600}", NOW + 1, err, sizeof err);
    TEST_CHECK("auth: new token clears the 401 mark", !auth_needs_refresh(a, NOW + 2));
    TEST_CHECK("auth: 401 on the new token is worth a retry again", auth_on_unauthorized(a));
    free(a);
}

static void test_jwt(void)
{
    char jwt[1024];
    long long exp = 0;
    make_jwt("{\"exp\":1764220000,\"iat\":1}", jwt, sizeof jwt);
    TEST_CHECK("auth: jwt exp", auth_jwt_exp(jwt, &exp) == 0 && exp == 1764220000);
    make_jwt("{\"exp\":1764220000.75}", jwt, sizeof jwt);
    TEST_CHECK("auth: jwt fractional exp", auth_jwt_exp(jwt, &exp) == 0 && exp == 1764220000);
    /* {"exp":5} padded: eyJleHAiOjV9 has no padding; use a 2-byte tail one */
    TEST_CHECK("auth: jwt payload with '=' padding",
               auth_jwt_exp("eyJhbGciOiJub25lIn0.eyJleHAiOjEwfQ==.", &exp) == 0 && exp == 10);
    TEST_CHECK("auth: jwt with empty signature (alg none)",
               auth_jwt_exp("eyJhbGciOiJub25lIn0.eyJleHAiOjEwfQ.", &exp) == 0 && exp == 10);
    make_jwt("{\"sub\":\"x\"}", jwt, sizeof jwt);
    TEST_CHECK("auth: jwt without exp", auth_jwt_exp(jwt, &exp) == -1);
    make_jwt("{\"exp\":\"1764220000\"}", jwt, sizeof jwt);
    TEST_CHECK("auth: jwt string exp", auth_jwt_exp(jwt, &exp) == -1);
    make_jwt("{\"exp\":-1}", jwt, sizeof jwt);
    TEST_CHECK("auth: jwt negative exp", auth_jwt_exp(jwt, &exp) == -1);
    make_jwt("{\"exp\":1e300}", jwt, sizeof jwt);
    TEST_CHECK("auth: jwt huge exp", auth_jwt_exp(jwt, &exp) == -1);
    make_jwt("[1]", jwt, sizeof jwt);
    TEST_CHECK("auth: jwt payload not an object", auth_jwt_exp(jwt, &exp) == -1);
    make_jwt("not json", jwt, sizeof jwt);
    TEST_CHECK("auth: jwt payload not JSON", auth_jwt_exp(jwt, &exp) == -1);
    TEST_CHECK("auth: opaque token", auth_jwt_exp("opaque", &exp) == -1);
    TEST_CHECK("auth: two parts", auth_jwt_exp("eyJhbGciOiJub25lIn0.eyJleHAiOjEwfQ", &exp) == -1);
    TEST_CHECK("auth: four parts",
               auth_jwt_exp("eyJhbGciOiJub25lIn0.eyJleHAiOjEwfQ.a.b", &exp) == -1);
    TEST_CHECK("auth: empty payload", auth_jwt_exp("eyJhbGciOiJub25lIn0..sig", &exp) == -1);
    TEST_CHECK("auth: standard base64 chars refused",
               auth_jwt_exp("eyJhbGciOiJub25lIn0.eyJle+AiOjEwfQ.sig", &exp) == -1);
    TEST_CHECK("auth: impossible base64 length",
               auth_jwt_exp("eyJhbGciOiJub25lIn0.eyJleHAiOjEwf.sig", &exp) == -1);
    TEST_CHECK("auth: NULL", auth_jwt_exp(NULL, &exp) == -1);
}

int main(void)
{
    test_init_and_header();
    test_body();
    test_response_happy();
    test_response_bad();
    test_invalid_grant();
    test_timing();
    test_unauthorized();
    test_jwt();
    return TEST_REPORT();
}
