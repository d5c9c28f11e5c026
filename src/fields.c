/* fields.c - the field table, derived sub-resources, per-field values and
 * the README entity table; see fields.h. */
#include "fields.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Shorthands for the table. */
#define OPTS(...)   .options = { __VA_ARGS__, NULL }
#define ON(...)     .on = { __VA_ARGS__, NULL }
#define OFF(...)    .off = { __VA_ARGS__, NULL }
#define BOOL_ON     ON("true"), OFF("false")
#define BOOL_OFF_ON ON("false"), OFF("true")

static const struct field table[] = {
    /* vehicle: ConnectedVehicle. alias/make/model/trim feed the device too. */
    { RES_VEHICLE, NULL, "isConnected", "connected", FP_BINARY_SENSOR, "Connected",
      "connectivity", NULL, NULL, NULL, .diagnostic = true, .on = { "true", NULL }, .off = { "false", NULL },
      .attributes = "{{ {'alias': value_json.get('alias'), 'make': value_json.get('make'), "
                    "'model': value_json.get('model'), 'year': value_json.get('year'), "
                    "'color': value_json.get('color'), 'trim': value_json.get('trim')} | tojson }}" },
    { RES_VEHICLE, NULL, "lastConnectedAt", "last_connected", FP_SENSOR, "Last connected",
      "timestamp", NULL, NULL, NULL, .diagnostic = true },
    { RES_VEHICLE, NULL, "vin", "vin", FP_NONE, "VIN", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_VEHICLE, NULL, "alias", "alias", FP_NONE, "Alias", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_VEHICLE, NULL, "make", "make", FP_NONE, "Make", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_VEHICLE, NULL, "model", "model", FP_NONE, "Model", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_VEHICLE, NULL, "year", "year", FP_NONE, "Year", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_VEHICLE, NULL, "color", "color", FP_NONE, "Color", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_VEHICLE, NULL, "trim", "trim", FP_NONE, "Trim", NULL, NULL, NULL, NULL, .diagnostic = false },

    /* status: VehicleStatus. */
    { RES_STATUS, NULL, "ignition", "ignition", FP_BINARY_SENSOR, "Ignition",
      NULL, NULL, NULL, "mdi:car-key", .diagnostic = false, ON("'on'"), OFF("'off'") },
    { RES_STATUS, NULL, "doorsLocked", "doors_locked", FP_BINARY_SENSOR, "Door lock",
      "lock", NULL, NULL, NULL, .diagnostic = false, BOOL_OFF_ON },   /* lock: on = unlocked */
    { RES_STATUS, NULL, "doorStatus.frontLeft", "door_front_left", FP_BINARY_SENSOR,
      "Front left door", "door", NULL, NULL, NULL, .diagnostic = false, ON("'open'"), OFF("'closed'") },
    { RES_STATUS, NULL, "doorStatus.frontRight", "door_front_right", FP_BINARY_SENSOR,
      "Front right door", "door", NULL, NULL, NULL, .diagnostic = false, ON("'open'"), OFF("'closed'") },
    { RES_STATUS, NULL, "doorStatus.rearLeft", "door_rear_left", FP_BINARY_SENSOR,
      "Rear left door", "door", NULL, NULL, NULL, .diagnostic = false, ON("'open'"), OFF("'closed'") },
    { RES_STATUS, NULL, "doorStatus.rearRight", "door_rear_right", FP_BINARY_SENSOR,
      "Rear right door", "door", NULL, NULL, NULL, .diagnostic = false, ON("'open'"), OFF("'closed'") },
    { RES_STATUS, NULL, "doorStatus.trunk", "trunk", FP_BINARY_SENSOR, "Trunk",
      "opening", NULL, NULL, "mdi:car-back", .diagnostic = false, ON("'open'"), OFF("'closed'") },
    { RES_STATUS, NULL, "windowStatus.frontLeft", "window_front_left", FP_BINARY_SENSOR,
      "Front left window", "window", NULL, NULL, NULL, .diagnostic = false,
      ON("'open'", "'venting'"), OFF("'closed'"),
      .attributes = "{{ {'position': (value_json.get('windowStatus') or {}).get('frontLeft')} | tojson }}" },
    { RES_STATUS, NULL, "windowStatus.frontRight", "window_front_right", FP_BINARY_SENSOR,
      "Front right window", "window", NULL, NULL, NULL, .diagnostic = false,
      ON("'open'", "'venting'"), OFF("'closed'"),
      .attributes = "{{ {'position': (value_json.get('windowStatus') or {}).get('frontRight')} | tojson }}" },
    { RES_STATUS, NULL, "lastUpdatedAt", "status_updated", FP_SENSOR, "Status updated",
      "timestamp", NULL, NULL, NULL, .diagnostic = true },

    /* health: VehicleHealth; warningLights through health/warnings. */
    { RES_HEALTH, NULL, "overallStatus", "health_status", FP_SENSOR, "Health",
      "enum", NULL, NULL, "mdi:car-wrench", .diagnostic = false, OPTS("good", "warning", "critical") },
    { RES_HEALTH, NULL, "oilQuantity", "oil_quantity", FP_SENSOR, "Oil quantity",
      "enum", NULL, NULL, "mdi:oil", .diagnostic = false, OPTS("ok", "low", "critically_low") },
    { RES_HEALTH, "warnings", "count", "warning_lights", FP_SENSOR, "Warning lights",
      NULL, NULL, "measurement", "mdi:car-light-alert", .diagnostic = false, .attributes = "" },
    { RES_HEALTH, NULL, "maintenanceRequired", "maintenance_required", FP_BINARY_SENSOR,
      "Maintenance required", "problem", NULL, NULL, NULL, .diagnostic = false, BOOL_ON },
    { RES_HEALTH, NULL, "lastReportedAt", "health_reported", FP_SENSOR, "Health reported",
      "timestamp", NULL, NULL, NULL, .diagnostic = true },

    /* location: VehiclePosition. The tracker reads latitude/longitude from
     * its attributes, which are the whole resource. */
    { RES_LOCATION, NULL, NULL, "location", FP_DEVICE_TRACKER, "Location",
      NULL, NULL, NULL, "mdi:car", .diagnostic = false, .attributes = "" },
    { RES_LOCATION, NULL, "latitude", "latitude", FP_NONE, "Latitude", NULL, "°", NULL, NULL, .diagnostic = false },
    { RES_LOCATION, NULL, "longitude", "longitude", FP_NONE, "Longitude", NULL, "°", NULL, NULL, .diagnostic = false },
    { RES_LOCATION, NULL, "isParked", "parked", FP_BINARY_SENSOR, "Parked",
      NULL, NULL, NULL, "mdi:car-brake-parking", .diagnostic = false, BOOL_ON },
    { RES_LOCATION, NULL, "timestamp", "location_updated", FP_SENSOR, "Location updated",
      "timestamp", NULL, NULL, NULL, .diagnostic = true },

    /* electric: ElectricStatus (hybrids and EVs only). */
    { RES_ELECTRIC, NULL, "batteryLevel", "battery_level", FP_SENSOR, "Battery level",
      "battery", "%", "measurement", NULL, .diagnostic = false },
    { RES_ELECTRIC, NULL, "batteryRange", "battery_range", FP_SENSOR, "Battery range",
      "distance", "mi", "measurement", NULL, .diagnostic = false },
    { RES_ELECTRIC, NULL, "fuelLevel", "fuel_level", FP_SENSOR, "Fuel level",
      NULL, "%", "measurement", "mdi:gas-station", .diagnostic = false },
    { RES_ELECTRIC, NULL, "fuelRange", "fuel_range", FP_SENSOR, "Fuel range",
      "distance", "mi", "measurement", NULL, .diagnostic = false },
    { RES_ELECTRIC, NULL, "totalRange", "total_range", FP_SENSOR, "Total range",
      "distance", "mi", "measurement", NULL, .diagnostic = false },
    { RES_ELECTRIC, NULL, "chargingStatus", "charging_status", FP_SENSOR, "Charging status",
      "enum", NULL, NULL, "mdi:ev-station", .diagnostic = false,
      OPTS("not_charging", "charging", "fully_charged", "plugged_in") },
    { RES_ELECTRIC, NULL, "pluggedIn", "plugged_in", FP_BINARY_SENSOR, "Plugged in",
      "plug", NULL, NULL, NULL, .diagnostic = false, BOOL_ON },
    { RES_ELECTRIC, NULL, "chargingStatus", "charging", FP_BINARY_SENSOR, "Charging",
      "battery_charging", NULL, NULL, NULL, .diagnostic = false,
      ON("'charging'"), OFF("'not_charging'", "'fully_charged'", "'plugged_in'"), .flat_bool = true },
    { RES_ELECTRIC, NULL, "estimatedChargeCompleteTime", "charge_complete", FP_SENSOR,
      "Charge complete", "timestamp", NULL, NULL, NULL, .diagnostic = false },
    { RES_ELECTRIC, NULL, "lastUpdatedAt", "electric_updated", FP_SENSOR, "Electric updated",
      "timestamp", NULL, NULL, NULL, .diagnostic = true },

    /* climate: ClimateStatus. The climate entity (hass.c) controls it. */
    { RES_CLIMATE, NULL, "isRunning", "climate_running", FP_BINARY_SENSOR, "Climate running",
      "running", NULL, NULL, NULL, .diagnostic = false, BOOL_ON },
    { RES_CLIMATE, NULL, "temperature", "target_temperature", FP_SENSOR, "Target temperature",
      "temperature", "°F", "measurement", NULL, .diagnostic = false },
    { RES_CLIMATE, NULL, "fanSpeed", "fan_speed", FP_SENSOR, "Fan speed",
      NULL, NULL, "measurement", "mdi:fan", .diagnostic = false },
    { RES_CLIMATE, NULL, "mode", "climate_mode", FP_SENSOR, "Climate mode",
      "enum", NULL, NULL, "mdi:thermostat", .diagnostic = false,
      OPTS("auto", "cool", "heat", "defrost", "off") },
    { RES_CLIMATE, NULL, "lastUpdatedAt", "climate_updated", FP_SENSOR, "Climate updated",
      "timestamp", NULL, NULL, NULL, .diagnostic = true },

    /* trips: the newest trip (trips/last) and the window (trips/summary). */
    { RES_TRIPS, "last", "distanceMiles", "last_trip_distance", FP_SENSOR, "Last trip distance",
      "distance", "mi", "measurement", NULL, .diagnostic = false,
      .attributes = "{{ {'trip_id': value_json.get('id'), "
                    "'route_points': (value_json.get('route') or []) | length} | tojson }}" },
    { RES_TRIPS, "last", "durationMinutes", "last_trip_duration", FP_SENSOR, "Last trip duration",
      "duration", "min", "measurement", NULL, .diagnostic = false },
    { RES_TRIPS, "last", "averageSpeedMph", "last_trip_average_speed", FP_SENSOR,
      "Last trip average speed", "speed", "mph", "measurement", NULL, .diagnostic = false },
    { RES_TRIPS, "last", "maxSpeedMph", "last_trip_max_speed", FP_SENSOR, "Last trip max speed",
      "speed", "mph", "measurement", NULL, .diagnostic = false },
    { RES_TRIPS, "last", "startTime", "last_trip_start", FP_SENSOR, "Last trip start",
      "timestamp", NULL, NULL, NULL, .diagnostic = false,
      .attributes = "{{ {'address': value_json.get('startAddress'), "
                    "'coordinates': value_json.get('startCoordinates')} | tojson }}" },
    { RES_TRIPS, "last", "endTime", "last_trip_end", FP_SENSOR, "Last trip end",
      "timestamp", NULL, NULL, NULL, .diagnostic = false,
      .attributes = "{{ {'address': value_json.get('endAddress'), "
                    "'coordinates': value_json.get('endCoordinates')} | tojson }}" },
    { RES_TRIPS, "last", "startAddress", "last_trip_start_address", FP_NONE,
      "Last trip start address", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_TRIPS, "last", "endAddress", "last_trip_end_address", FP_NONE,
      "Last trip end address", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_TRIPS, "summary", "count", "trip_count", FP_SENSOR, "Trips",
      NULL, NULL, "measurement", "mdi:map-marker-path", .diagnostic = false },
    { RES_TRIPS, "summary", "distanceMiles", "trips_distance", FP_SENSOR, "Trips distance",
      "distance", "mi", "measurement", NULL, .diagnostic = false },
    { RES_TRIPS, "summary", "durationMinutes", "trips_duration", FP_SENSOR, "Trips duration",
      "duration", "min", "measurement", NULL, .diagnostic = false },

    /* notifications: NotificationList; the newest through notifications/latest;
     * the bridge publishes each new one on notifications/event. */
    { RES_NOTIFICATIONS, NULL, "unreadCount", "unread_notifications", FP_SENSOR,
      "Unread notifications", NULL, NULL, "measurement", "mdi:bell-badge", .diagnostic = false,
      .attributes = "{{ {'total': value_json.get('total')} | tojson }}" },
    { RES_NOTIFICATIONS, NULL, "total", "notifications_total", FP_NONE, "Notifications",
      NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_NOTIFICATIONS, "latest", "title", "latest_notification", FP_SENSOR, "Latest notification",
      NULL, NULL, NULL, "mdi:message-alert", .diagnostic = false,
      .value_template = "{{ value_json.get('title')[:255] if value_json.get('title') is string else None }}",
      .attributes = "{{ {'id': value_json.get('id'), 'type': value_json.get('type'), "
                    "'severity': value_json.get('severity'), 'message': value_json.get('message'), "
                    "'read': value_json.get('isRead'), 'created_at': value_json.get('createdAt')} | tojson }}" },
    { RES_NOTIFICATIONS, "latest", "createdAt", "latest_notification_time", FP_SENSOR,
      "Latest notification time", "timestamp", NULL, NULL, NULL, .diagnostic = false },
    { RES_NOTIFICATIONS, "latest", "type", "latest_notification_type", FP_NONE,
      "Latest notification type", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_NOTIFICATIONS, "latest", "severity", "latest_notification_severity", FP_NONE,
      "Latest notification severity", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_NOTIFICATIONS, "latest", "message", "latest_notification_message", FP_NONE,
      "Latest notification message", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_NOTIFICATIONS, "event", NULL, "notification", FP_EVENT, "Notification",
      NULL, NULL, NULL, "mdi:bell-ring", .diagnostic = false,
      OPTS("alert", "message", "recall", "maintenance", "service") },

    /* service_history: the newest record (service_history/last, + count). */
    { RES_SERVICE_HISTORY, "last", "serviceDate", "last_service_date", FP_SENSOR, "Last service",
      "date", NULL, NULL, NULL, .diagnostic = false },
    { RES_SERVICE_HISTORY, "last", "category", "last_service_category", FP_SENSOR,
      "Last service category", NULL, NULL, NULL, "mdi:wrench", .diagnostic = false,
      .value_template = "{{ value_json.get('category')[:255] if value_json.get('category') is string else None }}" },
    { RES_SERVICE_HISTORY, "last", "mileage", "last_service_mileage", FP_SENSOR,
      "Last service mileage", "distance", "mi", NULL, NULL, .diagnostic = false },
    { RES_SERVICE_HISTORY, "last", "dealerName", "last_service_dealer", FP_SENSOR,
      "Last service dealer", NULL, NULL, NULL, "mdi:store", .diagnostic = false,
      .value_template = "{{ value_json.get('dealerName')[:255] if value_json.get('dealerName') is string else None }}",
      .attributes = "{{ {'dealer_code': value_json.get('dealerCode'), 'record_id': value_json.get('id'), "
                    "'description': value_json.get('description')} | tojson }}" },
    { RES_SERVICE_HISTORY, "last", "description", "last_service_description", FP_NONE,
      "Last service description", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_SERVICE_HISTORY, "last", "dealerCode", "last_service_dealer_code", FP_NONE,
      "Last service dealer code", NULL, NULL, NULL, NULL, .diagnostic = false },
    { RES_SERVICE_HISTORY, "last", "count", "service_records", FP_SENSOR, "Service records",
      NULL, NULL, "measurement", "mdi:history", .diagnostic = false },
};

