#!/usr/bin/env python3
"""Integration test of toyota2mqtt-sim, the Toyota Connected Services simulator.

Starts the simulator on free loopback ports and checks the API against the
OpenAPI spec's semantics: auth, 404/405, the 16 operations, validation,
pagination, time evolution, OAuth refresh-token rotation, faults, the admin
endpoints, the request log and determinism. Prints "PASS name" or
"FAIL name: detail" per check and exits 1 if any failed. Standard library only.
"""
import base64
import datetime
import http.client
import json
import os
import select
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BUILD = os.environ.get('T2M_BUILD', os.path.join(ROOT, 'build'))
SIM = os.path.join(BUILD, 'toyota2mqtt-sim')
TOKEN = 'test-token-123'
RT0 = 'initial-refresh-token'
N = 6
SEED = 4242

results = []
stopped = []   # (args, exit code, stderr) of every simulator stopped


def check(name, ok, detail=''):
    results.append(ok)
    print(('PASS %s' % name) if ok else ('FAIL %s: %s' % (name, detail)), flush=True)
    return ok


# ---------------------------------------------------------------- VIN check digit (independent)
_TRANS = dict(zip('ABCDEFGHJKLMNPRSTUVWXYZ', [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9]))
_TRANS.update({str(d): d for d in range(10)})
_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]


def vin_ok(vin):
    if len(vin) != 17 or any(c not in _TRANS for c in vin):
        return False
    r = sum(_TRANS[c] * w for c, w in zip(vin, _WEIGHTS)) % 11
    return vin[8] == ('X' if r == 10 else str(r))


