"""Broker faults, for real: the broker restarts (losing every retained message
and session), is down when the bridge starts, or the network goes silent
under a live connection; and the persistent session: commands sent while the
bridge is away are executed when it returns, but only within
commands.max_age_s (see src/mqtt.h for how the age of a replayed message is
bounded).
"""
import json
import os
import select
import socket
import threading
import time

import harness as h

t = h.Checker()
MAX_AGE = 8


class Proxy:
    """A TCP relay 127.0.0.1:port -> target that can go silent: in 'down'
    mode it stops relaying (connections stay open, bytes are held, new
    connections are accepted and never answered), like a network that drops
    everything. up() closes whatever was held, as a returning network's RSTs
    would."""

    def __init__(self, target):
        self.target = target
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.is_up = True
        self.pairs = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            if not self.is_up:
                with self.lock:
                    self.pairs.append((c, None))
                continue
            try:
                s = socket.create_connection(("127.0.0.1", self.target), 2)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.pairs.append((c, s))
            threading.Thread(target=self._relay, args=(c, s), daemon=True).start()

    def _relay(self, a, b):
        try:
            while True:
                r, _, _ = select.select([a, b], [], [], 0.2)
                if not self.is_up:
                    time.sleep(0.05)
                    continue
                for x in r:
                    data = x.recv(65536)
                    if not data:
                        raise OSError
                    (b if x is a else a).sendall(data)
        except (OSError, ValueError):
            pass
        for x in (a, b):
            try:
                x.close()
            except OSError:
                pass

    def down(self):
        self.is_up = False

    def up(self):
        with self.lock:
            pairs, self.pairs = self.pairs, []
            for c, s in pairs:
                for x in (c, s):
                    if x is not None:
                        try:
                            x.shutdown(socket.SHUT_RDWR)
                            x.close()
                        except OSError:
                            pass
            self.is_up = True


def config(d, sim, port, base, name="b.conf", mqtt_extra="", max_age=MAX_AGE, client_id=None):
    return h.write_config(os.path.join(d, name), sim.base_url, port, base=base,
                          mqtt_extra=mqtt_extra, client_id=client_id,
                          extra='commands = { allow = ["horn", "lights"]; max_age_s = %d; };' % max_age)


def vins_of(sim):
    st, vl = sim.get("/vehicles")
    return [v["vin"] for v in vl["data"]]


def wait_settled(port, filt, timeout=40, quiet=2.0):
    """Waits until the retained set under filt stops growing; returns it."""
    end = time.time() + timeout
    last, since = None, time.time()
    while time.time() < end:
        got = h.retained(port, filt, 0.6)
        if last is not None and set(got) == set(last) and got:
            if time.time() - since >= quiet:
                return got
        else:
            since = time.time()
        last = got
    return last or {}


def horn_calls(sim, vin):
    return [r for r in sim.requests() if r.get("method") == "POST" and
            r.get("path", "").endswith("/vehicles/%s/remote-command" % vin) and
            isinstance(r.get("body"), dict) and r["body"].get("command") == "horn"]


def command(port, base, vin, cid, timeout=20, expiry=None, publish_only=False):
    c = h.MqttClient(port)
    c.subscribe("%s/%s/command/result" % (base, vin))
    c.publish("%s/%s/command" % (base, vin), json.dumps({"command": "horn", "id": cid}), qos=1,
              expiry=expiry)
    if publish_only:
        c.close()
        return None
    m = c.wait_for(lambda m: m.json().get("id") == cid, timeout)
    c.close()
    return m.json() if m else None


def check_restart(sim):
    d = h.tmpdir()
    mq = h.Mosquitto()
    port = mq.port
    base = "rst"
    b = h.Bridge(config(d, sim, port, base))
    before = wait_settled(port, "#")
    vins = vins_of(sim)
    ours = {k: v for k, v in before.items() if k.startswith(base + "/") or k.startswith("homeassistant/")}
    t.check("restart: the bridge published state and discovery", len(ours) > 100 and
            any(k.startswith("homeassistant/") for k in ours), len(ours))
    mq.stop()
    time.sleep(2.5)
    t.check("restart: the bridge survives the broker going away", b.alive(), b.stderr()[-800:])
    t0 = time.time()
    mq2 = h.Mosquitto(port=port)
    w = h.MqttClient(port)
    w.subscribe(base + "/bridge/state")
    online = w.wait_for(lambda m: m.payload == b"online", 40)
    took = time.time() - t0
    t.check("restart: bridge/state is online again on the new broker (%.1f s)" % took,
            online is not None, b.stderr()[-1500:])
    after = wait_settled(port, "#", timeout=30)
    missing = sorted(k for k in ours if k not in after)
    t.check("restart: every retained topic (state, per-field, discovery) is back (%d topics)" % len(ours),
            not missing, missing[:10])
    disc = [k for k in ours if k.startswith("homeassistant/") and after.get(k) != ours[k]]
    t.check("restart: discovery payloads are republished unchanged", not disc, disc[:5])
    t.check("restart: bridge/state is retained online", after.get(base + "/bridge/state") == b"online",
            after.get(base + "/bridge/state"))
    res = command(port, base, vins[0], "after-restart")
    t.check("restart: commands work again (subscriptions restored)", res is not None and res.get("ok"), res)
    log = b.stderr()
    t.check("restart: the loss and the reconnection are logged",
            "connection lost" in log and log.count("mqtt: connected") >= 2, log[-600:])
    rc = b.stop()
    t.check("restart: exit 0 afterwards", rc == 0, rc)
    t.check("restart: no sanitizer report", not h.sanitizer_report(b.stderr()), h.sanitizer_report(b.stderr()))
    mq2.stop()