#define NFIELDS (sizeof table / sizeof table[0])

const struct field *fields_table(size_t *n)
{
    if (n) *n = NFIELDS;
    return table;
}

const struct field *fields_find(const char *key)
{
    for (size_t i = 0; key && i < NFIELDS; i++)
        if (strcmp(table[i].key, key) == 0) return &table[i];
    return NULL;
}

const char *fields_platform_name(enum fields_platform p)
{
    switch (p) {
    case FP_SENSOR: return "sensor";
    case FP_BINARY_SENSOR: return "binary_sensor";
    case FP_DEVICE_TRACKER: return "device_tracker";
    case FP_EVENT: return "event";
    case FP_NONE: break;
    }
    return NULL;
}

bool fields_event_type_known(const char *type)
{
    const struct field *f = fields_find("notification");
    for (size_t i = 0; type && f && f->options[i]; i++)
        if (strcmp(f->options[i], type) == 0) return true;
    return false;
}

int fields_state_suffix(const struct field *f, char *buf, size_t len)
{
    const char *res = resource_get(f->res)->name;
    int n = f->sub ? snprintf(buf, len, "%s/%s", res, f->sub) : snprintf(buf, len, "%s", res);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* A bounded string builder: appends with snprintf, remembers overflow. */
struct sbuf { char *p; size_t len, used; bool over; };

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    if (b->over) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->used, b->len - b->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->len - b->used) b->over = true;
    else b->used += (size_t)n;
}

