"""hass_rules - Home Assistant's rules for MQTT discovery payloads, as far as
toyota2mqtt's entities use them.

    check_discovery(topic, payload_dict) -> [problem, ...]
    check_state(payload_dict, state_payload) -> [problem, ...]

check_discovery() flags what Home Assistant would reject (schema errors),
drop silently (unknown keys: REMOVE_EXTRA) or warn about. check_state()
renders the entity's templates (with jinja_mini) against a state payload and
flags a result Home Assistant would refuse or warn about.

Sources (home-assistant/core, 2025-2026):
  mqtt/schemas.py      MQTT_ENTITY_COMMON_SCHEMA, MQTT_AVAILABILITY_*,
                       MQTT_ENTITY_DEVICE_INFO_SCHEMA, MQTT_ORIGIN_INFO_SCHEMA
  mqtt/abbreviations.py ABBREVIATIONS, DEVICE_ABBREVIATIONS, ORIGIN_ABBREVIATIONS
  mqtt/const.py        CONF_DEFAULT_ENTITY_ID, AVAILABILITY_MODES, PAYLOAD_NONE
  mqtt/sensor.py       validate_sensor_state_and_device_class_config, _update_state
  mqtt/binary_sensor.py, device_tracker.py, event.py, lock.py, climate.py,
  button.py, text.py   per-platform schemas
  sensor/const.py      SensorDeviceClass, DEVICE_CLASS_UNITS, DEVICE_CLASS_STATE_CLASSES
"""

import datetime
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jinja_mini  # noqa: E402

__all__ = ["check_discovery", "check_state", "expand"]

ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
ENTITY_OBJECT_RE = re.compile(r"^[a-z0-9_]+$")
PAYLOAD_NONE = "None"

# mqtt/abbreviations.py: the abbreviations a payload may use (the subset of
# keys this checker knows about; others are listed in full below).
ABBREVIATIONS = {
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "cmd_t": "command_topic", "cmd_tpl": "command_template",
    "dev": "device", "dev_cla": "device_class", "e": "encoding", "en": "enabled_by_default",
    "ent_cat": "entity_category", "exp_aft": "expire_after", "frc_upd": "force_update",
    "ic": "icon", "json_attr_t": "json_attributes_topic", "json_attr_tpl": "json_attributes_template",
    "max": "max", "min": "min", "max_temp": "max_temp", "min_temp": "min_temp",
    "mode_cmd_t": "mode_command_topic", "mode_cmd_tpl": "mode_command_template",
    "mode_stat_t": "mode_state_topic", "mode_stat_tpl": "mode_state_template", "modes": "modes",
    "name": "name", "obj_id": "object_id", "def_ent_id": "default_entity_id", "o": "origin",
    "off_dly": "off_delay", "ops": "options", "opt": "optimistic", "p": "platform",
    "pl_avail": "payload_available", "pl_not_avail": "payload_not_available",
    "pl_lock": "payload_lock", "pl_unlk": "payload_unlock", "pl_off": "payload_off",
    "pl_on": "payload_on", "pl_prs": "payload_press", "pl_rst": "payload_reset",
    "pl_home": "payload_home", "pl_not_home": "payload_not_home",
    "pr_mode_cmd_t": "preset_mode_command_topic", "pr_mode_cmd_tpl": "preset_mode_command_template",
    "pr_mode_stat_t": "preset_mode_state_topic", "pr_mode_val_tpl": "preset_mode_value_template",
    "pr_modes": "preset_modes", "ret": "retain", "src_type": "source_type", "stat_cla": "state_class",
    "stat_locked": "state_locked", "stat_unlocked": "state_unlocked", "stat_t": "state_topic",
    "stat_tpl": "state_template", "t": "topic", "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
    "fan_mode_cmd_t": "fan_mode_command_topic", "fan_mode_cmd_tpl": "fan_mode_command_template",
    "fan_mode_stat_t": "fan_mode_state_topic", "fan_mode_stat_tpl": "fan_mode_state_template",
    "temp_cmd_t": "temperature_command_topic", "temp_cmd_tpl": "temperature_command_template",
    "temp_stat_t": "temperature_state_topic", "temp_stat_tpl": "temperature_state_template",
    "temp_unit": "temperature_unit", "curr_temp_t": "current_temperature_topic",
    "curr_temp_tpl": "current_temperature_template", "act_t": "action_topic",
    "act_tpl": "action_template", "step": "step",
}
DEVICE_ABBREVIATIONS = {
    "cns": "connections", "cu": "configuration_url", "ids": "identifiers", "name": "name",
    "mf": "manufacturer", "mdl": "model", "mdl_id": "model_id", "hw": "hw_version",
    "sw": "sw_version", "sa": "suggested_area", "sn": "serial_number",
}
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

