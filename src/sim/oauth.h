/* oauth.h - bearer token checking and the OAuth 2.0 token endpoint
 * (RFC 6749 section 6, refresh_token grant) of the simulator. Thread-safe.
 *
 * The static --token is always valid (until revoked); each successful refresh
 * issues a JWT-looking access token valid for the configured TTL (wall-clock
 * seconds) and rotates the refresh token, invalidating the old one.
 */
#ifndef SIM_OAUTH_H
#define SIM_OAUTH_H

#include <stddef.h>
#include <stdint.h>

enum oauth_auth { AUTH_OK, AUTH_MISSING, AUTH_INVALID, AUTH_EXPIRED };

struct oauth;

/* refresh_token may be NULL (then every refresh fails with invalid_grant).
 * Returns NULL on failure; free with oauth_free(). */
struct oauth *oauth_new(const char *static_token, const char *refresh_token, int ttl);
void oauth_free(struct oauth *o);
void oauth_set_ttl(struct oauth *o, int ttl);
/* Makes the static token and every issued access token invalid. */
void oauth_revoke_access(struct oauth *o);

/* Checks an Authorization header value ("Bearer <token>", NULL if absent)
 * at wall-clock time now. */
enum oauth_auth oauth_check(struct oauth *o, const char *authorization, int64_t now);

/* Handles one token request: content_type and authorization are header
 * values (may be NULL), body the form-encoded request body. Returns the HTTP
 * status and sets *out to a malloc'd JSON body the caller frees (NULL on
 * allocation failure). */
int oauth_token_request(struct oauth *o, const char *content_type, const char *authorization,
                        const char *body, size_t len, int64_t now, char **out);

/* Decodes one application/x-www-form-urlencoded body and finds key. Pure.
 * Returns 1 and copies the decoded value into val when key occurs exactly
 * once, 0 when absent, -1 when repeated or malformed or too long. */
int oauth_form_get(const char *body, size_t len, const char *key, char *val, size_t vallen);

#endif
