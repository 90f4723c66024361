#!/usr/bin/env bash
# A correct MetaDefender Core licence client in shell (curl + jq), written as a command adapter for
# `mockcore-contracts client --command examples/clients/shell_client/client.sh`.
#
# Wire format (see docs/guides/validating-a-client.md): one JSON request on stdin
#   {"operation": ..., "instance": {"name", "url", "apikey", "ca_path"}, "arguments": {...}}
# and one JSON outcome on stdout, exit status 0 either way:
#   {"ok": true, "result": {...}} | {"ok": false, "status": 400, "error": "<err>"} | {"ok": false, "status": null, ...}
#
# Over HTTPS, `ca_path` is the CA file to verify the instance's certificate with (curl --cacert).
#
# CLIENT_BUG makes it buggy on purpose:
#   form-encoded  it uploads licence files with curl's default `Content-Type: application/x-www-form-urlencoded`
#                 instead of application/octet-stream;
#   insecure      it turns certificate verification off (curl --insecure) instead of trusting ca_path.
set -uo pipefail

request=$(cat)
# One jq call reads the request (and writes the activation body, JSON-escaped): jq starts slowly.
eval "$(jq -r '@sh "op=\(.operation) url=\(.instance.url) apikey=\(.instance.apikey) ca=\(.instance.ca_path // "")
  key=\(.arguments.key // "") production=\(.arguments.production_deployment // "")
  licence=\(.arguments.licence_path // "") activation=\({activationKey: .arguments.key,
  quantity: .arguments.quantity, comment: "shell client"} | tojson)"' <<<"$request")"

tls=()
if [ "${CLIENT_BUG:-}" = "insecure" ]; then tls=(--insecure); elif [ -n "$ca" ]; then tls=(--cacert "$ca"); fi

body_file=$(mktemp)
trap 'rm -f "$body_file"' EXIT

# send METHOD PATH [curl arguments...]: sets $status (HTTP status, or empty when no answer came) and $curl_exit
send() {
    local method=$1 path=$2
    shift 2
    status=$(curl -sS -o "$body_file" -w '%{http_code}' --max-time 10 "${tls[@]}" -X "$method" -H "apikey: $apikey" "$@" \
        "$url$path" 2>/dev/null)
    curl_exit=$?
    if [ "$curl_exit" -ne 0 ] || [ "$status" = "000" ]; then status=""; fi
}

# answer: print the outcome for the last request; $1 says what a success answer looks like:
#   true      {"success": true}
#   sentence  {"success": "<a sentence>"} (the backup endpoints)
#   licence   the licence view;  flag  the backup flag
answer() {
    if [ -z "$status" ]; then
        jq -cn --arg e "no answer (curl exit $curl_exit)" '{ok: false, status: null, error: $e}'
    elif [ "$status" -lt 200 ] || [ "$status" -ge 300 ]; then
        jq -c --argjson s "$status" '{ok: false, status: $s, error: (.err // tostring)}' "$body_file" 2>/dev/null \
            || jq -cn --argjson s "$status" --rawfile b "$body_file" '{ok: false, status: $s, error: $b}'
    else
        jq -c --argjson s "$status" --arg kind "$1" '
            if $kind == "true" and .success == true then {ok: true, result: {}}
            elif $kind == "sentence" and (.success | type) == "string" then {ok: true, result: {message: .success}}
            elif $kind == "flag" and (.is_backup | type) == "boolean" then {ok: true, result: {is_backup: .is_backup}}
            elif $kind == "licence" and has("days_left") then {ok: true, result: {licensed: true,
                deployment: .deployment, reactivate: false, days_left: .days_left, expiration: .expiration,
                online_activated: .online_activated}}
            elif $kind == "licence" then {ok: true, result: {licensed: false,
                deployment: (.deployment // .deployment_id), reactivate: (.reactivate == true)}}
            else {ok: false, status: $s, error: ("unexpected answer: " + tostring)} end' "$body_file"
    fi
}

octet="Content-Type: application/octet-stream"
if [ "${CLIENT_BUG:-}" = "form-encoded" ]; then octet="X-Client-Bug: form-encoded"; fi

case "$op" in
activate)
    send POST /admin/license/activation -H "Content-Type: application/json" --data-binary "$activation"
    answer true ;;
upload_licence)
    send POST /admin/license -H "$octet" --data-binary "@$licence"
    answer true ;;
register_online)
    send POST /admin/license/backup -H "activation-key: $key" -H "active-deployment-id: $production"
    answer sentence ;;
register_offline)
    send POST /admin/license/backup -H "$octet" --data-binary "@$licence"
    answer sentence ;;
unregister)
    send DELETE /admin/license/backup
    answer sentence ;;
nominate)
    send POST /admin/license/backup/nomination
    answer sentence ;;
deactivate)
    send POST /admin/license/deactivation
    answer true ;;
licence_info)
    send GET /admin/license
    answer licence ;;
backup_flag)
    send GET /admin/license/backup
    answer flag ;;
*)
    echo "unknown operation: $op" >&2
    exit 2 ;;
esac