/* The Jinja expression reading path: value_json.get('a') for "a";
 * (value_json.get('a') or {}).get('b') for "a.b" (a null parent is safe). */
static void path_expr(struct sbuf *b, const char *path)
{
    const char *dot = strchr(path, '.');
    if (!dot) {
        sb_printf(b, "value_json.get('%s')", path);
        return;
    }
    sb_printf(b, "(value_json.get('%.*s') or {}).get('%s')", (int)(dot - path), path, dot + 1);
}

int fields_value_template(const struct field *f, char *buf, size_t len)
{
    struct sbuf b = { buf, len, 0, false };
    if (len == 0) return -1;
    buf[0] = '\0';
    if (f->value_template) {
        sb_printf(&b, "%s", f->value_template);
    } else if (!f->path || f->platform == FP_DEVICE_TRACKER || f->platform == FP_EVENT) {
        /* no state template */
    } else if (f->platform == FP_BINARY_SENSOR) {
        /* A literal map from raw values to ON/OFF; anything else is None
         * (Home Assistant's "unknown"), never a warning. */
        sb_printf(&b, "{{ {");
        const char *sep = "";
        for (size_t i = 0; i < FIELDS_MAX_ONOFF && f->on[i]; i++, sep = ", ")
            sb_printf(&b, "%s%s: 'ON'", sep, f->on[i]);
        for (size_t i = 0; i < FIELDS_MAX_ONOFF && f->off[i]; i++, sep = ", ")
            sb_printf(&b, "%s%s: 'OFF'", sep, f->off[i]);
        sb_printf(&b, "}.get(");
        path_expr(&b, f->path);
        sb_printf(&b, ", 'None') }}");
    } else if (f->options[0]) {
        /* Enum: a value outside the options is None rather than a warning. */
        sb_printf(&b, "{{ ");
        path_expr(&b, f->path);
        sb_printf(&b, " if ");
        path_expr(&b, f->path);
        sb_printf(&b, " in [");
        for (size_t i = 0; i < FIELDS_MAX_OPTIONS && f->options[i]; i++)
            sb_printf(&b, "%s'%s'", i ? ", " : "", f->options[i]);
        sb_printf(&b, "] else None }}");
    } else {
        sb_printf(&b, "{{ ");
        path_expr(&b, f->path);
        sb_printf(&b, " }}");
    }
    return b.over ? -1 : 0;
}

