"""Commands, end to end: a real mosquitto, the simulator (and its request log)
and the bridge.

Every command, from the generic topic and from each Home Assistant control's
own command topic and payload (read from the retained discovery messages),
makes exactly the API call it should, gets exactly one result, and the state
topics then show the change (confirmed). Every rejection yields one error
result and no API call at all: invalid JSON, unknown command, wrong types,
out-of-range and non-enum values, unknown fields, oversized payloads, bad
aliases, retained messages, unknown or garbage VINs, disallowed commands,
missing or wrong unlock codes. MQTT v5 request/response, message expiry,
max_age_s, per-vehicle ordering and independence between vehicles.
"""
import json
import os
import time

import harness as h
import jinja_mini

t = h.Checker()
START = time.time()
ALL = ["lock", "unlock", "horn", "lights", "panic_on", "panic_off", "trunk_open", "climate_start",
       "climate_stop", "climate_settings", "refresh_status", "refresh_electric", "set_alias"]
RESULT_KEYS = {"id", "command", "ok", "requestId", "returnCode", "status", "error", "confirmed"}
POLL = {"vehicles": 3600, "vehicle": 600, "status": 600, "health": 3600, "location": 600,
        "electric": 600, "climate": 600, "trips": 3600, "notifications": 3600,
        "service_history": 86400}
DEVICE_ID, DEVICE_TYPE = "t2m-test-device", "test-bridge"
CODE = "Unl0ckZq7x42"

mq = h.Mosquitto()
watch = h.MqttClient(mq.port)
watch.subscribe("#")


class Setup:
    """A simulator and a bridge (own base topic, own fleet seed) on the shared broker."""

    def __init__(self, base, seed, commands, args=(), vehicles=4, api_more=""):
        self.base = base
        self.sim = h.Sim(vehicles=vehicles, seed=seed, extra=["--command-delay", "0"] + list(args))
        self.conf = os.path.join(h.tmpdir(), base + ".conf")
        h.write_config(self.conf, self.sim.base_url, mq.port, base=base, poll=POLL,
                       api_extra='  max_connections = 8;\n  device_id = "%s";\n  device_type = "%s";\n%s'
                       % (DEVICE_ID, DEVICE_TYPE, api_more),
                       extra="commands = { %s };" % commands)
        with open(self.conf) as f:
            text = f.read()
        with open(self.conf, "w") as f:
            f.write(text.replace('client_id = "t2m-test-%d"' % os.getpid(),
                                 'client_id = "t2m-cmd-%d-%s"' % (os.getpid(), base)))
        st, vl = self.sim.get("/vehicles")
        self.vehicles = vl["data"]
        self.vins = [v["vin"] for v in self.vehicles]
        self.bridge = None
        self.runs = []

    def start(self):
        self.bridge = h.Bridge(self.conf, name="bridge-" + self.base)
        self.runs.append(self.bridge)

    def ready(self, timeout=30):
        """Waits until every vehicle's status and climate are published and
        discovery has settled (the lock's config of the last vehicle)."""
        end = time.time() + timeout
        for vin in self.vins:
            for res in ("status", "climate", "vehicle"):
                if not watch.wait_for(lambda m, tp="%s/%s/%s" % (self.base, vin, res): m.topic == tp,
                                      max(0.1, end - time.time())):
                    return False
        return True

    def writes(self, since=0):
        return [r for r in self.sim.requests()[since:] if r["method"] != "GET"]

    def nreq(self):
        return len(self.sim.requests())

    def guid(self, vin):
        return next(v["guid"] for v in self.vehicles if v["vin"] == vin)


def latest(topic, before=None):
    """The newest payload seen on topic (among the first `before` messages)."""
    msgs = watch.since(0)[:before] if before is not None else watch.since(0)
    for m in reversed(msgs):
        if m.topic == topic:
            return m.payload
    return None


def latest_json(topic, before=None):
    p = latest(topic, before)
    try:
        return json.loads(p.decode()) if p else None
    except ValueError:
        return None


def results_between(s, vin, a, b=None):
    msgs = watch.since(a)
    if b is not None:
        msgs = msgs[:b - a]
    return [m for m in msgs if m.topic == "%s/%s/command/result" % (s.base, vin)]


