/* config.h - the configuration file (libconfig syntax) -> struct config.
 *
 * Every key has a default; unknown keys, wrong types and out-of-range values
 * are errors that name the file, the line and the key. Secrets (api.token,
 * api.oauth.client_secret, api.oauth.refresh_token, mqtt.password) may also
 * come from "<key>_file" (the file's first line) or from the environment
 * (TOYOTA2MQTT_API_TOKEN, TOYOTA2MQTT_API_OAUTH_CLIENT_SECRET,
 * TOYOTA2MQTT_API_OAUTH_REFRESH_TOKEN, TOYOTA2MQTT_MQTT_PASSWORD), which wins.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "resource.h"

#define CONFIG_STR    256   /* URLs, ids, topics, paths */
#define CONFIG_SECRET 4096  /* tokens (JWTs are long) and passwords */
#define CONFIG_ERR    512

/* The commands of issue "Commands", as bits of config.commands.allow. */
enum command_id {
    CMD_LOCK = 0, CMD_UNLOCK, CMD_HORN, CMD_LIGHTS, CMD_PANIC_ON, CMD_PANIC_OFF,
    CMD_TRUNK_OPEN, CMD_CLIMATE_START, CMD_CLIMATE_STOP, CMD_CLIMATE_SETTINGS,
    CMD_REFRESH_STATUS, CMD_REFRESH_ELECTRIC, CMD_SET_ALIAS, CMD_COUNT
};

struct config {
    char path[CONFIG_STR];              /* the file it came from */
    char log_level[16];                 /* log_level: error|warn|info|debug (default info) */
    char state_file[CONFIG_STR];        /* state_file (default "" = no persistence) */

    struct {
        char base_url[CONFIG_STR];      /* api.base_url, no trailing '/' (required) */
        char token[CONFIG_SECRET];      /* api.token | api.token_file | env */
        int timeout_s;                  /* api.timeout_s, 1..300, default 20 */
        int max_connections;            /* api.max_connections, 1..64, default 4 */
        char device_id[CONFIG_STR];     /* api.device_id, default "toyota2mqtt" */
        char device_type[CONFIG_STR];   /* api.device_type, default "bridge" */
        long max_body_bytes;            /* api.max_body_bytes, 1 KiB..64 MiB, default 8 MiB */
        int daily_limit;                /* api.daily_limit, calls per vehicle per day, 0 = none (default 0) */
        int refresh_daily_limit;        /* api.refresh_daily_limit, refresh_status per vehicle per day, default 10 */
        struct {
            char token_url[CONFIG_STR];             /* api.oauth.token_url ("" = static token mode) */
            char client_id[CONFIG_STR];             /* api.oauth.client_id */
            char client_secret[CONFIG_SECRET];      /* api.oauth.client_secret (optional) */
            char refresh_token[CONFIG_SECRET];      /* api.oauth.refresh_token */
        } oauth;
    } api;

    struct {
        char url[CONFIG_STR];           /* mqtt.url, tcp://host:port or ssl://host:port (default tcp://127.0.0.1:1883) */
        char client_id[CONFIG_STR];     /* mqtt.client_id, default "toyota2mqtt" */
        char username[CONFIG_STR];      /* mqtt.username */
        char password[CONFIG_SECRET];   /* mqtt.password | mqtt.password_file | env */
        char base_topic[CONFIG_STR];    /* mqtt.base_topic, default "toyota2mqtt"; no wildcards, no leading/trailing '/' */
        int qos;                        /* mqtt.qos for state, 0..1, default 1 */
        int keepalive_s;                /* mqtt.keepalive_s, 5..3600, default 60 */
        bool field_topics;              /* mqtt.field_topics, default true */
        char ca_file[CONFIG_STR];       /* mqtt.tls.ca_file */
        char cert_file[CONFIG_STR];     /* mqtt.tls.cert_file */
        char key_file[CONFIG_STR];      /* mqtt.tls.key_file */
        bool tls_verify;                /* mqtt.tls.verify (hostname + chain), default true */
    } mqtt;

    struct {
        int vehicles;                   /* poll.vehicles, seconds, default 3600 */
        int interval[RES_COUNT];        /* poll.<resource name>, seconds, 10..604800; 0 disables */
    } poll;

    struct {
        int days;                       /* trips.days, 1..365, default 7 */
        bool include_route;             /* trips.include_route, default false */
    } trips;

    struct {
        bool enabled;                   /* homeassistant.enabled, default true */
        char discovery_prefix[CONFIG_STR]; /* homeassistant.discovery_prefix, default "homeassistant" */
    } homeassistant;

    struct {
        unsigned allow;                 /* commands.allow: list of names -> bits (1u << enum command_id);
                                           default: all but unlock, trunk_open, panic_on */
        char unlock_code[CONFIG_STR];   /* commands.unlock_code ("" = none) */
        int max_age_s;                  /* commands.max_age_s, 1..3600, default 60 */
        int confirm_delay_s;            /* commands.confirm_delay_s, 1..600, default 10 */
        int confirm_attempts;           /* commands.confirm_attempts, 1..20, default 4 */
    } commands;
};

/* Fills cfg with every default. */
void config_defaults(struct config *cfg);

/* Parses configuration text (no file I/O except *_file secrets and the
 * environment) into cfg, which config_defaults() must have prepared. filename
 * names the text in errors. Returns 0, or -1 with a one-line message in err,
 * e.g. "conf/x.conf:12: poll.status: must be an integer between 10 and 604800". */
int config_parse_string(struct config *cfg, const char *text, const char *filename,
                        char *err, size_t errlen);

/* Reads and parses a file: defaults, then config_parse_string(). Returns 0 or
 * -1 with err set ("FILE: cannot read: No such file or directory"). */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Command name ("lock") <-> id; -1 when unknown. */
int config_command_from_name(const char *name);
const char *config_command_name(enum command_id id);

/* Writes the configuration as a JSON object without any secret (secrets are
 * reported as booleans "token_set": true). Returns a malloc'd string the
 * caller frees, or NULL on allocation failure. */
char *config_to_json(const struct config *cfg);

#endif
