"""Process lifecycle, for real: SIGTERM/SIGINT stop the bridge with exit 0
within 2 seconds, publishing bridge/state offline, also while the API is slow
(5 s latency, requests and a command in flight) and while the broker is down;
SIGHUP reloads the configuration (a broken edit is rejected and the running
configuration keeps going); under systemd, READY=1, WATCHDOG=1 at the pace
WATCHDOG_USEC asks for, RELOADING=1 on SIGHUP and STOPPING=1 on exit
(observed on a unix datagram socket given as NOTIFY_SOCKET).
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import harness as h

t = h.Checker()


class Notify:
    """A NOTIFY_SOCKET: records (time, message) datagrams."""

    def __init__(self):
        self.path = os.path.join(h.tmpdir(), "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.msgs = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            for line in data.decode("utf-8", "replace").splitlines():
                self.msgs.append((time.time(), line))

    def seen(self, text):
        return [ts for ts, m in self.msgs if m == text]


def bridge(config, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return h.Proc([h.BRIDGE, "-c", config, "-l", "debug"], "bridge", stdout=subprocess.DEVNULL, env=e)


def stop_timed(b, sig=signal.SIGTERM):
    t0 = time.time()
    b.p.send_signal(sig)
    try:
        rc = b.p.wait(10)
    except subprocess.TimeoutExpired:
        b.p.kill()
        rc = None
    return rc, time.time() - t0


def wait_online(port, base, timeout=20):
    w = h.MqttClient(port)
    w.subscribe(base + "/bridge/state")
    m = w.wait_for(lambda m: m.payload == b"online", timeout)
    w.close()
    return m is not None


def conf(d, sim, port, base, name=None, poll=None, extra=""):
    return h.write_config(os.path.join(d, name or base + ".conf"), sim.base_url, port, base=base, poll=poll,
                          extra='commands = { allow = ["horn"]; };\n' + extra)


def check_signals(mq, sim):
    d = h.tmpdir()
    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        base = "sig" + name.lower()
        b = bridge(conf(d, sim, mq.port, base))
        t.check("%s: bridge online" % name, wait_online(mq.port, base), b.stderr()[-500:])
        time.sleep(2)
        rc, took = stop_timed(b, sig)
        t.check("%s: exit 0 within 2 s (%.2f s)" % (name, took), rc == 0 and took < 2.0, (rc, took))
        state = h.retained(mq.port, base + "/bridge/state", 0.5).get(base + "/bridge/state")
        t.check("%s: bridge/state is offline (retained)" % name, state == b"offline", state)
        t.check("%s: no sanitizer report" % name, not h.sanitizer_report(b.stderr()), h.sanitizer_report(b.stderr()))


def check_slow_api(mq, sim):
    d = h.tmpdir()
    base = "slow"
    b = bridge(conf(d, sim, mq.port, base, poll={"status": 10, "location": 10}))
    t.check("slow API: bridge online", wait_online(mq.port, base), b.stderr()[-500:])
    st, vl = sim.get("/vehicles")
    vin = vl["data"][0]["vin"]
    time.sleep(3)
    sim.admin("POST", "/faults", {"latency_ms": 5000})
    try:
        c = h.MqttClient(mq.port)
        c.publish("%s/%s/command" % (base, vin), '{"command":"horn","id":"slow"}', qos=1)
        c.close()
        n0 = len(sim.requests())
        time.sleep(1.5)       # the command's request is now waiting on the API
        log = b.stderr()
        t.check("slow API: a command request is in flight", "horn: sending" in log or "horn received" in log,
                log[-500:])
        rc, took = stop_timed(b)
        t.check("slow API: SIGTERM with requests in flight exits 0 within 2 s (%.2f s)" % took,
                rc == 0 and took < 2.0, (rc, took, b.stderr()[-800:]))
        t.check("slow API: no sanitizer report", not h.sanitizer_report(b.stderr()),
                h.sanitizer_report(b.stderr()))
        state = h.retained(mq.port, base + "/bridge/state", 0.5).get(base + "/bridge/state")
        t.check("slow API: bridge/state is offline (retained)", state == b"offline", state)
        del n0
    finally:
        sim.admin("POST", "/faults", {"latency_ms": 0})


def check_broker_down(sim):
    d = h.tmpdir()
    mq = h.Mosquitto()
    base = "down"
    b = bridge(conf(d, sim, mq.port, base))
    t.check("broker down: bridge online", wait_online(mq.port, base), b.stderr()[-500:])
    mq.stop()
    time.sleep(3)     # into the reconnect backoff
    rc, took = stop_timed(b)
    t.check("broker down: SIGTERM exits 0 within 2 s (%.2f s)" % took, rc == 0 and took < 2.0,
            (rc, took, b.stderr()[-800:]))
    # Never connected at all.
    b = bridge(conf(d, sim, h.free_port(), "never"))
    time.sleep(2.5)
    rc, took = stop_timed(b)
    t.check("broker never there: SIGTERM exits 0 within 2 s (%.2f s)" % took, rc == 0 and took < 2.0,
            (rc, took, b.stderr()[-800:]))
    t.check("broker down: no sanitizer report", not h.sanitizer_report(b.stderr()), h.sanitizer_report(b.stderr()))


def status_polls(sim, since):
    return [r for r in sim.requests()[since:] if r.get("path", "").endswith("/status")]


def check_reload(mq, sim):
    d = h.tmpdir()
    path = os.path.join(d, "hup.conf")
    conf(d, sim, mq.port, "hup1", name="hup.conf")
    note = Notify()
    b = bridge(path, {"NOTIFY_SOCKET": note.path, "WATCHDOG_USEC": "1000000"})
    t.check("SIGHUP: bridge online", wait_online(mq.port, "hup1"), b.stderr()[-500:])
    st, vl = sim.get("/vehicles")
    vins = [v["vin"] for v in vl["data"]]
    time.sleep(3)
    before = h.retained(mq.port, "hup1/#", 1.0)

    # systemd: READY=1 and WATCHDOG=1 at least every WATCHDOG_USEC/2.
    t.check("sd_notify: READY=1 once running", len(note.seen("READY=1")) == 1, note.msgs[:5])
    pings = note.seen("WATCHDOG=1")
    gaps = [b2 - a for a, b2 in zip(pings, pings[1:])]
    t.check("sd_notify: WATCHDOG=1 keeps coming within WATCHDOG_USEC (%d pings, largest gap %.2f s)"
            % (len(pings), max(gaps) if gaps else -1), len(pings) >= 5 and max(gaps) < 1.0, gaps[-5:])
    # A stopped process (SIGSTOP) pings nothing: the pings come from the loop itself.
    os.kill(b.p.pid, signal.SIGSTOP)
    t0 = time.time()
    time.sleep(1.5)
    during = [ts for ts in note.seen("WATCHDOG=1") if t0 + 0.1 < ts < t0 + 1.5]
    os.kill(b.p.pid, signal.SIGCONT)
    t.check("sd_notify: no WATCHDOG=1 while the main loop does not run", not during, during)

    # A broken edit is refused; the running configuration keeps going.
    good = open(path).read()
    with open(path, "w") as f:
        f.write(good.replace("poll = {", "poll = { bogus_key = 1;"))
    n_ready = len(note.seen("READY=1"))
    b.p.send_signal(signal.SIGHUP)
    time.sleep(2)
    log = b.stderr()
    t.check("SIGHUP with a broken file: a log line names the error and keeps the running configuration",
            "keeping the running configuration" in log and "bogus_key" in log, log[-600:])
    res = h.MqttClient(mq.port)
    res.subscribe("hup1/%s/command/result" % vins[0])
    res.publish("hup1/%s/command" % vins[0], '{"command":"horn","id":"hup-a"}', qos=1)
    m = res.wait_for(lambda m: b"hup-a" in m.payload, 15)
    t.check("SIGHUP with a broken file: the bridge keeps running (commands work)",
            b.alive() and m is not None and m.json().get("ok"), m and m.payload)
    t.check("SIGHUP with a broken file: no reload happened", len(note.seen("READY=1")) == n_ready and
            not note.seen("RELOADING=1"), note.msgs[-3:])

    # A good edit: new base topic and a faster status poll.
    with open(path, "w") as f:
        f.write(good.replace('base_topic = "hup1"', 'base_topic = "hup2"').replace("status = 300", "status = 10"))
    n0 = len(sim.requests())
    mark = len(note.msgs)
    b.p.send_signal(signal.SIGHUP)
    t.check("SIGHUP: the new base topic goes online", wait_online(mq.port, "hup2", 20), b.stderr()[-800:])
    t.check("SIGHUP: the same process keeps running", b.alive())
    msgs = [m for ts, m in note.msgs[mark:]]
    t.check("sd_notify: RELOADING=1 then READY=1, and no STOPPING=1, on reload",
            "RELOADING=1" in msgs and "READY=1" in msgs[msgs.index("RELOADING=1"):] and "STOPPING=1" not in msgs,
            msgs[:8])
    time.sleep(14)
    polls = status_polls(sim, n0)
    t.check("SIGHUP: the new poll interval is in effect (%d status polls in 14 s for %d vehicles)"
            % (len(polls), len(vins)), len(polls) >= 2 * len(vins), len(polls))
    after = h.retained(mq.port, "hup2/#", 1.0)
    moved = [k for k in before if k.startswith("hup1/" + vins[0]) and ("hup2" + k[4:]) not in after]
    t.check("SIGHUP: every state topic is published under the new base topic", not moved, moved[:5])
    old = h.retained(mq.port, "hup1/#", 1.0)
    t.check("SIGHUP: the retained state under the old base is left in place (not wiped)",
            len([k for k in old if k.startswith("hup1/" + vins[0])]) >= len(moved) and old.get("hup1/" + vins[0] + "/status"),
            len(old))
    res.unsubscribe("hup1/%s/command/result" % vins[0])
    res.subscribe("hup2/%s/command/result" % vins[0])
    res.publish("hup2/%s/command" % vins[0], '{"command":"horn","id":"hup-b"}', qos=1)
    m = res.wait_for(lambda m: b"hup-b" in m.payload, 15)
    t.check("SIGHUP: commands work on the new base topic", m is not None and m.json().get("ok"), m and m.payload)
    info = json.loads(h.retained(mq.port, "hup2/bridge/info", 0.5).get("hup2/bridge/info", b"{}"))
    t.check("SIGHUP: bridge/info shows the new configuration",
            info.get("config", {}).get("poll", {}).get("status") == 10 or "status" in json.dumps(info), info.get("config", {}).get("poll"))
    rc, took = stop_timed(b)
    t.check("SIGTERM after reloads: exit 0 within 2 s (%.2f s)" % took, rc == 0 and took < 2.0, (rc, took))
    time.sleep(0.2)
    t.check("sd_notify: STOPPING=1 on exit", note.seen("STOPPING=1"), note.msgs[-3:])
    t.check("SIGHUP: no sanitizer report", not h.sanitizer_report(b.stderr()), h.sanitizer_report(b.stderr()))


def check_unit_file():
    unit = os.path.join(h.ROOT, "contrib", "toyota2mqtt.service")
    text = open(unit).read()
    for key in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes",
                "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
                "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet=",
                "SystemCallFilter=@system-service", "StateDirectory=toyota2mqtt", "ExecReload="):
        t.check("unit file: %s" % key, key in text)
    sa = subprocess.run(["which", "systemd-analyze"], capture_output=True, text=True)
    if sa.returncode == 0:
        # verify wants the ExecStart binary to exist: point a copy at this build.
        d = h.tmpdir()
        copy = os.path.join(d, "toyota2mqtt.service")
        with open(copy, "w") as f:
            f.write("\n".join(("ExecStart=%s -c /etc/toyota2mqtt/toyota2mqtt.conf" % h.BRIDGE)
                              if line.startswith("ExecStart=") else line for line in text.splitlines()) + "\n")
        r = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, text=True, timeout=60)
        problems = [line for line in (r.stdout + r.stderr).splitlines() if "toyota2mqtt.service" in line]
        t.check("unit file: systemd-analyze verify reports nothing about it", not problems, problems)


def main():
    mq = h.Mosquitto()
    sim = h.Sim()
    t0 = time.time()
    check_unit_file()
    check_signals(mq, sim)
    check_slow_api(mq, sim)
    check_broker_down(sim)
    check_reload(mq, sim)
    print("test_lifecycle: %.0f s" % (time.time() - t0))
    t.done()


if __name__ == "__main__":
    main()
