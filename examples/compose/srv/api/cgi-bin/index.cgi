#!/bin/sh
# GET /api/greeting: counts visits in the key-value store at $KV_URL. (busybox httpd runs
# this script for any folder without an index.html, such as /api/greeting/.)
visits=$(wget -q -O - "$KV_URL/cgi-bin/kv?visits" | sed -n 's/.*"value": "\([0-9]*\)".*/\1/p')
visits=$(( ${visits:-0} + 1 ))
wget -q -O /dev/null --post-data "$visits" "$KV_URL/cgi-bin/kv?visits"
echo "Content-Type: application/json"
echo
printf '{"greeting": "%s", "visits": %s, "api_version": "%s", "kv": "%s"}\n' \
  "$GREETING" "$visits" "$LAUNCHBAY_VERSION" "$KV_URL"
