/* auth.c - bearer token and OAuth2 refresh state machine; see auth.h. */
#include "auth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#define JWT_EXP_MAX 253402300799.0   /* 9999-12-31T23:59:59Z */

/* ---- validation ---------------------------------------------------------- */

/* An access token goes into an HTTP header: RFC 6750 b64token characters are
 * a subset of visible ASCII; anything else (space, CR, LF) could split it. */
static bool access_token_ok(const char *t)
{
    if (!t || !t[0]) return false;
    size_t n = 0;
    for (; t[n]; n++)
        if (n >= AUTH_TOKEN_MAX - 1 || (unsigned char)t[n] < 0x21 || (unsigned char)t[n] > 0x7e)
            return false;
    return true;
}

/* A refresh token is 1*VSCHAR (RFC 6749 appendix A.17); it is percent-encoded
 * into the body, so space is harmless. */
static bool refresh_token_ok(const char *t)
{
    if (!t || !t[0]) return false;
    size_t n = 0;
    for (; t[n]; n++)
        if (n >= AUTH_TOKEN_MAX - 1 || (unsigned char)t[n] < 0x20 || (unsigned char)t[n] > 0x7e)
            return false;
    return true;
}

static int copy_str(char *dst, size_t size, const char *src)
{
    if (!src) src = "";
    if (strnlen(src, size) >= size) return -1;
    snprintf(dst, size, "%s", src);
    return 0;
}

/* ---- set-up -------------------------------------------------------------- */

int auth_init_static(struct auth *a, const char *token)
{
    memset(a, 0, sizeof *a);
    a->mode = AUTH_STATIC;
    if (!access_token_ok(token)) return -1;
    return copy_str(a->access_token, sizeof a->access_token, token);
}

int auth_init_oauth(struct auth *a, const char *token_url, const char *client_id,
                    const char *client_secret, const char *refresh_token)
{
    memset(a, 0, sizeof *a);
    a->mode = AUTH_OAUTH;
    if (!token_url || !token_url[0] || !client_id || !client_id[0]) return -1;
    if (copy_str(a->token_url, sizeof a->token_url, token_url) ||
        copy_str(a->client_id, sizeof a->client_id, client_id) ||
        copy_str(a->client_secret, sizeof a->client_secret, client_secret))
        return -1;
    if (refresh_token && refresh_token[0])
        return auth_set_refresh_token(a, refresh_token);
    return 0;
}

int auth_set_refresh_token(struct auth *a, const char *refresh_token)
{
    if (!refresh_token_ok(refresh_token)) return -1;
    if (copy_str(a->refresh_token, sizeof a->refresh_token, refresh_token)) return -1;
    a->permanent_failure = false;
    a->failures = 0;
    a->next_attempt_at = 0;
    return 0;
}

int auth_set_access_token(struct auth *a, const char *access_token, long long expires_at)
{
    if (a->mode != AUTH_OAUTH || !access_token_ok(access_token) || expires_at < 0) return -1;
    if (copy_str(a->access_token, sizeof a->access_token, access_token)) return -1;
    a->expires_at = expires_at;
    a->obtained_at = 0;
    a->expired = false;
    return 0;
}

/* ---- when to refresh ----------------------------------------------------- */

/* Refresh AUTH_MARGIN_S before expiry, but never earlier than 10% of the
 * lifetime before it: a 5-minute token is refreshed after 4.5 minutes, not 4. */
static long long refresh_margin(const struct auth *a)
{
    if (a->obtained_at > 0 && a->expires_at > a->obtained_at) {
        long long tenth = (a->expires_at - a->obtained_at) / 10;
        if (tenth < AUTH_MARGIN_S) return tenth;
    }
    return AUTH_MARGIN_S;
}

bool auth_needs_refresh(const struct auth *a, long long now)
{
    if (a->mode != AUTH_OAUTH || a->in_flight || a->permanent_failure || !a->refresh_token[0])
        return false;
    if (now < a->next_attempt_at) return false;
    if (!a->access_token[0] || a->expired) return true;
    if (a->expires_at == 0) return false;
    return now >= a->expires_at - refresh_margin(a);
}

long long auth_next_refresh_at(const struct auth *a)
{
    if (a->mode != AUTH_OAUTH || a->in_flight || a->permanent_failure || !a->refresh_token[0])
        return AUTH_NEVER;
    if (!a->access_token[0] || a->expired) return a->next_attempt_at;
    if (a->expires_at == 0) return AUTH_NEVER;
    long long at = a->expires_at - refresh_margin(a);
    return at > a->next_attempt_at ? at : a->next_attempt_at;
}

void auth_refresh_begin(struct auth *a) { a->in_flight = true; }

bool auth_take_rotated(struct auth *a)
{
    bool r = a->rotated;
    a->rotated = false;
    return r;
}

bool auth_on_unauthorized(struct auth *a)
{
    if (a->mode != AUTH_OAUTH || a->expired) return false;
    a->expired = true;
    return !a->permanent_failure && a->refresh_token[0] != '\0';
}

