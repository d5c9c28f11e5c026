/* hass.c - Home Assistant discovery payloads from the field table; see
 * hass.h. Every key used here is one Home Assistant's MQTT schemas accept
 * (homeassistant/components/mqtt/{schemas,sensor,binary_sensor,
 * device_tracker,event,lock,climate,button,text}.py); unknown keys would be
 * dropped silently, unknown device/origin keys reject the entity. */
#include "hass.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fields.h"

#define ORIGIN_NAME "toyota2mqtt"
#define MAX_OWNED_PAYLOAD (256 * 1024)

/* One device's emission: where its entities go and what they share. */
struct ctx {
    const struct hass_opts *o;
    hass_emit_fn emit;
    void *ud;
    const char *node;           /* node_id: VIN or bridge id */
    char uid_prefix[96];        /* "t2m_<VIN>" */
    char obj_prefix[96];        /* "<vin lower>" */
    char topic_prefix[HASS_TOPIC]; /* "<base>/<VIN>" or "<base>/bridge" */
    cJSON *device, *origin, *avail;
    int count;
    int err;
};

/* ---- small JSON helpers (errors accumulate in *err) ---------------------- */

static void add_str(cJSON *o, const char *k, const char *v, int *err)
{
    if (v && !cJSON_AddStringToObject(o, k, v)) *err = 1;
}

static void add_num(cJSON *o, const char *k, double v, int *err)
{
    if (!cJSON_AddNumberToObject(o, k, v)) *err = 1;
}

static void add_bool(cJSON *o, const char *k, bool v, int *err)
{
    if (!cJSON_AddBoolToObject(o, k, v)) *err = 1;
}

static void add_strs(cJSON *o, const char *k, const char *const *list, size_t max, int *err)
{
    cJSON *a = cJSON_AddArrayToObject(o, k);
    if (!a) { *err = 1; return; }
    for (size_t i = 0; i < max && list[i]; i++) {
        cJSON *s = cJSON_CreateString(list[i]);
        if (!s) { *err = 1; return; }
        cJSON_AddItemToArray(a, s);
    }
}

/* Adds a copy of item (which may be NULL: nothing added). */
static void add_copy(cJSON *o, const char *k, const cJSON *item, int *err)
{
    if (!item) return;
    cJSON *d = cJSON_Duplicate(item, 1);
    if (!d) { *err = 1; return; }
    cJSON_AddItemToObject(o, k, d);
}

/* "<topic_prefix>/<suffix>" into buf; sets c->err when it does not fit. */
static const char *topic(struct ctx *c, char *buf, size_t len, const char *suffix)
{
    int n = snprintf(buf, len, "%s/%s", c->topic_prefix, suffix);
    if (n < 0 || (size_t)n >= len) c->err = 1;
    return buf;
}

static bool id_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '-';
}

/* ---- entities ------------------------------------------------------------- */

/* A new entity with what every entity of the device has: name, ids, device,
 * origin, availability. NULL on allocation failure. */
static cJSON *entity_new(struct ctx *c, const char *component, const char *key, const char *name)
{
    char buf[256];
    cJSON *e = cJSON_CreateObject();
    if (!e) { c->err = 1; return NULL; }
    add_str(e, "name", name, &c->err);
    snprintf(buf, sizeof buf, "%s_%s", c->uid_prefix, key);
    add_str(e, "unique_id", buf, &c->err);
    snprintf(buf, sizeof buf, "%s_%s", c->obj_prefix, key);
    add_str(e, "object_id", buf, &c->err);
    char def[300];
    snprintf(def, sizeof def, "%s.%s", component, buf);
    add_str(e, "default_entity_id", def, &c->err);
    add_copy(e, "device", c->device, &c->err);
    add_copy(e, "origin", c->origin, &c->err);
    if (c->avail) {
        add_copy(e, "availability", c->avail, &c->err);
        add_str(e, "availability_mode", "all", &c->err);
    }
    return e;
}

