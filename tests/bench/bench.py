"""make bench: speed and memory figures of the bridge against the simulator
and a real mosquitto. Prints figures; asserts nothing (targets are read by
people, not by the test suite).

  python3 tests/bench/bench.py [BUILD] [VEHICLES...]
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
if len(sys.argv) > 1:
    os.environ["T2M_BUILD"] = os.path.abspath(sys.argv[1])
import harness as h  # noqa: E402


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(vehicles):
    mq = h.Mosquitto()
    sim = h.Sim(vehicles=vehicles, seed=3)
    d = h.tmpdir()
    try:
        conf = h.write_config(os.path.join(d, "b.conf"), sim.base_url, mq.port, base="bench",
                              api_extra="  max_connections = 4;")
        start = time.time()
        b = h.Bridge(conf, ["--once"], name="once")
        rc = b.wait(600)
        once_s = time.time() - start
        reqs = len(sim.requests())

        conf2 = h.write_config(os.path.join(d, "r.conf"), sim.base_url, mq.port, base="bench2",
                               poll={"status": 10, "location": 10, "electric": 10, "climate": 10})
        watch = h.MqttClient(mq.port)
        watch.subscribe("bench2/#")
        b2 = h.Bridge(conf2)
        watch.wait_for(lambda m: m.topic == "bench2/bridge/state" and m.payload == b"online", 30)
        time.sleep(8)
        cpu0, t0, n0 = cpu_seconds(b2.p.pid), time.time(), watch.mark()
        time.sleep(30)
        cpu1, t1, n1 = cpu_seconds(b2.p.pid), time.time(), watch.mark()
        st = proc_status(b2.p.pid)
        b2.stop()
        watch.close()
        print("vehicles=%-4d --once: %.2f s (exit %s, %d API requests, %.0f req/s) | steady: "
              "CPU %.2f%% of a core, %d msgs/30 s | RSS %s, peak %s, threads %s"
              % (vehicles, once_s, rc, reqs, reqs / once_s if once_s else 0,
                 100.0 * (cpu1 - cpu0) / (t1 - t0), n1 - n0, st.get("VmRSS"), st.get("VmHWM"),
                 st.get("Threads")), flush=True)
    finally:
        sim.stop()
        mq.stop()


def main():
    counts = [int(x) for x in sys.argv[2:]] or [1, 10, 50]
    build = os.environ.get("T2M_BUILD", "build")
    size = os.path.getsize(os.path.join(build, "toyota2mqtt"))
    print("toyota2mqtt binary: %d KiB (%s)" % (size // 1024, build))
    for n in counts:
        run(n)


main()
