"""Bridge core, end to end: a real mosquitto, the simulator and the bridge.

Every resource of every vehicle is a retained topic equal (as JSON) to what
the simulator returns; unchanged payloads are not sent again; vehicles join
and leave; bad configurations fail with the promised one-line error.
"""
import json
import os
import re
import subprocess
import time

import harness as h

t = h.Checker()
RESOURCES = {"vehicle": "", "status": "/status", "health": "/health", "location": "/location",
             "electric": "/electric", "climate": "/climate", "notifications": "/notifications",
             "service_history": "/service-history"}


def sim_trips(sim, vin, days=7):
    today = time.strftime("%Y-%m-%d", time.gmtime())
    start = time.strftime("%Y-%m-%d", time.gmtime(time.time() - days * 86400))
    data, offset = [], 0
    while True:
        st, page = sim.get("/vehicles/%s/trips?fromDate=%s&toDate=%s&limit=50&offset=%d"
                           % (vin, start, today, offset))
        data += page["data"]
        offset += len(page["data"])
        if not page["data"] or offset >= page["total"]:
            return {"data": data, "total": page["total"]}


def check_config_errors():
    d = h.tmpdir()

    def run(text, name="bad.conf"):
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write(text)
        r = subprocess.run([h.BRIDGE, "-c", p, "--check-config"], capture_output=True, text=True,
                           timeout=20)
        return r.returncode, r.stderr.strip()

    good = 'api = { base_url = "http://127.0.0.1:1/connected/v1"; token = "x"; };\n'
    rc, err = run(good, "good.conf")
    t.check("config: a minimal valid file passes --check-config", rc == 0, err)
    cases = [
        ("unknown key", good + "poll = { status = 60; stauts = 5; };\n", r"bad\.conf:2\b.*poll\.stauts"),
        ("syntax error", good + "poll = { status = 60 \n", r"bad\.conf:\d+"),
        ("wrong type", good + 'poll = { status = "often"; };\n', r"bad\.conf:2\b.*poll\.status"),
        ("out of range", good + "poll = { status = 1; };\n", r"bad\.conf:2\b.*poll\.status"),
        ("bad url", 'api = { base_url = "ftp://x"; token = "x"; };\n', r"bad\.conf:1\b.*api\.base_url"),
        ("missing token", 'api = { base_url = "http://x/connected/v1"; };\n', r"api\.token"),
        ("bad base topic", good + 'mqtt = { base_topic = "a/#"; };\n', r"bad\.conf:2\b.*mqtt\.base_topic"),
    ]
    for name, text, pattern in cases:
        rc, err = run(text)
        t.check("config: %s -> exit 2 with a one-line error naming file, line and key" % name,
                rc == 2 and len(err.splitlines()) == 1 and re.search(pattern, err), "rc=%s err=%r" % (rc, err))
    r = subprocess.run([h.BRIDGE, "-c", os.path.join(d, "missing.conf"), "--check-config"],
                       capture_output=True, text=True, timeout=20)
    t.check("config: a missing file -> exit 2 naming the file",
            r.returncode == 2 and "missing.conf" in r.stderr, r.stderr)


def check_once(mq, sim):
    d = h.tmpdir()
    conf = h.write_config(os.path.join(d, "b.conf"), sim.base_url, mq.port, base="once")
    b = h.Bridge(conf, ["--once"], name="once")
    rc = b.wait(90)
    t.check("--once exits 0 when everything was fetched", rc == 0, b.stderr()[-2000:])
    t.check("--once: no sanitizer report", not h.sanitizer_report(b.stderr()), h.sanitizer_report(b.stderr()))
    got = h.retained(mq.port, "once/#")
    st, vl = sim.get("/vehicles")
    vins = [v["vin"] for v in vl["data"]]
    missing, wrong = [], []
    for vin in vins:
        for res, path in RESOURCES.items():
            code, want = sim.get("/vehicles/%s%s" % (vin, path))
            topic = "once/%s/%s" % (vin, res)
            if code == 404:
                if topic in got:
                    wrong.append(topic + " published for a 404 resource")
                continue
            if topic not in got:
                missing.append(topic)
                continue
            have = json.loads(got[topic])
            # Time moves in the simulator: compare the fields that do not move with it.
            if res in ("vehicle", "health", "notifications", "service_history") and have != want:
                wrong.append(topic)
            elif set(have) != set(want):
                wrong.append(topic + " keys")
        trips = sim_trips(sim, vin)
        topic = "once/%s/trips" % vin
        if topic not in got:
            missing.append(topic)
        else:
            have = json.loads(got[topic])
            if have["total"] != trips["total"] or [x["id"] for x in have["data"]] != [x["id"] for x in trips["data"]]:
                wrong.append(topic)
            elif have["data"] != trips["data"]:
                wrong.append(topic + " (content)")
            last = got.get("once/%s/trips/last" % vin)
            newest = max(trips["data"], key=lambda x: x["startTime"]) if trips["data"] else {}
            if last is None or json.loads(last) != newest:
                wrong.append("once/%s/trips/last" % vin)
    t.check("every resource topic of every vehicle exists and is retained", not missing, missing)
    t.check("every resource topic equals the simulator's JSON", not wrong, wrong)
    petrol = vins[0]
    t.check("a petrol car has no electric topic (404)", "once/%s/electric" % petrol not in got)
    bev = vins[3]
    t.check("a battery-electric car has an electric topic", "once/%s/electric" % bev in got)
    raw = got.get("once/%s/status" % vins[0], b"")
    t.check("state payloads are compact JSON", b"\n" not in raw and b": " not in raw, raw[:200])
    info = json.loads(got.get("once/bridge/info", b"{}"))
    t.check("bridge/info has version, VINs and config", info.get("version") and
            sorted(info.get("vins", [])) == sorted(vins) and "config" in info, info)
    t.check("bridge/info holds no secret", h.TOKEN not in json.dumps(info))
    t.check("bridge/state is offline after --once", got.get("once/bridge/state") == b"offline",
            got.get("once/bridge/state"))
    field = got.get("once/%s/status/doors_locked" % vins[0])
    t.check("plain per-field topics are published", field in (b"true", b"false"), field)


