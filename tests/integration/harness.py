"""Integration test harness: real processes on free loopback ports.

Starts a private mosquitto, the simulator and the bridge; a small MQTT v5
client (standard library only) to watch and command them; and PASS/FAIL
reporting in the format tests/run.sh counts. Every process started here is
killed when the test ends, whatever happens.
"""
import atexit
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("T2M_BUILD", os.path.join(ROOT, "build"))
BRIDGE = os.path.join(BUILD, "toyota2mqtt")
SIM = os.path.join(BUILD, "toyota2mqtt-sim")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
TOKEN = "test-token-0123456789"

_procs = []
_tmpdirs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except Exception:
                pass
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def tmpdir():
    d = tempfile.mkdtemp(prefix="t2m-test-")
    _tmpdirs.append(d)
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Checker:
    """Counts checks; prints PASS/FAIL lines."""

    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print("PASS %s" % name, flush=True)
        else:
            self.failed += 1
            print("FAIL %s%s" % (name, (": " + str(detail)[:800]) if detail else ""), flush=True)
        return bool(cond)

    def done(self):
        _cleanup()
        sys.exit(1 if self.failed else 0)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_report(text):
    return next((line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKS)), None)


class Proc:
    def __init__(self, args, name, stdout=subprocess.PIPE, env=None):
        self.name = name
        self.dir = tmpdir()
        self.errpath = os.path.join(self.dir, name + ".stderr")
        self.err = open(self.errpath, "wb")
        self.p = subprocess.Popen(args, stdout=stdout, stderr=self.err, stdin=subprocess.DEVNULL,
                                  env=env)
        _procs.append(self.p)

    def stderr(self):
        self.err.flush()
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        return self.p.returncode

    def alive(self):
        return self.p.poll() is None


class Mosquitto(Proc):
    def __init__(self, port=None, extra=""):
        self.port = port or free_port()
        d = tmpdir()
        conf = os.path.join(d, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n%s\n"
                    % (self.port, extra))
        super().__init__([MOSQUITTO, "-c", conf], "mosquitto", stdout=subprocess.DEVNULL)
        if not wait_port(self.port):
            raise RuntimeError("mosquitto did not start: " + self.stderr())


class Sim(Proc):
    def __init__(self, vehicles=4, seed=42, extra=(), port=0):
        self.log = os.path.join(tmpdir(), "requests.jsonl")
        args = [SIM, "--port", str(port), "--vehicles", str(vehicles), "--seed", str(seed),
                "--token", TOKEN, "--request-log", self.log] + list(extra)
        super().__init__(args, "sim")
        line = self.p.stdout.readline().decode()
        if "listening on" not in line:
            raise RuntimeError("simulator did not start: %r %s" % (line, self.stderr()))
        self.base_url = line.split("listening on", 1)[1].strip()
        self.port = int(self.base_url.split(":")[2].split("/")[0])
        self.root = "http://127.0.0.1:%d" % self.port

    def get(self, path, token=TOKEN):
        return http("GET", self.base_url + path, token=token)

    def admin(self, method, path, body=None):
        return http(method, self.root + "/_sim" + path, body=body)

    def requests(self):
        out = []
        try:
            with open(self.log) as f:
                for line in f:
                    line = line.strip()
                    if line:
                        out.append(json.loads(line))
        except FileNotFoundError:
            pass
        return out


class ReqWatch:
    """Tails the simulator's request log in a thread, stamping each line with
    our clock (when it was seen) and a sequence number."""

    def __init__(self, sim):
        self.sim = sim
        self.entries = []
        self.lock = threading.Lock()
        self.stop = False
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        pos, buf = 0, ""
        while not self.stop:
            try:
                with open(self.sim.log) as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
            except FileNotFoundError:
                chunk = ""
            buf += chunk
            while "\n" in buf:
                line, buf = buf.split("\n", 1)
                if line.strip():
                    e = json.loads(line)
                    with self.lock:
                        e["seq"] = len(self.entries)
                        self.entries.append((time.time(), e))
            time.sleep(0.1)

    def since(self, t0=0.0, pred=lambda e: True, t1=None):
        """(time seen, entry) pairs seen from t0 (to t1) that match pred."""
        with self.lock:
            return [(ts, e) for ts, e in self.entries
                    if ts >= t0 and (t1 is None or ts <= t1) and pred(e)]

    def wait(self, pred, timeout, t0=0.0):
        """The first (time, entry) seen from t0 that matches pred, waiting up to
        timeout; None if none came."""
        end = time.time() + timeout
        while time.time() < end:
            got = self.since(t0, pred)
            if got:
                return got[0]
            time.sleep(0.1)
        return None