/* ---- derived sub-resources ---------------------------------------------- */

/* Known item fields and their JSON types, from the spec's item schemas. A
 * derived copy drops a known field of the wrong type, so templates only
 * ever see the types the spec promises. Unknown fields are kept. */
enum jt { JT_STR, JT_NUM, JT_BOOL, JT_OBJ, JT_ARR };
struct item_field { const char *name; enum jt type; };

static const struct item_field trip_fields[] = {
    { "id", JT_STR }, { "vin", JT_STR }, { "startTime", JT_STR }, { "endTime", JT_STR },
    { "distanceMiles", JT_NUM }, { "durationMinutes", JT_NUM }, { "averageSpeedMph", JT_NUM },
    { "maxSpeedMph", JT_NUM }, { "startAddress", JT_STR }, { "endAddress", JT_STR },
    { "startCoordinates", JT_OBJ }, { "endCoordinates", JT_OBJ }, { "route", JT_ARR }, { NULL, 0 } };
static const struct item_field notification_fields[] = {
    { "id", JT_STR }, { "type", JT_STR }, { "title", JT_STR }, { "message", JT_STR },
    { "isRead", JT_BOOL }, { "severity", JT_STR }, { "createdAt", JT_STR }, { NULL, 0 } };
static const struct item_field service_fields[] = {
    { "id", JT_STR }, { "vin", JT_STR }, { "category", JT_STR }, { "description", JT_STR },
    { "serviceDate", JT_STR }, { "mileage", JT_NUM }, { "dealerCode", JT_STR },
    { "dealerName", JT_STR }, { NULL, 0 } };

