/* test_fields.c - the field table against the spec, derive and flatten. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fields.h"
#include "testhelp.h"

/* Every property of every response schema of the spec
 * (contrib/toyota-connected-services.openapi.yaml), where the field table
 * reads it: resource, derived sub-resource (NULL: the resource itself). */
struct spec_schema {
    const char *name;
    enum resource res;
    const char *sub;
    const char *fields[20];
};

static const struct spec_schema spec[] = {
    { "ConnectedVehicle", RES_VEHICLE, NULL,
      { "vin", "alias", "make", "model", "year", "color", "trim", "guid", "isConnected",
        "lastConnectedAt", NULL } },
    { "VehicleStatus", RES_STATUS, NULL,
      { "vin", "ignition", "doorsLocked", "doorStatus.frontLeft", "doorStatus.frontRight",
        "doorStatus.rearLeft", "doorStatus.rearRight", "doorStatus.trunk",
        "windowStatus.frontLeft", "windowStatus.frontRight", "lastUpdatedAt", NULL } },
    { "VehicleHealth", RES_HEALTH, NULL,
      { "vin", "overallStatus", "oilQuantity", "warningLights", "maintenanceRequired",
        "lastReportedAt", NULL } },
    { "VehiclePosition", RES_LOCATION, NULL,
      { "vin", "latitude", "longitude", "isParked", "timestamp", NULL } },
    { "ElectricStatus", RES_ELECTRIC, NULL,
      { "vin", "batteryLevel", "batteryRange", "fuelLevel", "fuelRange", "totalRange",
        "chargingStatus", "pluggedIn", "estimatedChargeCompleteTime", "lastUpdatedAt", NULL } },
    { "ClimateStatus", RES_CLIMATE, NULL,
      { "vin", "isRunning", "temperature", "fanSpeed", "mode", "lastUpdatedAt", NULL } },
    { "TripHistoryList", RES_TRIPS, NULL, { "data", "total", "limit", "offset", NULL } },
    { "TripHistory", RES_TRIPS, "last",
      { "id", "vin", "startTime", "endTime", "distanceMiles", "durationMinutes",
        "averageSpeedMph", "maxSpeedMph", "startAddress", "endAddress", "startCoordinates",
        "endCoordinates", "route", NULL } },
    { "NotificationList", RES_NOTIFICATIONS, NULL, { "data", "total", "unreadCount", NULL } },
    { "Notification", RES_NOTIFICATIONS, "latest",
      { "id", "type", "title", "message", "isRead", "severity", "createdAt", NULL } },
    { "ServiceHistoryList", RES_SERVICE_HISTORY, NULL, { "data", NULL } },
    { "ServiceHistory", RES_SERVICE_HISTORY, "last",
      { "id", "vin", "category", "description", "serviceDate", "mileage", "dealerCode",
        "dealerName", NULL } },
};

/* Spec fields the table does not need, and why. */
struct exempt { const char *schema, *field, *why; };
static const struct exempt exempt[] = {
    { "VehicleStatus", "vin", "the VIN is the topic's own segment" },
    { "VehicleHealth", "vin", "the VIN is the topic's own segment" },
    { "VehiclePosition", "vin", "the VIN is the topic's own segment" },
    { "ElectricStatus", "vin", "the VIN is the topic's own segment" },
    { "ClimateStatus", "vin", "the VIN is the topic's own segment" },
    { "TripHistory", "vin", "the VIN is the topic's own segment" },
    { "ServiceHistory", "vin", "the VIN is the topic's own segment" },
    { "ConnectedVehicle", "guid", "the account's user id: not vehicle data" },
    { "TripHistoryList", "limit", "paging: the bridge merges every page" },
    { "TripHistoryList", "offset", "paging: the bridge merges every page" },
    /* read by fields_derive into sub-resources (checked by the derive tests) */
    { "TripHistoryList", "data", "trips/last, trips/summary" },
    { "TripHistoryList", "total", "trips/summary.total" },
    { "VehicleHealth", "warningLights", "health/warnings" },
    { "NotificationList", "data", "notifications/latest" },
    { "ServiceHistoryList", "data", "service_history/last" },
};

