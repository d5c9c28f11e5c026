/* fields.h - every field of every resource, described once.
 *
 * One row per field: where it lives (resource, derived sub-resource, JSON
 * path), its key (snake_case: the per-field topic <base>/<VIN>/<resource>/<key>,
 * the unique_id suffix t2m_<VIN>_<key> and the object_id <vin>_<key>), and
 * how Home Assistant shows it (platform, name, device class, unit, state
 * class, icon, category, enum options, on/off values, templates).
 *
 * Derived sub-resources (<base>/<VIN>/<resource>/<sub>) are small JSON
 * objects computed from a resource so that templates stay plain lookups:
 *   health/warnings         {"count":N,"lights":[...warningLights...]}
 *   trips/last              the newest trip object (by startTime), {} if none
 *   trips/summary           {"count":N,"total":T?,"distanceMiles":D,"durationMinutes":M}
 *   notifications/latest    the newest notification (by createdAt), {} if none
 *   service_history/last    the newest record (by serviceDate) + "count":N
 *
 * Templates use a small Jinja subset (see tests/integration/jinja_mini.py):
 * value_json.get('k'[, default]) chains, dict/list/string/number literals,
 * .get on dict literals, x[:N] slices, `a if c else b`, and/or/not,
 * comparisons, `is [not] defined|none`, filters tojson/length/default.
 * Everything here is pure; derive and flatten are safe on hostile JSON.
 */
#ifndef FIELDS_H
#define FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "resource.h"

enum fields_platform {
    FP_NONE = 0,          /* no entity: a per-field topic / attribute only */
    FP_SENSOR,
    FP_BINARY_SENSOR,
    FP_DEVICE_TRACKER,
    FP_EVENT,
};

#define FIELDS_MAX_OPTIONS 8
#define FIELDS_MAX_ONOFF   4

struct field {
    enum resource res;
    const char *sub;          /* derived sub-resource ("last"), "event" (the
                                 bridge's event topic), or NULL: the resource */
    const char *path;         /* "doorStatus.frontLeft" within it; NULL: none */
    const char *key;          /* "door_front_left" */
    enum fields_platform platform;
    const char *name;         /* "Front left door" */
    const char *device_class; /* NULL when none */
    const char *unit;
    const char *state_class;
    const char *icon;         /* only where no device class gives one */
    bool diagnostic;          /* entity_category diagnostic */
    bool enabled_off;         /* enabled_by_default false */
    /* Enum sensor options, or event types; NULL-terminated. */
    const char *options[FIELDS_MAX_OPTIONS];
    /* Binary sensors: the raw values (Jinja literals: 'open', true) that
     * mean ON and OFF; anything else renders None (unknown). */
    const char *on[FIELDS_MAX_ONOFF];
    const char *off[FIELDS_MAX_ONOFF];
    bool flat_bool;           /* per-field topic carries true/false from on/off,
                                 not the raw value (a derived boolean) */
    const char *value_template; /* NULL: generated from path and on/off */
    /* json_attributes: NULL none; "" the whole (sub-)resource JSON; else a
     * json_attributes_template on the state topic. */
    const char *attributes;
};

/* The table and its length. */
const struct field *fields_table(size_t *n);

/* The row with this key, or NULL. */
const struct field *fields_find(const char *key);

/* The HA component name of a platform ("sensor"), NULL for FP_NONE. */
const char *fields_platform_name(enum fields_platform p);

/* The topic suffix of the row's state below <base>/<VIN>/ into buf:
 * "status" or "trips/last". Returns 0, or -1 when it does not fit. */
int fields_state_suffix(const struct field *f, char *buf, size_t len);

/* The value_template of a row into buf (its own, or the one generated from
 * path and on/off). "" for rows without a state (device tracker, event).
 * Returns 0, or -1 when it does not fit. */
int fields_value_template(const struct field *f, char *buf, size_t len);

/* True when type is one of the notification event types. */
bool fields_event_type_known(const char *type);

typedef void (*fields_emit_fn)(void *ud, const char *subtopic, const char *payload);

/* Emits every derived sub-resource of resource r computed from its parsed
 * JSON obj: subtopic is "last", payload compact JSON. Resources without
 * derived data emit nothing. Returns how many were emitted, or -1 on
 * allocation failure. */
int fields_derive(enum resource r, const cJSON *obj, fields_emit_fn emit, void *ud);

/* Emits the plain value of every scalar field of the table for resource r
 * (including fields of its derived sub-resources) that obj has: subtopic is
 * the field key, payload "72", "12.5", "true", "charging". Fields that are
 * absent, null, objects or arrays are skipped. Returns how many were
 * emitted, or -1 on allocation failure. */
int fields_flatten(enum resource r, const cJSON *obj, fields_emit_fn emit, void *ud);

/* The README's entity table (Markdown) rendered from the table. Returns a
 * malloc'd string the caller frees, or NULL on allocation failure. */
char *fields_markdown(void);

#endif