static bool jt_ok(const cJSON *it, enum jt t)
{
    switch (t) {
    case JT_STR: return cJSON_IsString(it) && it->valuestring;
    case JT_NUM: return cJSON_IsNumber(it) && isfinite(it->valuedouble);
    case JT_BOOL: return cJSON_IsBool(it);
    case JT_OBJ: return cJSON_IsObject(it);
    case JT_ARR: return cJSON_IsArray(it);
    }
    return false;
}

static const struct item_field *item_field_find(const struct item_field *s, const char *name)
{
    for (; s->name; s++)
        if (name && strcmp(s->name, name) == 0) return s;
    return NULL;
}

/* A copy of item without its known fields of the wrong type (null stays:
 * it is "no value", which templates read as None). NULL on failure. */
static cJSON *item_copy(const cJSON *item, const struct item_field *schema)
{
    cJSON *out = cJSON_CreateObject();
    if (!out) return NULL;
    for (const cJSON *c = item ? item->child : NULL; c; c = c->next) {
        const struct item_field *f = item_field_find(schema, c->string);
        if (f && !cJSON_IsNull(c) && !jt_ok(c, f->type)) continue;
        cJSON *dup = cJSON_Duplicate(c, 1);
        if (!dup || !c->string) {
            cJSON_Delete(dup);
            if (!dup) { cJSON_Delete(out); return NULL; }
            continue;
        }
        cJSON_AddItemToObject(out, c->string, dup);
    }
    return out;
}