/* Keys the derived sub-resources add to what they copy. */
struct derived_keys { enum resource res; const char *sub; const char *keys[6]; };
static const struct derived_keys dkeys[] = {
    { RES_HEALTH, "warnings", { "count", "lights", NULL } },
    { RES_TRIPS, "summary", { "count", "total", "distanceMiles", "durationMinutes", NULL } },
    { RES_SERVICE_HISTORY, "last", { "count", NULL } },
};

static bool same_sub(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* All templates of a row, concatenated, into buf. */
static void row_templates(const struct field *f, char *buf, size_t len)
{
    char tpl[2048];
    if (fields_value_template(f, tpl, sizeof tpl) != 0) tpl[0] = '\0';
    snprintf(buf, len, "%s %s", tpl, f->attributes ? f->attributes : "");
}

static bool exempted(const char *schema, const char *field)
{
    for (size_t i = 0; i < sizeof exempt / sizeof exempt[0]; i++)
        if (strcmp(exempt[i].schema, schema) == 0 && strcmp(exempt[i].field, field) == 0) return true;
    return false;
}

/* Whether the spec field name of (res, sub) is read by a row. */
static bool covered(enum resource res, const char *sub, const char *name)
{
    size_t n;
    const struct field *t = fields_table(&n);
    char quoted[80], all[4096];
    snprintf(quoted, sizeof quoted, "'%s'", name);
    for (size_t i = 0; i < n; i++) {
        if (t[i].res != res || !same_sub(t[i].sub, sub)) continue;
        if (t[i].path && strcmp(t[i].path, name) == 0) return true;
        row_templates(&t[i], all, sizeof all);
        const char *dot = strchr(name, '.');
        if (!dot && strstr(all, quoted)) return true;
    }
    return false;
}

static void test_spec_coverage(void)
{
    char name[160];
    for (size_t s = 0; s < sizeof spec / sizeof spec[0]; s++) {
        for (size_t i = 0; spec[s].fields[i]; i++) {
            const char *f = spec[s].fields[i];
            snprintf(name, sizeof name, "spec field %s.%s is in the table", spec[s].name, f);
            TEST_CHECK(name, exempted(spec[s].name, f) || covered(spec[s].res, spec[s].sub, f));
        }
    }
}

/* Whether key may be read from (res, sub): a spec field there (or a
 * member of one of its object fields) or a key the derivation adds. */
static bool key_known(enum resource res, const char *sub, const char *key)
{
    size_t kl = strlen(key);
    for (size_t s = 0; s < sizeof spec / sizeof spec[0]; s++) {
        if (spec[s].res != res || !same_sub(spec[s].sub, sub)) continue;
        for (size_t i = 0; spec[s].fields[i]; i++) {
            const char *f = spec[s].fields[i], *dot = strchr(f, '.');
            if (strcmp(f, key) == 0) return true;
            if (dot && (size_t)(dot - f) == kl && strncmp(f, key, kl) == 0) return true;
            if (dot && strcmp(dot + 1, key) == 0) return true;
        }
    }
    for (size_t d = 0; d < sizeof dkeys / sizeof dkeys[0]; d++)
        if (dkeys[d].res == res && same_sub(dkeys[d].sub, sub))
            for (size_t i = 0; dkeys[d].keys[i]; i++)
                if (strcmp(dkeys[d].keys[i], key) == 0) return true;
    return false;
}

static void test_templates_use_known_fields(void)
{
    size_t n;
    const struct field *t = fields_table(&n);
    char all[4096], name[200];
    for (size_t i = 0; i < n; i++) {
        row_templates(&t[i], all, sizeof all);
        bool ok = true;
        for (const char *p = strstr(all, ".get('"); p; p = strstr(p + 1, ".get('")) {
            char key[64];
            const char *q = p + 6, *end = strchr(q, '\'');
            if (!end || (size_t)(end - q) >= sizeof key) { ok = false; break; }
            memcpy(key, q, (size_t)(end - q));
            key[end - q] = '\0';
            if (!key_known(t[i].res, t[i].sub, key)) {
                printf("# %s reads unknown key '%s'\n", t[i].key, key);
                ok = false;
            }
        }
        snprintf(name, sizeof name, "templates of %s read only fields that exist", t[i].key);
        TEST_CHECK(name, ok);
        if (t[i].path && t[i].sub && strcmp(t[i].sub, "event") != 0) {
            snprintf(name, sizeof name, "path of %s exists in %s/%s", t[i].key,
                     resource_get(t[i].res)->name, t[i].sub);
            TEST_CHECK(name, key_known(t[i].res, t[i].sub, t[i].path));
        }
    }
}

static bool key_chars_ok(const char *k)
{
    if (!*k) return false;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_')) return false;
    return true;
}

static void test_rows(void)
{
    size_t n;
    const struct field *t = fields_table(&n);
    bool unique = true, chars = true, enums = true, binaries = true, ts = true, subs = true,
         names = true, find = true, tpl_ok = true;
    TEST_CHECK("the table has rows", n > 50);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(t[i].key, t[j].key) == 0) { unique = false; printf("# dup %s\n", t[i].key); }
        if (!key_chars_ok(t[i].key)) chars = false;
        if (fields_find(t[i].key) != &t[i]) find = false;
        if (!t[i].name || !t[i].name[0]) names = false;
        const char *dc = t[i].device_class;
        if (dc && strcmp(dc, "enum") == 0 && (!t[i].options[0] || t[i].unit || t[i].state_class))
            enums = false;
        if (t[i].options[0] && t[i].platform == FP_SENSOR && (!dc || strcmp(dc, "enum") != 0))
            enums = false;
        if (t[i].platform == FP_BINARY_SENSOR && (!t[i].on[0] || !t[i].off[0])) binaries = false;
        if (dc && (strcmp(dc, "timestamp") == 0 || strcmp(dc, "date") == 0) &&
            (t[i].unit || t[i].state_class))
            ts = false;
        /* a per-field topic must not shadow a derived or event topic */
        if (strcmp(t[i].key, "event") == 0 || strcmp(t[i].key, "last") == 0 ||
            strcmp(t[i].key, "summary") == 0 || strcmp(t[i].key, "latest") == 0 ||
            strcmp(t[i].key, "warnings") == 0)
            subs = false;
        char tpl[2048];
        if (fields_value_template(&t[i], tpl, sizeof tpl) != 0) tpl_ok = false;
        if ((t[i].platform == FP_SENSOR || t[i].platform == FP_BINARY_SENSOR) &&
            (strncmp(tpl, "{{ ", 3) != 0 || !strstr(tpl, " }}")))
            tpl_ok = false;
    }
    TEST_CHECK("field keys are unique", unique);
    TEST_CHECK("field keys are snake_case [a-z0-9_]", chars);
    TEST_CHECK("fields_find finds every key", find && !fields_find("no_such_field"));
    TEST_CHECK("every row has a name", names);
    TEST_CHECK("enum sensors have options and no unit/state class", enums);
    TEST_CHECK("binary sensors say what is on and off", binaries);
    TEST_CHECK("timestamp/date sensors have no unit or state class", ts);
    TEST_CHECK("no field key shadows a derived sub-resource", subs);
    TEST_CHECK("every sensor has a value template", tpl_ok);
    TEST_CHECK("platform names", strcmp(fields_platform_name(FP_BINARY_SENSOR), "binary_sensor") == 0 &&
                                 fields_platform_name(FP_NONE) == NULL);
    TEST_CHECK("event types", fields_event_type_known("recall") && !fields_event_type_known("spam") &&
                              !fields_event_type_known(NULL));
}