class Sender:
    """Sends commands one at a time and checks that each got exactly one result."""

    def __init__(self, s):
        self.s = s
        self.open = None        # (name, vin, mark) of the last command, for the once-only check

    def close_window(self):
        if self.open:
            name, vin, mk = self.open
            n = len(results_between(self.s, vin, mk))
            t.check("%s: exactly one result" % name, n == 1, "%d results" % n)
            self.open = None

    def send(self, name, vin, suffix, payload, timeout=15, want_id=None, **kw):
        """Publishes payload on <base>/<vin>/<suffix>; returns (result dict or None,
        write calls made, index of the result message)."""
        self.close_window()
        n0 = self.s.nreq()
        mk = watch.mark()
        topic = "%s/%s/%s" % (self.s.base, vin, suffix)
        watch.publish(topic, payload, qos=1, **kw)
        rt = "%s/%s/command/result" % (self.s.base, vin)
        m = watch.wait_for(lambda x: x.topic == rt and (want_id is None or x.json().get("id") == want_id),
                           timeout, mk)
        self.open = (name, vin, mk)
        if not m:
            return None, self.s.writes(n0), None
        try:
            res = m.json()
        except ValueError:
            res = {"unparsable": m.payload}
        return res, self.s.writes(n0), None


def call(method, vin, sub, body):
    return {"method": method, "path": "/connected/v1/vehicles/%s%s" % (vin, sub), "body": body}


def strip(calls):
    return [{"method": c["method"], "path": c["path"], "body": c["body"]} for c in calls]


def remote(vin, cmd, **extra):
    return call("POST", vin, "/remote-command", dict({"command": cmd}, **extra))


def climate_cmd(vin, what, **extra):
    return call("POST", vin, "/climate/command", dict({"command": what}, **extra))


def settings(vin, **kw):
    return call("PUT", vin, "/climate", kw)


# ---- part 1: everything allowed -------------------------------------------------

A = Setup("t2m", 42, "allow = [%s]; confirm_delay_s = 1; confirm_attempts = 4;"
          % ", ".join('"%s"' % c for c in ALL))
# A retained command left on the broker before the bridge starts: it must be
# ignored (with a warning), not executed, when the subscription delivers it.
PETROL, HYBRID, PHEV, BEV = A.vins[:4]
watch.publish("t2m/%s/command" % BEV, json.dumps({"command": "horn", "id": "stale-retained"}),
              qos=1, retain=True)
watch.publish("t2m/%s/lock/set" % BEV, "LOCK", qos=1, retain=True)
A.start()
t.check("bridge A: every vehicle's state published", A.ready(), A.bridge.stderr()[-2000:])
time.sleep(1.5)   # the discovery sweep window and the first polls settle

V = PHEV
GUID = A.guid(V)
tx = Sender(A)


def check_ok(name, res, writes, want_calls, confirmed, state=None):
    """A successful command: the result's fields, exactly the API calls, the state."""
    good = res is not None and set(res) == RESULT_KEYS and res["ok"] is True and res["error"] is None
    t.check("%s: result ok with every field" % name, good, res)
    t.check("%s: exactly the expected API calls" % name, strip(writes) == want_calls,
            "got %s want %s" % (strip(writes), want_calls))
    t.check("%s: every call answered 2xx" % name, all(200 <= w["status"] < 300 for w in writes),
            [w["status"] for w in writes])
    if res and want_calls and want_calls[-1]["path"].endswith(("remote-command", "/command", "refresh")):
        t.check("%s: requestId and returnCode from the API" % name,
                res.get("requestId") and res.get("returnCode") == "000000", res)
    t.check("%s: confirmed is %s" % (name, confirmed), res is not None and res.get("confirmed") is confirmed, res)
    if state:
        topic, pred = state
        val = latest_json("%s/%s/%s" % (A.base, V, topic))
        t.check("%s: %s topic shows the change" % (name, topic), val is not None and pred(val), val)


def generic(name, payload, want_calls, confirmed, state=None, vin=None):
    vin = vin or V
    cid = "gen-%s-%d" % (name, int(time.time() * 1000) % 100000)
    body = dict(payload, id=cid)
    res, writes, _ = tx.send("generic " + name, vin, "command", json.dumps(body), want_id=cid)
    t.check("generic %s: id and command echoed" % name,
            res is not None and res.get("id") == cid and res.get("command") == payload["command"], res)
    check_ok("generic " + name, res, writes, want_calls, confirmed, state)
    return res


def status_is(**kw):
    return ("status", lambda s: all(s.get(k) == v for k, v in kw.items()))


def climate_is(**kw):
    return ("climate", lambda s: all(s.get(k) == v for k, v in kw.items()))


# 1a. the generic topic, every command
t_start = time.time()
generic("unlock", {"command": "unlock"}, [remote(V, "unlock")], True, status_is(doorsLocked=False))
t.check("lock/state follows: UNLOCKED", latest("t2m/%s/lock/state" % V) == b"UNLOCKED",
        latest("t2m/%s/lock/state" % V))