def http(method, url, body=None, token=None, headers=None):
    """Returns (status, parsed JSON or raw text)."""
    import urllib.request
    import urllib.error
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if token:
        hdrs["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        return status, json.loads(raw.decode()) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def write_config(path, sim_url, mqtt_port, base="t2m", extra="", poll=None, token=TOKEN,
                 api_extra="", mqtt_extra="", ha=True, client_id=None):
    polls = {"vehicles": 3600, "vehicle": 3600, "status": 300, "health": 3600, "location": 300,
             "electric": 300, "climate": 300, "trips": 3600, "notifications": 900,
             "service_history": 86400}
    polls.update(poll or {})
    with open(path, "w") as f:
        f.write('api = {\n  base_url = "%s";\n  token = "%s";\n  timeout_s = 10;\n%s\n};\n'
                % (sim_url, token, api_extra))
        # Each configuration its own client id: two bridges under one id
        # would take the broker session from each other.
        cid = client_id or "t2m-test-%d-%s" % (os.getpid(), base)
        f.write('mqtt = {\n  url = "tcp://127.0.0.1:%d";\n  client_id = "%s";\n'
                '  base_topic = "%s";\n%s\n};\n' % (mqtt_port, cid, base, mqtt_extra))
        f.write("poll = {\n%s\n};\n" % "\n".join("  %s = %d;" % kv for kv in polls.items()))
        f.write("homeassistant = { enabled = %s; };\n" % ("true" if ha else "false"))
        f.write(extra + "\n")
    return path


class Bridge(Proc):
    def __init__(self, config, args=(), name="bridge"):
        super().__init__([BRIDGE, "-c", config, "-l", "debug"] + list(args), name,
                         stdout=subprocess.DEVNULL)

    def wait(self, timeout=60):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


# ---- a small MQTT v5 client ------------------------------------------------

def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


class Msg:
    def __init__(self, topic, payload, retain, qos, props):
        self.topic, self.payload, self.retain, self.qos, self.props = topic, payload, retain, qos, props

    def text(self):
        return self.payload.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.payload.decode())

    def __repr__(self):
        return "Msg(%s, %r, retain=%s)" % (self.topic, self.payload[:80], self.retain)


