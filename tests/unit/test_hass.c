/* test_hass.c - discovery payloads: topics, ids, devices, controls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fields.h"
#include "hass.h"
#include "testhelp.h"

#define VIN "JTMAB3FV5PD123456"
#define MAXMSG 160

struct msgs {
    size_t n;
    char topic[MAXMSG][HASS_TOPIC];
    char *payload[MAXMSG];
};

static void collect(void *ud, const char *topic, const char *payload)
{
    struct msgs *m = ud;
    if (m->n >= MAXMSG) return;
    snprintf(m->topic[m->n], sizeof m->topic[m->n], "%s", topic);
    m->payload[m->n] = strdup(payload);
    m->n++;
}

static void msgs_free(struct msgs *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->payload[i]);
    m->n = 0;
}

static const char *find(const struct msgs *m, const char *component, const char *key)
{
    char t[HASS_TOPIC];
    for (size_t i = 0; i < m->n; i++) {
        const char *node = strchr(strchr(m->topic[i], '/') + 1, '/') + 1;
        snprintf(t, sizeof t, "homeassistant/%s/%.*s/%s/config", component,
                 (int)(strchr(node, '/') - node), node, key);
        if (strcmp(t, m->topic[i]) == 0) return m->payload[i];
    }
    return NULL;
}

static bool id_ok(const char *s, size_t len)
{
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static struct hass_opts opts(void)
{
    struct hass_opts o = { .prefix = "homeassistant", .base = "toyota2mqtt", .version = "1.2.3",
                           .support_url = "https://example.org/t2m", .unlock_code = false,
                           .allow = ~0u };
    return o;
}

static struct api_vehicle car(void)
{
    struct api_vehicle v = { .vin = VIN, .make = "Toyota", .model = "RAV4", .trim = "XLE",
                             .year = 2023, .is_connected = true };
    return v;
}

static void all(bool has[RES_COUNT], bool value)
{
    for (int r = 0; r < RES_COUNT; r++) has[r] = value;
}

static struct msgs m;

/* Topic shape, JSON, ids, device, origin, availability of every message. */
static void test_full_vehicle(void)
{
    struct hass_opts o = opts();
    struct api_vehicle v = car();
    bool has[RES_COUNT];
    all(has, true);
    int n = hass_vehicle(&o, &v, has, collect, &m);
    size_t rows, entities = 0;
    const struct field *t = fields_table(&rows);
    for (size_t i = 0; i < rows; i++) entities += t[i].platform != FP_NONE;
    /* + lock, climate, 7 buttons, alias, API calls */
    TEST_CHECK("vehicle: every entity emitted", n == (int)m.n && m.n == entities + 11);

    bool shape = true, json = true, uid = true, objid = true, dev = true, avail = true,
         origin = true, unique = true, state = true;
    for (size_t i = 0; i < m.n; i++) {
        char comp[32], node[64], key[64];
        const char *tp = m.topic[i];
        if (strncmp(tp, "homeassistant/", 14) != 0 ||
            sscanf(tp + 14, "%31[^/]/%63[^/]/%63[^/]/config", comp, node, key) != 3 ||
            !id_ok(node, strlen(node)) || !id_ok(key, strlen(key)) || strcmp(node, VIN) != 0) {
            shape = false;
            printf("# bad topic %s\n", tp);
            continue;
        }
        char want[160];
        snprintf(want, sizeof want, "homeassistant/%s/%s/%s/config", comp, node, key);
        if (strcmp(want, tp) != 0) shape = false;
        cJSON *p = cJSON_Parse(m.payload[i]);
        if (!cJSON_IsObject(p)) { json = false; cJSON_Delete(p); continue; }
        snprintf(want, sizeof want, "t2m_%s_%s", VIN, key);
        const char *u = str(p, "unique_id");
        if (!u || strcmp(u, want) != 0 || !id_ok(u, strlen(u))) uid = false;
        for (size_t j = 0; j < i; j++)
            if (u && strstr(m.payload[j], u) && strstr(m.payload[j], "\"unique_id\"")) {
                cJSON *q = cJSON_Parse(m.payload[j]);
                if (q && str(q, "unique_id") && strcmp(str(q, "unique_id"), u) == 0) unique = false;
                cJSON_Delete(q);
            }
        char obj[128], def[160];
        snprintf(obj, sizeof obj, "jtmab3fv5pd123456_%s", key);
        snprintf(def, sizeof def, "%s.%s", comp, obj);
        if (!str(p, "object_id") || strcmp(str(p, "object_id"), obj) != 0 ||
            !str(p, "default_entity_id") || strcmp(str(p, "default_entity_id"), def) != 0)
            objid = false;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(p, "device");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(d, "identifiers");
        if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) != 1 ||
            strcmp(cJSON_GetArrayItem(ids, 0)->valuestring, "t2m_" VIN) != 0 ||
            !str(d, "name") || strcmp(str(d, "name"), "2023 Toyota RAV4") != 0 ||
            strcmp(str(d, "manufacturer"), "Toyota") != 0 || strcmp(str(d, "model"), "RAV4") != 0 ||
            strcmp(str(d, "model_id"), "XLE") != 0 || strcmp(str(d, "serial_number"), VIN) != 0 ||
            strcmp(str(d, "via_device"), "toyota2mqtt_bridge_toyota2mqtt") != 0 ||
            cJSON_GetArraySize(d) != 7)
            dev = false;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(p, "availability");
        if (cJSON_GetArraySize(a) != 2 ||
            strcmp(str(cJSON_GetArrayItem(a, 0), "topic"), "toyota2mqtt/bridge/state") != 0 ||
            strcmp(str(cJSON_GetArrayItem(a, 1), "topic"), "toyota2mqtt/" VIN "/availability") != 0 ||
            !str(p, "availability_mode") || strcmp(str(p, "availability_mode"), "all") != 0)
            avail = false;
        const cJSON *org = cJSON_GetObjectItemCaseSensitive(p, "origin");
        if (!str(org, "name") || strcmp(str(org, "name"), "toyota2mqtt") != 0 ||
            strcmp(str(org, "sw_version"), "1.2.3") != 0 ||
            strcmp(str(org, "support_url"), "https://example.org/t2m") != 0)
            origin = false;
        /* state topics are the resource (or a derived sub-resource) */
        const char *st = str(p, "state_topic");
        if (st && strncmp(st, "toyota2mqtt/" VIN "/", strlen("toyota2mqtt/" VIN "/")) != 0) state = false;
        if (st && (strchr(st, '+') || strchr(st, '#'))) state = false;
        cJSON_Delete(p);
    }
    TEST_CHECK("vehicle: topics <prefix>/<component>/<VIN>/<key>/config, ids [a-zA-Z0-9_-]", shape);
    TEST_CHECK("vehicle: payloads are JSON objects", json);
    TEST_CHECK("vehicle: unique_id t2m_<VIN>_<key>", uid);
    TEST_CHECK("vehicle: unique_ids are unique", unique);
    TEST_CHECK("vehicle: object_id and default_entity_id", objid);
    TEST_CHECK("vehicle: device block", dev);
    TEST_CHECK("vehicle: availability all of bridge and vehicle", avail);
    TEST_CHECK("vehicle: origin", origin);
    TEST_CHECK("vehicle: state topics below the vehicle", state);

    const char *s = find(&m, "sensor", "battery_level");
    TEST_CHECK("battery sensor", s && strstr(s, "\"state_topic\":\"toyota2mqtt/" VIN "/electric\"") &&
               strstr(s, "\"device_class\":\"battery\"") && strstr(s, "\"unit_of_measurement\":\"%\"") &&
               strstr(s, "\"state_class\":\"measurement\"") &&
               strstr(s, "\"value_template\":\"{{ value_json.get('batteryLevel') }}\""));
    s = find(&m, "sensor", "last_trip_start");
    TEST_CHECK("timestamp sensor on a derived topic", s &&
               strstr(s, "\"state_topic\":\"toyota2mqtt/" VIN "/trips/last\"") &&
               strstr(s, "\"device_class\":\"timestamp\"") && !strstr(s, "unit_of_measurement") &&
               !strstr(s, "state_class") && strstr(s, "\"json_attributes_topic\":\"toyota2mqtt/" VIN "/trips/last\""));
    s = find(&m, "sensor", "oil_quantity");
    TEST_CHECK("enum sensor with options", s && strstr(s, "\"options\":[\"ok\",\"low\",\"critically_low\"]") &&
               strstr(s, "\"device_class\":\"enum\""));
    s = find(&m, "binary_sensor", "connected");
    TEST_CHECK("connectivity is diagnostic with attributes", s &&
               strstr(s, "\"entity_category\":\"diagnostic\"") && strstr(s, "\"payload_on\":\"ON\"") &&
               strstr(s, "\"json_attributes_template\""));
    s = find(&m, "device_tracker", "location");
    TEST_CHECK("tracker reads GPS attributes", s && strstr(s, "\"source_type\":\"gps\"") &&
               strstr(s, "\"json_attributes_topic\":\"toyota2mqtt/" VIN "/location\"") &&
               !strstr(s, "state_topic"));
    s = find(&m, "event", "notification");
    TEST_CHECK("notification event", s &&
               strstr(s, "\"state_topic\":\"toyota2mqtt/" VIN "/notifications/event\"") &&
               strstr(s, "\"event_types\":[\"alert\",\"message\",\"recall\",\"maintenance\",\"service\"]"));
    s = find(&m, "lock", "lock");
    TEST_CHECK("lock without a code", s && strstr(s, "\"command_topic\":\"toyota2mqtt/" VIN "/lock/set\"") &&
               strstr(s, "\"state_topic\":\"toyota2mqtt/" VIN "/lock/state\"") &&
                strstr(s, "\"state_locking\":\"LOCKING\"") && !strstr(s, "code_format") &&
               !strstr(s, "command_template"));
    s = find(&m, "climate", "climate");
    TEST_CHECK("climate", s && strstr(s, "\"modes\":[\"off\",\"auto\",\"cool\",\"heat\"]") &&
               strstr(s, "\"preset_modes\":[\"defrost\"]") && strstr(s, "\"temperature_unit\":\"F\"") &&
               strstr(s, "\"min_temp\":60") && strstr(s, "\"max_temp\":85") && strstr(s, "\"precision\":1") &&
               strstr(s, "\"fan_modes\":[\"1\",\"2\",\"3\",\"4\",\"5\"]") &&
               strstr(s, "\"mode_command_topic\":\"toyota2mqtt/" VIN "/climate/mode/set\"") &&
               strstr(s, "\"preset_mode_command_topic\":\"toyota2mqtt/" VIN "/climate/preset/set\"") &&
               strstr(s, "\"temperature_command_topic\":\"toyota2mqtt/" VIN "/climate/temperature/set\"") &&
               strstr(s, "\"fan_mode_command_topic\":\"toyota2mqtt/" VIN "/climate/fan/set\""));
    s = find(&m, "button", "horn");
    TEST_CHECK("horn button", s && strstr(s, "\"command_topic\":\"toyota2mqtt/" VIN "/command\"") &&
               strstr(s, "\"payload_press\":\"{\\\"command\\\":\\\"horn\\\"}\""));
    TEST_CHECK("all buttons", find(&m, "button", "lights") && find(&m, "button", "trunk_open") &&
               find(&m, "button", "refresh_status") && find(&m, "button", "refresh_electric") &&
               find(&m, "button", "panic_on") && find(&m, "button", "panic_off"));
    s = find(&m, "text", "alias");
    TEST_CHECK("alias text", s && strstr(s, "\"command_topic\":\"toyota2mqtt/" VIN "/alias/set\"") &&
               strstr(s, "\"max\":64") && strstr(s, "\"entity_category\":\"config\"") &&
               strstr(s, "\"state_topic\":\"toyota2mqtt/" VIN "/vehicle\""));
    msgs_free(&m);
}

