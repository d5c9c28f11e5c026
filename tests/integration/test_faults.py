"""Cloud faults, end to end: a real mosquitto, the simulator with injected
faults, and the bridge. Every fault is provoked for real; each scenario runs
with its own simulator and bridge, all at once, so the file stays under two
minutes.

- outage (5xx): vehicles go offline, bridge/error says why, the circuit
  breaker polls rarely, the last good state stays, everything recovers and
  bridge/error is cleared; one log line per failure streak;
- truncated bodies and timeouts: the same, and the errors name the cause;
- oversized bodies (api.max_body_bytes): per-resource exponential backoff with
  jitter while other resources and vehicles keep polling; the last good state
  stays;
- 429: Retry-After is honoured by the whole account, nothing goes offline;
- a vehicle the API no longer answers for: other vehicles keep polling;
- api.daily_limit: counted per vehicle per UTC day, published, persisted
  across a restart, polling paused with bridge/error and one log line.
"""
import json
import os
import re
import threading
import time

import harness as h

t = h.Checker()
FAST = {"vehicles": 3600, "vehicle": 10, "status": 10, "location": 10, "climate": 10,
        "notifications": 10, "health": 10, "electric": 3600, "trips": 3600,
        "service_history": 86400}


ReqWatch = h.ReqWatch


def vin_of(e):
    m = re.match(r"/connected/v1/vehicles/([A-Za-z0-9]+)", e["path"])
    return m.group(1) if m else None


def res_of(e):
    m = re.match(r"/connected/v1/vehicles/[A-Za-z0-9]+(/[a-z-]+)?$", e["path"])
    return (m.group(1) or "/") if m else None


def wait(pred, timeout, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def log_lines(bridge, level, pattern):
    rx = re.compile(pattern)
    return [l for l in bridge.stderr().splitlines()
            if (" %s " % level) in l and rx.search(l)]


class Scenario:
    """One simulator, one bridge, one MQTT watcher under base/#."""

    def __init__(self, mq, base, vehicles=2, seed=21, sim_extra=(), poll=None, api_extra="",
                 extra="", timeout_s=None):
        self.mq, self.base = mq, base
        self.sim = h.Sim(vehicles=vehicles, seed=seed, extra=list(sim_extra))
        self.req = ReqWatch(self.sim)
        st, vl = self.sim.get("/vehicles")
        self.vins = [v["vin"] for v in vl["data"]]
        self.d = h.tmpdir()
        self.conf = h.write_config(os.path.join(self.d, base + ".conf"), self.sim.base_url,
                                   mq.port, base=base, poll=poll or FAST, ha=False,
                                   api_extra=api_extra, extra=extra)
        with open(self.conf) as f:
            text = f.read()
        # one MQTT client id per bridge: the broker would otherwise keep
        # taking the session from one bridge to give it to the next
        text = re.sub(r'client_id = "t2m-test-\d+";', 'client_id = "t2m-test-%s-%d";'
                      % (base, os.getpid()), text)
        if timeout_s is not None:
            text = text.replace("timeout_s = 10;", "timeout_s = %d;" % timeout_s)
        with open(self.conf, "w") as f:
            f.write(text)
        self.watch = h.MqttClient(mq.port)
        self.watch.subscribe(base + "/#")
        self.bridge = None

    def start(self, name=None):
        self.bridge = h.Bridge(self.conf, name=name or self.base)
        return self.bridge

    def faults(self, **kw):
        st, body = self.sim.admin("POST", "/faults", kw)
        if st != 200:
            raise RuntimeError("faults %r: %s %s" % (kw, st, body))

    def latest(self, topic):
        with self.watch.cond:
            for m in reversed(self.watch.msgs):
                if m.topic == topic:
                    return m
        return None

    def avail(self, vin):
        m = self.latest("%s/%s/availability" % (self.base, vin))
        return m.payload.decode() if m else None

    def error(self):
        """The current bridge/error: its JSON, {} when cleared, None never published."""
        m = self.latest(self.base + "/bridge/error")
        if m is None:
            return None
        if not m.payload:
            return {}
        try:
            return m.json()
        except ValueError:
            return {"message": "<not JSON: %r>" % m.payload[:80]}

    def retained_state(self, suffixes):
        got = h.retained(self.mq.port, self.base + "/#", settle=1.0)
        return {k: v for k, v in got.items() if any(k.endswith("/" + s) for s in suffixes)}

    def finish(self):
        rc = self.bridge.stop() if self.bridge else 0
        t.check("%s: bridge exits 0 on SIGTERM" % self.base, rc == 0, rc)
        err = self.bridge.stderr() if self.bridge else ""
        rep = h.sanitizer_report(err)
        if rep:
            rep = err[err.find(rep):][:6000]
        t.check("%s: no sanitizer report" % self.base, not rep, rep)
        self.req.stop = True
        self.watch.close()
        self.sim.stop()


def check_recovered(s, what, timeout):
    ok = wait(lambda: all(s.avail(v) == "online" for v in s.vins), timeout)
    t.check("%s: every vehicle is online again after the fault clears" % what, ok,
            {v: s.avail(v) for v in s.vins})
    cleared = wait(lambda: s.error() == {}, 10)
    t.check("%s: bridge/error is cleared (empty retained payload)" % what, cleared, s.error())
    return ok


def check_went_offline(s, what, words, timeout=30):
    off = wait(lambda: all(s.avail(v) == "offline" for v in s.vins), timeout)
    t.check("%s: every vehicle's availability goes offline" % what, off,
            {v: s.avail(v) for v in s.vins})
    err = wait(lambda: (s.error() or {}).get("message"), 10) and s.error()
    msg = (err or {}).get("message", "")
    t.check("%s: bridge/error tells what is wrong (%s)" % (what, " / ".join(words)),
            all(w in msg for w in words) and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                                                       (err or {}).get("at", "")),
            err)
    return off