generic("lock", {"command": "lock"}, [remote(V, "lock")], True, status_is(doorsLocked=True))
generic("horn", {"command": "horn", "beeps": 2}, [remote(V, "horn", beeps=2)], None)
generic("horn-default", {"command": "horn"}, [remote(V, "horn")], None)
generic("lights", {"command": "lights"}, [remote(V, "lights")], None)
generic("panic_on", {"command": "panic_on"}, [remote(V, "panic_on")], None)
generic("panic_off", {"command": "panic_off"}, [remote(V, "panic_off")], None)
generic("trunk_open", {"command": "trunk_open"}, [remote(V, "trunk_open")], True,
        ("status", lambda s: s.get("doorStatus", {}).get("trunk") == "open"))
generic("climate_start", {"command": "climate_start", "temperature": 75},
        [climate_cmd(V, "start", temperature=75)], True, climate_is(isRunning=True, temperature=75))
generic("climate_settings", {"command": "climate_settings", "temperature": 68, "fanSpeed": 4, "mode": "cool"},
        [settings(V, temperature=68, fanSpeed=4, mode="cool")], True,
        climate_is(temperature=68, fanSpeed=4, mode="cool"))
generic("climate_stop", {"command": "climate_stop"}, [climate_cmd(V, "stop")], True, climate_is(isRunning=False))
before = latest_json("t2m/%s/status" % V)
generic("refresh_status", {"command": "refresh_status"},
        [call("POST", V, "/status/refresh", {"deviceId": DEVICE_ID, "deviceType": DEVICE_TYPE,
                                              "guid": GUID, "vin": V})], True,
        ("status", lambda s: s.get("lastUpdatedAt", "") >= (before or {}).get("lastUpdatedAt", "~")))
generic("refresh_electric", {"command": "refresh_electric"}, [call("POST", V, "/electric/refresh", None)], True)
generic("set_alias", {"command": "set_alias", "alias": "Test Car \u00e9"},
        [call("PUT", V, "", {"alias": "Test Car \u00e9", "guid": GUID})], True,
        ("vehicle", lambda s: s.get("alias") == "Test Car \u00e9"))
print("# generic commands took %.1f s" % (time.time() - t_start), flush=True)

# 1b. Home Assistant controls, driven with exactly what discovery declares
disc = {tp: json.loads(p.decode()) for tp, p in h.retained(mq.port, "homeassistant/+/%s/+/config" % V, 1.0).items()}
lock_cfg = disc.get("homeassistant/lock/%s/lock/config" % V)
clim_cfg = disc.get("homeassistant/climate/%s/climate/config" % V)
text_cfg = disc.get("homeassistant/text/%s/alias/config" % V)
buttons = {tp.split("/")[3]: p for tp, p in disc.items() if tp.startswith("homeassistant/button/")}
t.check("discovery: lock, climate, alias text and 7 buttons for the PHEV",
        lock_cfg and clim_cfg and text_cfg and len(buttons) == 7, sorted(disc))
t.check("discovery: no code_format without an unlock code", lock_cfg and "code_format" not in lock_cfg, lock_cfg)
petrol_disc = h.retained(mq.port, "homeassistant/button/%s/+/config" % PETROL, 0.5)
t.check("discovery: the petrol vehicle has no refresh_electric button",
        petrol_disc and not any(tp.endswith("/refresh_electric/config") for tp in petrol_disc), sorted(petrol_disc))


def ha(name, topic, payload, want_calls, confirmed, state=None):
    base_prefix = "t2m/%s/" % V
    ok_topic = topic.startswith(base_prefix)
    t.check("HA %s: command topic %s is below the vehicle's topics" % (name, topic), ok_topic, topic)
    if not ok_topic:
        return None
    res, writes, _ = tx.send("HA " + name, V, topic[len(base_prefix):], payload)
    check_ok("HA " + name, res, writes, want_calls, confirmed, state)
    return res


def render_state(cfg, key, topic):
    payload = latest("t2m/%s/%s" % (V, topic))
    try:
        return jinja_mini.render(cfg[key], payload.decode())
    except Exception as e:    # noqa: BLE001 - reported as a failure
        return "error: %s" % e


def lock_state(cfg):
    """What Home Assistant shows: the lock's state topic, through its template if it has one."""
    raw = latest(cfg["state_topic"]) or b""
    if "value_template" not in cfg:
        return raw.decode()
    try:
        return jinja_mini.render(cfg["value_template"], raw.decode())
    except Exception as e:    # noqa: BLE001 - reported as a failure
        return "error: %s" % e