/* A petrol car: no electric resource, no climate, nothing allowed. */
static void test_petrol_car(void)
{
    struct hass_opts o = opts();
    struct api_vehicle v = car();
    v.alias[0] = '\0';
    snprintf(v.alias, sizeof v.alias, "Daily driver");
    bool has[RES_COUNT];
    all(has, true);
    has[RES_ELECTRIC] = false;
    has[RES_CLIMATE] = false;
    o.allow = 0;
    int n = hass_vehicle(&o, &v, has, collect, &m);
    bool electric = false, controls = false, alias = true;
    for (size_t i = 0; i < m.n; i++) {
        if (strstr(m.payload[i], "/electric\"") || strstr(m.payload[i], "/climate\"")) electric = true;
        if (strncmp(m.topic[i], "homeassistant/button/", 21) == 0 ||
            strncmp(m.topic[i], "homeassistant/lock/", 19) == 0 ||
            strncmp(m.topic[i], "homeassistant/climate/", 22) == 0 ||
            strncmp(m.topic[i], "homeassistant/text/", 19) == 0)
            controls = true;
        if (!strstr(m.payload[i], "\"name\":\"Daily driver\"")) alias = false;
    }
    TEST_CHECK("petrol car: some entities", n > 30 && (size_t)n == m.n);
    TEST_CHECK("petrol car: no electric or climate entities", !electric);
    TEST_CHECK("petrol car: no battery sensor", !find(&m, "sensor", "battery_level") &&
               !find(&m, "binary_sensor", "charging"));
    TEST_CHECK("nothing allowed: no controls", !controls);
    TEST_CHECK("device named by the alias", alias);
    msgs_free(&m);

    /* allowed, but the resources are missing */
    o.allow = ~0u;
    hass_vehicle(&o, &v, has, collect, &m);
    TEST_CHECK("no climate entity without the climate resource", !find(&m, "climate", "climate"));
    TEST_CHECK("no refresh_electric without the electric resource", !find(&m, "button", "refresh_electric") &&
               find(&m, "button", "refresh_status"));
    msgs_free(&m);
}

