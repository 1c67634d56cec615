# Helpers the test scripts source (`. "$(dirname "$0")/lib.sh"`).

# wait_for URL [TRIES]: until URL answers 2xx, 0.1 s apart (default 100 tries); fails after.
wait_for() {
    for _ in $(seq "${2:-100}"); do curl -sf "$1" > /dev/null && return 0; sleep 0.1; done
    return 1
}

# track_simulated BIN SIM_PORT: `bookwatch track` every Book the simulator created, as a lender's
# system would (webhooks alone may all be lost for some Book).
track_simulated() {
    curl -sf "http://127.0.0.1:$2/_sim/stats" \
        | python3 -c 'import sys,json; print(" ".join(t["uuid"] for t in json.load(sys.stdin)["truth"]))' \
        | xargs "$1" track > /dev/null
}