if lock_cfg:
    t.check("the HA lock shows locking/unlocking while a command is pending",
            lock_cfg.get("state_locking") == "LOCKING" and lock_cfg.get("state_unlocking") == "UNLOCKING",
            lock_cfg)
    lock_mark = watch.mark()
    ha("lock unlock", lock_cfg["command_topic"], lock_cfg.get("payload_unlock", "UNLOCK"),
       [remote(V, "unlock")], True, status_is(doorsLocked=False))
    states = [m.payload for m in watch.since(lock_mark) if m.topic == "t2m/%s/lock/state" % V]
    t.check("lock/state went UNLOCKING then UNLOCKED", states[-2:] == [b"UNLOCKING", b"UNLOCKED"], states)
    t.check("HA lock state (its own state topic) is UNLOCKED",
            lock_state(lock_cfg) == lock_cfg.get("state_unlocked", "UNLOCKED"), lock_state(lock_cfg))
    ha("lock lock", lock_cfg["command_topic"], lock_cfg.get("payload_lock", "LOCK"),
       [remote(V, "lock")], True, status_is(doorsLocked=True))
    t.check("HA lock state (its own state topic) is LOCKED",
            lock_state(lock_cfg) == lock_cfg.get("state_locked", "LOCKED"), lock_state(lock_cfg))

if clim_cfg:
    mt = clim_cfg["mode_command_topic"]
    for mode in clim_cfg.get("modes", []):
        if mode == "off":
            continue
        ha("climate mode %s" % mode, mt, mode, [settings(V, mode=mode), climate_cmd(V, "start")], True,
           climate_is(mode=mode, isRunning=True))
        t.check("HA climate shows mode %s" % mode,
                render_state(clim_cfg, "mode_state_template", "climate") == mode,
                render_state(clim_cfg, "mode_state_template", "climate"))
    if "off" in clim_cfg.get("modes", []):
        ha("climate mode off", mt, "off", [climate_cmd(V, "stop")], True, climate_is(isRunning=False))
        t.check("HA climate shows mode off", render_state(clim_cfg, "mode_state_template", "climate") == "off",
                render_state(clim_cfg, "mode_state_template", "climate"))
    pt = clim_cfg.get("preset_mode_command_topic")
    for preset in clim_cfg.get("preset_modes", []):
        ha("climate preset %s" % preset, pt, preset, [settings(V, mode=preset), climate_cmd(V, "start")], True,
           climate_is(mode=preset, isRunning=True))
        t.check("HA climate shows preset %s" % preset,
                render_state(clim_cfg, "preset_mode_value_template", "climate") == preset,
                render_state(clim_cfg, "preset_mode_value_template", "climate"))
    if pt:   # Home Assistant sends "none" to leave a preset
        ha("climate preset none", pt, "none", [climate_cmd(V, "stop")], True, climate_is(isRunning=False))
    # Home Assistant publishes the target temperature as a float ("72.0")
    ha("climate temperature", clim_cfg["temperature_command_topic"], "72.0", [settings(V, temperature=72)], True,
       climate_is(temperature=72))
    ha("climate temperature 64.5", clim_cfg["temperature_command_topic"], "64.5", [settings(V, temperature=64.5)],
       True, climate_is(temperature=64.5))
    for fan in clim_cfg.get("fan_modes", [])[:2]:
        ha("climate fan %s" % fan, clim_cfg["fan_mode_command_topic"], fan, [settings(V, fanSpeed=int(fan))], True,
           climate_is(fanSpeed=int(fan)))

BUTTON_CALLS = {
    "horn": [remote(V, "horn")], "lights": [remote(V, "lights")], "trunk_open": [remote(V, "trunk_open")],
    "panic_on": [remote(V, "panic_on")], "panic_off": [remote(V, "panic_off")],
    "refresh_status": [call("POST", V, "/status/refresh", {"deviceId": DEVICE_ID, "deviceType": DEVICE_TYPE,
                                                            "guid": GUID, "vin": V})],
    "refresh_electric": [call("POST", V, "/electric/refresh", None)],
}
BUTTON_CONFIRM = {"trunk_open": True, "refresh_status": True, "refresh_electric": True}
for key, cfg in sorted(buttons.items()):
    ha("button %s" % key, cfg["command_topic"], cfg["payload_press"], BUTTON_CALLS.get(key, ["?"]),
       BUTTON_CONFIRM.get(key))
if text_cfg:
    ha("alias text", text_cfg["command_topic"], "HA Alias", [call("PUT", V, "", {"alias": "HA Alias", "guid": GUID})],
       True, ("vehicle", lambda s: s.get("alias") == "HA Alias"))
    t.check("HA text shows the alias", render_state(text_cfg, "value_template", "vehicle") == "HA Alias",
            render_state(text_cfg, "value_template", "vehicle"))
tx.close_window()
print("# generic + Home Assistant commands took %.1f s" % (time.time() - t_start), flush=True)