/* "<prefix>/<component>/<node>/<key>/config" into buf. */
static int config_topic(const struct ctx *c, char *buf, size_t len, const char *component,
                        const char *key)
{
    int n = snprintf(buf, len, "%s/%s/%s/%s/config", c->o->prefix, component, c->node, key);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Emits entity e (consumed). */
static void finish(struct ctx *c, const char *component, const char *key, cJSON *e)
{
    char t[HASS_TOPIC];
    if (config_topic(c, t, sizeof t, component, key)) c->err = 1;
    if (c->err) { cJSON_Delete(e); return; }
    char *s = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    if (!s) { c->err = 1; return; }
    c->emit(c->ud, t, s);
    cJSON_free(s);
    c->count++;
}

/* The entity of one field-table row. */
static void field_entity(struct ctx *c, const struct field *f, bool applies)
{
    const char *component = fields_platform_name(f->platform);
    if (!component) return;
    if (!applies) return;
    cJSON *e = entity_new(c, component, f->key, f->name);
    if (!e) return;
    char suffix[128], t[HASS_TOPIC], tpl[1024];
    if (fields_state_suffix(f, suffix, sizeof suffix) ||
        fields_value_template(f, tpl, sizeof tpl)) c->err = 1;
    topic(c, t, sizeof t, suffix);
    if (f->platform == FP_DEVICE_TRACKER) {
        add_str(e, "source_type", "gps", &c->err);
    } else {
        add_str(e, "state_topic", t, &c->err);
        if (tpl[0]) add_str(e, "value_template", tpl, &c->err);
    }
    if (f->platform == FP_EVENT) add_strs(e, "event_types", f->options, FIELDS_MAX_OPTIONS, &c->err);
    if (f->platform == FP_SENSOR && f->options[0])
        add_strs(e, "options", f->options, FIELDS_MAX_OPTIONS, &c->err);
    if (f->platform == FP_BINARY_SENSOR) {
        add_str(e, "payload_on", "ON", &c->err);
        add_str(e, "payload_off", "OFF", &c->err);
    }
    add_str(e, "device_class", f->device_class, &c->err);
    add_str(e, "unit_of_measurement", f->unit, &c->err);
    add_str(e, "state_class", f->state_class, &c->err);
    add_str(e, "icon", f->icon, &c->err);
    if (f->diagnostic) add_str(e, "entity_category", "diagnostic", &c->err);
    if (f->enabled_off) add_bool(e, "enabled_by_default", false, &c->err);
    if (f->attributes) {
        add_str(e, "json_attributes_topic", t, &c->err);
        if (f->attributes[0]) add_str(e, "json_attributes_template", f->attributes, &c->err);
    }
    finish(c, component, f->key, e);
}

static bool allowed(const struct hass_opts *o, enum command_id id)
{
    return (o->allow & (1u << id)) != 0;
}

/* The lock: state from status.doorsLocked, commands on <base>/<VIN>/lock/set. */
static void lock_entity(struct ctx *c, bool applies)
{
    if (!applies) return;
    char t[HASS_TOPIC];
    cJSON *e = entity_new(c, "lock", "lock", "Doors");
    if (!e) return;
    /* <base>/<VIN>/lock/state (cmdexec.c): status.doorsLocked as LOCKED or
     * UNLOCKED, and LOCKING/UNLOCKING while such a command is pending. */
    add_str(e, "state_topic", topic(c, t, sizeof t, "lock/state"), &c->err);
    add_str(e, "command_topic", topic(c, t, sizeof t, "lock/set"), &c->err);
    add_str(e, "payload_lock", "LOCK", &c->err);
    add_str(e, "payload_unlock", "UNLOCK", &c->err);
    add_str(e, "state_locked", "LOCKED", &c->err);
    add_str(e, "state_unlocked", "UNLOCKED", &c->err);
    add_str(e, "state_locking", "LOCKING", &c->err);
    add_str(e, "state_unlocking", "UNLOCKING", &c->err);
    if (c->o->unlock_code) {
        /* Any code (even none, so locking needs none); the bridge checks it
         * for unlocking. The template is the only way the code gets out. */
        add_str(e, "code_format", "^.*$", &c->err);
        add_str(e, "command_template", "{\"action\":\"{{ value }}\",\"code\":{{ code | tojson }}}",
                &c->err);
    }
    finish(c, "lock", "lock", e);
}

/* The climate: HVAC modes off/auto/cool/heat, preset defrost, °F 60..85,
 * fan "1".."5"; state from the climate resource. */
static void climate_entity(struct ctx *c, bool applies)
{
    static const char *const modes[] = { "off", "auto", "cool", "heat", NULL };
    static const char *const presets[] = { "defrost", NULL };
    static const char *const fans[] = { "1", "2", "3", "4", "5", NULL };
    if (!applies) return;
    char t[HASS_TOPIC];
    cJSON *e = entity_new(c, "climate", "climate", "Climate");
    if (!e) return;
    topic(c, t, sizeof t, "climate");
    add_str(e, "mode_state_topic", t, &c->err);
    add_str(e, "temperature_state_topic", t, &c->err);
    add_str(e, "fan_mode_state_topic", t, &c->err);
    add_str(e, "preset_mode_state_topic", t, &c->err);
    add_str(e, "mode_state_template",
            "{{ {'auto': 'auto', 'cool': 'cool', 'heat': 'heat', 'defrost': 'heat', 'off': 'off'}"
            ".get(value_json.get('mode'), 'auto') if value_json.get('isRunning') == true else 'off' }}",
            &c->err);
    add_str(e, "temperature_state_template", "{{ value_json.get('temperature') }}", &c->err);
    /* None (unknown) for a missing or unknown speed: recent Home Assistant
     * takes "None" as "no fan mode" rather than warning. */
    add_str(e, "fan_mode_state_template",
            "{{ value_json.get('fanSpeed') | string if value_json.get('fanSpeed') in [1, 2, 3, 4, 5] "
            "else None }}", &c->err);
    add_str(e, "preset_mode_value_template",
            "{{ 'defrost' if value_json.get('isRunning') == true and "
            "value_json.get('mode') == 'defrost' else 'none' }}", &c->err);
    add_str(e, "mode_command_topic", topic(c, t, sizeof t, "climate/mode/set"), &c->err);
    add_str(e, "preset_mode_command_topic", topic(c, t, sizeof t, "climate/preset/set"), &c->err);
    add_str(e, "temperature_command_topic", topic(c, t, sizeof t, "climate/temperature/set"), &c->err);
    add_str(e, "fan_mode_command_topic", topic(c, t, sizeof t, "climate/fan/set"), &c->err);
    add_strs(e, "modes", modes, 8, &c->err);
    add_strs(e, "preset_modes", presets, 8, &c->err);
    add_strs(e, "fan_modes", fans, 8, &c->err);
    add_str(e, "temperature_unit", "F", &c->err);
    add_num(e, "min_temp", 60, &c->err);
    add_num(e, "max_temp", 85, &c->err);
    add_num(e, "temp_step", 1, &c->err);
    add_num(e, "precision", 1.0, &c->err);
    finish(c, "climate", "climate", e);
}

/* The buttons: each publishes {"command":NAME} on <base>/<VIN>/command. */
static const struct button {
    const char *key, *name, *icon;
    enum command_id cmd;
} buttons[] = {
    { "horn", "Horn", "mdi:bullhorn", CMD_HORN },
    { "lights", "Flash lights", "mdi:car-light-high", CMD_LIGHTS },
    { "trunk_open", "Open trunk", "mdi:car-back", CMD_TRUNK_OPEN },
    { "refresh_status", "Refresh status", "mdi:refresh", CMD_REFRESH_STATUS },
    { "refresh_electric", "Refresh battery", "mdi:battery-sync", CMD_REFRESH_ELECTRIC },
    { "panic_on", "Panic alarm on", "mdi:alarm-light", CMD_PANIC_ON },
    { "panic_off", "Panic alarm off", "mdi:alarm-light-off", CMD_PANIC_OFF },
};

static void button_entity(struct ctx *c, const struct button *b, bool applies)
{
    if (!applies) return;
    char t[HASS_TOPIC], press[64];
    cJSON *e = entity_new(c, "button", b->key, b->name);
    if (!e) return;
    snprintf(press, sizeof press, "{\"command\":\"%s\"}", b->key);
    add_str(e, "command_topic", topic(c, t, sizeof t, "command"), &c->err);
    add_str(e, "payload_press", press, &c->err);
    add_str(e, "icon", b->icon, &c->err);
    finish(c, "button", b->key, e);
}

/* The alias as a text entity (config category). */
static void alias_entity(struct ctx *c, bool applies)
{
    if (!applies) return;
    char t[HASS_TOPIC];
    cJSON *e = entity_new(c, "text", "alias", "Alias");
    if (!e) return;
    add_str(e, "state_topic", topic(c, t, sizeof t, "vehicle"), &c->err);
    add_str(e, "value_template",
            "{{ value_json.get('alias')[:64] if value_json.get('alias') is string else '' }}", &c->err);
    add_str(e, "command_topic", topic(c, t, sizeof t, "alias/set"), &c->err);
    /* 0, not 1: a vehicle without an alias has an empty state, which Home
     * Assistant would refuse under min 1. Submitting an empty alias gets an
     * error result from the bridge (the API requires one). */
    add_num(e, "min", 0, &c->err);
    add_num(e, "max", 64, &c->err);
    add_str(e, "mode", "text", &c->err);
    add_str(e, "icon", "mdi:rename", &c->err);
    add_str(e, "entity_category", "config", &c->err);
    finish(c, "text", "alias", e);
}

/* The vehicle's API calls today (<base>/<VIN>/api_calls, published by the
 * bridge's budget), with the limits and the pause as attributes. */
static void api_calls_entity(struct ctx *c)
{
    char t[HASS_TOPIC];
    cJSON *e = entity_new(c, "sensor", "api_calls", "API calls today");
    if (!e) return;
    add_str(e, "state_topic", topic(c, t, sizeof t, "api_calls"), &c->err);
    add_str(e, "value_template", "{{ value_json.get('calls') }}", &c->err);
    add_str(e, "state_class", "total_increasing", &c->err);
    add_str(e, "icon", "mdi:counter", &c->err);
    add_str(e, "entity_category", "diagnostic", &c->err);
    add_str(e, "json_attributes_topic", t, &c->err);
    finish(c, "sensor", "api_calls", e);
}

/* ---- devices -------------------------------------------------------------- */

int hass_bridge_id(const struct hass_opts *o, char *buf, size_t len)
{
    if (!o || !o->base || !o->base[0]) return -1;
    int n = snprintf(buf, len, "toyota2mqtt_bridge_%s", o->base);
    if (n < 0 || (size_t)n >= len) return -1;
    for (char *p = buf; *p; p++)
        if (!id_char(*p)) *p = '_';
    return 0;
}

static cJSON *origin_new(const struct hass_opts *o, int *err)
{
    cJSON *or = cJSON_CreateObject();
    if (!or) { *err = 1; return NULL; }
    add_str(or, "name", ORIGIN_NAME, err);
    add_str(or, "sw_version", o->version, err);
    if (o->support_url && o->support_url[0]) add_str(or, "support_url", o->support_url, err);
    return or;
}

/* [{"topic": t1}, {"topic": t2}] (t2 may be NULL). */
static cJSON *avail_new(const char *t1, const char *t2, int *err)
{
    cJSON *a = cJSON_CreateArray();
    const char *ts[2] = { t1, t2 };
    if (!a) { *err = 1; return NULL; }
    for (int i = 0; i < 2 && ts[i]; i++) {
        cJSON *it = cJSON_CreateObject();
        if (!it) { *err = 1; break; }
        cJSON_AddItemToArray(a, it);
        add_str(it, "topic", ts[i], err);
    }
    return a;
}

static bool opts_ok(const struct hass_opts *o)
{
    return o && o->prefix && o->prefix[0] && o->base && o->base[0] && o->version;
}

/* The vehicle's device name: its alias, else "<year> <make> <model>", else
 * the VIN. */
static void device_name(const struct api_vehicle *v, char *buf, size_t len)
{
    if (v->alias[0]) { snprintf(buf, len, "%s", v->alias); return; }
    char year[16] = "";
    if (v->year > 0) snprintf(year, sizeof year, "%d", v->year);
    const char *parts[3] = { year, v->make, v->model };
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < 3; i++) {
        if (!parts[i][0]) continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? " " : "", parts[i]);
        if (n < 0 || (size_t)n >= len - used) break;
        used += (size_t)n;
    }
    if (!buf[0]) snprintf(buf, len, "%s", v->vin);
}

