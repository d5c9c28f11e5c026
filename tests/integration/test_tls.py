"""TLS and credentials to the broker, for real: mosquitto with a CA, a server
and a client certificate this test generates with openssl, a password file
and require_certificate. The bridge connects with verification on; a wrong
CA, a host name the certificate does not name, and a wrong password each
keep it out with a clear log line while it keeps retrying. Secrets (the API
token and the MQTT password) never appear in the log, in any MQTT payload or
in bridge/info.
"""
import json
import os
import subprocess
import time

import harness as h

t = h.Checker()
API_TOKEN = "tok-SECRET-5f2c9e81d7a4b3"
MQTT_USER = "bridge"
MQTT_PASSWORD = "pw-SECRET-c4e19a7b62d0"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """ca (+ server with SAN 127.0.0.1/localhost, server-wrong naming only
    wrong.example, client), and an unrelated other-ca."""
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=t2m test " + ca,
                "-keyout", ca + ".key", "-out", ca + ".crt", cwd=d)

    def leaf(name, subj, ext):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout", name + ".key",
                "-out", name + ".csr", cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", name + ".crt", "-extfile", name + ".ext", cwd=d)

    leaf("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
         "extendedKeyUsage=serverAuth\n")
    leaf("server-wrong", "/CN=wrong.example", "subjectAltName=DNS:wrong.example\n"
         "extendedKeyUsage=serverAuth\n")
    leaf("client", "/CN=toyota2mqtt", "extendedKeyUsage=clientAuth\n")
    os.chmod(d, 0o755)                            # mosquitto run as root drops to its own user
    for f in os.listdir(d):
        if f.endswith(".key"):
            os.chmod(os.path.join(d, f), 0o644)   # mosquitto may drop privileges
    pw = os.path.join(d, "passwd")
    subprocess.run(["mosquitto_passwd", "-b", "-c", pw, MQTT_USER, MQTT_PASSWORD], check=True,
                   capture_output=True, timeout=30)
    os.chmod(pw, 0o644)
    return {n: os.path.join(d, n) for n in os.listdir(d)}


def broker(pki, server="server"):
    return h.Mosquitto(extra="allow_anonymous false\npassword_file %s\ncafile %s\ncertfile %s\nkeyfile %s\n"
                       "require_certificate true\ntls_version tlsv1.2\n"
                       % (pki["passwd"], pki["ca.crt"], pki[server + ".crt"], pki[server + ".key"]))


def config(d, sim, port, base, pki, host="127.0.0.1", ca="ca.crt", password=MQTT_PASSWORD, verify=True):
    path = h.write_config(os.path.join(d, base + ".conf"), sim.base_url, port, base=base, token=API_TOKEN,
                          mqtt_extra='  username = "%s";\n  password = "%s";\n'
                                     '  tls = { ca_file = "%s"; cert_file = "%s"; key_file = "%s"; verify = %s; };'
                                     % (MQTT_USER, password, pki[ca], pki["client.crt"], pki["client.key"],
                                        "true" if verify else "false"),
                          extra='commands = { allow = ["horn"]; };')
    with open(path) as f:
        text = f.read().replace("tcp://127.0.0.1:%d" % port, "ssl://%s:%d" % (host, port))
    with open(path, "w") as f:
        f.write(text)
    return path


def tls_sub(pki, port, topic, count, seconds):
    """mosquitto_sub over TLS with the client certificate: the payloads seen."""
    r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "--cafile", pki["ca.crt"],
                        "--cert", pki["client.crt"], "--key", pki["client.key"], "-u", MQTT_USER,
                        "-P", MQTT_PASSWORD, "-t", topic, "-v", "-C", str(count), "-W", str(seconds)],
                       capture_output=True, timeout=seconds + 10)
    return r.stdout.decode("utf-8", "replace")


def tls_pub(pki, port, topic, payload):
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "--cafile", pki["ca.crt"],
                    "--cert", pki["client.crt"], "--key", pki["client.key"], "-u", MQTT_USER,
                    "-P", MQTT_PASSWORD, "-t", topic, "-m", payload, "-q", "1"],
                   capture_output=True, timeout=20, check=True)