# 1c. rejections: one error result each, no API call at all
BIG = json.dumps({"command": "lock", "id": "big", "pad": "x" * 5000})
REJECT = [
    ("invalid JSON", "command", '{"command":'),
    ("not JSON", "command", "unlock"),
    ("empty payload", "command", ""),
    ("JSON array", "command", '["unlock"]'),
    ("unknown command", "command", '{"command":"selfdestruct","id":"r1"}'),
    ("command not a string", "command", '{"command":5}'),
    ("beeps a string", "command", '{"command":"horn","beeps":"2"}'),
    ("beeps fractional", "command", '{"command":"horn","beeps":2.5}'),
    ("temperature a string", "command", '{"command":"climate_start","temperature":"75"}'),
    ("id a number", "command", '{"command":"lock","id":7}'),
    ("beeps 0", "command", '{"command":"horn","beeps":0}'),
    ("beeps 4", "command", '{"command":"horn","beeps":4}'),
    ("temperature 59", "command", '{"command":"climate_start","temperature":59}'),
    ("temperature 86", "command", '{"command":"climate_settings","temperature":86}'),
    ("fanSpeed 0", "command", '{"command":"climate_settings","fanSpeed":0}'),
    ("fanSpeed 6", "command", '{"command":"climate_settings","fanSpeed":6}'),
    ("mode dry", "command", '{"command":"climate_settings","mode":"dry"}'),
    ("no settings", "command", '{"command":"climate_settings"}'),
    ("unknown field", "command", '{"command":"lock","force":true}'),
    ("field of another command", "command", '{"command":"horn","temperature":70}'),
    ("duplicate field", "command", '{"command":"lock","command":"unlock"}'),
    ("escaped NUL", "command", '{"command":"unlock\\u0000"}'),
    ("trailing data", "command", '{"command":"lock"} {"command":"unlock"}'),
    ("payload over 4 KiB", "command", BIG),
    ("empty alias", "command", '{"command":"set_alias","alias":""}'),
    ("alias of 65 characters", "command", json.dumps({"command": "set_alias", "alias": "a" * 65})),
    ("alias with a control character", "command", '{"command":"set_alias","alias":"a\\nb"}'),
    ("alias missing", "command", '{"command":"set_alias"}'),
    ("lock/set lowercase", "lock/set", "unlock"),
    ("lock/set unknown action", "lock/set", "OPEN"),
    ("lock/set JSON unknown field", "lock/set", '{"action":"UNLOCK","force":1}'),
    ("mode dry (HA)", "climate/mode/set", "dry"),
    ("mode upper case (HA)", "climate/mode/set", "AUTO"),
    ("preset eco (HA)", "climate/preset/set", "eco"),
    ("temperature 90 (HA)", "climate/temperature/set", "90"),
    ("temperature -70 (HA)", "climate/temperature/set", "-70"),
    ("temperature text (HA)", "climate/temperature/set", "warm"),
    ("fan 6 (HA)", "climate/fan/set", "6"),
    ("fan auto (HA)", "climate/fan/set", "auto"),
    ("empty alias (HA)", "alias/set", ""),
    ("alias of 65 characters (HA)", "alias/set", "b" * 65),
    ("alias not UTF-8 (HA)", "alias/set", b"\xff\xfe"),
    ("unknown control topic", "climate/power/set", "on"),
]
t_rej = time.time()
for name, suffix, payload in REJECT:
    res, writes, _ = tx.send("reject " + name, V, suffix, payload, timeout=5)
    t.check("reject %s: an error result" % name,
            res is not None and res.get("ok") is False and isinstance(res.get("error"), str) and res["error"]
            and set(res) == RESULT_KEYS, res)
    t.check("reject %s: no API call" % name, writes == [], strip(writes))
tx.close_window()
res = results_between(A, V, 0)
t.check("reject: the id of a parsable request is echoed in its error result",
        any(m.json().get("id") == "r1" and m.json().get("ok") is False for m in res))
print("# %d rejections took %.1f s" % (len(REJECT), time.time() - t_rej), flush=True)

# 1d. the retained messages left before the start: ignored with a warning, never executed
err = A.bridge.stderr()
t.check("retained: no horn or lock call for the vehicle with retained commands",
        not any(BEV in w["path"] for w in A.writes()), strip([w for w in A.writes() if BEV in w["path"]]))
t.check("retained: a warning in the bridge log", "retained" in err and "warn" in err,
        [ln for ln in err.splitlines() if "retained" in ln][:3])
# and one published retained while the bridge runs (the broker forwards it
# live); it must not run either
n0 = A.nreq()
mk = watch.mark()
watch.publish("t2m/%s/command" % BEV, json.dumps({"command": "lights", "id": "live-retained"}), qos=1, retain=True)
m = watch.wait_for(lambda x: x.topic == "t2m/%s/command/result" % BEV and x.json().get("id") == "live-retained", 5, mk)
time.sleep(0.5)
t.check("retained (published live): error result", m is not None and m.json().get("ok") is False,
        m and m.payload or [ln for ln in A.bridge.stderr().splitlines() if "retained" in ln or "BEV" in ln][-5:])