static void test_unlock_code(void)
{
    struct hass_opts o = opts();
    struct api_vehicle v = car();
    bool has[RES_COUNT];
    all(has, true);
    o.unlock_code = true;
    o.allow = (1u << CMD_LOCK) | (1u << CMD_UNLOCK) | (1u << CMD_TRUNK_OPEN) | (1u << CMD_HORN);
    hass_vehicle(&o, &v, has, collect, &m);
    const char *s = find(&m, "lock", "lock");
    TEST_CHECK("lock with a code", s && strstr(s, "\"code_format\":\"^.*$\"") &&
               strstr(s, "\"command_template\":\"{\\\"action\\\":\\\"{{ value }}\\\",\\\"code\\\":{{ code | tojson }}}\""));
    TEST_CHECK("no trunk button when a code is needed", !find(&m, "button", "trunk_open"));
    TEST_CHECK("only allowed buttons", find(&m, "button", "horn") && !find(&m, "button", "lights"));
    TEST_CHECK("no climate when climate commands are not allowed", !find(&m, "climate", "climate"));
    msgs_free(&m);
}

static void test_names_and_errors(void)
{
    struct hass_opts o = opts();
    struct api_vehicle v = { .vin = VIN };
    bool has[RES_COUNT];
    all(has, false);
    has[RES_VEHICLE] = true;
    hass_vehicle(&o, &v, has, collect, &m);
    TEST_CHECK("device named by the VIN when nothing else is known",
               m.n > 0 && strstr(m.payload[0], "\"name\":\"" VIN "\"") &&
               !strstr(m.payload[0], "manufacturer") && !strstr(m.payload[0], "model_id"));
    msgs_free(&m);

    struct api_vehicle bad = { .vin = "jtmab3fv5pd123456" };
    TEST_CHECK("lower-case VIN refused", hass_vehicle(&o, &bad, has, collect, &m) == -1 && m.n == 0);
    struct api_vehicle bad2 = { .vin = "JTMAB3FV5PD12345/" };
    TEST_CHECK("VIN with a slash refused", hass_vehicle(&o, &bad2, has, collect, &m) == -1);
    o.prefix = "";
    TEST_CHECK("empty prefix refused", hass_vehicle(&o, &v, has, collect, &m) == -1);
    TEST_CHECK("no options refused", hass_vehicle(NULL, &v, has, collect, &m) == -1 &&
                                     hass_bridge(NULL, collect, &m) == -1);
    msgs_free(&m);

    char id[64];
    o = opts();
    o.base = "home/cars.v2";
    TEST_CHECK("bridge id sanitised", hass_bridge_id(&o, id, sizeof id) == 0 &&
               strcmp(id, "toyota2mqtt_bridge_home_cars_v2") == 0);
    TEST_CHECK("bridge id that does not fit", hass_bridge_id(&o, id, 10) == -1);
    v = car();
    all(has, true);
    hass_vehicle(&o, &v, has, collect, &m);
    TEST_CHECK("custom base in topics and via_device", m.n > 0 &&
               strstr(m.payload[0], "\"via_device\":\"toyota2mqtt_bridge_home_cars_v2\"") &&
               strstr(m.payload[0], "\"topic\":\"home/cars.v2/bridge/state\"") &&
               strstr(m.payload[0], "home/cars.v2/" VIN "/vehicle"));
    msgs_free(&m);
}