static void test_templates_text(void)
{
    char buf[512];
    const struct field *f = fields_find("window_front_left");
    TEST_CHECK("window template maps venting to ON",
               f && fields_value_template(f, buf, sizeof buf) == 0 &&
               strcmp(buf, "{{ {'open': 'ON', 'venting': 'ON', 'closed': 'OFF'}.get("
                           "(value_json.get('windowStatus') or {}).get('frontLeft'), 'None') }}") == 0);
    f = fields_find("doors_locked");
    TEST_CHECK("lock class: locked is OFF",
               f && fields_value_template(f, buf, sizeof buf) == 0 &&
               strcmp(buf, "{{ {false: 'ON', true: 'OFF'}.get(value_json.get('doorsLocked'), 'None') }}") == 0);
    f = fields_find("battery_level");
    TEST_CHECK("plain sensor template guards a missing field",
               f && fields_value_template(f, buf, sizeof buf) == 0 &&
               strcmp(buf, "{{ value_json.get('batteryLevel') }}") == 0);
    f = fields_find("oil_quantity");
    TEST_CHECK("enum template keeps to its options",
               f && fields_value_template(f, buf, sizeof buf) == 0 &&
               strcmp(buf, "{{ value_json.get('oilQuantity') if value_json.get('oilQuantity') in "
                           "['ok', 'low', 'critically_low'] else None }}") == 0);
    f = fields_find("location");
    TEST_CHECK("the tracker has no state template",
               f && fields_value_template(f, buf, sizeof buf) == 0 && buf[0] == '\0');
    f = fields_find("battery_level");
    TEST_CHECK("a template that does not fit fails", f && fields_value_template(f, buf, 10) == -1);
    TEST_CHECK("state suffix", fields_state_suffix(fields_find("last_trip_start"), buf, sizeof buf) == 0 &&
                               strcmp(buf, "trips/last") == 0);
    TEST_CHECK("state suffix of a resource field",
               fields_state_suffix(fields_find("battery_level"), buf, sizeof buf) == 0 &&
               strcmp(buf, "electric") == 0);
}

