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
};

struct vehicle {
    struct api_vehicle info;
    struct slot slot[RES_COUNT];
    bool online;              /* availability last published */
    int failures;             /* consecutive failed fetches of any resource */
    struct cJSON *trips_acc;  /* pages of the trips window gathered so far */
    int trips_total;
    char trips_from[11], trips_to[11];
    bool discovery_dirty;     /* discovery must be (re)published */
    bool discovery_sent;      /* discovery published for this vehicle */
    bool notifications_baselined; /* existing notifications taken as seen */
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
    double state_save_due;    /* monotonic; a dirty state is saved by then */

    struct vehicle *vehicles;
    size_t nvehicles;
    double vehicles_due;
    bool vehicles_inflight;
    bool vehicles_loaded;     /* the account's list has been read once */
    int vehicles_failures;

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
void bridge_count_call(struct bridge *b);

/* "Authorization: Bearer ..." for the current access token, into buf. */
void bridge_auth_header(struct bridge *b, char *buf, size_t len);

/* Called on a 401: returns true when a renewed token makes a retry
 * worthwhile (OAuth mode, first 401 for this token). */
bool bridge_unauthorized(struct bridge *b);

/* False while API calls must wait: the token is being renewed, or the daily
 * budget (api.daily_limit) of vehicle v (or of every vehicle, v NULL) is
 * spent. */
bool bridge_may_call(struct bridge *b, const struct vehicle *v);

/* bridge_run()'s status when SIGHUP asked for the configuration to be
 * reloaded: main re-reads the file and runs the bridge again. */
#define BRIDGE_RELOAD 100

/* Runs the bridge with cfg until a signal stops it (or, with once, until
 * everything was polled once). Returns the process exit status, or
 * BRIDGE_RELOAD. */
int bridge_run(struct config *cfg, bool once);

#endif
