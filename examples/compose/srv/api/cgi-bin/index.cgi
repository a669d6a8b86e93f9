#!/bin/sh
# A folder with no index.html runs /cgi-bin/index.cgi (every busybox httpd does): the
# folder api/greeting/ is how the template's endpoint /api/greeting reaches the greeting.
exec /srv/api/cgi-bin/greeting