# mqtt/schemas.py MQTT_ENTITY_DEVICE_INFO_SCHEMA / MQTT_ORIGIN_INFO_SCHEMA:
# unknown keys here make the whole entity invalid.
DEVICE_KEYS = {"identifiers", "connections", "manufacturer", "model", "model_id", "name",
               "hw_version", "serial_number", "sw_version", "via_device", "suggested_area",
               "configuration_url"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
AVAILABILITY_ITEM_KEYS = {"topic", "payload_available", "payload_not_available", "value_template"}
AVAILABILITY_MODES = {"all", "any", "latest"}

# MQTT_ENTITY_COMMON_SCHEMA + MQTT_AVAILABILITY_SCHEMA + MQTT_BASE_SCHEMA.
COMMON_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "payload_available", "payload_not_available", "device", "origin", "enabled_by_default",
    "entity_category", "entity_picture", "icon", "json_attributes_topic",
    "json_attributes_template", "object_id", "default_entity_id", "unique_id", "name",
    "qos", "encoding", "platform",
}
RO_KEYS = {"state_topic", "value_template"}
RW_KEYS = RO_KEYS | {"command_topic", "retain", "optimistic"}

PLATFORMS = {
    "sensor": {
        "keys": RO_KEYS | {"device_class", "expire_after", "force_update",
                           "last_reset_value_template", "options", "suggested_display_precision",
                           "state_class", "unit_of_measurement"},
        "required": {"state_topic"},
    },
    "binary_sensor": {
        "keys": RO_KEYS | {"device_class", "expire_after", "force_update", "off_delay",
                           "payload_on", "payload_off"},
        "required": {"state_topic"},
    },
    "device_tracker": {
        "keys": RO_KEYS | {"payload_home", "payload_not_home", "payload_reset", "source_type"},
        "required": set(),
    },
    "event": {
        "keys": RO_KEYS | {"device_class", "event_types"},
        "required": {"state_topic", "event_types"},
    },
    "lock": {
        "keys": RW_KEYS | {"code_format", "command_template", "payload_lock", "payload_unlock",
                           "payload_open", "payload_reset", "state_jammed", "state_locked",
                           "state_locking", "state_open", "state_opening", "state_unlocked",
                           "state_unlocking"},
        "required": {"command_topic"},
    },
    "button": {
        "keys": {"command_topic", "command_template", "device_class", "payload_press", "retain"},
        "required": {"command_topic"},
    },
    "text": {
        "keys": RW_KEYS | {"command_template", "max", "min", "mode", "pattern"},
        "required": {"command_topic"},
    },
    "climate": {
        "keys": {
            "action_template", "action_topic", "current_humidity_template", "current_humidity_topic",
            "current_temperature_template", "current_temperature_topic", "fan_mode_command_template",
            "fan_mode_command_topic", "fan_modes", "fan_mode_state_template", "fan_mode_state_topic",
            "target_humidity_command_template", "target_humidity_command_topic", "min_humidity",
            "max_humidity", "target_humidity_state_template", "target_humidity_state_topic",
            "mode_command_template", "mode_command_topic", "modes", "mode_state_template",
            "mode_state_topic", "optimistic", "payload_on", "payload_off", "power_command_topic",
            "power_command_template", "precision", "retain", "preset_mode_command_topic",
            "preset_modes", "preset_mode_command_template", "preset_mode_state_topic",
            "preset_mode_value_template", "swing_mode_command_template", "swing_mode_command_topic",
            "swing_modes", "swing_mode_state_template", "swing_mode_state_topic", "initial",
            "min_temp", "max_temp", "temp_step", "temperature_command_template",
            "temperature_command_topic", "temperature_high_command_template",
            "temperature_high_command_topic", "temperature_high_state_topic",
            "temperature_high_state_template", "temperature_low_command_template",
            "temperature_low_command_topic", "temperature_low_state_template",
            "temperature_low_state_topic", "temperature_state_template", "temperature_state_topic",
            "temperature_unit", "value_template",
        },
        "required": set(),
    },
}