/* The string member key of obj, or NULL. */
static const char *str_member(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* The newest object of the array data by the ISO-8601 string member key
 * (lexical order; an item without it is older than any with it). */
static const cJSON *newest(const cJSON *data, const char *key, int *count)
{
    const cJSON *best = NULL, *it;
    const char *best_t = NULL;
    *count = 0;
    if (!cJSON_IsArray(data)) return NULL;
    cJSON_ArrayForEach(it, data) {
        if (!cJSON_IsObject(it)) continue;
        (*count)++;
        const char *t = str_member(it, key);
        if (!best || (t && (!best_t || strcmp(t, best_t) > 0))) {
            best = it;
            best_t = t;
        }
    }
    return best;
}

/* The sum of the finite number member key over the objects of data, to a
 * thousandth (so float noise never shows in the published JSON). */
static double sum_member(const cJSON *data, const char *key)
{
    double s = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, data) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, key);
        if (cJSON_IsObject(it) && cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
            fabs(v->valuedouble) < 1e12)
            s += v->valuedouble;
    }
    return round(s * 1000.0) / 1000.0;
}

static cJSON *derive_warnings(const cJSON *obj)
{
    const cJSON *wl = cJSON_GetObjectItemCaseSensitive(obj, "warningLights");
    cJSON *out = cJSON_CreateObject();
    cJSON *lights = cJSON_IsArray(wl) ? cJSON_Duplicate(wl, 1) : cJSON_CreateArray();
    if (!out || !lights || !cJSON_AddNumberToObject(out, "count", cJSON_GetArraySize(lights))) {
        cJSON_Delete(out);
        cJSON_Delete(lights);
        return NULL;
    }
    cJSON_AddItemToObject(out, "lights", lights);
    return out;
}

