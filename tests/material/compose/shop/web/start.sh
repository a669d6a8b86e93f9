#!/bin/sh
# The shop's front page says what it can reach: proof of the networks and the secret.
mkdir -p /www
{
  echo "shop web"
  echo "db: $DB_HOST"
  echo "mode: ${SHOP_MODE:-unset}"
  if [ -s /run/secrets/db_password ]; then echo "secret: present"; else echo "secret: missing"; fi
  echo "currency: $(sed -n 's/^currency=//p' /etc/shop.conf)"
  if echo ping | nc -w 2 "$DB_HOST" 3306 | grep -q ping; then echo "db answers"; fi
} > /www/index.html
exec httpd -f -p 80 -h /www