# ---- 5xx outage, circuit breaker -----------------------------------------------

def scenario_outage(mq):
    s = Scenario(mq, "fo", vehicles=2, seed=21)
    b = s.start()
    up = wait(lambda: all(s.avail(v) == "online" for v in s.vins), 20)
    t.check("outage: vehicles online before the fault", up, b.stderr()[-1500:])
    time.sleep(3)
    before = s.retained_state(["status", "location", "notifications"])
    t_fault = time.time()
    s.faults(error_rate=1.0)
    check_went_offline(s, "outage", ["offline", "HTTP 50"])
    opened = wait(lambda: len(log_lines(b, "warn", "polling the vehicle rarely")) >= len(s.vins), 30)
    t_open = time.time()
    t.check("outage: the circuit breaker opens for each failing vehicle", opened,
            b.stderr()[-1500:])
    time.sleep(14)
    quiet = s.req.since(t_open + 1, lambda e: vin_of(e) is not None)
    per_vin = {v: len([1 for _, e in quiet if vin_of(e) == v]) for v in s.vins}
    t.check("outage: with the breaker open a vehicle is polled rarely (<= 1 request in 13 s, "
            "down from 6 resources every 10 s)", all(n <= 1 for n in per_vin.values()), per_vin)
    during = s.retained_state(["status", "location", "notifications"])
    t.check("outage: the last good state stays published (retained topics unchanged)",
            during == before and len(before) == 3 * len(s.vins),
            [k for k in before if during.get(k) != before[k]][:5])
    streak = {v: len(log_lines(b, "warn", r"vin=%s res=status\] HTTP 50" % v)) for v in s.vins}
    polls = len(s.req.since(t_fault, lambda e: res_of(e) == "/status"))
    t.check("outage: a failure streak is logged once, not once per poll (%d failed status polls)"
            % polls, all(n == 1 for n in streak.values()), streak)
    s.faults(error_rate=0.0)
    t_clear = time.time()
    # The breaker probes after 20 s, then 40 s, ...: recovery waits for the next probe.
    check_recovered(s, "outage", 90)
    t.check("outage: recovery took %.0f s after the fault cleared (breaker probe)"
            % (time.time() - t_clear), True)
    again = log_lines(b, "info", "answers again")
    t.check("outage: the recovery is logged", len(again) >= len(s.vins), again)
    time.sleep(1)
    s.finish()


# ---- truncated bodies, then timeouts -------------------------------------------