static cJSON *vehicle_device(const struct api_vehicle *v, const char *bridge_id, int *err)
{
    char name[API_TEXT * 3 + 32], uid[64];
    cJSON *d = cJSON_CreateObject();
    if (!d) { *err = 1; return NULL; }
    snprintf(uid, sizeof uid, "t2m_%s", v->vin);
    const char *ids[] = { uid, NULL };
    add_strs(d, "identifiers", ids, 1, err);
    device_name(v, name, sizeof name);
    add_str(d, "name", name, err);
    if (v->make[0]) add_str(d, "manufacturer", v->make, err);
    if (v->model[0]) add_str(d, "model", v->model, err);
    if (v->trim[0]) add_str(d, "model_id", v->trim, err);
    add_str(d, "serial_number", v->vin, err);
    add_str(d, "via_device", bridge_id, err);
    return d;
}

static bool vin_ok(const char *vin)
{
    size_t n = 0;
    for (; vin[n]; n++)
        if (!isdigit((unsigned char)vin[n]) && !isupper((unsigned char)vin[n])) return false;
    return n == API_VIN_LEN;
}

static void ctx_free(struct ctx *c)
{
    cJSON_Delete(c->device);
    cJSON_Delete(c->origin);
    cJSON_Delete(c->avail);
}