static cJSON *derive_newest(const cJSON *obj, const char *key, const struct item_field *schema,
                            bool with_count)
{
    int count;
    const cJSON *best = newest(cJSON_GetObjectItemCaseSensitive(obj, "data"), key, &count);
    cJSON *out = item_copy(best, schema);
    if (out && with_count) {
        cJSON_DeleteItemFromObjectCaseSensitive(out, "count");
        if (!cJSON_AddNumberToObject(out, "count", count)) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    return out;
}

static cJSON *derive_trip_summary(const cJSON *obj)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(obj, "total");
    int count;
    (void)newest(data, "startTime", &count);
    cJSON *out = cJSON_CreateObject();
    if (!out || !cJSON_AddNumberToObject(out, "count", count) ||
        (cJSON_IsNumber(total) && isfinite(total->valuedouble) &&
         !cJSON_AddNumberToObject(out, "total", total->valuedouble)) ||
        !cJSON_AddNumberToObject(out, "distanceMiles", cJSON_IsArray(data) ? sum_member(data, "distanceMiles") : 0) ||
        !cJSON_AddNumberToObject(out, "durationMinutes", cJSON_IsArray(data) ? sum_member(data, "durationMinutes") : 0)) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* The derived sub-resources of each resource, in emission order. */
static const char *const derived[RES_COUNT][3] = {
    [RES_HEALTH] = { "warnings", NULL },
    [RES_TRIPS] = { "last", "summary", NULL },
    [RES_NOTIFICATIONS] = { "latest", NULL },
    [RES_SERVICE_HISTORY] = { "last", NULL },
};

/* Builds derived sub-resource sub of r from obj. NULL on allocation
 * failure or when r has no such sub-resource. */
static cJSON *derive_one(enum resource r, const cJSON *obj, const char *sub)
{
    if (r == RES_HEALTH && strcmp(sub, "warnings") == 0) return derive_warnings(obj);
    if (r == RES_TRIPS && strcmp(sub, "last") == 0)
        return derive_newest(obj, "startTime", trip_fields, false);
    if (r == RES_TRIPS && strcmp(sub, "summary") == 0) return derive_trip_summary(obj);
    if (r == RES_NOTIFICATIONS && strcmp(sub, "latest") == 0)
        return derive_newest(obj, "createdAt", notification_fields, false);
    if (r == RES_SERVICE_HISTORY && strcmp(sub, "last") == 0)
        return derive_newest(obj, "serviceDate", service_fields, true);
    return NULL;
}

int fields_derive(enum resource r, const cJSON *obj, fields_emit_fn emit, void *ud)
{
    int n = 0;
    if ((unsigned)r >= RES_COUNT) return 0;
    for (size_t i = 0; derived[r][i]; i++) {
        cJSON *d = derive_one(r, obj, derived[r][i]);
        char *s = d ? cJSON_PrintUnformatted(d) : NULL;
        cJSON_Delete(d);
        if (!s) return -1;
        emit(ud, derived[r][i], s);
        cJSON_free(s);
        n++;
    }
    return n;
}

/* ---- per-field values ---------------------------------------------------- */

/* The member at a dotted path ("doorStatus.frontLeft"), or NULL. */
static const cJSON *at_path(const cJSON *obj, const char *path)
{
    char part[64];
    while (obj && path && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof part || !cJSON_IsObject(obj)) return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        obj = cJSON_GetObjectItemCaseSensitive(obj, part);
        path = dot ? dot + 1 : NULL;
    }
    return obj;
}