class MqttClient:
    def __init__(self, port, client_id=None):
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.sock.settimeout(None)
        self.pid = 1
        self.msgs = []
        self.cond = threading.Condition()
        self.acks = queue.Queue()
        cid = client_id or "test-%d-%d" % (os.getpid(), id(self) % 100000)
        var = _str("MQTT") + bytes([5, 0x02]) + struct.pack("!H", 0) + _varint(0)
        self._send(0x10, var + _str(cid))
        t, body = self._read_packet()
        if t >> 4 != 2 or body[1] != 0:
            raise RuntimeError("CONNACK refused: %r" % body)
        self.reader = threading.Thread(target=self._loop, daemon=True)
        self.reader.start()

    def _send(self, first, body):
        self.sock.sendall(bytes([first]) + _varint(len(body)) + body)

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _read_packet(self):
        first = self._recv(1)[0]
        mult, length = 1, 0
        while True:
            b = self._recv(1)[0]
            length += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        return first, self._recv(length) if length else b""

    @staticmethod
    def _read_varint(buf, i):
        mult, val = 1, 0
        while True:
            b = buf[i]
            i += 1
            val += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                return val, i

    def _parse_props(self, buf, i):
        plen, i = self._read_varint(buf, i)
        end = i + plen
        props = {}
        while i < end:
            pid = buf[i]
            i += 1
            if pid in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A):
                props[pid] = buf[i]; i += 1
            elif pid in (0x13, 0x21, 0x22, 0x23):
                props[pid] = struct.unpack("!H", buf[i:i + 2])[0]; i += 2
            elif pid in (0x02, 0x11, 0x18, 0x27):
                props[pid] = struct.unpack("!I", buf[i:i + 4])[0]; i += 4
            elif pid == 0x0B:
                props[pid], i = self._read_varint(buf, i)
            elif pid == 0x26:
                n = struct.unpack("!H", buf[i:i + 2])[0]; k = buf[i + 2:i + 2 + n]; i += 2 + n
                m = struct.unpack("!H", buf[i:i + 2])[0]; v = buf[i + 2:i + 2 + m]; i += 2 + m
                props.setdefault(pid, []).append((k.decode(), v.decode()))
            else:  # strings and binary data
                n = struct.unpack("!H", buf[i:i + 2])[0]
                props[pid] = buf[i + 2:i + 2 + n]; i += 2 + n
        return props, end

    def _loop(self):
        try:
            while True:
                first, body = self._read_packet()
                kind = first >> 4
                if kind == 3:
                    qos = (first >> 1) & 3
                    n = struct.unpack("!H", body[:2])[0]
                    topic = body[2:2 + n].decode()
                    i = 2 + n
                    if qos:
                        pid = body[i:i + 2]
                        i += 2
                        self._send(0x40, pid)
                    props, i = self._parse_props(body, i)
                    m = Msg(topic, body[i:], bool(first & 1), qos, props)
                    with self.cond:
                        self.msgs.append(m)
                        self.cond.notify_all()
                elif kind in (9, 11, 4):
                    self.acks.put((kind, body))
        except (EOFError, OSError):
            pass

    def subscribe(self, *filters, qos=1):
        for f in filters:
            pid = self._next_pid()
            self._send(0x82, struct.pack("!H", pid) + _varint(0) + _str(f) + bytes([qos]))
            self.acks.get(timeout=5)

    def unsubscribe(self, f):
        pid = self._next_pid()
        self._send(0xA2, struct.pack("!H", pid) + _varint(0) + _str(f))
        self.acks.get(timeout=5)

    def _next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def publish(self, topic, payload, qos=0, retain=False, response_topic=None,
                correlation=None, expiry=None):
        props = b""
        if expiry is not None:
            props += bytes([0x02]) + struct.pack("!I", expiry)
        if response_topic:
            props += bytes([0x08]) + _str(response_topic)
        if correlation is not None:
            props += bytes([0x09]) + _str(correlation)
        body = _str(topic)
        if qos:
            body += struct.pack("!H", self._next_pid())
        data = payload.encode() if isinstance(payload, str) else payload
        body += _varint(len(props)) + props + data
        self._send(0x30 | (qos << 1) | (1 if retain else 0), body)
        if qos:
            self.acks.get(timeout=5)

    def wait_for(self, pred, timeout=10.0, start=0):
        """Returns the first message (from index start) matching pred, or None."""
        end = time.time() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.msgs):
                    if pred(self.msgs[i]):
                        return self.msgs[i]
                    i += 1
                left = end - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def mark(self):
        with self.cond:
            return len(self.msgs)

    def since(self, mark):
        with self.cond:
            return list(self.msgs[mark:])

    def close(self):
        try:
            self._send(0xE0, b"\x00")
            self.sock.close()
        except OSError:
            pass


def retained(port, filt, settle=1.5):
    """All retained messages under filt: {topic: payload bytes} (empty ones dropped)."""
    c = MqttClient(port)
    c.subscribe(filt)
    time.sleep(settle)
    out = {}
    for m in c.since(0):
        if m.retain and m.payload:
            out[m.topic] = m.payload
    c.close()
    return out
