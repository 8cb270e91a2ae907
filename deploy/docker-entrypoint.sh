#!/bin/sh
# Secrets come as files (compose secrets, mode 0600 on the host), never as environment
# values that `docker inspect` would show: for each NAME_FILE given, NAME is read from it
# here, in the process that runs wowlab (its first non-empty line, without surrounding
# white space, as wowlab reads a password file). Started as root (the only user that can
# read files mounted mode 0600 from the host), this then runs the command as the
# unprivileged user $WOWLAB_RUN_AS (default wowlab), with that user's HOME: wowlab
# itself never runs as root, and cannot become root again (no new privileges: a setuid
# program in the image gains nothing).
set -eu
for name in WOWLAB_SECRET_KEY WOWLAB_METRICS_TOKEN WOWLAB_DATABASE_PASSWORD WOWLAB_MQTT_PASSWORD; do
  eval "file=\${${name}_FILE:-}"
  if [ -n "$file" ]; then
    value=$(sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$file" | sed -n '/./{p;q;}')
    export "$name=$value"
    unset "${name}_FILE"
  fi
done
if [ -n "${WOWLAB_DATABASE_PASSWORD:-}" ]; then
  # postgresql://USER:PASSWORD@HOST/DB, the password quoted for a URL.
  quoted=$(python3 -c 'import os, urllib.parse; print(urllib.parse.quote(os.environ["WOWLAB_DATABASE_PASSWORD"], safe=""))')
  export WOWLAB_DATABASE_URL="postgresql://${WOWLAB_DATABASE_USER}:${quoted}@${WOWLAB_DATABASE_HOST}/${WOWLAB_DATABASE_NAME}"
  unset WOWLAB_DATABASE_PASSWORD
fi
if [ "$(id -u)" = 0 ]; then
  user="${WOWLAB_RUN_AS:-wowlab}"
  entry=$(getent passwd "$user") || { echo "wowlab-entrypoint: no user $user" >&2; exit 1; }
  gid=$(echo "$entry" | cut -d: -f4)
  HOME=$(echo "$entry" | cut -d: -f6)
  export HOME USER="$user" LOGNAME="$user"
  exec setpriv --reuid="$user" --regid="$gid" --init-groups --inh-caps=-all --no-new-privs -- "$@"
fi
exec "$@"