# ---------------------------------------------------------------- simulator process
class Sim:
    def __init__(self, *args, log=True):
        self.tmp = tempfile.mkdtemp(prefix='t2m-sim-')
        self.log = os.path.join(self.tmp, 'requests.jsonl') if log else None
        self.errpath = os.path.join(self.tmp, 'stderr')
        cmd = [SIM, '--port', '0'] + list(args)
        if self.log:
            cmd += ['--request-log', self.log]
        self.err = open(self.errpath, 'w')
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err)
        line = b''
        deadline = time.time() + 15
        while not line.endswith(b'\n') and time.time() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    break
                line += ch
        text = line.decode()
        if not text.startswith('listening on http://127.0.0.1:') or not text.rstrip().endswith('/connected/v1'):
            self.stop()
            raise RuntimeError('simulator did not start: %r %s' % (text, self.stderr()))
        self.port = int(text.rsplit(':', 1)[1].split('/')[0])

    def stderr(self):
        with open(self.errpath) as f:
            return f.read()

    def stop(self):
        """Stops with SIGTERM; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.err.closed:
            self.err.close()
            stopped.append((self.proc.args, self.proc.returncode, self.stderr()))
        return self.proc.returncode

    def request(self, method, path, body=None, token=TOKEN, headers=None, raw_body=None):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        h = dict(headers or {})
        if token is not None:
            h['Authorization'] = 'Bearer ' + token
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault('Content-Type', 'application/json')
        if isinstance(data, str):
            data = data.encode()
        if data is not None:
            h.setdefault('Content-Type', 'application/json')
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        return resp.status, resp, payload

    def api(self, method, path, body=None, **kw):
        return self.request(method, '/connected/v1' + path, body, **kw)

    def get_json(self, path, **kw):
        status, _, payload = self.api('GET', path, **kw)
        return status, (json.loads(payload) if payload else None)

    def admin(self, method, path, body=None):
        status, _, payload = self.request(method, '/_sim/' + path, body, token=None)
        return status, (json.loads(payload) if payload else None)

    def log_lines(self):
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]


def is_time(s):
    try:
        return isinstance(s, str) and s.endswith('Z') and bool(datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%SZ'))
    except ValueError:
        return False


def is_error(payload, code):
    try:
        j = json.loads(payload)
        return j.get('code') == code and isinstance(j.get('message'), str) and j['message'] != ''
    except ValueError:
        return False


def today(offset_days=0):
    return (datetime.datetime.utcnow() + datetime.timedelta(days=offset_days)).strftime('%Y-%m-%d')


# ---------------------------------------------------------------- checks on the main simulator
def check_auth_and_routing(sim, vins):
    st, _, p = sim.api('GET', '/vehicles', token=None)
    check('auth_missing_401', st == 401 and is_error(p, 'UNAUTHORIZED'), '%s %r' % (st, p))
    st, _, p = sim.api('GET', '/vehicles', token='wrong')
    check('auth_wrong_401', st == 401 and is_error(p, 'UNAUTHORIZED'), '%s %r' % (st, p))
    st, _, p = sim.api('GET', '/vehicles/%s/status' % vins[0], token='wrong')
    check('auth_wrong_on_resource_401', st == 401, str(st))
    st, _, p = sim.api('GET', '/vehicles/JTDKB20U000000000/status')
    check('unknown_vin_404', st == 404 and is_error(p, 'NOT_FOUND'), '%s %r' % (st, p))
    st, _, p = sim.api('GET', '/vehicles/JTDKB20U000000000')
    check('unknown_vin_vehicle_404', st == 404 and is_error(p, 'NOT_FOUND'), '%s %r' % (st, p))
    st, _, p = sim.api('GET', '/vehicles/%s/bogus' % vins[0])
    check('unknown_path_404', st == 404 and is_error(p, 'NOT_FOUND'), '%s %r' % (st, p))
    st, _, p = sim.api('GET', '/vehicles/%FF%C3/status')
    try:
        valid = json.loads(p.decode('utf-8'))['code'] == 'NOT_FOUND'
    except ValueError:
        valid = False
    check('bad_bytes_in_path_404_valid_json', st == 404 and valid, '%s %r' % (st, p))
    st, _, p = sim.request('GET', '/nothing/here')
    check('unknown_root_path_404', st == 404, str(st))
    st, resp, p = sim.api('DELETE', '/vehicles/%s/status' % vins[0])
    check('wrong_method_405', st == 405 and 'GET' in (resp.getheader('Allow') or ''), '%s %r' % (st, p))
    st, _, p = sim.api('POST', '/vehicles')
    check('wrong_method_list_405', st == 405, str(st))


def check_vehicle_list(sim, state):
    st, j = sim.get_json('/vehicles')
    data = (j or {}).get('data', [])
    ok = st == 200 and len(data) == N
    check('vehicle_list_count', ok, '%s %d' % (st, len(data)))
    vins = [v['vin'] for v in data]
    bad = [v for v in vins if not vin_ok(v)]
    check('vin_check_digits', not bad and len(set(vins)) == N, 'bad %r' % bad)
    wmi_ok = all(v[:3] in ('4T1', '5YF', '3TM', '5TF', 'JTH', '2T3', '5TD', '2T2', 'JTM', 'JTD', 'JTJ') for v in vins)
    check('vin_wmi_toyota_lexus', wmi_ok, repr(vins))
    fields_ok = all(isinstance(v.get('make'), str) and v['make'] in ('Toyota', 'Lexus') and isinstance(v.get('model'), str)
                    and isinstance(v.get('year'), int) and isinstance(v.get('isConnected'), bool)
                    and is_time(v.get('lastConnectedAt')) and len(v.get('guid', '')) == 36
                    and isinstance(v.get('color'), str) and isinstance(v.get('trim'), str) for v in data)
    check('vehicle_fields', fields_ok, repr(data[:1]))
    with_alias = sum(1 for v in data if 'alias' in v)
    check('some_aliases_some_not', 0 < with_alias < N, str(with_alias))
    pts = [v['powertrain'] for v in state['vehicles'][:4]]
    check('first_four_powertrains', pts == ['petrol', 'hev', 'phev', 'bev'], repr(pts))
    return vins


def check_electric(sim, vins):
    st, _, p = sim.api('GET', '/vehicles/%s/electric' % vins[0])
    check('electric_petrol_404', st == 404 and is_error(p, 'NOT_FOUND'), '%s %r' % (st, p))
    st, hev = sim.get_json('/vehicles/%s/electric' % vins[1])
    check('electric_hev', st == 200 and 'fuelLevel' in hev and 'fuelRange' in hev and
          0 <= hev['batteryLevel'] <= 100 and hev['pluggedIn'] is False, repr(hev))
    st, phev = sim.get_json('/vehicles/%s/electric' % vins[2])
    check('electric_phev_charging', st == 200 and 'fuelLevel' in phev and phev['batteryRange'] > 0 and
          phev['chargingStatus'] == 'charging' and phev['pluggedIn'] is True and
          is_time(phev.get('estimatedChargeCompleteTime')) and is_time(phev.get('lastUpdatedAt')), repr(phev))
    st, bev = sim.get_json('/vehicles/%s/electric' % vins[3])
    check('electric_bev_no_fuel', st == 200 and 'fuelLevel' not in bev and 'fuelRange' not in bev and
          bev['batteryRange'] > 50 and bev['chargingStatus'] in
          ('not_charging', 'charging', 'fully_charged', 'plugged_in'), repr(bev))
    st, _, p = sim.api('POST', '/vehicles/%s/electric/refresh' % vins[0])
    check('electric_refresh_petrol_404', st == 404, str(st))


def check_read_ops(sim, vins):
    v = vins[0]
    st, j = sim.get_json('/vehicles/%s' % v)
    check('op_getConnectedVehicle', st == 200 and j['vin'] == v, repr(j))
    st, j = sim.get_json('/vehicles/%s/status' % v)
    check('op_getVehicleStatus', st == 200 and j['vin'] == v and j['ignition'] in ('on', 'off') and
          isinstance(j['doorsLocked'], bool) and set(j['doorStatus']) == {'frontLeft', 'frontRight', 'rearLeft', 'rearRight', 'trunk'}
          and set(j['windowStatus']) == {'frontLeft', 'frontRight'} and is_time(j['lastUpdatedAt']), repr(j))
    st, j = sim.get_json('/vehicles/%s/health' % v)
    check('op_getVehicleHealthStatus', st == 200 and j['overallStatus'] in ('good', 'warning', 'critical') and
          j['oilQuantity'] in ('ok', 'low', 'critically_low') and isinstance(j['warningLights'], list) and
          isinstance(j['maintenanceRequired'], bool) and is_time(j['lastReportedAt']), repr(j))
    st, j = sim.get_json('/vehicles/%s/health' % vins[1])
    check('health_warning_lights', st == 200 and len(j['warningLights']) > 0 and
          all(set(w) == {'name', 'severity', 'description'} for w in j['warningLights']), repr(j))
    st, j = sim.get_json('/vehicles/%s/location' % v)
    check('op_getVehiclePosition', st == 200 and -90 <= j['latitude'] <= 90 and -180 <= j['longitude'] <= 180 and
          j['isParked'] is True and is_time(j['timestamp']), repr(j))
    st, j = sim.get_json('/vehicles/%s/location' % vins[1])
    check('driving_car_not_parked', st == 200 and j['isParked'] is False, repr(j))
    st, j = sim.get_json('/vehicles/%s/status' % vins[1])
    check('driving_car_ignition_on', st == 200 and j['ignition'] == 'on', repr(j))
    st, j = sim.get_json('/vehicles/%s/climate' % v)
    check('op_getClimateStatus', st == 200 and isinstance(j['isRunning'], bool) and 60 <= j['temperature'] <= 85 and
          1 <= j['fanSpeed'] <= 5 and j['mode'] in ('auto', 'cool', 'heat', 'defrost', 'off'), repr(j))
    st, j = sim.get_json('/vehicles/%s/service-history' % v)
    recs = (j or {}).get('data', [])
    ok = st == 200 and len(recs) >= 3 and all(
        r['vin'] == v and datetime.datetime.strptime(r['serviceDate'], '%Y-%m-%d') and isinstance(r['mileage'], int)
        and r['dealerCode'] and r['dealerName'] and r['category'] and r['description'] for r in recs)
    check('op_getServiceHistory', ok, repr(j)[:300])


def check_notifications(sim, vins):
    v = vins[0]
    st, j = sim.get_json('/vehicles/%s/notifications' % v)
    data = j['data']
    unread = sum(1 for n in data if not n['isRead'])
    check('op_getVehicleNotifications', st == 200 and j['total'] == len(data) and j['unreadCount'] == unread and
          all(is_time(n['createdAt']) for n in data), repr(j)[:300])
    check('notifications_all_types', {n['type'] for n in data} == {'alert', 'message', 'recall', 'maintenance', 'service'},
          repr({n['type'] for n in data}))
    check('notifications_all_severities', {n['severity'] for n in data} == {'info', 'warning', 'critical'},
          repr({n['severity'] for n in data}))
    check('notifications_read_and_unread', 0 < unread < len(data), str(unread))
    st, u = sim.get_json('/vehicles/%s/notifications?unreadOnly=true' % v)
    check('notifications_unread_only', st == 200 and len(u['data']) == unread and u['total'] == unread and
          u['unreadCount'] == unread and all(not n['isRead'] for n in u['data']), repr(u)[:300])
    st, _, _ = sim.api('GET', '/vehicles/%s/notifications?unreadOnly=yes' % v)
    check('notifications_bad_bool_400', st == 400, str(st))
    st, n = sim.admin('POST', 'vehicles/%s/notifications' % v, {'type': 'recall', 'severity': 'critical', 'title': 'Test recall'})
    st2, j2 = sim.get_json('/vehicles/%s/notifications' % v)
    check('admin_add_notification', st == 201 and n['type'] == 'recall' and n['isRead'] is False and
          j2['total'] == len(data) + 1 and j2['unreadCount'] == unread + 1 and j2['data'][0]['id'] == n['id'],
          '%s %r' % (st, n))


def all_trips(sim, vin, frm, to, limit=50, extra=''):
    out, offset, total = [], 0, None
    while True:
        st, j = sim.get_json('/vehicles/%s/trips?fromDate=%s&toDate=%s&limit=%d&offset=%d%s' % (vin, frm, to, limit, offset, extra))
        if st != 200:
            raise RuntimeError('trips page %d: %s' % (offset, st))
        if total is None:
            total = j['total']
        if j['limit'] != limit or j['offset'] != offset or j['total'] != total:
            raise RuntimeError('page metadata %r' % {k: j[k] for k in ('limit', 'offset', 'total')})
        out += j['data']
        offset += limit
        if offset >= total:
            return out, total


def check_trips(sim, vins, state):
    v = vins[0]
    base = '/vehicles/%s/trips' % v
    frm, to = today(-40), today(1)
    bad = {
        'missing_from': '?toDate=%s' % to,
        'missing_to': '?fromDate=%s' % frm,
        'bad_date': '?fromDate=2026-02-30&toDate=%s' % to,
        'bad_date_format': '?fromDate=2026-1-01&toDate=%s' % to,
        'from_after_to': '?fromDate=%s&toDate=%s' % (to, frm),
        'limit_51': '?fromDate=%s&toDate=%s&limit=51' % (frm, to),
        'limit_0': '?fromDate=%s&toDate=%s&limit=0' % (frm, to),
        'limit_text': '?fromDate=%s&toDate=%s&limit=ten' % (frm, to),
        'offset_negative': '?fromDate=%s&toDate=%s&offset=-1' % (frm, to),
        'route_not_bool': '?fromDate=%s&toDate=%s&includeRoute=1' % (frm, to),
        'summary_not_bool': '?fromDate=%s&toDate=%s&includeSummary=yes' % (frm, to),
    }
    for name, q in bad.items():
        st, _, p = sim.api('GET', base + q)
        check('trips_400_' + name, st == 400 and is_error(p, 'BAD_REQUEST'), '%s %r' % (st, p))
    st, j = sim.get_json(base + '?fromDate=%s&toDate=%s' % (frm, to))
    check('op_getTrips_default_limit', st == 200 and j['limit'] == 50 and j['offset'] == 0 and len(j['data']) == min(50, j['total']),
          repr({k: j.get(k) for k in ('limit', 'offset', 'total')}))
    st, j = sim.get_json(base + '?fromDate=%s&toDate=%s&includeSummary=false' % (frm, to))
    check('trips_include_summary_false_ok', st == 200, str(st))
    try:
        trips, total = all_trips(sim, v, frm, to, limit=17)
        ids = [t['id'] for t in trips]
        expected = len(state['vehicles'][0]['trips']['data'])
        check('trips_pagination_complete', len(ids) == total == len(set(ids)) == expected and 40 <= total <= 150,
              'got %d unique %d total %d expected %d' % (len(ids), len(set(ids)), total, expected))
        starts = [t['startTime'] for t in trips]
        check('trips_newest_first', starts == sorted(starts, reverse=True), '')
        t0 = trips[0]
        ok = (t0['vin'] == v and is_time(t0['startTime']) and is_time(t0['endTime']) and t0['endTime'] > t0['startTime']
              and t0['distanceMiles'] > 0 and isinstance(t0['durationMinutes'], int) and t0['averageSpeedMph'] > 0
              and t0['maxSpeedMph'] >= t0['averageSpeedMph'] and t0['startAddress'] and t0['endAddress']
              and set(t0['startCoordinates']) == {'latitude', 'longitude', 'timestamp'} and 'route' not in t0)
        check('trip_fields', ok, repr(t0))
        day = trips[len(trips) // 2]['startTime'][:10]
        st, j = sim.get_json(base + '?fromDate=%s&toDate=%s' % (day, day))
        check('trips_date_filter', st == 200 and j['total'] >= 1 and all(t['startTime'][:10] == day for t in j['data'])
              and j['total'] == sum(1 for t in trips if t['startTime'][:10] == day), repr(j)[:200])
        per_day = max(sum(1 for t in trips if t['startTime'][:10] == d) for d in {t['startTime'][:10] for t in trips})
        check('trips_spread_over_30_days', len({t['startTime'][:10] for t in trips}) >= 15 and
              min(starts) >= today(-31), 'days %d' % len({t['startTime'][:10] for t in trips}))
        many = max(len(s['trips']['data']) for s in state['vehicles'])
        check('trips_many_for_some_car', many > 50, str(many))
        _ = per_day
    except (RuntimeError, KeyError) as e:
        check('trips_pagination_complete', False, str(e))
    st, j = sim.get_json(base + '?fromDate=%s&toDate=%s&limit=3&includeRoute=true' % (frm, to))
    routes = [t.get('route') for t in j['data']]
    ok = st == 200 and all(isinstance(r, list) and len(r) >= 2 and all(set(c) == {'latitude', 'longitude', 'timestamp'} for c in r)
                           for r in routes)
    ok = ok and routes[0][0]['latitude'] == j['data'][0]['startCoordinates']['latitude']
    check('trips_include_route', ok, repr(routes)[:200])
    st, j = sim.get_json(base + '?fromDate=%s&toDate=%s&offset=100000' % (frm, to))
    check('trips_offset_past_end', st == 200 and j['data'] == [] and j['total'] > 0, repr(j)[:200])


def snapshot(sim, vin):
    out = []
    for p in ('', '/status', '/climate', '/location'):
        out.append(sim.api('GET', '/vehicles/%s%s' % (vin, p))[2])
    return out


def check_bad_writes(sim, vins, guid):
    v = vins[0]
    before = snapshot(sim, v)
    cases = [
        ('remote_not_json', 'POST', '/remote-command', '{'),
        ('remote_array', 'POST', '/remote-command', '[]'),
        ('remote_empty_object', 'POST', '/remote-command', '{}'),
        ('remote_empty_body', 'POST', '/remote-command', ''),
        ('remote_bad_enum', 'POST', '/remote-command', {'command': 'fly'}),
        ('remote_wrong_type', 'POST', '/remote-command', {'command': 1}),
        ('remote_beeps_4', 'POST', '/remote-command', {'command': 'horn', 'beeps': 4}),
        ('remote_beeps_0', 'POST', '/remote-command', {'command': 'horn', 'beeps': 0}),
        ('remote_beeps_float', 'POST', '/remote-command', {'command': 'horn', 'beeps': 1.5}),
        ('remote_beeps_string', 'POST', '/remote-command', {'command': 'horn', 'beeps': '2'}),
        ('remote_unknown_prop', 'POST', '/remote-command', {'command': 'unlock', 'force': True}),
        ('remote_trailing', 'POST', '/remote-command', '{"command":"unlock"} x'),
        ('remote_duplicate', 'POST', '/remote-command', '{"command":"lock","command":"unlock"}'),
        ('climate_cmd_missing', 'POST', '/climate/command', {}),
        ('climate_cmd_enum', 'POST', '/climate/command', {'command': 'go'}),
        ('climate_cmd_temp_low', 'POST', '/climate/command', {'command': 'start', 'temperature': 59}),
        ('climate_cmd_temp_high', 'POST', '/climate/command', {'command': 'start', 'temperature': 85.5}),
        ('climate_cmd_temp_string', 'POST', '/climate/command', {'command': 'start', 'temperature': '70'}),
        ('climate_cmd_unknown', 'POST', '/climate/command', {'command': 'start', 'fan': 1}),
        ('climate_set_empty', 'PUT', '/climate', {}),
        ('climate_set_temp', 'PUT', '/climate', {'temperature': 90}),
        ('climate_set_fan_0', 'PUT', '/climate', {'fanSpeed': 0}),
        ('climate_set_fan_6', 'PUT', '/climate', {'fanSpeed': 6}),
        ('climate_set_fan_float', 'PUT', '/climate', {'fanSpeed': 2.5}),
        ('climate_set_mode_off', 'PUT', '/climate', {'mode': 'off'}),
        ('climate_set_mode_bad', 'PUT', '/climate', {'mode': 'turbo', 'fanSpeed': 2}),
        ('climate_set_unknown', 'PUT', '/climate', {'fanSpeed': 2, 'x': 1}),
        ('climate_set_null', 'PUT', '/climate', {'temperature': None}),
        ('refresh_empty', 'POST', '/status/refresh', {}),
        ('refresh_no_device_id', 'POST', '/status/refresh', {'deviceType': 'a', 'guid': guid, 'vin': v}),
        ('refresh_no_guid', 'POST', '/status/refresh', {'deviceId': 'd', 'deviceType': 'a', 'vin': v}),
        ('refresh_no_vin', 'POST', '/status/refresh', {'deviceId': 'd', 'deviceType': 'a', 'guid': guid}),
        ('refresh_vin_mismatch', 'POST', '/status/refresh', {'deviceId': 'd', 'deviceType': 'a', 'guid': guid, 'vin': vins[1]}),
        ('refresh_guid_mismatch', 'POST', '/status/refresh', {'deviceId': 'd', 'deviceType': 'a', 'guid': 'nope', 'vin': v}),
        ('refresh_device_id_type', 'POST', '/status/refresh', {'deviceId': 5, 'deviceType': 'a', 'guid': guid, 'vin': v}),
        ('refresh_unknown', 'POST', '/status/refresh', {'deviceId': 'd', 'deviceType': 'a', 'guid': guid, 'vin': v, 'x': 1}),
        ('alias_missing', 'PUT', '', {}),
        ('alias_empty', 'PUT', '', {'alias': ''}),
        ('alias_too_long', 'PUT', '', {'alias': 'x' * 65}),
        ('alias_number', 'PUT', '', {'alias': 5}),
        ('alias_guid_mismatch', 'PUT', '', {'alias': 'ok', 'guid': 'wrong'}),
        ('alias_unknown', 'PUT', '', {'alias': 'ok', 'nickname': 'x'}),
        ('electric_refresh_garbage', 'POST', '/electric/refresh', 'not json'),
    ]
    field_named = {'remote_bad_enum': 'command', 'remote_beeps_4': 'beeps', 'remote_unknown_prop': 'force',
                   'climate_cmd_temp_low': 'temperature', 'climate_set_fan_6': 'fanSpeed', 'climate_set_mode_bad': 'mode',
                   'refresh_no_guid': 'guid', 'refresh_vin_mismatch': 'vin', 'alias_too_long': 'alias',
                   'alias_unknown': 'nickname'}
    for name, method, path, body in cases:
        target = vins[3] if name.startswith('electric') else v
        if isinstance(body, str):
            st, _, p = sim.api(method, '/vehicles/%s%s' % (target, path), raw_body=body)
        else:
            st, _, p = sim.api(method, '/vehicles/%s%s' % (target, path), body)
        ok = st == 400 and is_error(p, 'BAD_REQUEST')
        if ok and name in field_named:
            ok = field_named[name] in json.loads(p)['message']
        check('bad_body_400_' + name, ok, '%s %r' % (st, p))
    after = snapshot(sim, v)
    check('bad_bodies_change_nothing', before == after, '%r != %r' % (before, after))
    st, _, p = sim.api('POST', '/vehicles/%s/remote-command' % v, raw_body='{"command":"lock"}',
                       headers={'Content-Type': 'text/plain'})
    check('write_wrong_content_type_415', st == 415, '%s %r' % (st, p))
    st, _, p = sim.api('POST', '/vehicles/%s/remote-command' % v, raw_body='{"command":"lock","pad":"%s"}' % ('x' * 70000))
    check('write_body_too_large_413', st == 413, '%s %r' % (st, p))
    check('oversized_changes_nothing', snapshot(sim, v) == before, '')


def refresh_status_ok(j):
    return (isinstance(j, dict) and len(j.get('requestId', '')) == 36 and j.get('status') == 'accepted'
            and j.get('returnCode') == '000000' and is_time(j.get('timestamp')))


def check_writes(sim, vins, guid):
    v = vins[0]
    st0, s0 = sim.get_json('/vehicles/%s/status' % v)
    st, _, p = sim.api('POST', '/vehicles/%s/remote-command' % v, {'command': 'unlock'})
    st1, s1 = sim.get_json('/vehicles/%s/status' % v)
    check('op_sendRemoteCommand', st == 200 and refresh_status_ok(json.loads(p)), '%s %r' % (st, p))
    check('unlock_changes_doorsLocked', s1['doorsLocked'] is False and s1['lastUpdatedAt'] >= s0['lastUpdatedAt'], repr(s1))
    time.sleep(1.1)
    st, _, p = sim.api('POST', '/vehicles/%s/remote-command' % v, {'command': 'lock'})
    _, s2 = sim.get_json('/vehicles/%s/status' % v)
    check('lock_changes_doorsLocked', st == 200 and s2['doorsLocked'] is True and s2['lastUpdatedAt'] > s1['lastUpdatedAt'], repr(s2))
    st, _, p = sim.api('POST', '/vehicles/%s/remote-command' % v, {'command': 'horn', 'beeps': 2})
    _, s3 = sim.get_json('/vehicles/%s/status' % v)
    check('horn_no_state_change', st == 200 and s3 == s2, repr(s3))
    for c in ('lights', 'panic_on', 'panic_off'):
        st, _, p = sim.api('POST', '/vehicles/%s/remote-command' % v, {'command': c})
        check('remote_' + c, st == 200 and refresh_status_ok(json.loads(p)), '%s %r' % (st, p))
    st, _, p = sim.api('POST', '/vehicles/%s/remote-command' % v, {'command': 'trunk_open'})
    _, s4 = sim.get_json('/vehicles/%s/status' % v)
    check('trunk_open', st == 200 and s4['doorStatus']['trunk'] == 'open', repr(s4))

    st, _, p = sim.api('POST', '/vehicles/%s/climate/command' % v, {'command': 'start', 'temperature': 75.5})
    _, c1 = sim.get_json('/vehicles/%s/climate' % v)
    check('op_sendClimateCommand', st == 200 and refresh_status_ok(json.loads(p)) and c1['isRunning'] is True and
          c1['temperature'] == 75.5, '%s %r %r' % (st, p, c1))
    st, _, p = sim.api('PUT', '/vehicles/%s/climate' % v, {'fanSpeed': 3, 'mode': 'heat'})
    _, c2 = sim.get_json('/vehicles/%s/climate' % v)
    check('op_updateClimateSettings', st == 200 and json.loads(p) == {'temperature': 75.5, 'fanSpeed': 3, 'mode': 'heat'} and
          c2['fanSpeed'] == 3 and c2['mode'] == 'heat', '%s %r %r' % (st, p, c2))
    st, _, p = sim.api('POST', '/vehicles/%s/climate/command' % v, {'command': 'stop'})
    _, c3 = sim.get_json('/vehicles/%s/climate' % v)
    check('climate_stop', st == 200 and c3['isRunning'] is False, repr(c3))

    time.sleep(1.1)
    st, _, p = sim.api('POST', '/vehicles/%s/status/refresh' % v,
                       {'deviceId': 'dev-1', 'deviceType': 'Android', 'guid': guid, 'vin': v})
    _, s5 = sim.get_json('/vehicles/%s/status' % v)
    check('op_refreshVehicleStatus', st == 200 and refresh_status_ok(json.loads(p)) and s5['lastUpdatedAt'] > s4['lastUpdatedAt'],
          '%s %r %r' % (st, p, s5))
    _, e0 = sim.get_json('/vehicles/%s/electric' % vins[2])
    st, _, p = sim.api('POST', '/vehicles/%s/electric/refresh' % vins[2])
    _, e1 = sim.get_json('/vehicles/%s/electric' % vins[2])
    check('op_refreshElectricStatus', st == 200 and refresh_status_ok(json.loads(p)) and e1['lastUpdatedAt'] >= e0['lastUpdatedAt'],
          '%s %r' % (st, p))
    st, _, p = sim.api('POST', '/vehicles/%s/electric/refresh' % vins[2], {})
    check('electric_refresh_empty_object_ok', st == 200, str(st))

    st, _, p = sim.api('PUT', '/vehicles/%s' % v, {'alias': 'Test Car \u00e9', 'guid': guid})
    _, j = sim.get_json('/vehicles/%s' % v)
    _, lst = sim.get_json('/vehicles')
    check('op_updateVehicleAlias', st == 200 and json.loads(p)['alias'] == 'Test Car \u00e9' and j['alias'] == 'Test Car \u00e9'
          and any(x.get('alias') == 'Test Car \u00e9' for x in lst['data']), '%s %r' % (st, p))
    st, _, p = sim.api('PUT', '/vehicles/%s' % v, {'alias': 'y' * 64})
    check('alias_64_chars_ok', st == 200, str(st))
    st, _, p = sim.api('PUT', '/vehicles/%s' % v, {'alias': '\u00e9' * 64})
    check('alias_64_multibyte_chars_ok', st == 200 and json.loads(p)['alias'] == '\u00e9' * 64, '%s %r' % (st, p))
    st, _, p = sim.api('PUT', '/vehicles/%s' % v, {'alias': '\u00e9' * 65})
    check('alias_65_multibyte_chars_400', st == 400, str(st))
    st, _, p = sim.api('PUT', '/vehicles/%s' % v, raw_body=b'{"alias":"bad \xff utf8"}')
    check('alias_invalid_utf8_400', st == 400 and 'alias' in json.loads(p)['message'], '%s %r' % (st, p))
    st, _, p = sim.api('PUT', '/vehicles/%s' % v, {'alias': 'tab\there'})
    check('alias_control_char_400', st == 400, str(st))


def check_unchanged_identical(sim, vins):
    v = vins[0]
    paths = ['', '/status', '/location', '/climate', '/health', '/service-history', '/notifications']
    first = [sim.api('GET', '/vehicles/%s%s' % (v, p))[2] for p in paths]
    time.sleep(2.1)
    second = [sim.api('GET', '/vehicles/%s%s' % (v, p))[2] for p in paths]
    diff = [p for p, a, b in zip(paths, first, second) if a != b]
    check('unchanged_resources_byte_identical', not diff, repr(diff))


def check_oauth(sim, vins):
    def token(rt, grant='refresh_token', client='toyota2mqtt', ctype='application/x-www-form-urlencoded'):
        form = 'grant_type=%s&refresh_token=%s' % (grant, rt) + ('&client_id=%s' % client if client else '')
        st, _, p = sim.request('POST', '/oauth2/token', raw_body=form, token=None, headers={'Content-Type': ctype})
        return st, json.loads(p) if p else None
    st, j = token(RT0)
    ok = st == 200 and j['token_type'] == 'Bearer' and j['expires_in'] == 3 and j['refresh_token'] != RT0
    parts = j.get('access_token', '').split('.') if j else []
    if ok and len(parts) == 3:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + '=' * (-len(parts[1]) % 4)))
        ok = abs(payload['exp'] - (time.time() + 3)) < 5
    else:
        ok = False
    check('oauth_refresh_issues_jwt', ok, '%s %r' % (st, j))
    if not ok:
        return
    access, rt1 = j['access_token'], j['refresh_token']
    st, _ = sim.get_json('/vehicles', token=access)
    check('oauth_issued_token_works', st == 200, str(st))
    st, _ = sim.get_json('/vehicles')
    check('oauth_static_token_still_works', st == 200, str(st))
    st, e = token(RT0)
    check('oauth_old_refresh_token_invalid', st == 400 and e.get('error') == 'invalid_grant', '%s %r' % (st, e))
    st, e = token(rt1, grant='password')
    check('oauth_unsupported_grant', st == 400 and e.get('error') == 'unsupported_grant_type', '%s %r' % (st, e))
    st, e = token(rt1, ctype='application/json')
    check('oauth_wrong_content_type', st == 400 and e.get('error') == 'invalid_request', '%s %r' % (st, e))
    st, e = token('garbage')
    check('oauth_bad_refresh_token', st == 400 and e.get('error') == 'invalid_grant', '%s %r' % (st, e))
    st, j2 = token(rt1)
    check('oauth_rotation_chain', st == 200 and j2['refresh_token'] not in (rt1, RT0) and j2['access_token'] != access,
          '%s %r' % (st, j2))
    st, _, _ = sim.request('GET', '/oauth2/token', token=None)
    check('oauth_get_405', st == 405, str(st))
    time.sleep(4.2)
    st, _, p = sim.api('GET', '/vehicles', token=access)
    check('oauth_expired_token_401', st == 401 and is_error(p, 'UNAUTHORIZED'), '%s %r' % (st, p))


def check_faults(sim, vins):
    v = vins[0]
    st, j = sim.admin('POST', 'faults', {'error_rate': 1})
    codes = {sim.api('GET', '/vehicles/%s/status' % v)[0] for _ in range(12)}
    check('fault_error_rate', st == 200 and codes <= {500, 503} and codes, repr(codes))
    sim.admin('POST', 'faults', {'error_rate': 0, 'truncate_rate': 1})
    st, _, p = sim.api('GET', '/vehicles/%s/status' % v)
    try:
        json.loads(p)
        truncated = False
    except ValueError:
        truncated = True
    check('fault_truncate', st == 200 and truncated and len(p) > 0, '%s %r' % (st, p))
    sim.admin('POST', 'faults', {'truncate_rate': 0, 'latency_ms': 400})
    t0 = time.time()
    st, _, _ = sim.api('GET', '/vehicles/%s/status' % v)
    check('fault_latency', st == 200 and time.time() - t0 >= 0.38, '%.3f' % (time.time() - t0))
    sim.admin('POST', 'faults', {'latency_ms': 0, 'rate_limit': 3, 'rate_window': 30})
    codes = []
    retry = None
    for _ in range(5):
        st, resp, _ = sim.api('GET', '/vehicles/%s/status' % v)
        codes.append(st)
        if st == 429:
            retry = resp.getheader('Retry-After')
    check('fault_rate_limit_429', codes == [200, 200, 200, 429, 429] and retry and 1 <= int(retry) <= 30,
          '%r retry=%r' % (codes, retry))
    st, j = sim.admin('POST', 'faults', {'rate_limit': 0})
    check('fault_reset', st == 200 and j['rate_limit'] == 0 and sim.api('GET', '/vehicles')[0] == 200, repr(j))
    st, j = sim.admin('POST', 'faults', {'error_rate': 2})
    check('fault_admin_validation', st == 400, str(st))
    st, j = sim.admin('POST', 'faults', {'bogus': 1})
    check('fault_admin_unknown', st == 400, str(st))


def check_admin_vehicles(sim, vins, det_vins):
    st, j = sim.admin('POST', 'vehicles')
    new = (j or {}).get('vin', '')
    _, lst = sim.get_json('/vehicles')
    check('admin_add_vehicle', st == 201 and vin_ok(new) and len(lst['data']) == N + 1 and
          new not in vins and lst['data'][-1]['vin'] == new, '%s %r' % (st, j))
    check('admin_add_vehicle_deterministic', len(det_vins) > N and new == det_vins[N], '%r vs %r' % (new, det_vins[N:]))
    st, _ = sim.get_json('/vehicles/%s/status' % new)
    check('added_vehicle_served', st == 200, str(st))
    st, j = sim.admin('DELETE', 'vehicles/%s' % new)
    _, lst = sim.get_json('/vehicles')
    st2, _ = sim.get_json('/vehicles/%s' % new)
    check('admin_remove_vehicle', st == 200 and len(lst['data']) == N and st2 == 404, '%s %s' % (st, st2))
    st, _ = sim.admin('DELETE', 'vehicles/%s' % new)
    check('admin_remove_unknown_404', st == 404, str(st))


def check_request_log(sim, vins):
    v = vins[0]
    sim.api('GET', '/vehicles/%s/trips?fromDate=%s&toDate=%s&limit=5' % (v, today(-3), today()))
    sim.api('POST', '/vehicles/%s/remote-command' % v, {'command': 'lock'})
    sim.api('PUT', '/vehicles/%s/climate' % v, {'fanSpeed': 9})
    sim.admin('GET', 'state')
    lines = sim.log_lines()
    ok_shape = all(set(l) == {'method', 'path', 'query', 'body', 'status'} and isinstance(l['query'], dict) for l in lines)
    check('reqlog_shape', ok_shape and len(lines) > 50, '%d lines' % len(lines))
    trip = [l for l in lines if l['path'] == '/connected/v1/vehicles/%s/trips' % v and l['query'].get('limit') == '5']
    check('reqlog_query', trip and trip[-1]['method'] == 'GET' and trip[-1]['query'] ==
          {'fromDate': today(-3), 'toDate': today(), 'limit': '5'} and trip[-1]['body'] is None and trip[-1]['status'] == 200,
          repr(trip[-1:]))
    cmd = [l for l in lines if l['path'].endswith('/remote-command') and l['body'] == {'command': 'lock'}]
    check('reqlog_body', cmd and cmd[-1]['method'] == 'POST' and cmd[-1]['status'] == 200, repr(cmd[-1:]))
    bad = [l for l in lines if l['method'] == 'PUT' and l['body'] == {'fanSpeed': 9}]
    check('reqlog_status_400', bad and bad[-1]['status'] == 400, repr(bad[-1:]))
    check('reqlog_no_admin', not any(l['path'].startswith('/_sim/') for l in lines), '')
    check('reqlog_401_logged', any(l['status'] == 401 for l in lines), '')
    check('reqlog_oauth_body_not_logged', all(l['body'] is None for l in lines if l['path'] == '/oauth2/token'), '')


def check_time_evolution():
    """A fast-clock simulator: the driving car moves, the charging car fills up, drives become trips."""
    sim = Sim('--vehicles', '4', '--seed', '99', '--token', TOKEN, '--speed', '120', '--command-delay', '120', log=False)
    try:
        _, lst = sim.get_json('/vehicles')
        vins = [x['vin'] for x in lst['data']]
        _, st0 = sim.get_json('/vehicles/%s/status' % vins[0])
        cmd = 'unlock' if st0['doorsLocked'] else 'lock'
        sim.api('POST', '/vehicles/%s/remote-command' % vins[0], {'command': cmd})
        _, st1 = sim.get_json('/vehicles/%s/status' % vins[0])
        check('command_delay_not_yet', st1 == st0, repr(st1))
        polls = []
        for _ in range(7):   # one poll per simulated minute
            polls.append([sim.api('GET', '/vehicles/%s%s' % (vins[1], p))[2] for p in ('/location', '/status')])
            time.sleep(0.5)
        same = [i for i in range(1, len(polls)) if polls[i] == polls[i - 1]]
        check('time_changes_every_minute', not same, 'unchanged at polls %r' % same)
        _, st2 = sim.get_json('/vehicles/%s/status' % vins[0])
        check('command_delay_applied', st2['doorsLocked'] == (cmd == 'lock') and st2['lastUpdatedAt'] > st0['lastUpdatedAt'],
              repr(st2))
        _, e0 = sim.get_json('/vehicles/%s/electric' % vins[2])
        _, s0 = sim.admin('GET', 'state')
        st, j = sim.admin('POST', 'advance', {'seconds': 3600})
        _, e1 = sim.get_json('/vehicles/%s/electric' % vins[2])
        check('time_charging_completes', st == 200 and e1['batteryLevel'] == 100 and e1['chargingStatus'] == 'fully_charged'
              and e1['lastUpdatedAt'] > e0['lastUpdatedAt'] and 'estimatedChargeCompleteTime' not in e1, repr(e1))
        _, s1 = sim.admin('GET', 'state')
        n0 = len(s0['vehicles'][1]['trips']['data'])
        n1 = len(s1['vehicles'][1]['trips']['data'])
        check('time_new_trips_appear', n1 > n0, '%d -> %d' % (n0, n1))
        _, ls = sim.get_json('/vehicles/%s/location' % vins[0])
        check('time_parked_car_still', ls['isParked'] is True and ls == s0['vehicles'][0]['location'], repr(ls))
        t0 = time.time()
        st, _ = sim.admin('POST', 'advance', {'seconds': 40 * 86400})
        _, s2 = sim.admin('GET', 'state')
        n2 = len(s2['vehicles'][1]['trips']['data'])
        check('time_long_jump_bounded', st == 200 and time.time() - t0 < 20 and 100 < n2 <= 2000, '%d trips' % n2)
        try:
            frm = s2['simTime'][:10]
            frm = (datetime.datetime.strptime(frm, '%Y-%m-%d') - datetime.timedelta(days=2)).strftime('%Y-%m-%d')
            trips, total = all_trips(sim, vins[1], frm, s2['simTime'][:10])
            ids = [t['id'] for t in trips]
            check('time_new_trips_paginate', total > 50 and len(ids) == len(set(ids)) == total, str(total))
        except RuntimeError as e:
            check('time_new_trips_paginate', False, str(e))
    finally:
        rc = sim.stop()
        check('time_sim_clean_exit', rc == 0 and 'runtime error' not in sim.stderr() and 'Sanitizer' not in sim.stderr(),
              'rc=%s %s' % (rc, sim.stderr()[-500:]))


def check_determinism():
    a = Sim('--vehicles', str(N + 1), '--seed', str(SEED), '--token', TOKEN, '--epoch', '1790000000', log=False)
    b = None
    try:
        b = Sim('--vehicles', str(N + 1), '--seed', str(SEED), '--token', TOKEN, '--epoch', '1790000000', log=False)
        la = a.api('GET', '/vehicles')[2]
        lb = b.api('GET', '/vehicles')[2]
        check('determinism_same_seed_same_list', la == lb and len(json.loads(la)['data']) == N + 1, '')
        vin = json.loads(la)['data'][0]['vin']
        q = '/vehicles/%s/trips?fromDate=2026-01-01&toDate=2027-01-01&limit=50' % vin
        check('determinism_same_trips', a.api('GET', q)[2] == b.api('GET', q)[2], '')
        q = '/vehicles/%s/notifications' % vin
        check('determinism_same_notifications', a.api('GET', q)[2] == b.api('GET', q)[2], '')
        return [x['vin'] for x in json.loads(la)['data']]
    finally:
        for s in (a, b):
            if s:
                s.stop()


def check_cli():
    r = subprocess.run([SIM, '--help'], capture_output=True, timeout=10)
    check('cli_help', r.returncode == 0 and b'--token' in r.stdout, str(r.returncode))
    for name, args in (('bad_port', ['--token', 't', '--port', 'abc']), ('unknown_option', ['--token', 't', '--bogus']),
                       ('missing_token', ['--port', '0']), ('bad_rate', ['--token', 't', '--error-rate', '1.5'])):
        r = subprocess.run([SIM] + args, capture_output=True, timeout=10)
        check('cli_' + name + '_exit_2', r.returncode == 2 and r.stderr, '%s %r' % (r.returncode, r.stderr))


def main():
    if not os.access(SIM, os.X_OK):
        check('sim_binary_exists', False, SIM + ' not found; run make')
        return 1
    check_cli()
    det_vins = []
    try:
        det_vins = check_determinism()
    except Exception as e:  # noqa: BLE001 - report and go on
        check('determinism', False, repr(e))
    sim = Sim('--vehicles', str(N), '--seed', str(SEED), '--token', TOKEN, '--refresh-token', RT0, '--token-ttl', '3')
    try:
        st, state = sim.admin('GET', 'state')
        check('admin_state', st == 200 and len(state['vehicles']) == N, str(st))
        vins = check_vehicle_list(sim, state)
        guid = state['vehicles'][0]['vehicle']['guid']
        other = Sim('--vehicles', str(N), '--seed', str(SEED), '--token', TOKEN, log=False)
        try:
            ov = [x['vin'] for x in other.get_json('/vehicles')[1]['data']]
            check('determinism_vins_without_epoch', ov == vins, '%r %r' % (ov, vins))
        finally:
            other.stop()
        check_auth_and_routing(sim, vins)
        check_unchanged_identical(sim, vins)
        check_read_ops(sim, vins)
        check_electric(sim, vins)
        check_trips(sim, vins, state)
        check_notifications(sim, vins)
        check_bad_writes(sim, vins, guid)
        check_writes(sim, vins, guid)
        check_oauth(sim, vins)
        check_faults(sim, vins)
        check_admin_vehicles(sim, vins, det_vins)
        check_request_log(sim, vins)
    except Exception as e:  # noqa: BLE001 - a crash is a failure, not a traceback
        import traceback
        traceback.print_exc()
        check('main_sim_checks', False, repr(e))
    finally:
        rc = sim.stop()
        err = sim.stderr()
        check('sim_sigterm_exit_0', rc == 0, 'rc=%s' % rc)
        check('sim_stderr_clean', 'runtime error' not in err and 'Sanitizer' not in err, err[-2000:])
    check_time_evolution()
    bad = [(a, rc, e[-1500:]) for a, rc, e in stopped if rc != 0 or 'runtime error' in e or 'Sanitizer' in e]
    check('all_sims_clean', not bad and len(stopped) >= 5, repr(bad))
    failed = results.count(False)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
