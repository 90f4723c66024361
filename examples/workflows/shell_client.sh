#!/usr/bin/env bash
# A correct workflow client in shell (curl + jq): the five licence runbooks of protocol mockcore-contracts-client/2.
#
#   mockcore-contracts workflows --command examples/workflows/shell_client.sh [--persistent]
#
# It reads request objects, one per line, and prints one outcome per line (so it serves one request per process
# and the persistent mode alike). Each runbook reads before it acts; after a request whose answer never came, or
# a 503, it reads again to learn whether the change happened before sending it once more.
set -uo pipefail

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PROTOCOL="mockcore-contracts-client/2"

# req METHOD URL [curl arguments...]: $STATUS is the HTTP status (000: no answer), the body is in $TMP/body
req() {
    local method=$1 url=$2
    shift 2
    STATUS=$(curl -sS -o "$TMP/body" -w '%{http_code}' --max-time 10 -X "$method" "$@" "$url" 2>/dev/null)
    [ -n "$STATUS" ] || STATUS=000
}

ok() { jq -cn --argjson r "$1" '{ok: true, result: $r}'; exit 0; }
fail() {  # STATUS (a number or null) ERROR
    jq -cn --argjson s "$1" --arg e "$2" '{ok: false, status: $s, error: $e}'
    exit 0
}
errtext() { jq -r '.err // tostring' "$TMP/body" 2>/dev/null || head -c 200 "$TMP/body"; }

# core ROLE METHOD PATH [curl arguments...]: a request to the instance of ROLE (P, B or I)
core() {
    local role=$1 method=$2 path=$3
    shift 3
    local url="${role}_URL" apikey="${role}_KEY" ca="${role}_CA" tls=()
    if [ -n "${!ca}" ]; then tls=(--cacert "${!ca}"); fi
    req "$method" "${!url}$path" -H "apikey: ${!apikey}" "${tls[@]}" "$@"
}

# read_json ROLE PATH FILE: a read, sent up to three times while it meets 503s or no answer
read_json() {
    local attempt
    for attempt in 1 2 3; do
        core "$1" GET "$2"
        if [ "$STATUS" != 000 ] && [ "$STATUS" != 503 ]; then break; fi
        sleep 0.05
    done
    if [ "$STATUS" = 000 ]; then fail null "no answer to GET $2"; fi
    if [ "$STATUS" != 200 ]; then fail "$STATUS" "$(errtext)"; fi
    cp "$TMP/body" "$3"
}
view() { read_json "$1" /admin/license "$TMP/view_$1"; }
field() { jq -r ".$2 | if . == null then empty else . end" "$TMP/view_$1"; }
licensed() { view "$1"; jq -e 'has("days_left")' "$TMP/view_$1" >/dev/null; }
is_backup() { read_json "$1" /admin/license/backup "$TMP/flag_$1"; jq -e '.is_backup == true' "$TMP/flag_$1" >/dev/null; }
not_backup() { ! is_backup "$1"; }
serving() { licensed "$1" && not_backup "$1"; }
unlicensed() { ! licensed "$1"; }

# change ROLE METHOD PATH DONE [curl arguments...]: a change sent at most twice; after no answer or a 503 the
# command DONE (a read) says whether it happened
change() {
    local role=$1 method=$2 path=$3 done=$4 attempt
    shift 4
    for attempt in 1 2; do
        core "$role" "$method" "$path" "$@"
        if [ "$STATUS" != 000 ] && [ "$STATUS" != 503 ]; then
            case $STATUS in
            2??)
                jq -e 'type == "object" and .success != null and .success != false' "$TMP/body" >/dev/null \
                    || fail "$STATUS" "$method $path: unexpected answer $(head -c 200 "$TMP/body")"
                return 0 ;;
            *) fail "$STATUS" "$(errtext)" ;;
            esac
        fi
        sleep 0.05
        if $done; then return 0; fi
    done
    if [ "$STATUS" = 000 ]; then fail null "$method $path: no answer"; fi
    fail 503 "$(errtext)"
}

upload() {  # ROLE: upload $TMP/licence.yml
    change "$1" POST /admin/license "serving $1" -H "Content-Type: application/octet-stream" \
        --data-binary "@$TMP/licence.yml"
}

retire() {  # ROLE: deactivate an instance still licensed as a production (an offline licence survives its slot)
    if serving "$1"; then change "$1" POST /admin/license/deactivation "unlicensed $1"; fi
}

# obtain DEPLOYMENT QUANTITY: a licence file in $TMP/licence.yml; asking again takes no new slot
obtain() {
    local attempt
    for attempt in 1 2; do
        req GET "$AS/activation" -G --data-urlencode "key=$KEY" --data-urlencode "deployment=$1" \
            --data-urlencode "quantity=$2"
        if [ "$STATUS" = 200 ]; then
            if grep -q '^signature:' "$TMP/body" && ! grep -q '^error:' "$TMP/body"; then
                cp "$TMP/body" "$TMP/licence.yml"
                return 0
            fi
            fail 200 "the activation server refused: $(head -c 300 "$TMP/body")"
        fi
        if [ "$STATUS" != 503 ] && [ "$STATUS" != 000 ]; then fail "$STATUS" "GET /activation: $(errtext)"; fi
        sleep 0.05
    done
    if [ "$STATUS" = 000 ]; then fail null "GET /activation: no answer"; fi
    fail 503 "GET /activation: $(errtext)"
}

free_slot() {  # DEPLOYMENT: 404 (it holds none) is fine
    local attempt
    for attempt in 1 2; do
        req GET "$AS/deactivation" -G --data-urlencode "key=$KEY" --data-urlencode "deployment=$1"
        if [ "$STATUS" = 200 ] || [ "$STATUS" = 404 ]; then return 0; fi
        sleep 0.05
    done
    if [ "$STATUS" = 000 ]; then fail null "GET /deactivation: no answer"; fi
    fail "$STATUS" "GET /deactivation: $(errtext)"
}