t.check("retained (published live): no API call", A.writes(n0) == [], strip(A.writes(n0)))
for sfx in ("command", "lock/set"):
    watch.publish("t2m/%s/%s" % (BEV, sfx), b"", qos=1, retain=True)   # clear

# 1e. unknown vehicles: a well-formed VIN not of the account, and garbage
n0 = A.nreq()
mk = watch.mark()
FOREIGN = "JTMABCDE0FG123456"
watch.publish("t2m/%s/command" % FOREIGN, '{"command":"lock","id":"foreign"}', qos=1)
m = watch.wait_for(lambda x: x.topic == "t2m/%s/command/result" % FOREIGN, 5, mk)
t.check("unknown VIN: error result", m is not None and m.json().get("ok") is False
        and "unknown vehicle" in (m.json().get("error") or ""), m and m.payload)
GARBAGE = ["..", "jtdks1su28pj960359", "ABC'%2F;DROP", "x" * 40, "JTDS1SU28PJ96035%"]
for g in GARBAGE:
    watch.publish("t2m/%s/command" % g, '{"command":"unlock","id":"garbage"}', qos=1,
                  response_topic="test/garbage-reply", correlation=b"g1")
    watch.publish("t2m/%s/lock/set" % g, "UNLOCK", qos=1)
m = watch.wait_for(lambda x: x.topic == "test/garbage-reply", 5, mk)
time.sleep(1.0)
reqs = A.sim.requests()[n0:]
t.check("unknown and garbage VINs: no API request at all", reqs == [], reqs)
t.check("garbage VIN: the v5 requester gets an error reply", m is not None and m.json().get("ok") is False,
        m and m.payload)
t.check("garbage VIN: no result topic built from it",
        not any(x.topic.endswith("command/result") and any(g in x.topic for g in GARBAGE) for x in watch.since(mk)))

# 1f. MQTT v5 request/response with correlation data
n0 = A.nreq()
mk = watch.mark()
watch.publish("t2m/%s/command" % V, '{"command":"horn","id":"v5"}', qos=1, response_topic="test/reply/1",
              correlation=b"\x00\x01corr-42")
r = watch.wait_for(lambda x: x.topic == "test/reply/1", 10, mk)
g = watch.wait_for(lambda x: x.topic == "t2m/%s/command/result" % V, 10, mk)
t.check("v5: the reply carries the correlation data", r is not None and r.props.get(0x09) == b"\x00\x01corr-42",
        r and r.props)
t.check("v5: the reply is the result", r is not None and r.json().get("id") == "v5" and r.json().get("ok") is True,
        r and r.payload)
t.check("v5: the result also on command/result", g is not None and g.json().get("id") == "v5", g and g.payload)
t.check("v5: one horn call", strip(A.writes(n0)) == [remote(V, "horn")], strip(A.writes(n0)))
mk = watch.mark()
watch.publish("t2m/%s/command" % V, '{"command":"horn","beeps":9}', qos=1, response_topic="test/reply/2",
              correlation=b"c2")
r = watch.wait_for(lambda x: x.topic == "test/reply/2", 10, mk)
t.check("v5: a rejection is replied too", r is not None and r.props.get(0x09) == b"c2"
        and r.json().get("ok") is False, r and (r.payload, r.props))
time.sleep(0.3)

# 1g. failures and timing: the API slow or down
def faults(**kw):
    body = {"error_rate": 0, "latency_ms": 0}
    body.update(kw)
    st, _ = A.sim.admin("POST", "/faults", body)
    return st


# API down: the call fails, one error result, not retried
faults(error_rate=1)
n0 = A.nreq()
res, writes, _ = tx.send("API down", V, "command", '{"command":"horn","id":"down"}', want_id="down")
tx.close_window()
t.check("API down: error result naming the HTTP status", res is not None and res["ok"] is False
        and "HTTP 5" in (res.get("error") or ""), res)
t.check("API down: exactly one attempt", len(writes) == 1, strip(writes))
faults()

# ordering, independence and expiry while the API answers slowly
faults(latency_ms=1500)
n0 = A.nreq()
mk = watch.mark()
t0 = time.time()
watch.publish("t2m/%s/command" % V, '{"command":"horn","id":"o1"}', qos=1)
watch.publish("t2m/%s/command" % V, '{"command":"lights","id":"o2"}', qos=1)
watch.publish("t2m/%s/command" % V, '{"command":"panic_off","id":"o3-expiring"}', qos=1, expiry=1)
watch.publish("t2m/%s/command" % HYBRID, '{"command":"horn","id":"other"}', qos=1)
got = {}
end = time.time() + 15
while len(got) < 4 and time.time() < end:
    for m in watch.since(mk):
        if m.topic.endswith("/command/result"):
            i = m.json().get("id")
            if i in ("o1", "o2", "o3-expiring", "other") and i not in got:
                got[i] = (time.time() - t0, m.json())
    time.sleep(0.05)
