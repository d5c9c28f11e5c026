"""Home Assistant discovery, end to end: every discovery message the real
bridge publishes is checked against Home Assistant's rules for its platform
(hass_rules.py, grounded in homeassistant/components/mqtt/), every template
is rendered against the retained state it reads and compared with the value
the API gave, and birth republish, vehicle removal, the start-up sweep of
stale entities and notification events are exercised for real."""
import json
import os
import time

import harness as h
import hass_rules
import jinja_mini

t = h.Checker()
PREFIX = "homeassistant"

# field key -> (resource topic suffix, function of the resource JSON giving the expected rendering)
def _get(d, *path):
    for p in path:
        d = d.get(p) if isinstance(d, dict) else None
    return d


def _onoff(v, on):
    return "None" if v is None else ("ON" if v in on else "OFF")


EXPECT = {
    "battery_level": ("electric", lambda j: _get(j, "batteryLevel")),
    "battery_range": ("electric", lambda j: _get(j, "batteryRange")),
    "charging_status": ("electric", lambda j: _get(j, "chargingStatus")),
    "plugged_in": ("electric", lambda j: _onoff(_get(j, "pluggedIn"), (True,))),
    "target_temperature": ("climate", lambda j: _get(j, "temperature")),
    "fan_speed": ("climate", lambda j: _get(j, "fanSpeed")),
    "ignition": ("status", lambda j: _onoff(_get(j, "ignition"), ("on",))),
    "door_front_left": ("status", lambda j: _onoff(_get(j, "doorStatus", "frontLeft"), ("open",))),
    "trunk": ("status", lambda j: _onoff(_get(j, "doorStatus", "trunk"), ("open",))),
    "window_front_left": ("status", lambda j: _onoff(_get(j, "windowStatus", "frontLeft"), ("open", "venting"))),
    "oil_quantity": ("health", lambda j: _get(j, "oilQuantity")),
    "health_status": ("health", lambda j: _get(j, "overallStatus")),
    "maintenance_required": ("health", lambda j: _onoff(_get(j, "maintenanceRequired"), (True,))),
    "unread_notifications": ("notifications", lambda j: _get(j, "unreadCount")),
    "parked": ("location", lambda j: _onoff(_get(j, "isParked"), (True,))),
}


def same(a, b):
    if a is None or b is None:
        return a == b
    try:
        return abs(float(a) - float(b)) < 1e-9
    except (TypeError, ValueError):
        return str(a) == str(b)


def discovery(port, settle=2.0):
    out = {}
    for k, v in h.retained(port, PREFIX + "/#", settle).items():
        if k.endswith("/config"):
            try:
                out[k] = json.loads(v.decode("utf-8"))
            except ValueError as ex:
                t.check("discovery payload on %s is UTF-8 JSON" % k, False, "%s: %r" % (ex, v[:400]))
                out[k] = {}
    return out


def wait_settled(port, vins, timeout=60):
    """Waits until every vehicle has its vehicle-level entities and the count is stable."""
    end, last = time.time() + timeout, -1
    while time.time() < end:
        d = discovery(port, 1.0)
        if all(any(("/%s/" % v) in k for k in d) for v in vins) and len(d) == last:
            return d
        last = len(d)
        time.sleep(1)
    return discovery(port)