online_failover() {
    view P
    local production
    production=$(field P deployment)
    if is_backup B; then
        view B
        if [ "$(field B online_activated)" = false ]; then
            change B DELETE /admin/license/backup "not_backup B"
        fi
    fi
    if not_backup B; then
        change B POST /admin/license/backup "is_backup B" -H "activation-key: $KEY" \
            -H "active-deployment-id: $production"
    fi
    change B POST /admin/license/backup/nomination "serving B"
    retire P
    serving B || fail null "the backup does not serve after its nomination"
    ok "$(jq -cn --arg n "$B_NAME" '{production: $n}')"
}

offline_failover() {
    view P
    view B
    local production nodes backup
    production=$(field P deployment)
    nodes=$(field P max_node_count)
    backup=$(field B deployment)
    retire P
    free_slot "$production"
    obtain "$backup" "${nodes:-1}"
    if is_backup B; then change B DELETE /admin/license/backup "not_backup B"; fi
    upload B
    ok "$(jq -cn --arg n "$B_NAME" '{production: $n}')"
}

provision() {
    core I POST /admin/license/activation -H "Content-Type: application/json" \
        --data-binary "$(jq -cn --arg k "$KEY" --argjson q "$QUANTITY" '{activationKey: $k, quantity: $q}')"
    case $STATUS in
    2??)
        jq -e '.success == true' "$TMP/body" >/dev/null || fail "$STATUS" "unexpected answer $(head -c 200 "$TMP/body")"
        ok '{"mode": "online"}' ;;
    000 | 503)
        sleep 0.05
        if licensed I; then ok '{"mode": "online"}'; fi
        change I POST /admin/license/activation "licensed I" -H "Content-Type: application/json" \
            --data-binary "$(jq -cn --arg k "$KEY" --argjson q "$QUANTITY" '{activationKey: $k, quantity: $q}')"
        ok '{"mode": "online"}' ;;
    500) ;;  # the instance cannot reach the activation server: a licence file from here
    *) fail "$STATUS" "$(errtext)" ;;
    esac
    view I
    obtain "$(field I deployment)" "$QUANTITY"
    upload I
    ok '{"mode": "offline"}'
}

decommission() {
    view I
    if is_backup I; then
        change I DELETE /admin/license/backup "not_backup I"
        ok '{}'
    fi
    local deployment online was_licensed=false
    deployment=$(field I deployment)
    online=$(field I online_activated)
    jq -e 'has("days_left")' "$TMP/view_I" >/dev/null && was_licensed=true
    retire I
    if [ "$was_licensed" = true ] && [ "$online" = false ]; then free_slot "$deployment"; fi
    ok "$(jq -cn --arg d "$deployment" '{freed: $d}')"
}

renew() {
    view I
    jq -e 'has("days_left")' "$TMP/view_I" >/dev/null || fail null "not licensed: nothing to renew"
    local before nodes deployment online
    before=$(field I days_left)
    nodes=$(field I max_node_count)
    deployment=$(field I deployment)
    online=$(field I online_activated)
    renewed() { licensed I && [ "$(field I days_left)" -gt "$before" ]; }
    if [ "$online" = true ]; then
        core I POST /admin/license/activation -H "Content-Type: application/json" \
            --data-binary "$(jq -cn --arg k "$KEY" --argjson q "${nodes:-1}" '{activationKey: $k, quantity: $q}')"
        case $STATUS in
        2??) jq -e '.success == true' "$TMP/body" >/dev/null || fail "$STATUS" "unexpected answer" ;;
        000 | 503)
            sleep 0.05
            renewed || change I POST /admin/license/activation renewed -H "Content-Type: application/json" \
                --data-binary "$(jq -cn --arg k "$KEY" --argjson q "${nodes:-1}" '{activationKey: $k, quantity: $q}')" ;;
        500) obtain "$deployment" "${nodes:-1}"; upload I ;;
        *) fail "$STATUS" "$(errtext)" ;;
        esac
    else
        obtain "$deployment" "${nodes:-1}"
        upload I
    fi
    renewed || fail null "the licence was not refreshed"
    ok "$(jq -cn --argjson d "$(field I days_left)" '{days_left: $d}')"
}

run() {  # one request line
    eval "$(jq -r '@sh "protocol=\(.protocol) workflow=\(.workflow // "")
        P_NAME=\(.instances.production.name // "") P_URL=\(.instances.production.url // "")
        P_KEY=\(.instances.production.apikey // "") P_CA=\(.instances.production.ca_path // "")
        B_NAME=\(.instances.backup.name // "") B_URL=\(.instances.backup.url // "")
        B_KEY=\(.instances.backup.apikey // "") B_CA=\(.instances.backup.ca_path // "")
        I_NAME=\(.instances.instance.name // "") I_URL=\(.instances.instance.url // "")
        I_KEY=\(.instances.instance.apikey // "") I_CA=\(.instances.instance.ca_path // "")
        KEY=\(.arguments.key // "") QUANTITY=\(.arguments.quantity // 1) AS=\(.arguments.activation_server // "")"' \
        <<<"$1")"
    if [ "$protocol" != "$PROTOCOL" ]; then
        jq -cn --arg p "$PROTOCOL" '{protocol: $p, ok: false, status: null, error: "this client speaks workflows only"}'
        return
    fi
    case "$workflow" in
    online_failover | offline_failover | provision | decommission | renew) "$workflow" ;;
    *) fail null "unknown workflow $workflow" ;;
    esac
}

while IFS= read -r line; do
    [ -n "${line// /}" ] || continue
    (run "$line")
done