def scenario_truncated_timeouts(mq):
    s = Scenario(mq, "ft", vehicles=1, seed=31, timeout_s=1)
    b = s.start()
    up = wait(lambda: all(s.avail(v) == "online" for v in s.vins), 20)
    t.check("truncated: vehicle online before the fault", up, b.stderr()[-1500:])
    time.sleep(3)
    before = s.retained_state(["status", "location", "notifications"])
    s.faults(truncate_rate=1.0)
    check_went_offline(s, "truncated", ["offline", "malformed response"])
    during = s.retained_state(["status", "location", "notifications"])
    t.check("truncated: the last good state stays published", during == before and before,
            [k for k in before if during.get(k) != before[k]][:5])
    logged = log_lines(b, "warn", r"res=status\] malformed response")
    t.check("truncated: logged once per streak", len(logged) == 1, logged)
    s.faults(truncate_rate=0.0)
    check_recovered(s, "truncated", 40)

    time.sleep(1)
    s.faults(latency_ms=2500)
    check_went_offline(s, "timeouts", ["offline", "timed out"])
    s.faults(latency_ms=0)
    check_recovered(s, "timeouts", 40)
    s.finish()


# ---- oversized bodies: per-resource backoff, others keep polling ----------------

def scenario_oversize(mq):
    poll = dict(FAST, trips=10, notifications=10, status=10, vehicle=3600, location=3600,
                climate=3600, health=3600)
    s = Scenario(mq, "fz", vehicles=2, seed=11, poll=poll, api_extra="  max_body_bytes = 4096;")
    b = s.start()
    a = s.vins[0]
    ntopic = "fz/%s/notifications" % a
    first = s.watch.wait_for(lambda m: m.topic == ntopic and m.payload, 20)
    t.check("oversize: notifications fit at first", first is not None, b.stderr()[-1000:])
    t0 = time.time()
    for i in range(14):
        s.sim.admin("POST", "/vehicles/%s/notifications" % a,
                    {"type": "message", "severity": "info", "title": "Padding %d" % i,
                     "message": "A notification that makes the list larger than 4096 bytes. " * 2})
    st, body = s.sim.get("/vehicles/%s/notifications" % a)
    t.check("oversize: the simulator's notifications are now larger than api.max_body_bytes",
            len(json.dumps(body)) > 4096, len(json.dumps(body)))
    time.sleep(68)
    kept = h.retained(mq.port, ntopic, settle=1.0).get(ntopic)
    t.check("oversize: the last good notifications stay published", kept == first.payload,
            (kept or b"")[:80])
    logged = log_lines(b, "warn", r"vin=%s res=notifications\].*too large" % a)
    t.check("oversize: too-large body logged once per streak", len(logged) == 1, logged)
    # trips never fit: their attempts back off exponentially, with jitter
    gaps = {}
    for v in s.vins:
        ts = [x for x, e in s.req.since(0, lambda e, v=v: vin_of(e) == v and res_of(e) == "/trips")]
        gaps[v] = [round(y - x, 1) for x, y in zip(ts, ts[1:])]
    ok = all(len(g) >= 3 and 7 <= g[0] <= 13.5 and 7 <= g[1] <= 13.5 and 30 <= g[2] <= 50
             for g in gaps.values())
    t.check("oversize: a failing resource backs off exponentially (~10, ~10, ~40 s)", ok, gaps)
    flat = [x for g in gaps.values() for x in g[:3]]
    t.check("oversize: the retry delays are jittered (not all equal)",
            len(flat) >= 4 and max(flat[:2] + flat[3:5]) - min(flat[:2] + flat[3:5]) > 0.25, gaps)
    for v in s.vins:
        n = len(s.req.since(t0, lambda e, v=v: vin_of(e) == v and res_of(e) == "/status"))
        t.check("oversize: the other resources keep their interval (%s status: %d polls in 68 s)"
                % (v[-6:], n), n >= 6, n)
    offline = [m for m in s.watch.since(0) if m.topic.endswith("/availability")
               and m.payload == b"offline"]
    t.check("oversize: vehicles stay online (one failing resource is not an outage)",
            not offline, offline[:2])
    err = s.error() or {}
    t.check("oversize: bridge/error names the resource that cannot be fetched and why",
            "cannot be fetched" in err.get("message", "") and
            "max_body_bytes" in err.get("message", ""), err)
    s.finish()