static void test_bridge(void)
{
    struct hass_opts o = opts();
    int n = hass_bridge(&o, collect, &m);
    TEST_CHECK("bridge: six entities", n == 6 && m.n == 6);
    const char *prob = find(&m, "binary_sensor", "problem");
    TEST_CHECK("bridge: a problem sensor on bridge/error", prob &&
               strstr(prob, "\"state_topic\":\"toyota2mqtt/bridge/error\"") &&
               strstr(prob, "\"device_class\":\"problem\""));
    const char *s = find(&m, "binary_sensor", "state");
    TEST_CHECK("bridge: connection state", s &&
               strstr(m.topic[0], "homeassistant/binary_sensor/toyota2mqtt_bridge_toyota2mqtt/state/config") &&
               strstr(s, "\"state_topic\":\"toyota2mqtt/bridge/state\"") &&
               strstr(s, "\"payload_on\":\"online\"") && strstr(s, "\"payload_off\":\"offline\"") &&
               strstr(s, "\"device_class\":\"connectivity\"") && !strstr(s, "availability") &&
               strstr(s, "\"unique_id\":\"t2m_toyota2mqtt_bridge_toyota2mqtt_state\"") &&
               strstr(s, "\"default_entity_id\":\"binary_sensor.toyota2mqtt_bridge_state\""));
    s = find(&m, "sensor", "last_success");
    TEST_CHECK("bridge: last success", s && strstr(s, "\"state_topic\":\"toyota2mqtt/bridge/stats\"") &&
               strstr(s, "\"device_class\":\"timestamp\"") &&
               strstr(s, "\"availability\":[{\"topic\":\"toyota2mqtt/bridge/state\"}]"));
    s = find(&m, "sensor", "version");
    TEST_CHECK("bridge: version", s && strstr(s, "\"state_topic\":\"toyota2mqtt/bridge/info\""));
    TEST_CHECK("bridge: errors and calls", find(&m, "sensor", "last_error") && find(&m, "sensor", "api_calls_today"));
    bool diag = true, dev = true;
    for (size_t i = 0; i < m.n; i++) {
        cJSON *p = cJSON_Parse(m.payload[i]);
        if (!p || !str(p, "entity_category") || strcmp(str(p, "entity_category"), "diagnostic") != 0) diag = false;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(p, "device");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(d, "identifiers");
        if (!cJSON_IsArray(ids) || strcmp(cJSON_GetArrayItem(ids, 0)->valuestring, "toyota2mqtt_bridge_toyota2mqtt") != 0 ||
            strcmp(str(d, "sw_version"), "1.2.3") != 0 || !str(d, "name"))
            dev = false;
        cJSON_Delete(p);
    }
    TEST_CHECK("bridge: all diagnostic", diag);
    TEST_CHECK("bridge: device", dev);
    msgs_free(&m);
}

