"""Authentication that lasts, end to end: a real mosquitto, the simulator's
OAuth2 token endpoint and the bridge.

- the access token is renewed before it expires (a 20 s token lifetime);
- a revoked access token (401) is renewed once and the request retried;
- every rotated refresh token is in the 0600 state file at once, and a
  bridge killed with SIGKILL and started again uses it (the configured one is
  invalid by then);
- an invalid refresh token is a clear error on bridge/error and in the log,
  and a corrected configuration (SIGHUP) recovers and clears it;
- a static token the API rejects is reported the same way;
- a corrupt or foreign state file stops the bridge with a one-line error and
  is left untouched;
- no secret (access token, refresh token) ever appears in the log, on MQTT or
  in bridge/info.
"""
import json
import os
import re
import signal
import stat
import subprocess
import threading
import time

import harness as h

t = h.Checker()
CLIENT_ID = "t2m-oauth-test"


ReqWatch = h.ReqWatch


def is_token(e):
    return e["path"] == "/oauth2/token"


def is_api(e):
    return e["path"].startswith("/connected/v1/")


def unique_client_id(path, base):
    """One MQTT client id per bridge: with the harness's shared one the broker
    would keep taking the session from one bridge to give it to the next."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r'client_id = "t2m-test-(\d+)";', r'client_id = "t2m-test-%s-\1";' % base, text)
    with open(path, "w") as f:
        f.write(text)
    return path


def oauth_config(path, sim, mq, base, refresh_token, state_file, poll=None):
    api = ('  oauth = { token_url = "%s/oauth2/token"; client_id = "%s"; refresh_token = "%s"; };'
           % (sim.root, CLIENT_ID, refresh_token))
    return unique_client_id(h.write_config(path, sim.base_url, mq.port, base=base, token="", api_extra=api,
                          extra='state_file = "%s";' % state_file, ha=False,
                          poll=poll or {"vehicles": 3600, "vehicle": 10, "status": 10,
                                        "location": 3600, "health": 3600, "electric": 3600,
                                        "climate": 3600, "trips": 3600, "notifications": 3600,
                                        "service_history": 86400}), base)


def read_state(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def secrets_leaked(secrets, texts):
    """The first (secret, where) found, or None."""
    for s in secrets:
        if not s or len(s) < 6:
            continue
        for where, text in texts:
            if s in text:
                return (s[:12] + "...", where)
    return None


def messages_text(client):
    return "\n".join("%s %s" % (m.topic, m.payload.decode("utf-8", "replace"))
                     for m in client.since(0))


# ---- renewal, rotation, 401, restart --------------------------------------

class Renewal:
    """The long scenario; its bridge runs while the short ones are checked."""

    def __init__(self, mq):
        self.mq = mq
        self.sim = h.Sim(vehicles=2, seed=7, extra=["--refresh-token", "RT0-initial-secret",
                                                    "--token-ttl", "20"])
        self.req = ReqWatch(self.sim)
        self.d = h.tmpdir()
        self.state = os.path.join(self.d, "state.json")
        self.conf = oauth_config(os.path.join(self.d, "o.conf"), self.sim, mq, "oa",
                                 "RT0-initial-secret", self.state)
        self.watch = h.MqttClient(mq.port)
        self.watch.subscribe("oa/#")
        self.secrets = {"RT0-initial-secret"}
        self.rotations = []          # (time seen, refresh token) as the state file changed
        self.stop = False
        self.t0 = time.time()
        self.bridge = h.Bridge(self.conf, name="oauth")
        self.th = threading.Thread(target=self._watch_state, daemon=True)
        self.th.start()

    def _watch_state(self):
        last = None
        while not self.stop:
            st = read_state(self.state)
            if st:
                rt = st.get("oauth", {}).get("refresh_token")
                at = st.get("oauth", {}).get("access_token")
                for s in (rt, at):
                    if s:
                        self.secrets.add(s)
                if rt and rt != last:
                    self.rotations.append((time.time(), rt))
                    last = rt
            time.sleep(0.05)

    def check_first_token(self):
        tok = self.req.wait(lambda e: is_token(e), 15)
        t.check("oauth: the bridge asks the token endpoint for an access token at start",
                tok is not None and tok[1]["status"] == 200, self.bridge.stderr()[-1500:])
        ok = self.req.wait(lambda e: is_api(e) and e["status"] == 200, 15)
        t.check("oauth: API calls succeed with the OAuth access token", ok is not None,
                self.req.since()[:5])
        av = self.watch.wait_for(lambda m: m.topic.endswith("/availability") and
                                 m.payload == b"online", 20)
        t.check("oauth: vehicles come online", av is not None)
        time.sleep(1.0)
        st = read_state(self.state)
        mode = stat.S_IMODE(os.stat(self.state).st_mode) if os.path.exists(self.state) else None
        t.check("oauth: state file exists with mode 0600", mode == 0o600, oct(mode or 0))
        rt = (st or {}).get("oauth", {}).get("refresh_token", "")
        t.check("oauth: the rotated refresh token is in the state file at once",
                rt.startswith("rt.") and rt != "RT0-initial-secret", rt[:6])

    def check_renewals(self):
        """Called after >= 45 s: renewals happened before expiry, never a 401."""
        t.check("oauth: the bridge is still running", self.bridge.alive(),
                self.bridge.stderr()[-3000:])
        toks = self.req.since(self.t0, is_token)
        ok_toks = [ts for ts, e in toks if e["status"] == 200]
        gaps = [b - a for a, b in zip(ok_toks, ok_toks[1:])]
        t.check("oauth: the 20 s access token is renewed before it expires (every ~18 s)",
                len(ok_toks) >= 3 and all(10 <= g <= 20.5 for g in gaps[:3]),
                "renewals at %s, now %.1f, log %s" % ([round(ts - self.t0, 1) for ts in ok_toks],
                                                      time.time() - self.t0,
                                                      self.bridge.stderr()[-3000:]))
        fours = self.req.since(self.t0, lambda e: is_api(e) and e["status"] == 401)
        t.check("oauth: no API call ever met an expired token", not fours,
                [e["path"] for _, e in fours][:5])
        # every rotation reached the state file within 1.5 s of the token answer
        late = []
        for ts in ok_toks:
            seen = [rt_ts for rt_ts, _ in self.rotations if ts - 0.3 <= rt_ts <= ts + 1.5]
            if not seen:
                late.append(round(ts - self.t0, 1))
        t.check("oauth: each rotated refresh token is saved within 1.5 s", not late and
                len(self.rotations) >= len(ok_toks), "late: %s rotations: %d tokens: %d"
                % (late, len(self.rotations), len(ok_toks)))

    def check_revoked(self):
        # Right after a renewal, with tokens that live long now: the next API
        # call (10 s interval) must meet the revocation, not a renewal.
        self.sim.admin("POST", "/faults", {"token_ttl": 3600})
        tok = self.req.wait(lambda e: is_token(e) and e["status"] == 200, 25, time.time() + 0.3)
        t.check("oauth: a renewal follows the token lifetime change", tok is not None)
        mark = self.watch.mark()
        t1 = time.time()
        st, _ = self.sim.admin("POST", "/faults", {"revoke_tokens": True})
        t.check("oauth: simulator revokes the access tokens", st == 200)
        first401 = self.req.wait(lambda e: is_api(e) and e["status"] == 401, 25, t1)
        t.check("oauth: after the revocation an API call gets 401", first401 is not None,
                ([(round(ts - t1, 1), e["path"], e["status"]) for ts, e in self.req.since(t1 - 20)],
                 self.bridge.alive(), self.bridge.stderr()[-2500:]))
        if not first401:
            return
        n0 = first401[1]["seq"]
        tok = self.req.wait(lambda e: is_token(e) and e["status"] == 200 and e["seq"] > n0, 10)
        t.check("oauth: a 401 makes the bridge renew the token", tok is not None)
        path = first401[1]["path"]
        n1 = tok[1]["seq"] if tok else n0
        retry = self.req.wait(lambda e: e["path"] == path and e["status"] == 200 and e["seq"] > n1,
                              10)
        t.check("oauth: the rejected request is retried after the renewal and succeeds",
                retry is not None, self.req.since(first401[0])[:6])
        n401 = self.req.since(t1, lambda e: is_api(e) and e["status"] == 401)
        t.check("oauth: only the calls in flight met the revoked token (no 401 storm)",
                len(n401) <= 4, len(n401))
        time.sleep(2)
        bad = [m for m in self.watch.since(mark)
               if (m.topic.endswith("/availability") and m.payload == b"offline")
               or (m.topic == "oa/bridge/error" and m.payload)]
        t.check("oauth: a renewed token on 401 is invisible to the user (no offline, no error)",
                not bad, bad[:3])

    def check_restart(self):
        """SIGKILL (nothing saved at exit), revoke, start again: the state's
        refresh token must be the one that works; the configured one is dead."""
        before = read_state(self.state)
        self.bridge.stop(signal.SIGKILL)
        self.sim.admin("POST", "/faults", {"revoke_tokens": True})
        st, body = h.http("POST", self.sim.root + "/oauth2/token",
                          body=b"grant_type=refresh_token&refresh_token=RT0-initial-secret"
                               b"&client_id=" + CLIENT_ID.encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        t.check("oauth: the configured refresh token is invalid by now (rotated)",
                st == 400 and isinstance(body, dict) and body.get("error") == "invalid_grant",
                (st, body))
        time.sleep(0.5)             # the request log watcher has seen our own request
        n2 = len(self.req.since())
        self.bridge2 = h.Bridge(self.conf, name="oauth2")
        tok = self.req.wait(lambda e: is_token(e) and e["seq"] >= n2, 15)
        ok = self.req.wait(lambda e: is_api(e) and e["status"] == 200 and e["seq"] >= n2, 20)
        t.check("oauth: a restarted bridge renews with the saved refresh token",
                tok is not None and tok[1]["status"] == 200 and ok is not None,
                (tok, self.bridge2.stderr()[-1500:]))
        t.check("oauth: the restart used the saved tokens, not the configured one",
                before and "invalid_grant" not in self.bridge2.stderr())

    def finish(self):
        self.stop = True
        self.req.stop = True
        time.sleep(0.2)
        for b in (self.bridge, getattr(self, "bridge2", None)):
            if b:
                rc = b.stop()
                if b is not self.bridge:
                    t.check("oauth: bridge exits 0 on SIGTERM", rc == 0, rc)
                rep = h.sanitizer_report(b.stderr())
                t.check("oauth: no sanitizer report (%s)" % b.name, not rep, rep)
        info = h.retained(self.mq.port, "oa/bridge/info")
        texts = [("log " + b.name, b.stderr()) for b in (self.bridge, self.bridge2)]
        texts += [("mqtt", messages_text(self.watch)),
                  ("bridge/info", "".join(v.decode() for v in info.values()))]
        leak = secrets_leaked(self.secrets, texts)
        t.check("oauth: no access or refresh token in the log, on MQTT or in bridge/info "
                "(%d secrets checked)" % len(self.secrets), leak is None, leak)
        t.check("oauth: bridge/info is published", bool(info))
        self.sim.stop()


# ---- invalid refresh token, then fixed with SIGHUP -------------------------

def check_invalid_refresh(mq):
    sim = h.Sim(vehicles=1, seed=3, extra=["--refresh-token", "RT-good-0123456789"])
    d = h.tmpdir()
    state = os.path.join(d, "state.json")
    conf = os.path.join(d, "bad.conf")
    oauth_config(conf, sim, mq, "ob", "RT-wrong-9876543210", state)
    watch = h.MqttClient(mq.port)
    watch.subscribe("ob/#")
    b = h.Bridge(conf, name="badrt")
    err = watch.wait_for(lambda m: m.topic == "ob/bridge/error" and m.payload, 15)
    body = {}
    try:
        body = err.json() if err else {}
    except ValueError:
        pass
    kept = h.retained(mq.port, "ob/bridge/error")
    t.check("invalid refresh token: retained bridge/error JSON says authentication failed",
            err is not None and "ob/bridge/error" in kept and "authentication failed" in body.get("message", "")
            and "invalid_grant" in body.get("message", "") and body.get("at", "").endswith("Z"),
            (err, b.stderr()[-1000:]))
    log = b.stderr()
    errs = [l for l in log.splitlines() if " error " in l and "invalid_grant" in l]
    t.check("invalid refresh token: one clear error line in the log", len(errs) == 1, errs)
    time.sleep(6)   # the auth backoff must not retry a refused refresh token
    toks = [e for e in sim.requests() if is_token(e)]
    t.check("invalid refresh token: not retried (needs a human)", len(toks) == 1, len(toks))
    api = [e for e in sim.requests() if is_api(e)]
    t.check("invalid refresh token: no API call without a token", not api, len(api))
    t.check("invalid refresh token: the bridge keeps running", b.alive())
    # The operator fixes the configuration and sends SIGHUP.
    oauth_config(conf, sim, mq, "ob", "RT-good-0123456789", state)
    mark = watch.mark()
    b.p.send_signal(signal.SIGHUP)
    cleared = watch.wait_for(lambda m: m.topic == "ob/bridge/error" and m.payload == b"", 20,
                             start=mark)
    data = watch.wait_for(lambda m: m.topic.endswith("/status") and m.payload, 20, start=mark)
    t.check("invalid refresh token: a corrected configuration (SIGHUP) recovers: data flows",
            data is not None, b.stderr()[-1500:])
    t.check("invalid refresh token: bridge/error is cleared (empty retained) once it works",
            cleared is not None)
    left = h.retained(mq.port, "ob/bridge/error")
    t.check("invalid refresh token: no retained bridge/error is left", not left, left)
    st = read_state(state) or {}
    secrets = {"RT-wrong-9876543210", "RT-good-0123456789",
               st.get("oauth", {}).get("refresh_token"), st.get("oauth", {}).get("access_token")}
    b.stop()
    leak = secrets_leaked(secrets, [("log", b.stderr()), ("mqtt", messages_text(watch))])
    t.check("invalid refresh token: no secret in the log or on MQTT", leak is None, leak)
    rep = h.sanitizer_report(b.stderr())
    t.check("invalid refresh token: no sanitizer report", not rep, rep)
    watch.close()
    sim.stop()


# ---- static token rejected --------------------------------------------------

def check_static_rejected(mq):
    sim = h.Sim(vehicles=1, seed=5)
    d = h.tmpdir()
    conf = unique_client_id(h.write_config(os.path.join(d, "s.conf"), sim.base_url, mq.port,
                                           base="os", token="not-the-right-token-42", ha=False),
                            "os")
    watch = h.MqttClient(mq.port)
    watch.subscribe("os/#")
    b = h.Bridge(conf, name="static401")
    err = watch.wait_for(lambda m: m.topic == "os/bridge/error" and m.payload, 15)
    msg = ""
    try:
        msg = err.json().get("message", "") if err else ""
    except ValueError:
        pass
    t.check("static token rejected: bridge/error says authentication failed, check api.token",
            "authentication failed" in msg and "api.token" in msg, (msg, b.stderr()[-800:]))
    b.stop()
    log = b.stderr()
    t.check("static token rejected: logged once as an error naming api.token",
            len([l for l in log.splitlines() if " error " in l and "api.token" in l]) == 1,
            log[-1500:])
    leak = secrets_leaked({"not-the-right-token-42"}, [("log", log), ("mqtt", messages_text(watch))])
    t.check("static token rejected: the token is in neither the log nor MQTT", leak is None, leak)
    watch.close()
    sim.stop()


# ---- corrupt or foreign state file ------------------------------------------

def check_bad_state_files(mq):
    d = h.tmpdir()
    cases = [("corrupt", '{"format":"toyota2mqtt-state","version":1,"oauth":{"refresh_tok',
              "corrupt"),
             ("foreign", '{"hello": "this is some other program\'s file"}\n',
              "not a toyota2mqtt state file"),
             ("future version", '{"format":"toyota2mqtt-state","version":99}\n', "version 99"),
             ("empty", "", "empty")]
    for name, text, want in cases:
        state = os.path.join(d, name.replace(" ", "_") + ".json")
        with open(state, "w") as f:
            f.write(text)
        conf = oauth_config(os.path.join(d, "c.conf"), type("S", (), {
            "root": "http://127.0.0.1:9", "base_url": "http://127.0.0.1:9/connected/v1"}),
            mq, "oc", "RT-x-0000000000", state)
        r = subprocess.run([h.BRIDGE, "-c", conf], capture_output=True, text=True, timeout=20)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        with open(state) as f:
            after = f.read()
        t.check("state file %s: the bridge refuses to start (exit 1 or 2) with one error line "
                "naming the file" % name,
                r.returncode in (1, 2) and len(lines) == 1 and state in lines[0] and
                want in lines[0] and "RT-x" not in r.stderr, (r.returncode, r.stderr[-600:]))
        t.check("state file %s: left untouched" % name, after == text)
        rep = h.sanitizer_report(r.stderr)
        t.check("state file %s: no sanitizer report" % name, not rep, rep)


def main():
    mq = h.Mosquitto()
    ren = Renewal(mq)
    ren.check_first_token()
    check_bad_state_files(mq)
    check_static_rejected(mq)
    check_invalid_refresh(mq)
    left = 45 - (time.time() - ren.t0)
    if left > 0:
        time.sleep(left)
    ren.check_renewals()
    ren.check_revoked()
    ren.check_restart()
    ren.finish()
    t.done()


if __name__ == "__main__":
    main()
