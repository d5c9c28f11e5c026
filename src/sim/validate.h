/* validate.h - strict, pure validation of the simulator's request inputs
 * (JSON bodies of the write operations, getTrips query parameters, admin
 * bodies) against the OpenAPI spec. Every function returns 0, or -1 with err
 * set to a message that names the offending field. No I/O: safe on hostile
 * bytes and callable from tests and fuzzers.
 */
#ifndef SIM_VALIDATE_H
#define SIM_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VALIDATE_STR 128

enum remote_command {
    RC_LOCK, RC_UNLOCK, RC_HORN, RC_LIGHTS, RC_PANIC_ON, RC_PANIC_OFF, RC_TRUNK_OPEN
};

struct remote_req {
    enum remote_command command;
    int beeps;          /* 0 when absent */
};

struct climate_cmd_req {
    bool start;
    bool has_temp;
    double temp;
};

struct climate_settings_req {
    bool has_temp, has_fan, has_mode;
    double temp;
    int fan;
    int mode;           /* enum climate_mode order: auto, cool, heat, defrost */
};

struct refresh_req {
    char device_id[VALIDATE_STR], device_type[VALIDATE_STR];
    char guid[VALIDATE_STR], vin[VALIDATE_STR];
};

#define VALIDATE_ALIAS_CHARS 64   /* characters (code points), not bytes */

struct alias_req {
    char alias[VALIDATE_ALIAS_CHARS * 4 + 1];
    bool has_guid;
    char guid[VALIDATE_STR];
};

struct trips_req {
    int64_t from_day, to_day;
    int limit;
    long offset;
    bool include_route, include_summary;
};

struct notification_req {
    int type;           /* -1 when absent */
    int severity;       /* -1 when absent */
    bool has_title, has_message;
    char title[96];
    char message[256];
};

int validate_remote(const char *body, size_t len, struct remote_req *out, char *err, size_t errlen);
int validate_climate_command(const char *body, size_t len, struct climate_cmd_req *out, char *err,
                             size_t errlen);
int validate_climate_settings(const char *body, size_t len, struct climate_settings_req *out,
                              char *err, size_t errlen);
int validate_refresh(const char *body, size_t len, struct refresh_req *out, char *err, size_t errlen);
int validate_alias(const char *body, size_t len, struct alias_req *out, char *err, size_t errlen);
/* refreshElectricStatus has no body in the spec: an empty body or any JSON
 * object is accepted. */
int validate_electric_refresh(const char *body, size_t len, char *err, size_t errlen);
/* Admin: optional {type, severity, title, message}; an empty body is fine. */
int validate_notification(const char *body, size_t len, struct notification_req *out, char *err,
                          size_t errlen);

/* getTrips query values (NULL = parameter absent). */
int validate_trips(const char *from, const char *to, const char *limit, const char *offset,
                   const char *route, const char *summary, struct trips_req *out, char *err,
                   size_t errlen);
/* A boolean query parameter: "true" or "false", def when absent (NULL). */
int validate_bool_param(const char *name, const char *value, bool def, bool *out, char *err,
                        size_t errlen);

#endif