int hass_vehicle(const struct hass_opts *o, const struct api_vehicle *v,
                 const bool has[RES_COUNT], hass_emit_fn emit, void *ud)
{
    char bridge_id[128], t1[HASS_TOPIC], t2[HASS_TOPIC];
    if (!opts_ok(o) || !v || !has || !emit || !vin_ok(v->vin) ||
        hass_bridge_id(o, bridge_id, sizeof bridge_id))
        return -1;
    struct ctx c = { .o = o, .emit = emit, .ud = ud, .node = v->vin };
    snprintf(c.uid_prefix, sizeof c.uid_prefix, "t2m_%s", v->vin);
    for (size_t i = 0; i <= API_VIN_LEN; i++)
        c.obj_prefix[i] = (char)tolower((unsigned char)v->vin[i]);
    int n1 = snprintf(c.topic_prefix, sizeof c.topic_prefix, "%s/%s", o->base, v->vin);
    int n2 = snprintf(t1, sizeof t1, "%s/bridge/state", o->base);
    int n3 = snprintf(t2, sizeof t2, "%s/%s/availability", o->base, v->vin);
    if (n1 < 0 || (size_t)n1 >= sizeof c.topic_prefix || n2 < 0 || (size_t)n2 >= sizeof t1 ||
        n3 < 0 || (size_t)n3 >= sizeof t2)
        return -1;
    c.device = vehicle_device(v, bridge_id, &c.err);
    c.origin = origin_new(o, &c.err);
    c.avail = avail_new(t1, t2, &c.err);

    size_t nf;
    const struct field *tab = fields_table(&nf);
    for (size_t i = 0; i < nf && !c.err; i++)
        field_entity(&c, &tab[i], has[tab[i].res]);
    if (!c.err)
        lock_entity(&c, has[RES_STATUS] && (allowed(o, CMD_LOCK) || allowed(o, CMD_UNLOCK)));
    if (!c.err)
        climate_entity(&c, has[RES_CLIMATE] && (allowed(o, CMD_CLIMATE_START) ||
                                                allowed(o, CMD_CLIMATE_STOP) ||
                                                allowed(o, CMD_CLIMATE_SETTINGS)));
    for (size_t i = 0; i < sizeof buttons / sizeof buttons[0] && !c.err; i++) {
        const struct button *b = &buttons[i];
        bool ok = allowed(o, b->cmd);
        if (b->cmd == CMD_REFRESH_ELECTRIC) ok = ok && has[RES_ELECTRIC];
        /* A button cannot send a code: with one configured, trunk_open
         * would always be refused. */
        if (b->cmd == CMD_TRUNK_OPEN) ok = ok && !o->unlock_code;
        button_entity(&c, b, ok);
    }
    if (!c.err) alias_entity(&c, allowed(o, CMD_SET_ALIAS));
    if (!c.err) api_calls_entity(&c);
    ctx_free(&c);
    return c.err ? -1 : c.count;
}

