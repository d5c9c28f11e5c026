/* oauth.c - see oauth.h. */
#include "oauth.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <cjson/cJSON.h>

#define TOKEN_MAX  512
#define MAX_ISSUED 256

struct issued {
    char token[TOKEN_MAX];
    int64_t exp;
};

struct oauth {
    pthread_mutex_t lock;
    char static_token[TOKEN_MAX];
    bool static_revoked;
    char refresh[TOKEN_MAX];       /* "" = no refresh token accepted */
    int ttl;
    struct issued issued[MAX_ISSUED];
    size_t nissued;
    uint64_t counter;
};

struct oauth *oauth_new(const char *static_token, const char *refresh_token, int ttl)
{
    struct oauth *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    if (pthread_mutex_init(&o->lock, NULL) != 0) {
        free(o);
        return NULL;
    }
    snprintf(o->static_token, sizeof o->static_token, "%s", static_token ? static_token : "");
    snprintf(o->refresh, sizeof o->refresh, "%s", refresh_token ? refresh_token : "");
    o->ttl = ttl;
    return o;
}

void oauth_free(struct oauth *o)
{
    if (!o)
        return;
    pthread_mutex_destroy(&o->lock);
    free(o);
}

void oauth_set_ttl(struct oauth *o, int ttl)
{
    pthread_mutex_lock(&o->lock);
    o->ttl = ttl;
    pthread_mutex_unlock(&o->lock);
}

void oauth_revoke_access(struct oauth *o)
{
    pthread_mutex_lock(&o->lock);
    o->static_revoked = true;
    o->nissued = 0;
    pthread_mutex_unlock(&o->lock);
}

/* Constant-time-ish comparison of two NUL-terminated strings. */
static bool same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

enum oauth_auth oauth_check(struct oauth *o, const char *authorization, int64_t now)
{
    if (!authorization)
        return AUTH_MISSING;
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return AUTH_INVALID;
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    if (!*tok)
        return AUTH_INVALID;
    enum oauth_auth res = AUTH_INVALID;
    pthread_mutex_lock(&o->lock);
    if (!o->static_revoked && o->static_token[0] && same(tok, o->static_token)) {
        res = AUTH_OK;
    } else {
        for (size_t i = 0; i < o->nissued; i++) {
            if (same(tok, o->issued[i].token)) {
                res = now < o->issued[i].exp ? AUTH_OK : AUTH_EXPIRED;
                break;
            }
        }
    }
    pthread_mutex_unlock(&o->lock);
    return res;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes src[0..n) (form encoding: '+' is a space) into dst. Returns 0, or
 * -1 when malformed, containing a NUL, or too long. */
static int form_decode(const char *src, size_t n, char *dst, size_t dstlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(src[i + 1]), l = hexval(src[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (c == '\0' || o + 1 >= dstlen)
            return -1;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return 0;
}

int oauth_form_get(const char *body, size_t len, const char *key, char *val, size_t vallen)
{
    int found = 0;
    size_t i = 0;
    char name[64];
    while (i < len) {
        size_t j = i;
        while (j < len && body[j] != '&')
            j++;
        size_t eq = i;
        while (eq < j && body[eq] != '=')
            eq++;
        if (j > i) {
            if (form_decode(body + i, eq - i, name, sizeof name) == 0 && strcmp(name, key) == 0) {
                if (found)
                    return -1;
                const char *v = eq < j ? body + eq + 1 : body + j;
                size_t vl = eq < j ? j - eq - 1 : 0;
                if (form_decode(v, vl, val, vallen) != 0)
                    return -1;
                found = 1;
            }
        }
        i = j + 1;
    }
    return found;
}

static void b64url(const unsigned char *in, size_t n, char *out, size_t outlen)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < outlen; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = tbl[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = tbl[v & 63];
    }
    out[o] = '\0';
}

/* Random bytes from the kernel, or a counter-based fallback. */
static void random_bytes(struct oauth *o, unsigned char *buf, size_t n)
{
    if (getrandom(buf, n, 0) == (ssize_t)n)
        return;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)((o->counter * 131 + i * 17) & 0xff);
}

static void hex(const unsigned char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 2 < outlen; i++, o += 2)
        snprintf(out + o, 3, "%02x", in[i]);
    out[o] = '\0';
}

/* Mints an access token into o->issued and the refresh token into o->refresh.
 * Called with the lock held. */