def check_running(mq, sim):
    d = h.tmpdir()
    conf = h.write_config(os.path.join(d, "run.conf"), sim.base_url, mq.port, base="run",
                          poll={"vehicles": 10, "status": 10, "location": 10, "health": 10,
                                "vehicle": 10})
    watch = h.MqttClient(mq.port)
    watch.subscribe("run/#")
    b = h.Bridge(conf)
    online = watch.wait_for(lambda m: m.topic == "run/bridge/state" and m.payload == b"online", 20)
    t.check("bridge/state goes online", online is not None, b.stderr()[-1500:])
    st, vl = sim.get("/vehicles")
    vins = [v["vin"] for v in vl["data"]]
    first = watch.wait_for(lambda m: m.topic == "run/%s/service_history" % vins[-1], 30)
    t.check("the running bridge publishes state", first is not None)
    # Wait for one more round of status polls, then count publishes per topic.
    mark = watch.mark()
    nreq = len(sim.requests())
    time.sleep(13)
    polled = [r for r in sim.requests()[nreq:] if r["path"].endswith("/health")]
    t.check("resources are polled again on their interval", len(polled) >= len(vins), len(polled))
    last, repeats = {}, []
    for m in watch.since(0):
        if m.topic.endswith("/event") or m.topic.endswith("/result"):
            continue
        if last.get(m.topic) == m.payload:
            repeats.append(m.topic)
        last[m.topic] = m.payload
    t.check("an unchanged payload is never published twice in a row on a topic", not repeats,
            (len(repeats), repeats[:3], [l for l in b.stderr().splitlines()
                                         if " debug " not in l and "vehicle joined" not in l][:12]))
    t.check("availability is online for each vehicle",
            all(h.retained(mq.port, "run/%s/availability" % v, 0.5).get("run/%s/availability" % v) == b"online"
                for v in vins))

    # A vehicle joins the account.
    st, added = sim.admin("POST", "/vehicles")
    t.check("simulator added a vehicle", st in (200, 201) and "vin" in added, added)
    new = added["vin"]
    m = watch.wait_for(lambda m: m.topic == "run/%s/status" % new, 30, mark)
    t.check("a vehicle added to the account is picked up on poll.vehicles", m is not None)
    # And leaves it.
    mark = watch.mark()
    st, _ = sim.admin("DELETE", "/vehicles/%s" % new)
    gone = watch.wait_for(lambda m: m.topic == "run/%s/status" % new and m.payload == b"", 30, mark)
    t.check("a vehicle removed from the account has its state cleared", gone is not None)
    time.sleep(1)
    left = [k for k in h.retained(mq.port, "run/%s/#" % new, 1.0)]
    t.check("no retained topic of a removed vehicle is left", not left, left)
    info = json.loads(h.retained(mq.port, "run/bridge/info", 0.5).get("run/bridge/info", b"{}"))
    t.check("bridge/info follows the account", new not in info.get("vins", []) and len(info.get("vins", [])) == len(vins))

    errs = [l for l in b.stderr().splitlines() if vins[0] in l and "has no electric data" in l]
    t.check("a petrol car's missing electric data is logged once, not per poll", len(errs) == 1, errs)
    start = time.time()
    rc = b.stop()
    took = time.time() - start
    t.check("SIGTERM: exit 0 within 2 seconds", rc == 0 and took < 2.5, (rc, took))
    state = h.retained(mq.port, "run/bridge/state", 0.5).get("run/bridge/state")
    t.check("SIGTERM: bridge/state is offline (retained)", state == b"offline", state)
    t.check("running bridge: no sanitizer report", not h.sanitizer_report(b.stderr()), h.sanitizer_report(b.stderr()))
    secret_leak = h.TOKEN in b.stderr()
    t.check("the token never appears in the log", not secret_leak)
    watch.close()


def check_last_will(mq, sim):
    d = h.tmpdir()
    conf = h.write_config(os.path.join(d, "w.conf"), sim.base_url, mq.port, base="will",
                          mqtt_extra="  keepalive_s = 5;")
    watch = h.MqttClient(mq.port)
    watch.subscribe("will/bridge/state")
    b = h.Bridge(conf)
    t.check("will: online", watch.wait_for(lambda m: m.payload == b"online", 20) is not None)
    mark = watch.mark()
    b.stop(sig=9)
    m = watch.wait_for(lambda m: m.payload == b"offline", 20, mark)
    t.check("kill -9: the last will sets bridge/state offline", m is not None)
    watch.close()


def main():
    check_config_errors()
    mq = h.Mosquitto()
    sim = h.Sim(vehicles=5, seed=7)
    try:
        check_once(mq, sim)
        check_running(mq, sim)
        check_last_will(mq, sim)
    finally:
        t.check("simulator: no sanitizer report", not h.sanitizer_report(sim.stderr()), h.sanitizer_report(sim.stderr()))
        sim.stop()
        mq.stop()
    t.done()


main()
