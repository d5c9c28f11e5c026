#!/usr/bin/env bash
# make run: the demo. Starts the simulator and a private mosquitto on free
# loopback ports unless the configuration names an API / a broker, then runs
# the bridge in the foreground. Ctrl-C stops everything this script started.
#
#   make run                       # conf/demo.conf: simulator + private broker
#   make run CONFIG=/etc/toyota2mqtt/toyota2mqtt.conf   # your own API and broker
set -euo pipefail
BUILD=${1:-build}
CONFIG=${CONFIG:-conf/demo.conf}
RUN=$BUILD/run
mkdir -p "$RUN"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

[ -r "$CONFIG" ] || { echo "make run: cannot read $CONFIG" >&2; exit 2; }
conf="$RUN/toyota2mqtt.conf"
cp "$CONFIG" "$conf"
chmod 600 "$conf"

if grep -q '@API_URL@' "$conf"; then
    "$BUILD/toyota2mqtt-sim" --port 0 --vehicles "${VEHICLES:-4}" --seed "${SEED:-1}" \
        --token demo-token --request-log "$RUN/requests.jsonl" >"$RUN/sim.out" 2>"$RUN/sim.log" &
    pids+=($!)
    for _ in $(seq 100); do grep -q 'listening on' "$RUN/sim.out" 2>/dev/null && break; sleep 0.05; done
    api=$(sed -n 's/^listening on //p' "$RUN/sim.out")
    [ -n "$api" ] || { echo "make run: the simulator did not start (see $RUN/sim.log)" >&2; exit 1; }
    sed -i "s|@API_URL@|$api|" "$conf"
    echo "simulator:  $api  (request log: $RUN/requests.jsonl)"
fi

if grep -q '@MQTT_URL@' "$conf"; then
    port=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$RUN/mosquitto.conf"
    mosquitto -c "$RUN/mosquitto.conf" >"$RUN/mosquitto.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    sed -i "s|@MQTT_URL@|tcp://127.0.0.1:$port|" "$conf"
    echo "mosquitto:  tcp://127.0.0.1:$port"
    echo
    echo "Watch it:   mosquitto_sub -h 127.0.0.1 -p $port -t 'toyota2mqtt/#' -v"
    echo "Command it: mosquitto_pub -h 127.0.0.1 -p $port -t 'toyota2mqtt/<VIN>/command' -m '{\"command\":\"lock\"}'"
else
    echo "Watch it with mosquitto_sub -t '<base_topic>/#' -v against the broker in $CONFIG"
fi
echo "Stop:       Ctrl-C"
echo
"$BUILD/toyota2mqtt" -c "$conf" &
bridge=$!
pids+=($bridge)
wait "$bridge"