# ---- 429 Retry-After ----------------------------------------------------------------

def scenario_rate_limit(mq):
    s = Scenario(mq, "fr", vehicles=2, seed=51, sim_extra=["--rate-limit", "8", "--rate-window", "12"])
    t_start = time.time()
    b = s.start()
    first = wait(lambda: s.req.since(0, lambda e: e["status"] == 429), 10)
    t.check("429: the simulator rate-limits the first burst", bool(first))
    if not first:
        s.finish()
        return
    t429 = first[0][0]
    window_end = s.req.since(0)[0][0] + 12
    err = wait(lambda: "rate limit" in (s.error() or {}).get("message", ""), 5)
    t.check("429: bridge/error says the API is rate limiting", err, s.error())
    time.sleep(max(0, window_end + 2 - time.time()))
    inside = s.req.since(t429 + 1.0, lambda e: e["path"].startswith("/connected"), window_end - 1.0)
    t.check("429: no API call until Retry-After has passed (whole account waits)", not inside,
            [(round(ts - t429, 1), e["path"]) for ts, e in inside][:5])
    resumed = wait(lambda: s.req.since(window_end - 1.0, lambda e: e["status"] == 200), 8)
    t.check("429: calls resume once Retry-After has passed", bool(resumed))
    s.faults(rate_limit=0)
    ok = wait(lambda: all(s.avail(v) == "online" for v in s.vins), 30)
    t.check("429: every vehicle gets its data", ok, {v: s.avail(v) for v in s.vins})
    offline = [m for m in s.watch.since(0) if m.topic.endswith("/availability")
               and m.payload == b"offline"]
    t.check("429: rate limiting never marks a vehicle offline", not offline, offline[:2])
    cleared = wait(lambda: s.error() == {}, 25)
    t.check("429: bridge/error is cleared when the limit is gone", cleared, s.error())
    n = len(log_lines(b, "warn", "rate limiting"))
    t.check("429: logged once per pause, not per request", 1 <= n <= 4, n)
    s.finish()


# ---- one vehicle gone: the others keep polling ---------------------------------------

def scenario_vehicle_gone(mq):
    poll = dict(FAST, health=3600)
    s = Scenario(mq, "fg", vehicles=3, seed=61, poll=poll)
    b = s.start()
    up = wait(lambda: all(s.avail(v) == "online" for v in s.vins), 20)
    t.check("one vehicle fails: all online at first", up, b.stderr()[-1000:])
    gone, others = s.vins[0], s.vins[1:]
    time.sleep(2)
    t0 = time.time()
    st, _ = s.sim.admin("DELETE", "/vehicles/" + gone)
    t.check("one vehicle fails: the simulator stops answering for it", st == 200)
    off = wait(lambda: s.avail(gone) == "offline", 30)
    t.check("one vehicle fails: its availability goes offline", off, s.avail(gone))
    err = wait(lambda: gone in (s.error() or {}).get("message", ""), 10)
    t.check("one vehicle fails: bridge/error names it", err, s.error())
    opened = wait(lambda: log_lines(b, "warn", r"vin=%s\] .*polling the vehicle rarely" % gone), 40)
    t_open = time.time()
    t.check("one vehicle fails: its circuit breaker opens", opened, b.stderr()[-1500:])
    time.sleep(max(14, t0 + 40 - time.time()))
    for v in others:
        n = len(s.req.since(t0, lambda e, v=v: vin_of(e) == v and res_of(e) == "/status"))
        t.check("one vehicle fails: another vehicle keeps polling (%s: %d status polls in 40 s)"
                % (v[-6:], n), n >= 3 and s.avail(v) == "online", (n, s.avail(v)))
    n_gone = len(s.req.since(t_open + 1, lambda e: vin_of(e) == gone, t_open + 14))
    t.check("one vehicle fails: the failing one is probed rarely (%d requests in 13 s)"
            % n_gone, n_gone <= 1, n_gone)
    s.finish()


# ---- the daily budget ---------------------------------------------------------------------