def check_down_at_start(sim):
    d = h.tmpdir()
    port = h.free_port()
    base = "late"
    b = h.Bridge(config(d, sim, port, base))
    time.sleep(4)
    log = b.stderr()
    t.check("down at start-up: the bridge keeps running and retrying", b.alive() and "cannot connect" in log,
            log[-800:])
    t.check("down at start-up: the failure is one clear line per distinct error, not a flood",
            log.count("cannot connect") <= 3, log.count("cannot connect"))
    t0 = time.time()
    mq = h.Mosquitto(port=port)
    w = h.MqttClient(port)
    w.subscribe(base + "/bridge/state")
    online = w.wait_for(lambda m: m.payload == b"online", 40)
    t.check("down at start-up: connects once the broker appears (%.1f s)" % (time.time() - t0),
            online is not None, b.stderr()[-800:])
    vins = vins_of(sim)
    res = command(port, base, vins[1], "late-1")
    t.check("down at start-up: commands work", res is not None and res.get("ok"), res)
    got = h.retained(port, base + "/%s/status" % vins[1], 0.5)
    if not got:
        time.sleep(5)
        got = h.retained(port, base + "/%s/status" % vins[1], 0.5)
    t.check("down at start-up: state is published", bool(got))
    b.stop()
    mq.stop()


def check_network_loss(sim):
    d = h.tmpdir()
    mq = h.Mosquitto()
    px = Proxy(mq.port)
    base = "net"
    b = h.Bridge(config(d, sim, px.port, base, mqtt_extra="  keepalive_s = 5;", max_age=60))
    w = h.MqttClient(mq.port)
    w.subscribe(base + "/#")
    online = w.wait_for(lambda m: m.topic == base + "/bridge/state" and m.payload == b"online", 20)
    t.check("network loss: online through the relay", online is not None, b.stderr()[-800:])
    vins = vins_of(sim)
    w.wait_for(lambda m: m.topic == "%s/%s/status" % (base, vins[2]), 20)
    mark = w.mark()
    px.down()
    t0 = time.time()
    # The broker sees the connection die (1.5 x keepalive) and publishes the will.
    off = w.wait_for(lambda m: m.topic == base + "/bridge/state" and m.payload == b"offline", 25, mark)
    t.check("network loss: the broker publishes the last will (%.1f s)" % (time.time() - t0), off is not None)
    # A command sent during the outage is queued in the session...
    command(mq.port, base, vins[2], "during-outage", publish_only=True)
    end = time.time() + 20
    while "connection lost" not in b.stderr() and time.time() < end:
        time.sleep(0.2)
    t.check("network loss: the bridge notices the silent connection (keepalive) (%.1f s)"
            % (time.time() - t0), "connection lost" in b.stderr(), b.stderr()[-600:])
    time.sleep(1)
    mark = w.mark()
    px.up()
    t1 = time.time()
    online = w.wait_for(lambda m: m.topic == base + "/bridge/state" and m.payload == b"online", 40, mark)
    t.check("network loss: back online when the network returns (%.1f s)" % (time.time() - t1),
            online is not None, b.stderr()[-1000:])
    res = w.wait_for(lambda m: m.topic.endswith("/command/result") and b"during-outage" in m.payload, 20, 0)
    t.check("network loss: the command sent during the outage is executed on return (within max_age)",
            res is not None and res.json().get("ok"), res and res.payload)
    t.check("network loss: the bridge logged the replay with the time it went offline",
            "delivered from the persistent session" in b.stderr(), b.stderr()[-800:])
    state = h.retained(mq.port, base + "/bridge/state", 0.5).get(base + "/bridge/state")
    t.check("network loss: bridge/state ends online (retained)", state == b"online", state)
    b.stop()
    t.check("network loss: no sanitizer report", not h.sanitizer_report(b.stderr()), h.sanitizer_report(b.stderr()))
    mq.stop()


