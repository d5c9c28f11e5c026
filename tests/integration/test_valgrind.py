"""The normal build under valgrind (memcheck), for real: a few poll rounds, a
command, a broker restart (reconnection), a SIGHUP reload, then SIGTERM. No
memory errors and no definite leaks (tests/valgrind.supp names the one known
Paho leak, upstream #1689). The binary is the normal build (ASan and
valgrind do not mix): T2M_VALGRIND_BIN, else build/toyota2mqtt.
"""
import os
import shutil
import signal
import subprocess
import time

import harness as h

t = h.Checker()
BIN = os.environ.get("T2M_VALGRIND_BIN", os.path.join(h.ROOT, "build", "toyota2mqtt"))
SUPP = os.path.join(h.ROOT, "tests", "valgrind.supp")


def main():
    valgrind = shutil.which("valgrind")
    if not valgrind:
        print("SKIP valgrind: not installed (make deps installs it)")
        return t.done()
    if not os.path.exists(BIN):
        t.check("valgrind: the normal build exists (%s)" % BIN, False)
        return t.done()
    libs = subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
    if "libasan" in libs:
        print("SKIP valgrind: %s is a sanitizer build" % BIN)
        return t.done()
    mq = h.Mosquitto()
    sim = h.Sim()
    d = h.tmpdir()
    path = os.path.join(d, "vg.conf")
    h.write_config(path, sim.base_url, mq.port, base="vg",
                   poll={"vehicles": 10, "status": 10, "location": 10, "electric": 10, "climate": 10},
                   extra='commands = { allow = ["horn"]; };')
    log = os.path.join(d, "valgrind.log")
    p = h.Proc([valgrind, "--leak-check=full", "--errors-for-leak-kinds=definite", "--error-exitcode=99",
                "--suppressions=" + SUPP, "--num-callers=30", "--log-file=" + log,
                BIN, "-c", path, "-l", "info"], "valgrind", stdout=subprocess.DEVNULL)
    w = h.MqttClient(mq.port)
    w.subscribe("vg/#")
    online = w.wait_for(lambda m: m.topic == "vg/bridge/state" and m.payload == b"online", 60)
    t.check("valgrind: the bridge runs under valgrind", online is not None, p.stderr()[-800:])
    st, vl = sim.get("/vehicles")
    vins = [v["vin"] for v in vl["data"]]
    time.sleep(22)     # two poll rounds of the 10 s resources
    polls = [r for r in sim.requests() if r.get("path", "").endswith("/status")]
    t.check("valgrind: several poll rounds ran (%d status polls)" % len(polls), len(polls) >= 2 * len(vins))
    w.publish("vg/%s/command" % vins[0], '{"command":"horn","id":"vg-1"}', qos=1)
    res = w.wait_for(lambda m: m.topic.endswith("/command/result") and b"vg-1" in m.payload, 60)
    t.check("valgrind: a command ran", res is not None and res.json().get("ok"), res and res.payload)
    port = mq.port
    mq.stop()
    time.sleep(2)
    mq = h.Mosquitto(port=port)
    w2 = h.MqttClient(port)
    w2.subscribe("vg/bridge/state")
    t.check("valgrind: reconnected after a broker restart",
            w2.wait_for(lambda m: m.payload == b"online", 60) is not None, p.stderr()[-800:])
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("status = 10", "status = 20"))
    mark = w2.mark()
    p.p.send_signal(signal.SIGHUP)
    t.check("valgrind: reloaded on SIGHUP", w2.wait_for(lambda m: m.payload == b"online", 60, mark) is not None,
            p.stderr()[-800:])
    time.sleep(5)
    t0 = time.time()
    rc = p.stop(timeout=120)
    took = time.time() - t0
    report = open(log).read() if os.path.exists(log) else ""
    summary = [line.split("== ", 1)[-1] for line in report.splitlines()
               if "ERROR SUMMARY" in line or "definitely lost" in line or "in use at exit" in line]
    t.check("valgrind: exit 0 after SIGTERM (no memory errors, no definite leaks; %.1f s) %s"
            % (took, "; ".join(summary)), rc == 0, report[-4000:])
    t.check("valgrind: no invalid reads or writes, no uninitialised values",
            "Invalid read" not in report and "Invalid write" not in report and "uninitialised" not in report,
            report[-3000:])
    t.done()


if __name__ == "__main__":
    main()