# sensor/const.py SensorDeviceClass.
SENSOR_CLASSES = {
    "date", "enum", "timestamp", "absolute_humidity", "apparent_power", "aqi", "area",
    "atmospheric_pressure", "battery", "blood_glucose_concentration", "carbon_monoxide",
    "carbon_dioxide", "conductivity", "current", "data_rate", "data_size", "distance", "duration",
    "energy", "energy_distance", "energy_storage", "frequency", "gas", "humidity", "illuminance",
    "irradiance", "moisture", "monetary", "nitrogen_dioxide", "nitrogen_monoxide", "nitrous_oxide",
    "ozone", "ph", "pm1", "pm10", "pm25", "pm4", "power_factor", "power", "precipitation",
    "precipitation_intensity", "pressure", "reactive_energy", "reactive_power", "signal_strength",
    "sound_pressure", "speed", "sulphur_dioxide", "temperature", "temperature_delta",
    "volatile_organic_compounds", "volatile_organic_compounds_parts", "voltage", "volume",
    "volume_storage", "volume_flow_rate", "water", "weight", "wind_direction", "wind_speed",
}
NON_NUMERIC_SENSOR_CLASSES = {"date", "enum", "timestamp"}
# binary_sensor BinarySensorDeviceClass.
BINARY_SENSOR_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
}
BUTTON_CLASSES = {"identify", "restart", "update"}
EVENT_CLASSES = {"button", "doorbell", "motion"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}

# sensor/const.py DEVICE_CLASS_UNITS, for the classes toyota2mqtt uses
# (UnitOfLength, UnitOfTime subset, UnitOfSpeed + UnitOfVolumetricFlux,
# UnitOfTemperature, PERCENTAGE).
DEVICE_CLASS_UNITS = {
    "battery": {"%"},
    "distance": {"mm", "cm", "m", "km", "in", "ft", "yd", "mi", "nmi"},
    "duration": {"d", "h", "min", "s", "ms"},
    "speed": {"mm/d", "mm/h", "mm/s", "m/s", "km/h", "in/d", "in/h", "in/s", "ft/s", "mph", "kn",
              "Beaufort"},
    "temperature": {"°C", "°F", "K"},
    "humidity": {"%"},
    "date": {None}, "enum": {None}, "timestamp": {None},
}
# sensor/const.py DEVICE_CLASS_STATE_CLASSES, same classes.
DEVICE_CLASS_STATE_CLASSES = {
    "battery": {"measurement"},
    "distance": {"measurement", "total", "total_increasing"},
    "duration": {"measurement", "total", "total_increasing"},
    "speed": {"measurement"},
    "temperature": {"measurement"},
    "humidity": {"measurement"},
    "date": set(), "enum": set(), "timestamp": set(),
}
HVAC_MODES = {"off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only"}
TEMPLATE_KEYS = {"value_template", "json_attributes_template", "command_template",
                 "availability_template", "mode_state_template", "temperature_state_template",
                 "fan_mode_state_template", "preset_mode_value_template", "action_template",
                 "current_temperature_template", "mode_command_template",
                 "temperature_command_template", "fan_mode_command_template",
                 "preset_mode_command_template"}


def expand(payload):
    """The payload with every abbreviation replaced (as discovery.py does)."""
    out = {}
    for k, v in payload.items():
        out[ABBREVIATIONS.get(k, k)] = v
    if isinstance(out.get("device"), dict):
        out["device"] = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in out["device"].items()}
    if isinstance(out.get("origin"), dict):
        out["origin"] = {ORIGIN_ABBREVIATIONS.get(k, k): v for k, v in out["origin"].items()}
    if isinstance(out.get("availability"), list):
        out["availability"] = [
            {ABBREVIATIONS.get(k, k): v for k, v in a.items()} if isinstance(a, dict) else a
            for a in out["availability"]]
    return out


def _is_str(v):
    return isinstance(v, str)


def _topic_ok(t, wildcards_ok):
    if not isinstance(t, str) or not t or "\0" in t or len(t.encode()) > 65535:
        return False
    if not wildcards_ok and ("+" in t or "#" in t):
        return False
    return True