def check_session(sim):
    """Commands sent while the bridge process is stopped."""
    d = h.tmpdir()
    mq = h.Mosquitto()
    base = "ses"
    conf = config(d, sim, mq.port, base, client_id="t2m-session-%d" % os.getpid())
    vins = vins_of(sim)
    vin = vins[3]
    w = h.MqttClient(mq.port)
    w.subscribe(base + "/%s/command/result" % vin, base + "/bridge/state")

    def start():
        b = h.Bridge(conf)
        ok = w.wait_for(lambda m: m.topic.endswith("bridge/state") and m.payload == b"online", 20, w.mark())
        return b, ok

    b, ok = start()
    t.check("session: bridge online", ok is not None, b.stderr()[-500:])
    time.sleep(1)
    b.stop()
    rec = h.retained(mq.port, base + "/bridge/session", 0.5).get(base + "/bridge/session")
    t.check("session: a clean stop leaves a retained record of when the session went offline",
            rec is not None and abs(json.loads(rec)["offline_since"] - time.time()) < 5, rec)

    # 1. Sent while the bridge is down (with an MQTT v5 expiry), delivered well within max_age.
    n0 = len(horn_calls(sim, vin))
    command(mq.port, base, vin, "fresh", expiry=60, publish_only=True)
    time.sleep(2)
    mark = w.mark()
    b, ok = start()
    res = w.wait_for(lambda m: m.topic.endswith("/command/result") and m.json().get("id") == "fresh", 20, mark)
    t.check("session: a command sent while the bridge was stopped is executed when it returns",
            res is not None and res.json().get("ok") is True, (res and res.payload, b.stderr()[-800:]))
    t.check("session: ...and it reached the API once", len(horn_calls(sim, vin)) == n0 + 1,
            len(horn_calls(sim, vin)) - n0)
    time.sleep(1)
    b.stop()

    # 2. Sent while the bridge is down, delivered after max_age: an error result, no API call.
    n0 = len(horn_calls(sim, vin))
    command(mq.port, base, vin, "stale", expiry=3600, publish_only=True)
    command(mq.port, base, vin, "lapsed", expiry=2, publish_only=True)
    time.sleep(MAX_AGE + 2)
    mark = w.mark()
    b, ok = start()
    res = w.wait_for(lambda m: m.topic.endswith("/command/result") and m.json().get("id") == "stale", 20, mark)
    t.check("session: a command older than commands.max_age_s is not executed and gets an error result",
            res is not None and res.json().get("ok") is False and "expired" in (res.json().get("error") or ""),
            (res and res.payload, b.stderr()[-800:]))
    lapsed = w.wait_for(lambda m: m.topic.endswith("/command/result") and m.json().get("id") == "lapsed", 2, mark)
    t.check("session: a command whose MQTT v5 expiry lapsed is dropped by the broker (never executed)",
            lapsed is None, lapsed and lapsed.payload)
    time.sleep(1)
    t.check("session: ...and neither reached the API", len(horn_calls(sim, vin)) == n0,
            len(horn_calls(sim, vin)) - n0)

    # 3. After a crash (kill -9) the bridge cannot know when it went away: the last record is
    #    from the clean stop above, older than max_age, so a replayed command counts as too old.
    time.sleep(1)
    b.stop(sig=9)
    n0 = len(horn_calls(sim, vin))
    command(mq.port, base, vin, "after-crash", publish_only=True)
    mark = w.mark()
    b, ok = start()
    res = w.wait_for(lambda m: m.topic.endswith("/command/result") and m.json().get("id") == "after-crash",
                     20, mark)
    t.check("session: after a crash, a replayed command of unknowable age is refused, not executed",
            res is not None and res.json().get("ok") is False and len(horn_calls(sim, vin)) == n0,
            (res and res.payload, len(horn_calls(sim, vin)) - n0))
    # 4. Live commands are unaffected once the replay is over.
    res = command(mq.port, base, vin, "live")
    t.check("session: live commands after the replay execute", res is not None and res.get("ok"), res)
    rc = b.stop()
    t.check("session: exit 0", rc == 0, rc)
    t.check("session: no sanitizer report", not h.sanitizer_report(b.stderr()), h.sanitizer_report(b.stderr()))
    mq.stop()


def main():
    sim = h.Sim()
    t0 = time.time()
    check_restart(sim)
    check_down_at_start(sim)
    check_network_loss(sim)
    check_session(sim)
    print("test_broker: %.0f s" % (time.time() - t0))
    t.done()


if __name__ == "__main__":
    main()