/* ---- the bridge device ---------------------------------------------------- */

struct bridge_entity {
    const char *component, *key, *name, *topic, *tpl, *device_class, *state_class, *icon, *attrs;
};

static const struct bridge_entity bridge_entities[] = {
    { "binary_sensor", "state", "Connection state", "state", NULL, "connectivity", NULL, NULL, NULL },
    { "sensor", "version", "Version", "info", "{{ value_json.get('version') }}", NULL, NULL,
      "mdi:tag", NULL },
    { "sensor", "last_success", "Last successful poll", "stats",
      "{{ value_json.get('last_success') }}", "timestamp", NULL, NULL, NULL },
    { "sensor", "last_error", "Last error", "stats",
      "{{ (value_json.get('last_error') or '')[:255] or None }}", NULL, NULL,
      "mdi:alert-circle-outline", "{{ {'at': value_json.get('last_error_at')} | tojson }}" },
    { "sensor", "api_calls_today", "API calls today", "stats",
      "{{ value_json.get('api_calls_today') }}", NULL, "total_increasing", "mdi:counter", NULL },
    /* bridge/error holds {"message","at"} while something is wrong and is
     * emptied when it is not. */
    { "binary_sensor", "problem", "Problem", "error", "{{ 'ON' if value else 'OFF' }}", "problem",
      NULL, NULL, NULL },
};

