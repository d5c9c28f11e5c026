/* fleet.h - the simulator's deterministic model of one account's vehicles and
 * how they evolve with (simulated) time.
 *
 * Everything is derived from a 64-bit seed: the same seed and the same start
 * time give the same VINs and the same initial data. Time moves lazily: each
 * request first calls fleet_advance(now), which replays every event (drive
 * start/end, charge complete, queued command) up to now. The "views" (what
 * the API reports for status, location, electric, climate) only change, and
 * only take a new timestamp, when a reported value changes, so an unchanged
 * resource renders to byte-identical JSON.
 *
 * Not thread-safe: the caller (handlers) holds one mutex around every call.
 */
#ifndef SIM_FLEET_H
#define SIM_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define FLEET_VIN_LEN   17
#define FLEET_ALIAS_MAX 64     /* characters; up to 4 bytes each */
#define FLEET_TEXT      96
#define FLEET_MSG       256
#define FLEET_PLACES    5
#define FLEET_PENDING   16
#define FLEET_WARNINGS  4
#define FLEET_SERVICE   12
#define FLEET_MAX_TRIPS 2000   /* oldest trips are dropped beyond this */
#define FLEET_MAX_NTF   500    /* oldest notifications are dropped beyond this */
#define FLEET_MAX_VEHICLES 1000

enum powertrain { PT_PETROL, PT_HEV, PT_PHEV, PT_BEV };
/* parked: never moves; commuter: drives between its places with stops of
 * 10-60 minutes; rideshare: the same with stops of 20-50 seconds, so its
 * state changes between any two polls a minute apart (vehicle 1 has it);
 * charging: plugged in and charging at start. */
enum role { ROLE_PARKED, ROLE_COMMUTER, ROLE_CHARGING, ROLE_RIDESHARE };
enum charge_state { CHG_NOT_CHARGING, CHG_CHARGING, CHG_FULLY_CHARGED, CHG_PLUGGED_IN };
enum ntf_type { NTF_ALERT, NTF_MESSAGE, NTF_RECALL, NTF_MAINTENANCE, NTF_SERVICE, NTF_TYPE_COUNT };
enum severity { SEV_INFO, SEV_WARNING, SEV_CRITICAL, SEV_COUNT };
enum climate_mode { CM_AUTO, CM_COOL, CM_HEAT, CM_DEFROST, CM_COUNT };
enum health_status { HS_GOOD, HS_WARNING, HS_CRITICAL };
enum oil_level { OIL_OK, OIL_LOW, OIL_CRITICALLY_LOW };
enum door { DOOR_FL, DOOR_FR, DOOR_RL, DOOR_RR, DOOR_TRUNK, DOOR_COUNT };
enum window_state { WIN_CLOSED, WIN_OPEN, WIN_VENTING };
/* Commands whose effect is queued (see fleet_command). */
enum fleet_cmd {
    CMD_LOCK, CMD_UNLOCK, CMD_TRUNK_OPEN, CMD_CLIMATE_START, CMD_CLIMATE_STOP,
    CMD_REFRESH_STATUS, CMD_REFRESH_ELECTRIC
};

struct place {
    double lat, lon;
    char address[FLEET_TEXT];
};

struct trip {
    char id[UTIL_UUID_LEN];
    int64_t start, end;
    double miles, avg_mph, max_mph;
    int from, to;              /* indexes into vehicle.places */
    uint64_t route_seed;       /* the route is generated from it on demand */
};

struct notification {
    char id[UTIL_UUID_LEN];
    enum ntf_type type;
    enum severity severity;
    char title[FLEET_TEXT];
    char message[FLEET_MSG];
    bool read;
    int64_t created;
};

struct service_record {
    char id[UTIL_UUID_LEN];
    char category[48];
    char description[FLEET_TEXT];
    int64_t date;
    int mileage;
    char dealer_code[8];
    char dealer_name[64];
};

struct warning_light {
    char name[48];
    enum severity severity;
    char description[FLEET_TEXT];
};

struct pending_cmd {
    enum fleet_cmd cmd;
    double temp;
    bool has_temp;
    int64_t at;
};

/* What getVehicleStatus reports. */
struct status_view {
    bool ignition_on;
    bool locked;
    bool door_open[DOOR_COUNT];
    enum window_state window[2];   /* front left, front right */
    int64_t updated;
};

struct location_view {
    double lat, lon;
    bool parked;
    int64_t ts;
};

struct electric_view {
    int battery;
    double battery_range;
    int fuel;                  /* -1 for BEVs */
    double fuel_range;
    double total_range;
    enum charge_state chg;
    bool plugged;
    int64_t est_complete;      /* 0 unless charging */
    int64_t updated;
};