def _check_topic(topic, component, probs):
    parts = topic.split("/")
    if len(parts) < 5 or parts[-1] != "config":
        probs.append("topic %r is not <prefix>/<component>/<node_id>/<object_id>/config" % topic)
        return None
    comp, node, obj = parts[-4], parts[-3], parts[-2]
    if comp not in PLATFORMS:
        probs.append("component %r not handled" % comp)
    for name, v in (("node_id", node), ("object_id", obj)):
        if not ID_RE.match(v):
            probs.append("%s %r outside [a-zA-Z0-9_-]" % (name, v))
    return comp


def _check_device(dev, probs):
    if not isinstance(dev, dict):
        probs.append("device is not an object")
        return
    for k in dev:
        if k not in DEVICE_KEYS:
            probs.append("device key %r rejects the entity" % k)
    ids = dev.get("identifiers")
    if not ids and not dev.get("connections"):
        probs.append("device needs identifiers or connections")
    if ids is not None:
        idl = ids if isinstance(ids, list) else [ids]
        if not all(_is_str(i) for i in idl):
            probs.append("device identifiers must be strings")
    if not dev.get("name"):
        probs.append("device has no name (Home Assistant logs about it)")
    for k in ("manufacturer", "model", "model_id", "name", "hw_version", "serial_number",
              "sw_version", "via_device", "suggested_area"):
        if k in dev and not _is_str(dev[k]):
            probs.append("device %s must be a string" % k)
    if "configuration_url" in dev and not re.match(r"^(https?|homeassistant)://", str(dev["configuration_url"])):
        probs.append("device configuration_url is not a URL")


def _check_origin(org, probs):
    if not isinstance(org, dict):
        probs.append("origin is not an object")
        return
    for k in org:
        if k not in ORIGIN_KEYS:
            probs.append("origin key %r rejects the entity" % k)
    if not _is_str(org.get("name")) or not org.get("name"):
        probs.append("origin needs a name")
    if "sw_version" in org and not _is_str(org["sw_version"]):
        probs.append("origin sw_version must be a string")
    if "support_url" in org and not re.match(r"^https?://", str(org["support_url"])):
        probs.append("origin support_url is not an http(s) URL")


def _check_availability(p, probs):
    if "availability" in p and "availability_topic" in p:
        probs.append("availability and availability_topic are exclusive")
    if "availability" in p:
        av = p["availability"]
        if not isinstance(av, list) or not av:
            probs.append("availability must be a non-empty list")
            return
        for a in av:
            if not isinstance(a, dict) or "topic" not in a:
                probs.append("availability item needs a topic")
                continue
            for k in a:
                if k not in AVAILABILITY_ITEM_KEYS:
                    probs.append("availability item key %r not allowed" % k)
            if not _topic_ok(a["topic"], True):
                probs.append("availability topic %r invalid" % a["topic"])
    if "availability_mode" in p and p["availability_mode"] not in AVAILABILITY_MODES:
        probs.append("availability_mode %r not one of %s" % (p["availability_mode"], sorted(AVAILABILITY_MODES)))


def _check_templates(p, probs):
    for k in TEMPLATE_KEYS & set(p):
        try:
            jinja_mini.parse(p[k])
        except jinja_mini.TemplateSyntaxError as ex:
            probs.append("%s outside the template subset: %s" % (k, ex))
    if "json_attributes_template" in p and "json_attributes_topic" not in p:
        probs.append("json_attributes_template without json_attributes_topic")