static void bridge_entity(struct ctx *c, const struct bridge_entity *b)
{
    char t[HASS_TOPIC];
    bool is_state = strcmp(b->key, "state") == 0;
    /* The connection state must not be unavailable when the bridge is
     * offline: it is what says so. */
    cJSON *saved = c->avail;
    if (is_state) c->avail = NULL;
    cJSON *e = entity_new(c, b->component, b->key, b->name);
    c->avail = saved;
    if (!e) return;
    add_str(e, "state_topic", topic(c, t, sizeof t, b->topic), &c->err);
    if (b->tpl) add_str(e, "value_template", b->tpl, &c->err);
    if (is_state) {
        add_str(e, "payload_on", "online", &c->err);
        add_str(e, "payload_off", "offline", &c->err);
    }
    add_str(e, "device_class", b->device_class, &c->err);
    add_str(e, "state_class", b->state_class, &c->err);
    add_str(e, "icon", b->icon, &c->err);
    add_str(e, "entity_category", "diagnostic", &c->err);
    if (b->attrs) {
        add_str(e, "json_attributes_topic", t, &c->err);
        add_str(e, "json_attributes_template", b->attrs, &c->err);
    }
    finish(c, b->component, b->key, e);
}

int hass_bridge(const struct hass_opts *o, hass_emit_fn emit, void *ud)
{
    char bridge_id[128], state[HASS_TOPIC];
    if (!opts_ok(o) || !emit || hass_bridge_id(o, bridge_id, sizeof bridge_id)) return -1;
    struct ctx c = { .o = o, .emit = emit, .ud = ud, .node = bridge_id };
    int n1 = snprintf(c.uid_prefix, sizeof c.uid_prefix, "t2m_%s", bridge_id);
    /* object ids "<base>_bridge_<key>": "toyota2mqtt_bridge_state" */
    int n2 = snprintf(c.obj_prefix, sizeof c.obj_prefix, "%s_bridge", bridge_id + strlen("toyota2mqtt_bridge_"));
    int n3 = snprintf(c.topic_prefix, sizeof c.topic_prefix, "%s/bridge", o->base);
    int n4 = snprintf(state, sizeof state, "%s/bridge/state", o->base);
    if (n1 < 0 || (size_t)n1 >= sizeof c.uid_prefix || n2 < 0 || (size_t)n2 >= sizeof c.obj_prefix ||
        n3 < 0 || (size_t)n3 >= sizeof c.topic_prefix || n4 < 0 || (size_t)n4 >= sizeof state)
        return -1;
    for (char *p = c.obj_prefix; *p; p++) *p = (char)tolower((unsigned char)*p);

    c.device = cJSON_CreateObject();
    if (!c.device) return -1;
    const char *ids[] = { bridge_id, NULL };
    add_strs(c.device, "identifiers", ids, 1, &c.err);
    add_str(c.device, "name", "Toyota2MQTT bridge", &c.err);
    add_str(c.device, "manufacturer", "toyota2mqtt", &c.err);
    add_str(c.device, "model", "Bridge", &c.err);
    add_str(c.device, "sw_version", o->version, &c.err);
    c.origin = origin_new(o, &c.err);
    c.avail = avail_new(state, NULL, &c.err);
    for (size_t i = 0; i < sizeof bridge_entities / sizeof bridge_entities[0] && !c.err; i++)
        bridge_entity(&c, &bridge_entities[i]);
    ctx_free(&c);
    return c.err ? -1 : c.count;
}