struct climate_view {
    bool running;
    double temp;
    int fan;
    enum climate_mode mode;
    int64_t updated;
};

struct vehicle {
    uint64_t index;            /* position in the deterministic sequence */
    char vin[FLEET_VIN_LEN + 1];
    char alias[FLEET_ALIAS_MAX * 4 + 1];   /* UTF-8; "" = no alias */
    const char *make, *model;
    char trim[32];
    char color[48];
    char guid[UTIL_UUID_LEN];
    int year;
    bool connected;
    int64_t last_connected;
    enum powertrain pt;
    enum role role;

    double ev_range_full;      /* miles at 100 % battery (HEV: about 1) */
    double fuel_range_full;    /* miles on a full tank (0 for BEV) */
    double charge_rate;        /* % per minute while charging */

    struct place places[FLEET_PLACES];
    int at_place;

    /* dynamics */
    struct rng rng;
    int64_t t;                 /* evolved up to this sim time */
    bool driving;
    int drive_to;
    int64_t drive_start, drive_end, next_drive;
    double drive_miles, drive_avg, drive_max;
    double battery, fuel;      /* continuous, percent */
    bool charging, plugged;
    int64_t charge_full_at;
    struct pending_cmd pending[FLEET_PENDING];
    size_t npending;

    /* reported views */
    struct status_view st;
    struct location_view loc;
    struct electric_view el;
    struct climate_view cl;

    /* health (static) */
    enum health_status health;
    enum oil_level oil;
    struct warning_light warnings[FLEET_WARNINGS];
    size_t nwarnings;
    bool maintenance;
    int64_t health_reported;

    struct trip *trips;        /* chronological (oldest first) */
    size_t ntrips, trips_cap;
    struct notification *ntf;  /* chronological (oldest first) */
    size_t nntf, ntf_cap;
    struct service_record svc[FLEET_SERVICE];
    size_t nsvc;
};

struct fleet {
    uint64_t seed;
    char account_guid[UTIL_UUID_LEN];
    struct vehicle **v;
    size_t n, cap;
    uint64_t next_index;
    struct rng rng;            /* notifications added at run time */
};

/* Creates a fleet of n vehicles for seed, with sim time now as "the present".
 * Returns NULL on allocation failure; free with fleet_free(). */
struct fleet *fleet_new(uint64_t seed, int64_t now, size_t n);
void fleet_free(struct fleet *f);

/* Adds the next vehicle of the deterministic sequence. Returns it (owned by
 * the fleet), or NULL on allocation failure or when the fleet is full. */
struct vehicle *fleet_add(struct fleet *f, int64_t now);
/* Removes and frees the vehicle with this VIN. Returns 0, or -1 if unknown. */
int fleet_remove(struct fleet *f, const char *vin);
struct vehicle *fleet_find(struct fleet *f, const char *vin);

/* Brings every vehicle's state forward to sim time now. */
void fleet_advance(struct fleet *f, int64_t now);

/* Queues cmd for v, to take effect at sim time at (call fleet_advance after
 * to apply due ones). temp is the climate target for CMD_CLIMATE_START when
 * has_temp. When the queue is full the oldest command is applied at once. */
void fleet_command(struct vehicle *v, enum fleet_cmd cmd, double temp, bool has_temp, int64_t at);

/* Immediate setting changes (their responses show the new state). */
void fleet_set_alias(struct vehicle *v, const char *alias);
void fleet_set_climate(struct vehicle *v, const double *temp, const int *fan,
                       const enum climate_mode *mode, int64_t now);

/* Adds an unread notification; type/severity < 0 pick one; title/message
 * NULL pick a stock text. Returns it (owned by v) or NULL on allocation
 * failure. */
struct notification *fleet_add_notification(struct fleet *f, struct vehicle *v, int type,
                                             int severity, const char *title,
                                             const char *message, int64_t now);

/* The ISO 3779 check digit ('0'..'9' or 'X') of a 17-character VIN, or 0
 * when a character is outside the VIN alphabet. */
char fleet_vin_check_digit(const char *vin);

/* Route points of a trip: fills up to max points (lat, lon, ts) and returns
 * how many. Deterministic from the trip. */
size_t fleet_trip_route(const struct vehicle *v, const struct trip *tr, double *lat,
                        double *lon, int64_t *ts, size_t max);

const char *fleet_powertrain_name(enum powertrain pt);
const char *fleet_role_name(enum role r);

#endif