int auth_header(const struct auth *a, char *buf, size_t len)
{
    if (!a->access_token[0] || !buf || len == 0) return -1;
    int n = snprintf(buf, len, "Authorization: Bearer %s", a->access_token);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* ---- request body -------------------------------------------------------- */

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends "&name=" (no '&' when first) and value percent-encoded: everything
 * but RFC 3986 unreserved characters becomes %XX, which every
 * application/x-www-form-urlencoded decoder accepts. out has room (sized by
 * the caller from encoded_len). */
static char *append_param(char *out, const char *name, const char *value, bool first)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!first) *out++ = '&';
    size_t nl = strlen(name);
    memcpy(out, name, nl);
    out += nl;
    *out++ = '=';
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (unreserved(*p)) {
            *out++ = (char)*p;
        } else {
            *out++ = '%';
            *out++ = hex[*p >> 4];
            *out++ = hex[*p & 15];
        }
    }
    *out = '\0';
    return out;
}

static size_t encoded_len(const char *name, const char *value)
{
    size_t n = strlen(name) + 2;  /* '&' and '=' */
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        n += unreserved(*p) ? 1 : 3;
    return n;
}

char *auth_refresh_body(const struct auth *a)
{
    if (a->mode != AUTH_OAUTH || !a->refresh_token[0]) return NULL;
    bool secret = a->client_secret[0] != '\0';
    size_t size = encoded_len("grant_type", "refresh_token") +
                  encoded_len("refresh_token", a->refresh_token) +
                  encoded_len("client_id", a->client_id) +
                  (secret ? encoded_len("client_secret", a->client_secret) : 0) + 1;
    char *body = malloc(size);
    if (!body) return NULL;
    char *p = append_param(body, "grant_type", "refresh_token", true);
    p = append_param(p, "refresh_token", a->refresh_token, false);
    p = append_param(p, "client_id", a->client_id, false);
    if (secret) append_param(p, "client_secret", a->client_secret, false);
    return body;
}

/* ---- JWT ----------------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decodes base64url (RFC 4648 section 5; '=' padding tolerated at the end)
 * into out. Returns the decoded length, or -1 on a bad character, an
 * impossible length, or when out (outcap bytes) is too small. */
static long b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap)
{
    while (inlen > 0 && in[inlen - 1] == '=') inlen--;
    if (inlen % 4 == 1) return -1;
    unsigned long acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < inlen; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = ((acc << 6) | (unsigned long)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= outcap) return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)n;
}

int auth_jwt_exp(const char *jwt, long long *exp)
{
    if (!jwt || !exp) return -1;
    size_t len = strnlen(jwt, AUTH_TOKEN_MAX);
    if (len >= AUTH_TOKEN_MAX) return -1;
    const char *dot1 = memchr(jwt, '.', len);
    if (!dot1 || dot1 == jwt) return -1;
    const char *payload = dot1 + 1;
    const char *dot2 = memchr(payload, '.', len - (size_t)(payload - jwt));
    if (!dot2 || dot2 == payload || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - jwt)))
        return -1;
    unsigned char buf[AUTH_TOKEN_MAX];
    long n = b64url_decode(payload, (size_t)(dot2 - payload), buf, sizeof buf);
    if (n <= 0) return -1;
    cJSON *claims = cJSON_ParseWithLength((const char *)buf, (size_t)n);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    int rc = -1;
    if (cJSON_IsObject(claims) && cJSON_IsNumber(e) && isfinite(e->valuedouble) &&
        e->valuedouble >= 1.0 && e->valuedouble <= JWT_EXP_MAX) {
        *exp = (long long)floor(e->valuedouble);  /* NumericDate may have a fraction */
        rc = 0;
    }
    cJSON_Delete(claims);
    return rc;
}

/* ---- token response ------------------------------------------------------ */

/* Counts a failed refresh and schedules the next attempt with exponential
 * backoff, so a broken token endpoint is not hammered by the main loop. */
static int fail(struct auth *a, int result, long long now)
{
    if (a->failures < 1000000) a->failures++;
    long long delay = AUTH_BACKOFF_MAX_S;
    if (a->failures <= 16) {
        delay = (long long)AUTH_BACKOFF_MIN_S << (a->failures - 1);
        if (delay > AUTH_BACKOFF_MAX_S) delay = AUTH_BACKOFF_MAX_S;
    }
    a->next_attempt_at = now + delay;
    if (result == AUTH_FATAL) a->permanent_failure = true;
    return result;
}

/* Copies an OAuth error code into out, keeping only the characters RFC 6749
 * allows there (%x20-21 / %x23-5B / %x5D-7E) minus space, bounded. */
static void safe_code(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    for (; in && *in && n + 1 < outlen && n < 64; in++) {
        unsigned char c = (unsigned char)*in;
        if (c > 0x20 && c < 0x7f && c != '"' && c != '\\') out[n++] = (char)c;
    }
    out[n] = '\0';
}