def wait_log(b, text, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if text in b.stderr():
            return True
        time.sleep(0.2)
    return text in b.stderr()


def check_good(sim, pki, d):
    mq = broker(pki)
    b = h.Bridge(config(d, sim, mq.port, "tls", pki))
    online = wait_log(b, "mqtt: connected", 20)
    t.check("tls: connects with CA, client certificate, user and password, verification on",
            online, b.stderr()[-1500:])
    out = tls_sub(pki, mq.port, "tls/bridge/state", 1, 10)
    t.check("tls: bridge/state online seen over TLS", "tls/bridge/state online" in out, out)
    st, vl = sim.get("/vehicles", token=API_TOKEN)
    vin = vl["data"][0]["vin"]
    time.sleep(4)
    everything = tls_sub(pki, mq.port, "#", 100000, 3)
    t.check("tls: state is published over TLS", ("tls/%s/status " % vin) in everything, everything[:300])
    # A command over TLS, and its result.
    res = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mq.port), "--cafile", pki["ca.crt"],
                            "--cert", pki["client.crt"], "--key", pki["client.key"], "-u", MQTT_USER,
                            "-P", MQTT_PASSWORD, "-t", "tls/%s/command/result" % vin, "-C", "1", "-W", "20"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    tls_pub(pki, mq.port, "tls/%s/command" % vin, '{"command":"horn","id":"tls-1"}')
    out = res.communicate(timeout=30)[0].decode()
    t.check("tls: a command over TLS gets its result", '"id":"tls-1"' in out and '"ok":true' in out, out)
    info = [line for line in everything.splitlines() if line.startswith("tls/bridge/info ")]
    t.check("tls: bridge/info says a password is set, without it",
            info and json.loads(info[0].split(" ", 1)[1])["config"]["mqtt"].get("password_set") is True, info[:1])
    rc = b.stop()
    log = b.stderr()
    t.check("tls: SIGTERM exits 0", rc == 0, rc)
    for name, secret in (("API token", API_TOKEN), ("MQTT password", MQTT_PASSWORD)):
        t.check("secrets: the %s is not in the log (debug level)" % name, secret not in log)
        t.check("secrets: the %s is in no MQTT payload (%d bytes seen)" % (name, len(everything)),
                secret not in everything)
    t.check("tls: no sanitizer report", not h.sanitizer_report(log), h.sanitizer_report(log))
    mq.stop()


def check_refused(sim, pki, d, name, want_log, **kw):
    server = kw.pop("server", "server")
    mq = broker(pki, server)
    b = h.Bridge(config(d, sim, mq.port, "bad" + name.replace(" ", ""), pki, **kw))
    failed = wait_log(b, "cannot connect", 15)
    time.sleep(3.5)       # the first retries (1 s, 2 s)
    log = b.stderr()
    lines = [line for line in log.splitlines() if "cannot connect" in line]
    t.check("%s: no connection, one clear log line" % name,
            failed and "mqtt: connected" not in log and any(w in lines[0] for w in want_log),
            lines[:2] or log[-800:])
    tries = mq.stderr().count("New connection from")
    t.check("%s: the bridge keeps running and retrying (%d attempts seen by the broker in ~5 s)"
            % (name, tries), b.alive() and tries >= 2, mq.stderr()[-600:])
    out = tls_sub(pki, mq.port, "#", 1000, 2) if server == "server" else ""
    t.check("%s: nothing was published" % name, "bad" not in out, out[:200])
    rc = b.stop()
    t.check("%s: SIGTERM while refused exits 0" % name, rc == 0, rc)
    t.check("%s: neither secret in the log" % name, API_TOKEN not in b.stderr() and MQTT_PASSWORD not in b.stderr())
    mq.stop()


def main():
    d = h.tmpdir()
    pki = make_pki(d)
    sim = h.Sim(extra=["--token", API_TOKEN])
    check_good(sim, pki, d)
    check_refused(sim, pki, d, "wrong CA", ["certificate verify failed", "verify"], ca="other-ca.crt")
    check_refused(sim, pki, d, "host name mismatch", ["host", "name", "certificate", "verify"],
                  server="server-wrong")
    check_refused(sim, pki, d, "wrong password", ["password", "Not authorized", "authoriz"],
                  password="not-the-password")
    # verify = false accepts the mismatching certificate (the switch really switches).
    mq = broker(pki, "server-wrong")
    b = h.Bridge(config(d, sim, mq.port, "noverify", pki, verify=False))
    t.check("verify = false: connects to a certificate that names another host",
            wait_log(b, "mqtt: connected", 20), b.stderr()[-800:])
    b.stop()
    mq.stop()
    t.done()


if __name__ == "__main__":
    main()