/* ---- derive / flatten ----------------------------------------------------- */

#define MAXOUT 128
struct out {
    size_t n;
    char sub[MAXOUT][64];
    char payload[MAXOUT][2048];
};

static void collect(void *ud, const char *sub, const char *payload)
{
    struct out *o = ud;
    if (o->n >= MAXOUT) return;
    snprintf(o->sub[o->n], sizeof o->sub[o->n], "%s", sub);
    snprintf(o->payload[o->n], sizeof o->payload[o->n], "%s", payload);
    o->n++;
}

static const char *got(const struct out *o, const char *sub)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->sub[i], sub) == 0) return o->payload[i];
    return NULL;
}

static bool got_is(const struct out *o, const char *sub, const char *want)
{
    const char *g = got(o, sub);
    if (!g || strcmp(g, want) != 0) {
        printf("# %s: got %s, want %s\n", sub, g ? g : "(none)", want ? want : "(none)");
        return false;
    }
    return true;
}

static cJSON *parse(const char *s)
{
    return cJSON_Parse(s);
}

static int run(enum resource r, const char *json, struct out *d, struct out *f)
{
    cJSON *obj = parse(json);
    memset(d, 0, sizeof *d);
    memset(f, 0, sizeof *f);
    int a = fields_derive(r, obj, collect, d);
    int b = fields_flatten(r, obj, collect, f);
    cJSON_Delete(obj);
    return a < 0 || b < 0 ? -1 : a + b;
}

static struct out d, f;   /* big: not on the stack */

static void test_status(void)
{
    run(RES_STATUS,
        "{\"vin\":\"JTMAB3FV5PD123456\",\"ignition\":\"off\",\"doorsLocked\":false,"
        "\"doorStatus\":{\"frontLeft\":\"open\",\"frontRight\":\"closed\"},"
        "\"windowStatus\":{\"frontLeft\":\"venting\",\"frontRight\":null},"
        "\"lastUpdatedAt\":\"2024-05-01T10:00:00Z\"}", &d, &f);
    TEST_CHECK("status: nothing derived", d.n == 0);
    TEST_CHECK("status: ignition raw", got_is(&f, "ignition", "off"));
    TEST_CHECK("status: doors_locked raw boolean", got_is(&f, "doors_locked", "false"));
    TEST_CHECK("status: nested door", got_is(&f, "door_front_left", "open"));
    TEST_CHECK("status: window keeps venting", got_is(&f, "window_front_left", "venting"));
    TEST_CHECK("status: null and absent skipped",
               !got(&f, "window_front_right") && !got(&f, "door_rear_left") && !got(&f, "trunk"));
    TEST_CHECK("status: timestamp", got_is(&f, "status_updated", "2024-05-01T10:00:00Z"));
    TEST_CHECK("status: no vin topic (not a status field)", !got(&f, "vin"));
}