faults()
time.sleep(0.5)
order = [m.json().get("id") for m in watch.since(mk) if m.topic == "t2m/%s/command/result" % V]
calls = [(w["path"].rsplit("/", 2)[-2], (w["body"] or {}).get("command")) for w in A.writes(n0)]
t.check("order: the vehicle's commands ran in the order received",
        [c for c in calls if c[0] == V] == [(V, "horn"), (V, "lights")], calls)
t.check("order: results in the order received", "o1" in order and "o2" in order
        and order.index("o1") < order.index("o2"), order)
t.check("expiry: the command with a 1 s expiry failed as expired",
        "o3-expiring" in got and got["o3-expiring"][1]["ok"] is False
        and "expired" in (got["o3-expiring"][1].get("error") or ""), got.get("o3-expiring"))
t.check("expiry: its result came at its deadline, not behind the queue",
        "o3-expiring" in got and got["o3-expiring"][0] < 2.5, got.get("o3-expiring"))
t.check("expiry: never executed late", not any(c == (V, "panic_off") for c in calls), calls)
t.check("independence: the other vehicle's command ran alongside, not after the queue",
        "other" in got and got["other"][1]["ok"] is True and "o2" in got and got["other"][0] < got["o2"][0] - 0.5,
        {k: round(v[0], 2) for k, v in got.items()})
print("# slow API: %s" % {k: round(v[0], 2) for k, v in got.items()}, flush=True)

# a vehicle's failing command (the API refuses it) does not hold up the other vehicle
n0 = A.nreq()
mk = watch.mark()
watch.publish("t2m/%s/command" % PETROL, '{"command":"refresh_electric","id":"fails"}', qos=1)
watch.publish("t2m/%s/command" % PETROL, '{"command":"horn","id":"after-fail"}', qos=1)
m1 = watch.wait_for(lambda x: x.topic.endswith("command/result") and x.json().get("id") == "fails", 10, mk)
m2 = watch.wait_for(lambda x: x.topic.endswith("command/result") and x.json().get("id") == "after-fail", 10, mk)
t.check("failing command: error result (HTTP 404)", m1 is not None and m1.json()["ok"] is False
        and "404" in (m1.json().get("error") or ""), m1 and m1.payload)
t.check("failing command: the next one of the same vehicle still runs", m2 is not None and m2.json()["ok"] is True,
        m2 and m2.payload)

err = A.bridge.stderr()
rc = A.bridge.stop()
t.check("bridge A: clean exit", rc == 0, rc)
t.check("bridge A: no sanitizer report", not h.sanitizer_report(A.bridge.stderr()),
        h.sanitizer_report(A.bridge.stderr()))

# ---- part 2: the default allow list ------------------------------------------------

B = Setup("t2mb", 43, "confirm_delay_s = 1;", api_more="  refresh_daily_limit = 1;")
B.start()
t.check("bridge B: ready", B.ready(), B.bridge.stderr()[-2000:])
VB = B.vins[2]
txb = Sender(B)
for name in ("unlock", "trunk_open", "panic_on"):
    res, writes, _ = txb.send("default allow " + name, VB, "command", json.dumps({"command": name, "id": "d-" + name}),
                              want_id="d-" + name)
    t.check("default allow: %s refused, saying how to allow it" % name,
            res is not None and res["ok"] is False and "commands.allow" in (res.get("error") or ""), res)
    t.check("default allow: %s made no API call" % name, writes == [], strip(writes))
res, writes, _ = txb.send("default allow lock/set UNLOCK", VB, "lock/set", "UNLOCK")
t.check("default allow: UNLOCK from the lock refused", res is not None and res["ok"] is False and writes == [],
        (res, writes))
res, writes, _ = txb.send("default allow lock", VB, "command", '{"command":"lock","id":"d-lock"}', want_id="d-lock")
t.check("default allow: lock still works", res is not None and res["ok"] is True
        and strip(writes) == [remote(VB, "lock")], (res, strip(writes)))
res, writes, _ = txb.send("refresh 1", VB, "command", '{"command":"refresh_status","id":"r1"}', want_id="r1")
t.check("refresh_daily_limit: the first refresh_status of the day runs",
        res is not None and res["ok"] is True and len(writes) == 1, (res, strip(writes)))
res, writes, _ = txb.send("refresh 2", VB, "command", '{"command":"refresh_status","id":"r2"}', want_id="r2")
t.check("refresh_daily_limit: the next one is refused at once, saying why, with no API call",
        res is not None and res["ok"] is False and "api.refresh_daily_limit" in (res.get("error") or "")
        and writes == [], (res, strip(writes)))