static void mint(struct oauth *o, int64_t now, char *access, size_t alen)
{
    unsigned char rnd[32];
    char jti[40], sig[64], head[64], pay[256], json[200];
    o->counter++;
    random_bytes(o, rnd, 16);
    hex(rnd, 16, jti, sizeof jti);
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    b64url((const unsigned char *)header, sizeof header - 1, head, sizeof head);
    int jl = snprintf(json, sizeof json, "{\"sub\":\"toyota2mqtt-sim\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}",
                      (long long)now, (long long)(now + o->ttl), jti);
    b64url((const unsigned char *)json, (size_t)jl, pay, sizeof pay);
    random_bytes(o, rnd, 32);
    b64url(rnd, 32, sig, sizeof sig);
    snprintf(access, alen, "%s.%s.%s", head, pay, sig);

    size_t keep = 0;   /* drop expired ones, and the oldest when full */
    for (size_t i = 0; i < o->nissued; i++)
        if (o->issued[i].exp > now)
            o->issued[keep++] = o->issued[i];
    o->nissued = keep;
    if (o->nissued == MAX_ISSUED) {
        memmove(o->issued, o->issued + 1, (MAX_ISSUED - 1) * sizeof *o->issued);
        o->nissued--;
    }
    snprintf(o->issued[o->nissued].token, TOKEN_MAX, "%s", access);
    o->issued[o->nissued++].exp = now + o->ttl;

    random_bytes(o, rnd, 24);
    char rt[64];
    hex(rnd, 24, rt, sizeof rt);
    snprintf(o->refresh, sizeof o->refresh, "rt.%s", rt);
}

/* An OAuth error body; returns malloc'd JSON or NULL. */
static char *oauth_error(const char *error, const char *description)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char *s = NULL;
    if (cJSON_AddStringToObject(o, "error", error) &&
        cJSON_AddStringToObject(o, "error_description", description))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* True when the request names a client: client_id in the body or HTTP Basic. */
static bool has_client(const char *authorization, const char *body, size_t len)
{
    char id[256];
    if (oauth_form_get(body, len, "client_id", id, sizeof id) == 1 && id[0])
        return true;
    return authorization && strncasecmp(authorization, "Basic ", 6) == 0 && authorization[6];
}

int oauth_token_request(struct oauth *o, const char *content_type, const char *authorization,
                        const char *body, size_t len, int64_t now, char **out)
{
    char grant[64], rt[TOKEN_MAX];
    *out = NULL;
    if (!content_type || strncasecmp(content_type, "application/x-www-form-urlencoded", 33) != 0) {
        *out = oauth_error("invalid_request", "Content-Type must be application/x-www-form-urlencoded");
        return 400;
    }
    int g = oauth_form_get(body, len, "grant_type", grant, sizeof grant);
    int r = oauth_form_get(body, len, "refresh_token", rt, sizeof rt);
    if (g != 1 || r < 0) {
        *out = oauth_error("invalid_request", "grant_type missing or a parameter repeated or malformed");
        return 400;
    }
    if (strcmp(grant, "refresh_token") != 0) {
        *out = oauth_error("unsupported_grant_type", "only refresh_token is supported");
        return 400;
    }
    if (r != 1 || !rt[0]) {
        *out = oauth_error("invalid_request", "refresh_token is required");
        return 400;
    }
    if (!has_client(authorization, body, len)) {
        *out = oauth_error("invalid_request", "client_id is required");
        return 400;
    }
    pthread_mutex_lock(&o->lock);
    if (!o->refresh[0] || !same(rt, o->refresh)) {
        pthread_mutex_unlock(&o->lock);
        *out = oauth_error("invalid_grant", "refresh token is invalid, expired or already used");
        return 400;
    }
    char access[TOKEN_MAX], newrt[TOKEN_MAX];
    mint(o, now, access, sizeof access);
    snprintf(newrt, sizeof newrt, "%s", o->refresh);
    int ttl = o->ttl;
    pthread_mutex_unlock(&o->lock);

    cJSON *j = cJSON_CreateObject();
    if (!j)
        return 500;
    if (cJSON_AddStringToObject(j, "access_token", access) &&
        cJSON_AddStringToObject(j, "token_type", "Bearer") &&
        cJSON_AddNumberToObject(j, "expires_in", ttl) &&
        cJSON_AddStringToObject(j, "refresh_token", newrt))
        *out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return *out ? 200 : 500;
}