static void test_electric(void)
{
    run(RES_ELECTRIC,
        "{\"batteryLevel\":72,\"batteryRange\":31.5,\"fuelRange\":280.0,\"totalRange\":1e20,"
        "\"chargingStatus\":\"plugged_in\",\"pluggedIn\":true}", &d, &f);
    TEST_CHECK("electric: integer", got_is(&f, "battery_level", "72"));
    TEST_CHECK("electric: fraction", got_is(&f, "battery_range", "31.5"));
    TEST_CHECK("electric: integral double without .0", got_is(&f, "fuel_range", "280"));
    TEST_CHECK("electric: huge number %.15g", got_is(&f, "total_range", "1e+20"));
    TEST_CHECK("electric: enum raw", got_is(&f, "charging_status", "plugged_in"));
    TEST_CHECK("electric: charging derived false", got_is(&f, "charging", "false"));
    TEST_CHECK("electric: fuel level absent", !got(&f, "fuel_level"));
    run(RES_ELECTRIC, "{\"chargingStatus\":\"charging\"}", &d, &f);
    TEST_CHECK("electric: charging derived true", got_is(&f, "charging", "true"));
    run(RES_ELECTRIC, "{\"chargingStatus\":\"exploding\"}", &d, &f);
    TEST_CHECK("electric: unknown status gives no charging value", !got(&f, "charging") &&
               got_is(&f, "charging_status", "exploding"));
}

static void test_health(void)
{
    run(RES_HEALTH,
        "{\"overallStatus\":\"warning\",\"warningLights\":[{\"name\":\"Tire\",\"severity\":\"warning\"},"
        "{\"name\":\"Oil\"}],\"maintenanceRequired\":true}", &d, &f);
    TEST_CHECK("health: warnings derived",
               got_is(&d, "warnings", "{\"count\":2,\"lights\":[{\"name\":\"Tire\",\"severity\":\"warning\"},{\"name\":\"Oil\"}]}"));
    TEST_CHECK("health: warning light count flattened", got_is(&f, "warning_lights", "2"));
    TEST_CHECK("health: maintenance", got_is(&f, "maintenance_required", "true"));
    run(RES_HEALTH, "{\"warningLights\":null}", &d, &f);
    TEST_CHECK("health: no lights is count 0", got_is(&d, "warnings", "{\"count\":0,\"lights\":[]}"));
}

static void test_trips(void)
{
    run(RES_TRIPS,
        "{\"data\":[{\"id\":\"a\",\"startTime\":\"2024-04-30T08:00:00Z\",\"distanceMiles\":12.3,"
        "\"durationMinutes\":30,\"startAddress\":\"Home\"},"
        "{\"id\":\"b\",\"startTime\":\"2024-04-30T17:00:00Z\",\"distanceMiles\":4.5,"
        "\"durationMinutes\":40,\"maxSpeedMph\":\"fast\",\"endAddress\":\"Gym\"},"
        "{\"id\":\"c\",\"distanceMiles\":0.1}],\"total\":3}", &d, &f);
    TEST_CHECK("trips: last is the newest by startTime, wrong types dropped",
               got_is(&d, "last", "{\"id\":\"b\",\"startTime\":\"2024-04-30T17:00:00Z\",\"distanceMiles\":4.5,"
                                  "\"durationMinutes\":40,\"endAddress\":\"Gym\"}"));
    TEST_CHECK("trips: summary",
               got_is(&d, "summary", "{\"count\":3,\"total\":3,\"distanceMiles\":16.9,\"durationMinutes\":70}"));
    TEST_CHECK("trips: last distance", got_is(&f, "last_trip_distance", "4.5"));
    TEST_CHECK("trips: last start", got_is(&f, "last_trip_start", "2024-04-30T17:00:00Z"));
    TEST_CHECK("trips: last end address", got_is(&f, "last_trip_end_address", "Gym"));
    TEST_CHECK("trips: dropped field not flattened", !got(&f, "last_trip_max_speed"));
    TEST_CHECK("trips: count and distance", got_is(&f, "trip_count", "3") &&
                                            got_is(&f, "trips_distance", "16.9") &&
                                            got_is(&f, "trips_duration", "70"));
    run(RES_TRIPS, "{\"data\":[]}", &d, &f);
    TEST_CHECK("trips: no trips", got_is(&d, "last", "{}") &&
               got_is(&d, "summary", "{\"count\":0,\"distanceMiles\":0,\"durationMinutes\":0}") &&
               got_is(&f, "trip_count", "0") && !got(&f, "last_trip_distance"));
}