def _check_sensor(p, probs):
    dc, unit, sc = p.get("device_class"), p.get("unit_of_measurement"), p.get("state_class")
    if dc is not None and dc not in SENSOR_CLASSES:
        probs.append("sensor device_class %r unknown" % dc)
    if sc is not None and sc not in STATE_CLASSES:
        probs.append("state_class %r unknown" % sc)
    opts = p.get("options")
    if opts is not None:
        if not isinstance(opts, list) or not opts:
            probs.append("options must be a non-empty list")
        if sc or unit:
            probs.append("options not allowed with state_class or unit_of_measurement")
        if dc != "enum":
            probs.append("options need device_class enum")
    if dc == "enum" and not opts:
        probs.append("enum sensor without options")
    if dc in NON_NUMERIC_SENSOR_CLASSES and (unit is not None or sc is not None):
        probs.append("%s sensor must have no unit_of_measurement or state_class" % dc)
    if dc is not None and dc not in NON_NUMERIC_SENSOR_CLASSES:
        units = DEVICE_CLASS_UNITS.get(dc)
        if units is None:
            probs.append("device_class %r: unit rules not copied into hass_rules" % dc)
        elif unit not in units:
            probs.append("unit %r not allowed for device_class %r (allowed: %s)" % (unit, dc, sorted(u for u in units if u)))
        classes = DEVICE_CLASS_STATE_CLASSES.get(dc)
        if sc is not None and classes is not None and sc not in classes:
            probs.append("state_class %r not allowed for device_class %r" % (sc, dc))
    if "suggested_display_precision" in p and (not isinstance(p["suggested_display_precision"], int) or p["suggested_display_precision"] < 0):
        probs.append("suggested_display_precision must be a non-negative integer")


def _check_platform(comp, p, probs):
    if comp == "sensor":
        _check_sensor(p, probs)
    elif comp == "binary_sensor":
        if p.get("device_class") is not None and p["device_class"] not in BINARY_SENSOR_CLASSES:
            probs.append("binary_sensor device_class %r unknown" % p["device_class"])
        for k in ("payload_on", "payload_off"):
            if k in p and not _is_str(p[k]):
                probs.append("%s must be a string" % k)
    elif comp == "device_tracker":
        if "state_topic" not in p and "json_attributes_topic" not in p:
            probs.append("device_tracker needs state_topic or json_attributes_topic")
        if p.get("source_type", "gps") not in ("gps", "router", "bluetooth", "bluetooth_le"):
            probs.append("source_type %r unknown" % p.get("source_type"))
    elif comp == "event":
        et = p.get("event_types")
        if not isinstance(et, list) or not et or not all(_is_str(e) for e in et):
            probs.append("event_types must be a non-empty list of strings")
        if p.get("device_class") is not None and p["device_class"] not in EVENT_CLASSES:
            probs.append("event device_class %r unknown" % p["device_class"])
    elif comp == "button":
        if p.get("device_class") is not None and p["device_class"] not in BUTTON_CLASSES:
            probs.append("button device_class %r unknown" % p["device_class"])
        if "payload_press" in p and not _is_str(p["payload_press"]):
            probs.append("payload_press must be a string")
    elif comp == "lock":
        if "code_format" in p:
            try:
                re.compile(p["code_format"])
            except (re.error, TypeError):
                probs.append("code_format is not a regex")
    elif comp == "text":
        mx, mn = p.get("max", 255), p.get("min", 0)
        if not isinstance(mx, int) or not isinstance(mn, int) or mn < 0 or mx < 0:
            probs.append("text min/max must be non-negative integers")
        elif mn > mx or mx > 255:
            probs.append("text needs min <= max <= 255")
        if p.get("mode", "text") not in ("text", "password"):
            probs.append("text mode %r unknown" % p.get("mode"))
    elif comp == "climate":
        _check_climate(p, probs)


def _check_climate(p, probs):
    modes = p.get("modes", [])
    if not isinstance(modes, list) or not set(modes) <= HVAC_MODES:
        probs.append("climate modes %r outside %s" % (modes, sorted(HVAC_MODES)))
    if ("preset_mode_command_topic" in p) != ("preset_modes" in p):
        probs.append("preset_mode_command_topic and preset_modes go together")
    if "none" in p.get("preset_modes", []):
        probs.append("preset_modes must not include 'none'")
    if p.get("temperature_unit", "C") not in ("C", "F"):
        probs.append("temperature_unit must be C or F")
    if "precision" in p and p["precision"] not in (0.1, 0.5, 1.0):
        probs.append("precision must be 0.1, 0.5 or 1.0")
    for k in ("min_temp", "max_temp", "temp_step"):
        if k in p and not isinstance(p[k], (int, float)):
            probs.append("%s must be a number" % k)
    if isinstance(p.get("min_temp"), (int, float)) and isinstance(p.get("max_temp"), (int, float)) \
            and p["min_temp"] >= p["max_temp"]:
        probs.append("min_temp must be below max_temp")
    for k in ("fan_modes", "preset_modes"):
        if k in p and (not isinstance(p[k], list) or not all(_is_str(x) for x in p[k])):
            probs.append("%s must be a list of strings" % k)