def main():
    mq = h.Mosquitto()
    sim = h.Sim(vehicles=5, seed=11)
    d = h.tmpdir()
    state_file = os.path.join(d, "state.json")
    conf = h.write_config(os.path.join(d, "b.conf"), sim.base_url, mq.port, base="ha",
                          poll={"vehicles": 10, "notifications": 10},
                          extra='state_file = "%s";' % state_file)
    st, vl = sim.get("/vehicles")
    vins = [v["vin"] for v in vl["data"]]

    # A ghost from an earlier run (a vehicle no longer in the account) and
    # someone else's entity, both retained before the bridge starts.
    pre = h.MqttClient(mq.port)
    ghost_topic = "%s/sensor/JTDKB20U000000000/battery_level/config" % PREFIX
    ghost = {"name": "Battery", "unique_id": "t2m_JTDKB20U000000000_battery_level", "state_topic": "ha/x",
             "device": {"identifiers": ["t2m_JTDKB20U000000000"], "via_device": "toyota2mqtt_bridge_ha"},
             "availability": [{"topic": "ha/bridge/state"}]}
    pre.publish(ghost_topic, json.dumps(ghost), qos=1, retain=True)
    foreign_topic = "%s/sensor/other_device/temperature/config" % PREFIX
    pre.publish(foreign_topic, json.dumps({"name": "T", "state_topic": "x/y", "unique_id": "other1"}),
                qos=1, retain=True)
    pre.close()

    b = h.Bridge(conf)
    try:
        disc = wait_settled(mq.port, vins)
        end = time.time() + 30
        while ghost_topic in disc and time.time() < end:
            time.sleep(1)
            disc = discovery(mq.port, 1.0)
        t.check("a stale entity of this bridge is cleared at start-up", ghost_topic not in disc)
        t.check("someone else's discovery topic is left alone", foreign_topic in disc)
        disc.pop(foreign_topic, None)
        t.check("discovery is published for every vehicle", all(any(("/%s/" % v) in k for k in disc) for v in vins),
                sorted(disc)[:5])
        problems = {}
        for topic, payload in disc.items():
            p = hass_rules.check_discovery(topic, payload)
            if p:
                problems[topic] = p
        t.check("every discovery message passes Home Assistant's schema rules (%d messages)" % len(disc),
                len(disc) > 100 and not problems, list(problems.items())[:5])
        state = h.retained(mq.port, "ha/#", 1.5)
        bad_state, rendered = {}, 0
        for topic, payload in disc.items():
            st_topic = payload.get("state_topic") or payload.get("json_attributes_topic")
            if not st_topic or st_topic not in state:
                continue
            rendered += 1
            p = hass_rules.check_state(payload, state[st_topic].decode())
            if p:
                bad_state[topic] = p
        t.check("every entity's templates render cleanly against its state (%d entities)" % rendered,
                rendered > 100 and not bad_state, list(bad_state.items())[:5])

        wrong, compared = [], 0
        for topic, payload in disc.items():
            uid = payload.get("unique_id", "")
            for key, (res, fn) in EXPECT.items():
                if not uid.endswith("_" + key) or not uid.startswith("t2m_"):
                    continue
                vin = uid[4:21]
                raw = state.get("ha/%s/%s" % (vin, res))
                if raw is None:
                    continue
                want = fn(json.loads(raw))
                got = jinja_mini.render(payload["value_template"], raw.decode())
                compared += 1
                if not (same(got, want) or (want is None and got == "None")):
                    wrong.append((uid, got, want))
        t.check("templates give the values the API holds (%d compared)" % compared,
                compared >= 3 * len(EXPECT) and not wrong, wrong[:5])

        petrol, bev = vins[0], vins[3]
        t.check("a petrol car gets no electric entities",
                not any("/%s/" % petrol in k and "battery_level" in k for k in disc))
        t.check("a battery-electric car gets electric entities",
                any("/%s/battery_level/" % bev in k for k in disc))
        devices = {}
        for topic, payload in disc.items():
            dev = payload.get("device", {})
            for ident in dev.get("identifiers", []):
                devices.setdefault(ident, dev)
        t.check("one device per VIN, linked to the bridge device",
                all(("t2m_" + v) in devices and devices["t2m_" + v].get("via_device") for v in vins), list(devices)[:8])
        named = {v["vin"]: v for v in vl["data"]}
        names_ok = all(devices["t2m_" + v]["name"] == (named[v].get("alias") or
                       "%s %s %s" % (named[v]["year"], named[v]["make"], named[v]["model"])) for v in vins)
        t.check("device name is the alias, else year make model", names_ok,
                [(devices["t2m_" + v]["name"], named[v].get("alias")) for v in vins])
        no_avail = [k for k, p in disc.items() if "/toyota2mqtt_bridge_" not in k and
                    not any(a.get("topic") == "ha/bridge/state" for a in p.get("availability", []))]
        t.check("every vehicle entity is unavailable when the bridge is offline", not no_avail, no_avail[:5])


        # Home Assistant restarts: everything is published again at once.
        watch = h.MqttClient(mq.port)
        watch.subscribe(PREFIX + "/+/+/+/config", "ha/#")
        time.sleep(1)
        mark = watch.mark()
        watch.publish(PREFIX + "/status", "online", qos=1)
        time.sleep(3)
        again = {m.topic for m in watch.since(mark) if not m.retain}
        missing = [k for k in disc if k not in again]
        t.check("Home Assistant's birth message republishes all discovery", not missing, missing[:5])
        t.check("... and the state topics", "ha/%s/status" % petrol in again)

        # A new notification fires one event, of its type.
        mark = watch.mark()
        code, note = sim.admin("POST", "/vehicles/%s/notifications" % petrol,
                               {"type": "recall", "severity": "critical", "title": "Recall 24V-001",
                                "message": "Airbag inflator"})
        t.check("simulator added a notification", code in (200, 201), note)
        ev = watch.wait_for(lambda m: m.topic == "ha/%s/notifications/event" % petrol, 30, mark)
        t.check("a new notification fires an event", ev is not None)
        if ev:
            body = ev.json()
            t.check("the event carries its type and is not retained",
                    body.get("event_type") == "recall" and body.get("id") == note.get("id") and not ev.retain, body)
        time.sleep(12)
        events = [m for m in watch.since(mark) if m.topic.endswith("/notifications/event")]
        t.check("an event fires once, not on every poll", len(events) == 1, len(events))
        watch.close()

        # Restart: seen notifications stay seen; a new one fires once.
        rc = b.stop()
        t.check("bridge stops cleanly", rc == 0, rc)
        watch = h.MqttClient(mq.port)
        watch.subscribe("ha/+/notifications/event")
        b = h.Bridge(conf, name="bridge2")
        time.sleep(6)
        t.check("after a restart, no notification already seen fires again", not watch.since(0),
                [m.payload[:80] for m in watch.since(0)])
        code, note2 = sim.admin("POST", "/vehicles/%s/notifications" % petrol, {"type": "maintenance"})
        ev = watch.wait_for(lambda m: b'"%s"' % note2["id"].encode() in m.payload, 30)
        t.check("after a restart, a new notification fires", ev is not None)
        watch.close()

        # A vehicle leaves the account: its entities go.
        gone = vins[-1]
        sim.admin("DELETE", "/vehicles/%s" % gone)
        end = time.time() + 30
        while time.time() < end and any("/%s/" % gone in k for k in discovery(mq.port, 0.5)):
            time.sleep(1)
        t.check("a vehicle that leaves the account has its entities removed",
                not any("/%s/" % gone in k for k in discovery(mq.port, 0.5)))
    finally:
        rc = b.stop()
        t.check("bridge: no sanitizer report", not h.sanitizer_report(b.stderr()), h.sanitizer_report(b.stderr()))
        sim.stop()
        mq.stop()
    t.done()


main()
