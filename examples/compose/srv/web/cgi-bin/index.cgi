#!/bin/sh
# GET /: a page with what the API (and, behind it, the store) answered.
data=$(wget -q -O - "$API_URL/cgi-bin/greeting")
field() { echo "$data" | sed -n "s/.*\"$1\": \"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p"; }
echo "Content-Type: text/html; charset=utf-8"
echo
cat <<PAGE
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>$SPACE_NAME - Launchbay demo</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>$(field greeting) from space <code>$SPACE_NAME</code></h1>
<p id="visits">Visits: <strong>$(field visits)</strong></p>
<p>Counted by the API (<code>$(field api_version)</code>) in the key-value store at <code>$(field kv)</code>.</p>
</body></html>
PAGE