/* ---- ownership ------------------------------------------------------------ */

static const char *const components[] = {
    "sensor", "binary_sensor", "device_tracker", "event", "lock", "climate", "button", "text", NULL
};

/* Splits "<component>/<node>/<object>/config" (rest of the topic after the
 * prefix) and checks every part; copies node. */
static bool topic_shape(const char *rest, char *node, size_t nodelen)
{
    const char *parts[4];
    size_t lens[4];
    const char *p = rest;
    for (int i = 0; i < 4; i++) {
        const char *slash = strchr(p, '/');
        parts[i] = p;
        lens[i] = slash ? (size_t)(slash - p) : strlen(p);
        if ((i < 3) != (slash != NULL) || lens[i] == 0) return false;
        p = slash ? slash + 1 : p + lens[i];
    }
    if (lens[3] != 6 || strncmp(parts[3], "config", 6) != 0) return false;
    bool comp = false;
    for (size_t i = 0; components[i]; i++)
        if (strlen(components[i]) == lens[0] && strncmp(components[i], parts[0], lens[0]) == 0)
            comp = true;
    if (!comp) return false;
    for (int i = 1; i < 3; i++)
        for (size_t k = 0; k < lens[i]; k++)
            if (!id_char(parts[i][k])) return false;
    if (node && nodelen) {
        if (lens[1] >= nodelen) return false;
        memcpy(node, parts[1], lens[1]);
        node[lens[1]] = '\0';
    }
    return true;
}

/* Item key of obj, or its abbreviation. */
static const cJSON *member2(const cJSON *obj, const char *key, const char *abbr)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return it ? it : cJSON_GetObjectItemCaseSensitive(obj, abbr);
}

static bool names_bridge(const cJSON *dev, const char *bridge_id)
{
    const cJSON *via = member2(dev, "via_device", "via_device");
    if (cJSON_IsString(via) && via->valuestring && strcmp(via->valuestring, bridge_id) == 0)
        return true;
    const cJSON *ids = member2(dev, "identifiers", "ids"), *it;
    if (cJSON_IsString(ids)) return ids->valuestring && strcmp(ids->valuestring, bridge_id) == 0;
    if (!cJSON_IsArray(ids)) return false;
    cJSON_ArrayForEach(it, ids)
        if (cJSON_IsString(it) && it->valuestring && strcmp(it->valuestring, bridge_id) == 0)
            return true;
    return false;
}

bool hass_owns_config(const struct hass_opts *o, const char *topic_, const char *payload,
                      size_t len, char *node, size_t nodelen)
{
    char bridge_id[128], nodebuf[128];
    if (!opts_ok(o) || !topic_ || !payload || len == 0 || len > MAX_OWNED_PAYLOAD ||
        hass_bridge_id(o, bridge_id, sizeof bridge_id))
        return false;
    size_t pl = strlen(o->prefix);
    if (strncmp(topic_, o->prefix, pl) != 0 || topic_[pl] != '/') return false;
    if (!topic_shape(topic_ + pl + 1, nodebuf, sizeof nodebuf)) return false;
    cJSON *root = cJSON_ParseWithLength(payload, len);
    bool owned = cJSON_IsObject(root) &&
                 names_bridge(member2(root, "device", "dev"), bridge_id);
    cJSON_Delete(root);
    if (owned && node && nodelen) {
        if (strlen(nodebuf) >= nodelen) return false;
        memcpy(node, nodebuf, strlen(nodebuf) + 1);
    }
    return owned;
}