def check_discovery(topic, payload):
    """Problems Home Assistant would have with this discovery message."""
    probs = []
    if not isinstance(payload, dict):
        return ["payload is not a JSON object"]
    p = expand(payload)
    comp = _check_topic(topic, None, probs)
    if comp not in PLATFORMS:
        return probs
    spec = PLATFORMS[comp]
    for k in p:
        if k not in COMMON_KEYS and k not in spec["keys"]:
            probs.append("%s key %r is not in Home Assistant's schema (dropped silently)" % (comp, k))
    for k in spec["required"]:
        if k not in p:
            probs.append("%s needs %s" % (comp, k))
    for k, v in p.items():
        if k.endswith("_topic") and not _topic_ok(v, k.endswith("state_topic") or k in ("json_attributes_topic", "action_topic", "availability_topic")):
            probs.append("%s %r is not a valid topic" % (k, v))
    if not _is_str(p.get("unique_id")) or not p.get("unique_id"):
        probs.append("no unique_id: the entity cannot be edited or tied to its device")
    if "device" in p:
        _check_device(p["device"], probs)
    else:
        probs.append("no device")
    if "origin" in p:
        _check_origin(p["origin"], probs)
    _check_availability(p, probs)
    _check_templates(p, probs)
    if "name" in p and p["name"] is not None and not _is_str(p["name"]):
        probs.append("name must be a string or null")
    if "icon" in p and (not _is_str(p["icon"]) or ":" not in p["icon"]):
        probs.append("icon %r is not prefix:name" % p.get("icon"))
    cat = p.get("entity_category")
    if cat is not None:
        if cat not in ("config", "diagnostic"):
            probs.append("entity_category %r unknown" % cat)
        elif cat == "config" and comp in ("sensor", "binary_sensor", "event", "device_tracker"):
            probs.append("entity_category config is not allowed on a %s" % comp)
    if "object_id" in p and (not _is_str(p["object_id"]) or not ENTITY_OBJECT_RE.match(p["object_id"])):
        probs.append("object_id %r is not a valid entity object id" % p.get("object_id"))
    if "default_entity_id" in p:
        d = p["default_entity_id"]
        if not _is_str(d) or not re.match(r"^%s\.[a-z0-9_]+$" % comp, d):
            probs.append("default_entity_id %r is not %s.<object_id>" % (d, comp))
        elif "object_id" in p and d != "%s.%s" % (comp, p["object_id"]):
            probs.append("default_entity_id and object_id disagree")
    if "enabled_by_default" in p and not isinstance(p["enabled_by_default"], bool):
        probs.append("enabled_by_default must be a boolean")
    _check_platform(comp, p, probs)
    return probs


# ---- state checks ----------------------------------------------------------

def _iso_tz(s):
    try:
        d = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return False
    return d.tzinfo is not None


def _iso_date(s):
    try:
        datetime.date.fromisoformat(s[:10])
        return len(s) == 10 or _iso_tz(s)
    except ValueError:
        return False


def _render(p, key, payload, probs, **kw):
    try:
        return jinja_mini.render(p[key], payload, **kw)
    except jinja_mini.TemplateError as ex:
        probs.append("%s: %s (Home Assistant would log a template warning/error)" % (key, ex))
        return None


def _check_sensor_state(p, s, probs):
    if s == PAYLOAD_NONE:
        return
    dc = p.get("device_class")
    if p.get("options") is not None:
        if s not in p["options"]:
            probs.append("state %r not in options %s" % (s, p["options"]))
    elif dc == "timestamp":
        if not _iso_tz(s):
            probs.append("timestamp state %r is not ISO 8601 with a timezone" % s)
    elif dc == "date":
        if not _iso_date(s):
            probs.append("date state %r is not an ISO 8601 date" % s)
    elif dc is not None or p.get("unit_of_measurement") or p.get("state_class"):
        if s == "":
            return
        try:
            float(s)
        except ValueError:
            probs.append("numeric sensor state %r is not a number" % s)
    elif len(s) > 255:
        probs.append("state longer than 255 characters")