calls = latest_json("t2mb/%s/api_calls" % VB)
t.check("api_calls counts the vehicle's commands and its refresh_status",
        calls is not None and calls.get("refresh_status") == 1, calls)
txb.close_window()
bdisc = h.retained(mq.port, "homeassistant/button/%s/+/config" % VB, 0.5)
t.check("default allow: no buttons for trunk_open or panic_on",
        bdisc and not any(tp.split("/")[3] in ("trunk_open", "panic_on") for tp in bdisc), sorted(bdisc))
B.bridge.stop()
t.check("bridge B: no sanitizer report", not h.sanitizer_report(B.bridge.stderr()),
        h.sanitizer_report(B.bridge.stderr()))

# ---- part 3: an unlock code; commands queued while the bridge is away ---------------

C = Setup("t2mc", 44, 'allow = ["lock", "unlock", "trunk_open", "horn"]; unlock_code = "%s"; '
          'confirm_delay_s = 1; max_age_s = 3;' % CODE)
C.start()
t.check("bridge C: ready", C.ready(), C.bridge.stderr()[-2000:])
VC = C.vins[2]
txc = Sender(C)
cdisc = h.retained(mq.port, "homeassistant/lock/%s/lock/config" % VC, 0.5)
clock = json.loads(next(iter(cdisc.values())).decode()) if cdisc else {}
t.check("code: the HA lock declares a code_format and a command_template",
        clock.get("code_format") and clock.get("command_template"), clock)
CASES = [
    ("unlock without a code", "command", '{"command":"unlock","id":"c1"}', False),
    ("unlock with a wrong code", "command", '{"command":"unlock","id":"c2","code":"wrong"}', False),
    ("unlock with a code prefix", "command", json.dumps({"command": "unlock", "code": CODE[:-1]}), False),
    ("trunk_open without a code", "command", '{"command":"trunk_open"}', False),
    ("plain UNLOCK", "lock/set", "UNLOCK", False),
    ("unlock with the code", "command", json.dumps({"command": "unlock", "id": "c3", "code": CODE}), True),
    ("trunk_open with the code", "command", json.dumps({"command": "trunk_open", "code": CODE}), True),
    ("lock without a code", "lock/set", "LOCK", True),
]
if clock.get("command_template"):
    tpl = clock["command_template"]
    CASES += [
        ("HA unlock with the code", "lock/set", jinja_mini.render(tpl, "UNLOCK", code=CODE), True),
        ("HA unlock with a wrong code", "lock/set", jinja_mini.render(tpl, "UNLOCK", code="1234"), False),
        ("HA unlock without a code", "lock/set", jinja_mini.render(tpl, "UNLOCK", code=None), False),
        ("HA lock without a code", "lock/set", jinja_mini.render(tpl, "LOCK", code=None), True),
    ]
for name, sfx, payload, ok in CASES:
    res, writes, _ = txc.send("code: " + name, VC, sfx, payload)
    t.check("code: %s -> %s" % (name, "runs" if ok else "refused"),
            res is not None and res["ok"] is ok and (len(writes) == 1 if ok else writes == []), (res, strip(writes)))
    if not ok:
        t.check("code: %s -> the error says why" % name, res is not None and "code" in (res.get("error") or ""), res)
txc.close_window()

# a command sent while the bridge is away, older than max_age_s when it
# comes back, must not run
C.bridge.stop()
n0 = C.nreq()
watch.publish("t2mc/%s/command" % VC, '{"command":"horn","id":"while-away"}', qos=1)
time.sleep(4.5)
mk = watch.mark()
C.start()
C.ready()
m = watch.wait_for(lambda x: x.topic.endswith("command/result") and x.json().get("id") == "while-away", 4, mk)
t.check("away: a command older than max_age_s is not executed after a restart",
        not any("remote-command" in w["path"] for w in C.writes(n0)), strip(C.writes(n0)))
C.bridge.stop()

# the code never leaks
leaks = [x.topic for x in watch.since(0)
         if CODE.encode() in x.payload and not x.topic.endswith(("/command", "/lock/set"))]
t.check("code: never in any MQTT message the bridge publishes", leaks == [], leaks[:5])
t.check("code: never in the bridge log", all(CODE not in r.stderr() for r in C.runs))
t.check("bridge C: no sanitizer report", not any(h.sanitizer_report(r.stderr()) for r in C.runs),
        [h.sanitizer_report(r.stderr()) for r in C.runs])

elapsed = time.time() - START
print("# test_commands took %.1f s" % elapsed, flush=True)
t.check("the whole test ran in under 2 minutes", elapsed < 120, "%.1f s" % elapsed)
watch.close()
t.done()
