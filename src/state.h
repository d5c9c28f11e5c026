/* state.h - the state file: what must survive a restart.
 *
 * Holds the OAuth refresh token, the last access token and its expiry, and per
 * vehicle (VIN) the notification ids already announced (the most recent
 * STATE_SEEN_MAX) and the API calls made per day (the most recent
 * STATE_CALL_DAYS days).
 *
 * On disk it is one JSON object:
 *   {"format":"toyota2mqtt-state","version":1,
 *    "oauth":{"refresh_token":"...","access_token":"...","access_expires_at":1764220000,
 *             "configured_refresh_token":"..."},   (the configuration's token the others descend from)
 *    "vehicles":{"JT...":{"seen":["id1","id2"],            (oldest first)
 *                         "calls":{"2026-11-27":{"calls":12,"refresh_status":1}}}}}
 *
 * state_save() is atomic (temp file in the same directory, fsync, rename,
 * fsync of the directory) and always leaves mode 0600: a kill -9 at any moment
 * leaves the old or the new file. state_load() refuses (returns -1 with a
 * one-line reason naming the file) anything it cannot read back exactly: the
 * caller must then refuse to start rather than lose the refresh token.
 *
 * Single-threaded: a struct state belongs to the main loop.
 */
#ifndef STATE_H
#define STATE_H

#include <stdbool.h>
#include <stddef.h>

#define STATE_FORMAT      "toyota2mqtt-state"
#define STATE_VERSION     1
#define STATE_TOKEN_MAX   4096              /* buffer size: tokens are at most 4095 bytes */
#define STATE_VIN_MAX     17                /* VIN: 1..17 characters [A-Za-z0-9] */
#define STATE_ID_MAX      256               /* notification id: 1..255 bytes, no NUL */
#define STATE_SEEN_MAX    1000              /* notification ids kept per VIN */
#define STATE_CALL_DAYS   8                 /* daily counters kept per VIN */
#define STATE_VEHICLES_MAX 256              /* VINs in one state */
#define STATE_FILE_MAX    (64L * 1024 * 1024) /* a larger file is refused */
#define STATE_ERR         512               /* a good size for err buffers */

struct state_day {
    char date[11];             /* "YYYY-MM-DD" */
    long calls;                /* every API call for the VIN that day */
    long refresh_calls;        /* of which refresh_status (the scarce ones) */
};

struct state_vehicle {
    char vin[STATE_VIN_MAX + 1];
    char **seen;               /* ring of malloc'd ids, capacity STATE_SEEN_MAX */
    size_t seen_head;          /* index of the oldest id */
    size_t seen_count;
    struct state_day days[STATE_CALL_DAYS];
    size_t day_count;
};

/* Treat the members as private: use the functions below. */
struct state {
    char refresh_token[STATE_TOKEN_MAX];
    char access_token[STATE_TOKEN_MAX];
    long long access_expires_at;   /* epoch seconds, 0 = unknown */
    char configured_refresh_token[STATE_TOKEN_MAX]; /* "" = not recorded */
    struct state_vehicle *vehicles;
    size_t vehicle_count;
    size_t vehicle_cap;
    bool dirty;                    /* changed since the last load/save */
};

/* An empty state (no tokens, no vehicles, not dirty). */
void state_init(struct state *st);

/* Frees everything st owns and leaves it empty (state_init'ed). */
void state_free(struct state *st);

/* Replaces st with the state described by buf (len bytes, need not be
 * NUL-terminated). Pure: no I/O. On error returns -1, leaves st unchanged and
 * writes a one-line reason (without any file name) to err. */
int state_parse(struct state *st, const char *buf, size_t len, char *err, size_t errlen);

/* The state as JSON text. Returns a malloc'd NUL-terminated string the caller
 * frees, or NULL on allocation failure. Tokens are in it: never log it. */
char *state_serialize(const struct state *st);

/* Loads path into st (replacing its content). path NULL or "" (no
 * persistence) or a missing file gives an empty state and 0. After a
 * successful load, stale "<path>.tmp.<pid>" files of dead processes are
 * removed and a mode looser than 0600 is tightened (with a warning). Returns
 * -1 with err set to "state file PATH: reason" when the file cannot be read,
 * is corrupt, or is not a version-1 toyota2mqtt state file; st and the file
 * are then left as they were. */
int state_load(struct state *st, const char *path, char *err, size_t errlen);

/* Writes st to path atomically with mode 0600 and clears the dirty flag.
 * path NULL or "" only clears the flag. Returns 0, or -1 with err set to
 * "state file PATH: reason": the old file is then untouched, except when the
 * reason starts with "saved, but" (the directory could not be fsynced); the
 * flag stays set either way so a later save retries. */
int state_save(struct state *st, const char *path, char *err, size_t errlen);

/* True when st changed since it was loaded or saved. */
bool state_dirty(const struct state *st);

/* Tokens ("" when none). The pointers stay valid until the next change. */
const char *state_refresh_token(const struct state *st);
const char *state_access_token(const struct state *st);
long long state_access_expires_at(const struct state *st);

/* Stores the tokens (NULL means ""); marks st dirty only when something
 * changed. Returns -1 (st unchanged) when a token is STATE_TOKEN_MAX bytes or
 * longer or expires_at is negative. */
int state_set_tokens(struct state *st, const char *refresh_token,
                     const char *access_token, long long expires_at);

/* The configuration's refresh token that the saved tokens descend from ("" =
 * not recorded). When the configuration names another one, the operator
 * re-authorised: the saved tokens are stale and the configured one wins. */
const char *state_configured_refresh_token(const struct state *st);

/* Records it (NULL means ""); marks st dirty when it changed. Returns -1 (st
 * unchanged) when it is STATE_TOKEN_MAX bytes or longer. */
int state_set_configured_refresh_token(struct state *st, const char *refresh_token);

/* True when notification id was seen for vin. */
bool state_seen_has(const struct state *st, const char *vin, const char *id);

/* Records id as seen for vin, forgetting the oldest id beyond STATE_SEEN_MAX.
 * Returns 1 when added (st dirty), 0 when already there, -1 when vin or id is
 * invalid, there are too many VINs, or memory ran out. */
int state_seen_add(struct state *st, const char *vin, const char *id);

/* Number of ids remembered for vin. */
size_t state_seen_count(const struct state *st, const char *vin);

/* Counts one API call for vin on date ("YYYY-MM-DD", the caller's day
 * boundary), and one refresh_status call too when is_refresh. Only the
 * STATE_CALL_DAYS most recent dates are kept. Returns 0 or -1 (invalid
 * vin/date, too many VINs, out of memory). */
int state_calls_add(struct state *st, const char *vin, const char *date, bool is_refresh);

/* The counters of vin on date into *calls and *refresh_calls (either may be
 * NULL); 0 and 0 when nothing was counted. */
void state_calls_get(const struct state *st, const char *vin, const char *date,
                     long *calls, long *refresh_calls);

/* The calls of every VIN on date. */
long state_calls_total(const struct state *st, const char *date);

#endif
