/* bridge.h - the bridge's context, shared by the modules that make up the
 * main loop (bridge.c: lifecycle and event dispatch; poller.c: polling and
 * state; cmdexec.c: commands; discovery.c: Home Assistant). Like mosquitto's
 * db struct: one context, passed explicitly, touched only on the main thread.
 */
#ifndef BRIDGE_H
#define BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "api.h"
#include "auth.h"
#include "config.h"
#include "resource.h"
#include "state.h"

struct http;
struct mqtt;
struct queue;
struct publish;
struct cJSON;
struct cmdexec;
struct discovery;

#define BRIDGE_TOPIC 512

/* One poll slot: a (vehicle, resource) pair with its own schedule. */
struct slot {
    double due;               /* monotonic seconds; 0 = now */
    bool inflight;
    bool absent;              /* 404 on an optional resource: the vehicle lacks it */
    bool fetched;             /* fetched successfully at least once */
    int failures;             /* consecutive failures, for backoff */
    bool error_logged;        /* the current failure streak was logged */
    bool auth_retry;          /* requeued after a 401: the next 401 is a failure */
    char last_error[160];     /* why the last attempt failed */
    double failing_since;     /* monotonic: the first failure of the streak */
};

struct vehicle {
    struct api_vehicle info;
    struct slot slot[RES_COUNT];
    bool online;              /* availability last published */
    int failures;             /* consecutive failed fetches of any resource, not
                                 counting a resource that fails while others work */
    double last_ok;           /* monotonic: the last successful fetch */
    struct cJSON *trips_acc;  /* pages of the trips window gathered so far */
    char trips_from[11], trips_to[11];
    bool discovery_dirty;     /* discovery must be (re)published */
    bool notifications_baselined; /* existing notifications taken as seen */
    char last_error[200];     /* why the last fetch failed (no secrets) */
    bool breaker_open;        /* failing: only one probe request at a time, rarely */
    int probes;               /* failed probes since the breaker opened */
    double probe_due;         /* monotonic: next probe while the breaker is open */
    int probe_res;            /* the resource being probed, -1 none */
    bool budget_paused;       /* api.daily_limit reached today: not polled */
    bool calls_published;     /* <base>/<VIN>/api_calls is up to date */
};

struct bridge {
    struct config *cfg;
    struct http *http;
    struct mqtt *mqtt;
    struct queue *queue;
    struct publish *pub;
    struct state state;
    struct auth auth;
    struct cmdexec *cmds;
    struct discovery *disc;
    double state_save_due;
    double watchdog_fed;      /* monotonic time of the last WATCHDOG=1 */
    double watchdog_every;    /* seconds between WATCHDOG=1: 1, or a quarter of WatchdogSec */    /* monotonic; a dirty state is saved by then */

    struct vehicle *vehicles;
    size_t nvehicles;
    double vehicles_due;
    bool vehicles_inflight;
    bool vehicles_loaded;     /* the account's list has been read once */
    int vehicles_failures;
    bool vehicles_auth_retry; /* the list was requeued after a 401 */
    char vehicles_error[200]; /* why the last vehicle list request failed */

    int sigfd;
    bool stop;
    bool reload;
    bool once;                /* --once: poll everything once and exit */
    int once_errors;
    bool mqtt_up;

    long api_calls_today;
    char api_calls_day[11];
    time_t last_success;
    char last_error[256];
    time_t last_error_at;
    bool stats_dirty;

    double api_pause_until;   /* monotonic: the API said 429, wait until then */
    unsigned auth_gen;        /* bumped by every renewal: tells stale 401s apart */
    bool auth_failed;         /* the API rejected our (renewed) token */
    char auth_error[256];     /* why the token could not be renewed (no secrets) */
    char problem[320];        /* what <base>/bridge/error says ("" = nothing) */
    char problem_key[64];     /* which condition it is: "at" stays while it holds */
    time_t problem_at;
    bool problem_published;
};

/* Monotonic seconds. */
double bridge_now(void);

/* "<base>/<vin>/<suffix>" (suffix may be NULL) into buf. Returns 0, or -1
 * when it does not fit. */
int bridge_topic(const struct bridge *b, char *buf, size_t len, const char *vin,
                 const char *suffix);

/* Finds a vehicle of the account by VIN, or NULL. */
struct vehicle *bridge_vehicle(struct bridge *b, const char *vin);

/* Records a failure for the bridge's diagnostics (last error). */
void bridge_note_error(struct bridge *b, const char *vin, const char *res, const char *msg);
void bridge_note_success(struct bridge *b);

/* Today's date (UTC, YYYY-MM-DD), the day API calls are counted for; when
 * it changes the counts start again. */
const char *bridge_today(struct bridge *b);

/* Counts one API call in bridge/stats. Calls for a vehicle should use
 * bridge_count_vehicle_call() instead, which also counts them per vehicle. */
void bridge_count_call(struct bridge *b);

/* Counts one API call for the vehicle vin (NULL: the account's), today (UTC),
 * persisted in the state file; is_refresh for a refresh_status command. */
void bridge_count_vehicle_call(struct bridge *b, const char *vin, bool is_refresh);

/* False when vehicle v spent its api.daily_limit today (UTC). */
bool bridge_budget_ok(struct bridge *b, const struct vehicle *v);

/* False when vehicle v spent its api.refresh_daily_limit of refresh_status
 * commands today (UTC): the command must fail with that reason. */
bool bridge_may_refresh(struct bridge *b, const struct vehicle *v);

/* The API answered 429: no call until Retry-After (retry_after_s, -1 when
 * absent) has passed. */
void bridge_rate_limited(struct bridge *b, long retry_after_s);

/* True when a rejected access token can be renewed (OAuth with a usable
 * refresh token): a request that got a 401 should wait for bridge_may_call()
 * and go again, rather than fail. */
bool bridge_auth_renewable(const struct bridge *b);

/* Monotonic time from which API calls may start again (0: now), INFINITY
 * while an event (a token) is awaited. Ignores per-vehicle budgets. */
double bridge_calls_resume_at(const struct bridge *b);

/* "Authorization: Bearer ..." for the current access token, into buf. */
void bridge_auth_header(struct bridge *b, char *buf, size_t len);

/* Called on a 401: returns true when a renewed token makes a retry
 * worthwhile (OAuth mode, first 401 for this token). */
bool bridge_unauthorized(struct bridge *b);

/* False while API calls must wait: the token is being renewed, the API asked
 * to wait (429 Retry-After), or the daily budget (api.daily_limit) of vehicle v
 * is spent (v NULL: account-wide conditions only). */
bool bridge_may_call(struct bridge *b, const struct vehicle *v);

/* bridge_run()'s status when SIGHUP asked for the configuration to be
 * reloaded: main re-reads the file and runs the bridge again. */
#define BRIDGE_RELOAD 100

/* Runs the bridge with cfg until a signal stops it (or, with once, until
 * everything was polled once). Returns the process exit status, or
 * BRIDGE_RELOAD. */
int bridge_run(struct config *cfg, bool once);

#endif