static void test_notifications(void)
{
    run(RES_NOTIFICATIONS,
        "{\"data\":[{\"id\":\"1\",\"type\":\"recall\",\"title\":\"Old\",\"createdAt\":\"2024-01-01T00:00:00Z\"},"
        "{\"id\":\"2\",\"type\":\"alert\",\"title\":\"New\",\"isRead\":false,\"createdAt\":\"2024-05-01T00:00:00Z\"}],"
        "\"total\":2,\"unreadCount\":1}", &d, &f);
    TEST_CHECK("notifications: latest",
               got_is(&d, "latest", "{\"id\":\"2\",\"type\":\"alert\",\"title\":\"New\",\"isRead\":false,"
                                    "\"createdAt\":\"2024-05-01T00:00:00Z\"}"));
    TEST_CHECK("notifications: unread", got_is(&f, "unread_notifications", "1"));
    TEST_CHECK("notifications: latest title", got_is(&f, "latest_notification", "New"));
    TEST_CHECK("notifications: latest type", got_is(&f, "latest_notification_type", "alert"));
    TEST_CHECK("notifications: total", got_is(&f, "notifications_total", "2"));
}

static void test_service(void)
{
    run(RES_SERVICE_HISTORY,
        "{\"data\":[{\"id\":\"s0\",\"serviceDate\":\"2023-07-01\",\"mileage\":6000},"
        "{\"id\":\"s1\",\"serviceDate\":\"2024-01-15\",\"mileage\":12000,\"dealerName\":\"Downtown\","
        "\"count\":\"x\"}]}", &d, &f);
    TEST_CHECK("service: last + count (count replaces a same-named field)",
               got_is(&d, "last", "{\"id\":\"s1\",\"serviceDate\":\"2024-01-15\",\"mileage\":12000,"
                                  "\"dealerName\":\"Downtown\",\"count\":2}"));
    TEST_CHECK("service: flattened", got_is(&f, "last_service_date", "2024-01-15") &&
               got_is(&f, "last_service_mileage", "12000") && got_is(&f, "service_records", "2") &&
               got_is(&f, "last_service_dealer", "Downtown"));
    run(RES_SERVICE_HISTORY, "{\"data\":[]}", &d, &f);
    TEST_CHECK("service: none", got_is(&d, "last", "{\"count\":0}"));
}

static void test_vehicle_and_hostile(void)
{
    run(RES_VEHICLE, "{\"vin\":\"JTMAB3FV5PD123456\",\"year\":2023,\"isConnected\":true,\"guid\":\"g\"}", &d, &f);
    TEST_CHECK("vehicle: fields", got_is(&f, "vin", "JTMAB3FV5PD123456") && got_is(&f, "year", "2023") &&
                                  got_is(&f, "connected", "true"));
    TEST_CHECK("vehicle: guid not published as a field", !got(&f, "guid"));
    const char *hostile[] = { "[]", "3", "null", "\"x\"", "{\"data\":{}}", "{\"data\":[1,null,[]]}",
                              "{\"doorStatus\":[1],\"windowStatus\":\"x\"}" };
    bool ok = true;
    for (int r = 0; r < RES_COUNT; r++)
        for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
            if (run((enum resource)r, hostile[i], &d, &f) < 0) ok = false;
            for (size_t k = 0; k < d.n; k++) {
                cJSON *j = cJSON_Parse(d.payload[k]);
                if (!cJSON_IsObject(j)) ok = false;
                cJSON_Delete(j);
            }
        }
    TEST_CHECK("hostile input: derive gives objects, nothing fails", ok);
    TEST_CHECK("no derive without an object: NULL",
               fields_derive(RES_TRIPS, NULL, collect, &d) == 2);
}

static void test_markdown(void)
{
    char *md = fields_markdown();
    TEST_CHECK("markdown rendered", md != NULL);
    if (!md) return;
    TEST_CHECK("markdown header", strncmp(md, "| Resource | Field (topic) | HA platform |", 41) == 0);
    TEST_CHECK("markdown rows", strstr(md, "| electric | `electric/battery_level` | sensor | battery | % | Battery level |") &&
                                strstr(md, "| notifications | `notifications/event` | event |"));
    size_t n, lines = 0;
    fields_table(&n);
    for (const char *p = md; *p; p++) lines += *p == '\n';
    TEST_CHECK("markdown has a line per row", lines == n + 2);
    free(md);
}

int main(void)
{
    test_spec_coverage();
    test_templates_use_known_fields();
    test_rows();
    test_templates_text();
    test_status();
    test_electric();
    test_health();
    test_trips();
    test_notifications();
    test_service();
    test_vehicle_and_hostile();
    test_markdown();
    return TEST_REPORT();
}
