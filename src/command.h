/* command.h - MQTT commands -> validated, authorised plans of API calls.
 *
 * Pure (no I/O): the MQTT thread hands over a topic suffix, the raw payload
 * bytes and the retained flag; this module either returns a validated
 * struct command_req or a one-line error, and turns a request into the exact
 * API calls (method, path, JSON body) the spec defines. Nothing here ever
 * fires on a retained message, an unknown field, a value out of range, a
 * command that commands.allow does not list, or a missing/wrong unlock code.
 *
 * Topics (below "<base>/<VIN>/"), see /work/briefs/topics.md:
 *   command                  {"command":NAME, ...args, "id"?:string, "code"?:string}
 *   lock/set                 LOCK | UNLOCK | {"action":"LOCK"|"UNLOCK","code"?:string,"id"?:string}
 *   climate/mode/set         off | auto | cool | heat
 *   climate/preset/set       defrost | none
 *   climate/temperature/set  60..85 (°F, decimal number)
 *   climate/fan/set          1..5
 *   alias/set                1..64 bytes of UTF-8 text without control characters
 */
#ifndef COMMAND_H
#define COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"
#include "config.h"

#define COMMAND_MAX_PAYLOAD 4096
#define COMMAND_ID_MAX      64     /* bytes of the caller's "id" */
#define COMMAND_ALIAS_MAX   64     /* bytes of an alias */
#define COMMAND_TEMP_MIN    60.0   /* °F */
#define COMMAND_TEMP_MAX    85.0
#define COMMAND_FAN_MIN     1
#define COMMAND_FAN_MAX     5
#define COMMAND_BEEPS_MIN   1
#define COMMAND_BEEPS_MAX   3
#define COMMAND_ERR         256    /* a comfortable size for err buffers */

/* A validated command. cmd is CMD_COUNT while the command is not (yet) known,
 * e.g. in the request that command_parse() fills before failing. */
struct command_req {
    enum command_id cmd;
    char id[COMMAND_ID_MAX + 1];   /* optional caller id, echoed in the result ("" if none) */
    bool has_temperature;
    double temperature;            /* °F, 60..85 (climate_start, climate_settings) */
    bool has_fan_speed;
    int fan_speed;                 /* 1..5 (climate_settings) */
    char mode[16];                 /* "" or auto|cool|heat|defrost (climate_settings) */
    int beeps;                     /* horn: 1..3, 0 = not given */
    char alias[COMMAND_ALIAS_MAX + 1]; /* set_alias */
    bool start_after_settings;     /* climate_settings then climate_start (mode/preset topics) */
};

/* What the configuration permits: allow is a mask of 1u << enum command_id
 * (config.commands.allow); unlock_code is "" or NULL when none is required. */
struct command_policy {
    unsigned allow;
    const char *unlock_code;
};

/* Parses and authorises one MQTT command. suffix is the topic after
 * "<base>/<VIN>/" (see the list above); payload is len bytes, not
 * NUL-terminated (may be NULL when len is 0). Returns 0 with out filled, or -1
 * with a one-line error in err (never containing the unlock code); on error
 * out->cmd and out->id are set as far as they were understood, for the
 * result topic. */
int command_parse(const char *suffix, const char *payload, size_t len, bool retained,
                  const struct command_policy *pol, struct command_req *out,
                  char *err, size_t errlen);

/* One API call of a plan: path is below the base URL. */
struct command_call {
    const char *method;            /* "POST" or "PUT" (static string) */
    char path[256];
    char *body;                    /* malloc'd JSON text, or NULL for no body */
};

#define COMMAND_MAX_CALLS 2

/* Builds the API calls of req for vehicle v, in order (climate settings
 * before the start that follows them). device_id and device_type feed
 * refresh_status. Returns the number of calls (1 or 2) whose bodies the caller
 * frees with command_calls_free(), or -1 with err set (invalid request, VIN
 * not valid, refresh_status without a vehicle guid, allocation failure), in
 * which case nothing needs freeing. */
int command_plan(const struct command_req *req, const struct api_vehicle *v,
                 const char *device_id, const char *device_type,
                 struct command_call calls[COMMAND_MAX_CALLS], char *err, size_t errlen);

/* Frees the bodies of n calls from command_plan() and clears them. */
void command_calls_free(struct command_call *calls, int n);

/* The result topic's payload:
 *   {"id":str|null,"command":str|null,"ok":bool,"requestId":str|null,
 *    "returnCode":str|null,"status":str|null,"error":str|null,"confirmed":bool|null}
 * req may be NULL (nothing understood); res may be NULL (no API answer);
 * error NULL or "" means none; confirmed is -1 (not known yet -> null), 0 or 1.
 * Returns a malloc'd string the caller frees, or NULL on allocation failure. */
char *command_result_json(const struct command_req *req, bool ok,
                          const struct api_result *res, const char *error,
                          int confirmed);

/* Which resources a command changes and that are worth re-polling to confirm
 * it: a mask of 1u << enum resource (0 for horn, lights, panic). */
unsigned command_affects(enum command_id cmd);

/* "lock", "climate_start", ...; NULL when cmd is not a command. */
const char *command_name(enum command_id cmd);

/* Name -> command; -1 when unknown (case-sensitive). */
int command_from_name(const char *name);

#endif