def scenario_budget(mq):
    today = time.strftime("%Y-%m-%d", time.gmtime())
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    poll = dict(FAST, location=10, climate=3600, notifications=3600, health=3600)
    d = h.tmpdir()
    state = os.path.join(d, "state.json")
    s = Scenario(mq, "fb", vehicles=2, seed=41, poll=poll,
                 api_extra="  daily_limit = 12;", extra='state_file = "%s";' % state)
    spent, fresh = s.vins
    with open(state, "w") as f:
        json.dump({"format": "toyota2mqtt-state", "version": 1,
                   "vehicles": {spent: {"calls": {today: {"calls": 12, "refresh_status": 0}}},
                                fresh: {"calls": {yesterday: {"calls": 12, "refresh_status": 0}}}}},
                  f)
    os.chmod(state, 0o600)
    b = s.start()
    pat = r"\[vin=%s\] api.daily_limit of 12 API calls reached"
    paused = wait(lambda: log_lines(b, "warn", pat % fresh), 40)
    t.check("budget: both vehicles reach api.daily_limit and pause (one log line each)",
            paused and all(len(log_lines(b, "warn", pat % v)) == 1 for v in s.vins),
            b.stderr()[-1500:])
    time.sleep(3)
    calls = {v: len(s.req.since(0, lambda e, v=v: vin_of(e) == v)) for v in s.vins}
    t.check("budget: a vehicle whose budget was spent today (state file) is not polled at all",
            calls[spent] == 0, calls)
    t.check("budget: yesterday's count does not count today; the limit is exact",
            calls[fresh] == 12, calls)
    got = h.retained(mq.port, "fb/#", settle=1.0)
    ac = {v: json.loads(got.get("fb/%s/api_calls" % v, b"{}")) for v in s.vins}
    t.check("budget: <VIN>/api_calls is published retained with today's count",
            all(ac[v].get("date") == today and ac[v].get("calls") == 12 and
                ac[v].get("refresh_status") == 0 and ac[v].get("paused") is True for v in s.vins), ac)
    stats = json.loads(got.get("fb/bridge/stats", b"{}"))
    t.check("budget: bridge/stats api_calls_today counts every call of the day (12 + 12 + list)",
            stats.get("api_calls_today") == 25, stats)
    err = json.loads(got.get("fb/bridge/error", b"{}"))
    t.check("budget: bridge/error tells the user polling is paused until the next UTC day",
            "daily_limit" in err.get("message", "") and "00:00 UTC" in err.get("message", ""), err)
    b.stop()
    with open(state) as f:
        saved = json.load(f)
    t.check("budget: the count is persisted in the state file",
            saved["vehicles"][fresh]["calls"][today]["calls"] == 12, saved["vehicles"])
    n0 = len(s.req.since())
    b2 = s.start(name="fb2")
    time.sleep(12)
    new = [e["path"] for _, e in s.req.since() if e["seq"] >= n0 and vin_of(e)]
    t.check("budget: a restarted bridge keeps the count: no call for a paused vehicle", not new,
            new[:5])
    got = h.retained(mq.port, "fb/+/api_calls", settle=1.0)
    t.check("budget: api_calls after the restart still says 12",
            all(json.loads(got.get("fb/%s/api_calls" % v, b"{}")).get("calls") == 12
                for v in s.vins), got)
    s.bridge = b2
    rep = h.sanitizer_report(b.stderr())
    t.check("budget: no sanitizer report (first run)", not rep, rep)
    s.finish()


def main():
    mq = h.Mosquitto()
    scenarios = [scenario_outage, scenario_truncated_timeouts, scenario_oversize,
                 scenario_rate_limit, scenario_vehicle_gone, scenario_budget]
    errors = []

    def run(fn):
        try:
            fn(mq)
        except Exception as e:  # a crashed scenario is a failure, not a hang
            import traceback
            errors.append((fn.__name__, traceback.format_exc()))

    threads = [threading.Thread(target=run, args=(fn,)) for fn in scenarios]
    for th in threads:
        th.start()
    for th in threads:
        th.join(150)
    for name, tb in errors:
        t.check("%s ran to the end" % name, False, tb)
    t.check("every scenario finished", not any(th.is_alive() for th in threads))
    t.done()


if __name__ == "__main__":
    main()