/* A non-2xx answer: RFC 6749 section 5.2 error object, if any. */
static int handle_error(struct auth *a, int status, const char *body, size_t len,
                        long long now, char *err, size_t errlen)
{
    char code[72] = "";
    cJSON *root = (body && len > 0) ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsObject(root) && cJSON_IsString(e)) safe_code(e->valuestring, code, sizeof code);
    cJSON_Delete(root);
    if ((status == 400 || status == 401) && strcmp(code, "invalid_grant") == 0) {
        snprintf(err, errlen,
                 "refresh token rejected (invalid_grant): re-authorise and set api.oauth.refresh_token");
        return fail(a, AUTH_FATAL, now);
    }
    if ((status == 400 || status == 401) && strcmp(code, "invalid_client") == 0) {
        snprintf(err, errlen, "client authentication failed (invalid_client): "
                 "check api.oauth.client_id and api.oauth.client_secret");
        return fail(a, AUTH_FATAL, now);
    }
    snprintf(err, errlen, "token endpoint returned HTTP %d%s%s%s", status,
             code[0] ? " (" : "", code, code[0] ? ")" : "");
    return fail(a, AUTH_RETRY, now);
}

/* The expiry of a new access token: expires_in if given, else the JWT exp
 * claim, else 0 (unknown). Returns 0, or -1 with err set. */
static int token_expiry(const cJSON *root, const char *access, long long now,
                        long long *expires_at, char *err, size_t errlen)
{
    const cJSON *ei = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    long long exp = 0;
    if (ei) {
        double d = cJSON_IsNumber(ei) ? ei->valuedouble : NAN;
        if (!isfinite(d) || d < 1 || d > AUTH_EXPIRES_MAX || floor(d) != d) {
            snprintf(err, errlen, "token response: expires_in is not an integer of 1..%d seconds",
                     AUTH_EXPIRES_MAX);
            return -1;
        }
        *expires_at = now + (long long)d;
        return 0;
    }
    if (auth_jwt_exp(access, &exp) != 0) {
        *expires_at = 0;
        return 0;
    }
    if (exp <= now) {
        snprintf(err, errlen, "token response: access token's exp claim is in the past "
                 "(is the clock right?)");
        return -1;
    }
    *expires_at = exp;
    return 0;
}

/* Validates a 2xx token response; fills the out-parameters (pointers into
 * root) only when everything is right. */
static int parse_success(const cJSON *root, long long now, const char **access,
                         const char **refresh, long long *expires_at, char *err, size_t errlen)
{
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "token response is not a JSON object");
        return -1;
    }
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(root, "token_type");
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(root, "refresh_token");
    if (!cJSON_IsString(at) || !access_token_ok(at->valuestring)) {
        snprintf(err, errlen, "token response: access_token is missing, not a string, "
                 "longer than %d bytes or has invalid characters", AUTH_TOKEN_MAX - 1);
        return -1;
    }
    if (tt && (!cJSON_IsString(tt) || strcasecmp(tt->valuestring, "Bearer") != 0)) {
        snprintf(err, errlen, "token response: token_type is not Bearer");
        return -1;
    }
    if (rt && (!cJSON_IsString(rt) || !refresh_token_ok(rt->valuestring))) {
        snprintf(err, errlen, "token response: refresh_token is not a string of 1..%d "
                 "printable characters", AUTH_TOKEN_MAX - 1);
        return -1;
    }
    if (token_expiry(root, at->valuestring, now, expires_at, err, errlen) != 0) return -1;
    *access = at->valuestring;
    *refresh = rt ? rt->valuestring : NULL;
    return 0;
}

int auth_handle_token_response(struct auth *a, int http_status, const char *body, size_t len,
                               long long now, char *err, size_t errlen)
{
    a->in_flight = false;
    if (http_status == 0) {
        snprintf(err, errlen, "token endpoint: no response");
        return fail(a, AUTH_RETRY, now);
    }
    if (len > AUTH_BODY_MAX) {
        snprintf(err, errlen, "token endpoint: response too large (%zu bytes, limit %d)",
                 len, AUTH_BODY_MAX);
        return fail(a, AUTH_RETRY, now);
    }
    if (http_status < 200 || http_status > 299)
        return handle_error(a, http_status, body, len, now, err, errlen);
    cJSON *root = (body && len > 0) ? cJSON_ParseWithLength(body, len) : NULL;
    const char *access = NULL, *refresh = NULL;
    long long expires_at = 0;
    if (parse_success(root, now, &access, &refresh, &expires_at, err, errlen) != 0) {
        cJSON_Delete(root);
        return fail(a, AUTH_RETRY, now);
    }
    snprintf(a->access_token, sizeof a->access_token, "%s", access);
    a->expires_at = expires_at;
    a->obtained_at = now;
    a->expired = false;
    a->failures = 0;
    a->next_attempt_at = 0;
    if (refresh && strcmp(refresh, a->refresh_token) != 0) {
        snprintf(a->refresh_token, sizeof a->refresh_token, "%s", refresh);
        a->rotated = true;
    }
    cJSON_Delete(root);
    return AUTH_OK;
}