def check_state(payload, state):
    """Problems Home Assistant would have with state payload `state` (the
    text published on the entity's state topic) for discovery `payload`."""
    probs = []
    p = expand(payload)
    comp = None
    dtid = p.get("default_entity_id", "")
    if "." in dtid:
        comp = dtid.split(".", 1)[0]
    if "value_template" in p:
        s = _render(p, "value_template", state, probs)
    else:
        s = state.strip() if isinstance(state, str) else state
    if s is not None:
        if comp == "sensor":
            _check_sensor_state(p, s, probs)
        elif comp == "binary_sensor":
            if s not in (p.get("payload_on", "ON"), p.get("payload_off", "OFF"), PAYLOAD_NONE, ""):
                probs.append("binary_sensor state %r is neither payload_on nor payload_off" % s)
        elif comp == "lock":
            if s not in (p.get("state_locked", "LOCKED"), p.get("state_unlocked", "UNLOCKED"),
                         p.get("payload_reset", "None"), "LOCKING", "UNLOCKING", "JAMMED"):
                probs.append("lock state %r unknown" % s)
        elif comp == "text":
            if len(s) > p.get("max", 255) or len(s) < p.get("min", 0):
                probs.append("text state length %d outside min/max" % len(s))
        elif comp == "event":
            try:
                ev = json.loads(s)
            except ValueError:
                ev = None
            if not isinstance(ev, dict) or ev.get("event_type") not in p.get("event_types", []):
                probs.append("event payload %r has no known event_type" % s[:80])
    if "json_attributes_topic" in p:
        a = _render(p, "json_attributes_template", state, probs) if "json_attributes_template" in p else state
        if a is not None:
            try:
                if not isinstance(json.loads(a), dict):
                    probs.append("json attributes are not an object")
            except ValueError:
                probs.append("json attributes are not JSON: %r" % a[:80])
    if comp == "climate":
        # climate.py _handle_mode_received: "None" resets the mode; anything
        # else outside the list is a warning.
        for key, allowed in (("mode_state_template", list(p.get("modes", [])) + [PAYLOAD_NONE]),
                             ("fan_mode_state_template", list(p.get("fan_modes", [])) + [PAYLOAD_NONE]),
                             ("preset_mode_value_template", list(p.get("preset_modes", [])) + ["none", PAYLOAD_NONE])):
            if key in p:
                s2 = _render(p, key, state, probs)
                if s2 is not None and s2 not in allowed:
                    probs.append("%s gives %r, not one of %s" % (key, s2, allowed))
        if "temperature_state_template" in p:
            s2 = _render(p, "temperature_state_template", state, probs)
            if s2 not in (None, PAYLOAD_NONE, ""):
                try:
                    float(s2)
                except ValueError:
                    probs.append("temperature %r is not a number" % s2)
    return probs


if __name__ == "__main__":
    # Self-test (not run by the suite): python3 tests/integration/hass_rules.py
    good = {
        "name": "Battery level", "unique_id": "t2m_X_battery_level",
        "object_id": "x_battery_level", "default_entity_id": "sensor.x_battery_level",
        "device": {"identifiers": ["t2m_X"], "name": "Car"}, "origin": {"name": "toyota2mqtt"},
        "availability": [{"topic": "t/bridge/state"}], "availability_mode": "all",
        "state_topic": "t/X/electric", "value_template": "{{ value_json.get('batteryLevel') }}",
        "device_class": "battery", "unit_of_measurement": "%", "state_class": "measurement",
    }
    t = "homeassistant/sensor/X/battery_level/config"
    assert check_discovery(t, good) == [], check_discovery(t, good)
    assert check_state(good, '{"batteryLevel": 80}') == []
    assert check_state(good, '{}') == []
    bad = dict(good, unit_of_measurement="km", state_class="total", colour="red")
    bad["device"] = dict(good["device"], colour="red")
    probs = check_discovery(t, bad)
    assert any("unit" in x for x in probs) and any("colour" in x for x in probs), probs
    ts = dict(good, device_class="timestamp", unit_of_measurement=None, state_class=None)
    del ts["unit_of_measurement"], ts["state_class"]
    ts["value_template"] = "{{ value_json.get('t') }}"
    assert check_discovery(t, ts) == []
    assert check_state(ts, '{"t": "2024-05-01T10:00:00Z"}') == []
    assert check_state(ts, '{"t": "2024-05-01 10:00"}') != []
    assert check_discovery("homeassistant/sensor/X/a b/config", good) != []
    print("hass_rules self-test ok")
