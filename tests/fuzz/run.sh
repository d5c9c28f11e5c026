#!/usr/bin/env bash
# make fuzz: builds every tests/fuzz/fuzz_*.c with clang's libFuzzer, ASan and
# UBSan against the bridge's sources, and runs each for SECONDS (default 60).
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-60}
shift || true
OUT=build/fuzz
mkdir -p "$OUT"
CLANG=$(command -v clang || command -v clang-14 || true)
if [ -z "$CLANG" ]; then
    echo "make fuzz: clang is missing; installing clang and libclang-rt-14-dev" >&2
    apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
    CLANG=$(command -v clang)
fi
SRC=$(ls src/*.c | grep -v '^src/main.c$')
LIBS="$(pkg-config --libs libcurl libcjson libconfig libsystemd) -lpaho-mqtt3as -lpthread -lm"
FLAGS="-std=c11 -D_GNU_SOURCE -DT2M_VERSION=\"fuzz\" -g -O1 -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls tests/fuzz/fuzz_*.c | xargs -n1 basename | sed 's/\.c$//'))
export ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for t in "${targets[@]}"; do
    # shellcheck disable=SC2086
    "$CLANG" $FLAGS -o "$OUT/$t" "tests/fuzz/$t.c" $SRC $LIBS
    corpus="$OUT/corpus-$t"
    mkdir -p "$corpus"
    seeds="tests/fuzz/seeds/${t#fuzz_}"
    dirs=("$corpus")
    [ -d "$seeds" ] && dirs+=("$seeds")
    echo "== $t: ${SECONDS_EACH}s"
    if "$OUT/$t" -max_total_time="$SECONDS_EACH" -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$OUT/$t-" "${dirs[@]}" >"$OUT/$t.log" 2>&1; then
        grep -E 'stat::number_of_executed_units|Done' "$OUT/$t.log" | tail -2
        echo "PASS fuzz $t ran ${SECONDS_EACH}s clean"
    else
        tail -40 "$OUT/$t.log"
        echo "FAIL fuzz $t (crash input in $OUT/$t-*)"
        status=1
    fi
done
exit $status