/* Whether the JSON value v equals the Jinja literal lit ('x', true, false). */
static bool literal_equal(const cJSON *v, const char *lit)
{
    if (strcmp(lit, "true") == 0) return cJSON_IsTrue(v);
    if (strcmp(lit, "false") == 0) return cJSON_IsFalse(v);
    size_t n = strlen(lit);
    return n >= 2 && lit[0] == '\'' && cJSON_IsString(v) && v->valuestring &&
           strlen(v->valuestring) == n - 2 && strncmp(v->valuestring, lit + 1, n - 2) == 0;
}

static bool in_literals(const cJSON *v, const char *const *lits)
{
    for (size_t i = 0; i < FIELDS_MAX_ONOFF && lits[i]; i++)
        if (literal_equal(v, lits[i])) return true;
    return false;
}

/* The plain text of a scalar: "72", "12.5", "true", the raw string; NULL
 * for anything else. num must hold 32 bytes. */
static const char *plain_value(const cJSON *v, char *num, size_t numlen)
{
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? "true" : "false";
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return NULL;
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) < 1e15) snprintf(num, numlen, "%.0f", d == 0 ? 0.0 : d);
    else snprintf(num, numlen, "%.15g", d);
    return num;
}

static void flatten_row(const struct field *f, const cJSON *obj, fields_emit_fn emit, void *ud,
                        int *n)
{
    const cJSON *v = at_path(obj, f->path);
    char num[32];
    const char *s;
    if (!v) return;
    if (f->flat_bool) {
        if (in_literals(v, f->on)) s = "true";
        else if (in_literals(v, f->off)) s = "false";
        else return;
    } else if (!(s = plain_value(v, num, sizeof num))) {
        return;
    }
    emit(ud, f->key, s);
    (*n)++;
}

int fields_flatten(enum resource r, const cJSON *obj, fields_emit_fn emit, void *ud)
{
    int n = 0;
    if ((unsigned)r >= RES_COUNT || !cJSON_IsObject(obj)) return 0;
    for (size_t i = 0; i < NFIELDS; i++)
        if (table[i].res == r && table[i].path && !table[i].sub)
            flatten_row(&table[i], obj, emit, ud, &n);
    for (size_t k = 0; derived[r][k]; k++) {
        cJSON *d = derive_one(r, obj, derived[r][k]);
        if (!d) return -1;
        for (size_t i = 0; i < NFIELDS; i++)
            if (table[i].res == r && table[i].path && table[i].sub &&
                strcmp(table[i].sub, derived[r][k]) == 0)
                flatten_row(&table[i], d, emit, ud, &n);
        cJSON_Delete(d);
    }
    return n;
}

/* ---- README table -------------------------------------------------------- */

char *fields_markdown(void)
{
    size_t cap = 512 + NFIELDS * 256;
    char *out = malloc(cap);
    if (!out) return NULL;
    struct sbuf b = { out, cap, 0, false };
    sb_printf(&b, "| Resource | Field (topic) | HA platform | Device class | Unit | Name |\n");
    sb_printf(&b, "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &table[i];
        const char *res = resource_get(f->res)->name;
        const char *plat = fields_platform_name(f->platform);
        char topic[128];
        /* the per-field topic, or (tracker, event) the topic it reads */
        if (f->path) snprintf(topic, sizeof topic, "%s/%s", res, f->key);
        else if (fields_state_suffix(f, topic, sizeof topic)) topic[0] = '\0';
        sb_printf(&b, "| %s | `%s` | %s | %s | %s | %s |\n", res, topic,
                  plat ? plat : "topic only",
                  f->device_class ? f->device_class : "",
                  f->unit ? f->unit : "", f->name);
    }
    if (b.over) {
        free(out);
        return NULL;
    }
    return out;
}