static void test_owns(void)
{
    struct hass_opts o = opts();
    struct api_vehicle v = car();
    bool has[RES_COUNT];
    char node[64];
    all(has, true);
    hass_vehicle(&o, &v, has, collect, &m);
    hass_bridge(&o, collect, &m);
    bool own = true;
    for (size_t i = 0; i < m.n; i++) {
        node[0] = '\0';
        if (!hass_owns_config(&o, m.topic[i], m.payload[i], strlen(m.payload[i]), node, sizeof node))
            own = false;
        if (strcmp(node, VIN) != 0 && strcmp(node, "toyota2mqtt_bridge_toyota2mqtt") != 0) own = false;
    }
    TEST_CHECK("owns every config it builds, node is VIN or bridge id", own);
    const char *t = m.topic[0], *p = m.payload[0];
    size_t len = strlen(p);
    struct hass_opts other = opts();
    other.base = "elsewhere";
    TEST_CHECK("another base's configs are not ours", !hass_owns_config(&other, t, p, len, NULL, 0));
    other = opts();
    other.prefix = "ha";
    TEST_CHECK("another prefix is not ours", !hass_owns_config(&other, t, p, len, NULL, 0));
    TEST_CHECK("empty payload: nothing to clear", !hass_owns_config(&o, t, "", 0, NULL, 0));
    TEST_CHECK("garbage payload", !hass_owns_config(&o, t, "{not json", 9, NULL, 0));
    const char *foreign = "{\"device\":{\"identifiers\":[\"zigbee2mqtt_0x1\"]}}";
    TEST_CHECK("foreign device", !hass_owns_config(&o, t, foreign, strlen(foreign), NULL, 0));
    const char *abbr = "{\"dev\":{\"ids\":\"toyota2mqtt_bridge_toyota2mqtt\"}}";
    TEST_CHECK("abbreviated device of ours",
               hass_owns_config(&o, "homeassistant/sensor/toyota2mqtt_bridge_toyota2mqtt/old/config",
                                abbr, strlen(abbr), node, sizeof node) &&
               strcmp(node, "toyota2mqtt_bridge_toyota2mqtt") == 0);
    const char *shapes[] = {
        "homeassistant/sensor/" VIN "/x",                     /* no /config */
        "homeassistant/sensor/" VIN "/config",                /* no object id */
        "homeassistant/sensor/" VIN "/a/b/config",            /* too deep */
        "homeassistant/light/" VIN "/x/config",               /* not our component */
        "homeassistant/sensor/" VIN "/a b/config",            /* bad id */
        "homeassistant/sensor//x/config",
        "homeassistantx/sensor/" VIN "/x/config",
        "homeassistant",
        "",
    };
    bool shape = true;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (hass_owns_config(&o, shapes[i], p, len, NULL, 0)) { shape = false; printf("# owned %s\n", shapes[i]); }
    TEST_CHECK("topics of other shapes are not ours", shape);
    TEST_CHECK("node buffer too small", !hass_owns_config(&o, t, p, len, node, 4));
    msgs_free(&m);
}

int main(void)
{
    test_full_vehicle();
    test_petrol_car();
    test_unlock_code();
    test_names_and_errors();
    test_bridge();
    test_owns();
    return TEST_REPORT();
}
