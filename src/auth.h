/* auth.h - API authentication: a static bearer token, or OAuth2 access tokens
 * obtained with a refresh token (RFC 6749 section 6).
 *
 * A pure state machine: no I/O, no logging, no clock reads (the caller passes
 * `now`, epoch seconds). The caller (main loop, one thread) drives it:
 *
 *   if (auth_needs_refresh(a, now)) {
 *       char *body = auth_refresh_body(a);        POST to a->token_url with
 *       auth_refresh_begin(a);                    Content-Type: application/x-www-form-urlencoded
 *   }
 *   ... on the token endpoint's answer (status 0 = no answer):
 *   rc = auth_handle_token_response(a, status, body, len, now, err, sizeof err);
 *   if (auth_take_rotated(a)) -> store a->refresh_token in the state file and save at once
 *   if (rc == AUTH_FATAL) -> log err; the API cannot be used until re-authorisation
 *   ... API requests carry auth_header(); on a 401:
 *   if (auth_on_unauthorized(a)) -> retry the request once the token is refreshed
 *
 * Tokens never appear in err messages; never log the struct's buffers.
 */
#ifndef AUTH_H
#define AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TOKEN_MAX     4096        /* buffer size: tokens are at most 4095 bytes */
#define AUTH_STR_MAX       256         /* token_url, client_id */
#define AUTH_BODY_MAX      (64 * 1024) /* a larger token response is refused */
#define AUTH_EXPIRES_MAX   31536000    /* expires_in above one year is refused */
#define AUTH_MARGIN_S      60          /* refresh this long before expiry ... */
#define AUTH_BACKOFF_MIN_S 5           /* retry delay after the first failure, doubling ... */
#define AUTH_BACKOFF_MAX_S 300         /* ... up to this */

enum auth_mode { AUTH_STATIC = 0, AUTH_OAUTH };

/* auth_handle_token_response() results. */
enum auth_result {
    AUTH_OK = 0,       /* a new access token is in place */
    AUTH_RETRY = -1,   /* transient failure: auth_needs_refresh() says when to try again */
    AUTH_FATAL = -2    /* the refresh token or the client was rejected: needs a human */
};

struct auth {
    enum auth_mode mode;
    char access_token[AUTH_TOKEN_MAX];
    long long expires_at;              /* epoch s; 0 = unknown (then only a 401 triggers a refresh) */
    long long obtained_at;             /* epoch s the access token arrived; 0 = unknown */
    char refresh_token[AUTH_TOKEN_MAX];
    char token_url[AUTH_STR_MAX];
    char client_id[AUTH_STR_MAX];
    char client_secret[AUTH_TOKEN_MAX]; /* "" = public client */
    bool in_flight;                    /* a refresh request is outstanding */
    bool expired;                      /* the API rejected the access token (401) */
    bool rotated;                      /* the server issued a new refresh token: save it */
    bool permanent_failure;            /* invalid_grant / invalid_client */
    int failures;                      /* consecutive failed refreshes */
    long long next_attempt_at;         /* no refresh before this (backoff), epoch s */
};

/* Static token mode. Returns 0, or -1 when token is empty, has characters
 * that cannot go in a header, or is AUTH_TOKEN_MAX bytes or longer. */
int auth_init_static(struct auth *a, const char *token);

/* OAuth mode. token_url and client_id are required; client_secret may be ""
 * or NULL; refresh_token may be "" or NULL when the caller sets one later
 * with auth_set_refresh_token() (from the state file, which wins over the
 * configuration). Returns 0, or -1 when a value is missing or does not fit. */
int auth_init_oauth(struct auth *a, const char *token_url, const char *client_id,
                    const char *client_secret, const char *refresh_token);

/* Replaces the refresh token (clears a permanent failure: the operator
 * re-authorised). Returns 0, or -1 when it is empty or does not fit. */
int auth_set_refresh_token(struct auth *a, const char *refresh_token);

/* Restores a saved access token and its expiry (0 = unknown) in OAuth mode.
 * Returns 0, or -1 when it is not a valid token (a is then unchanged). */
int auth_set_access_token(struct auth *a, const char *access_token, long long expires_at);

/* True when, in OAuth mode, a refresh should start now: there is no usable
 * access token (none, rejected by a 401, or now >= expires_at minus a margin
 * of AUTH_MARGIN_S or 10% of the token's lifetime, whichever is smaller),
 * there is a refresh token, no refresh is in flight, no permanent failure,
 * and the backoff after failures has passed. */
bool auth_needs_refresh(const struct auth *a, long long now);

/* Epoch second from which auth_needs_refresh() becomes true if nothing else
 * happens (the caller sleeps until then), or AUTH_NEVER when it will not
 * without an event (static mode, a refresh in flight, a permanent failure, no
 * refresh token, or a token of unknown lifetime). */
#define AUTH_NEVER 0x7fffffffffffffffLL
long long auth_next_refresh_at(const struct auth *a);

/* The form-encoded refresh request body:
 * grant_type=refresh_token&refresh_token=...&client_id=...[&client_secret=...]
 * Returns a malloc'd string the caller frees, or NULL when not in OAuth mode,
 * there is no refresh token, or memory ran out. It holds secrets: never log it. */
char *auth_refresh_body(const struct auth *a);

/* Marks a refresh request as sent (auth_needs_refresh() is then false until
 * the response is handled). */
void auth_refresh_begin(struct auth *a);

/* Consumes the token endpoint's answer: http_status (0 when the transfer
 * failed without one) and body (len bytes, need not be NUL-terminated).
 * On success stores the access token and its expiry (expires_in, else the
 * JWT "exp" claim, else unknown) and a rotated refresh token (setting
 * a->rotated). Clears in_flight. Returns an enum auth_result; on failure err
 * holds a one-line reason without any secret. */
int auth_handle_token_response(struct auth *a, int http_status, const char *body, size_t len,
                               long long now, char *err, size_t errlen);

/* Returns a->rotated and clears it. */
bool auth_take_rotated(struct auth *a);

/* The API answered 401. In OAuth mode marks the current access token as
 * rejected so that the next auth_needs_refresh() is true, and returns true the
 * first time for this token (a retry after the refresh is worthwhile); false
 * for later 401s of the same token and always in static mode. */
bool auth_on_unauthorized(struct auth *a);

/* "Authorization: Bearer <token>" into buf. Returns 0, or -1 when there is
 * no access token or it does not fit. */
int auth_header(const struct auth *a, char *buf, size_t len);

/* The "exp" claim of a JWT (header.payload.signature, base64url), without any
 * signature check: only used to schedule a refresh. Returns 0 with *exp set,
 * or -1 when jwt is not a JWT or has no integral positive exp. */
int auth_jwt_exp(const char *jwt, long long *exp);

#endif
