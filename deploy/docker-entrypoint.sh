#!/bin/sh
# Secrets come as files (compose secrets, mode 0600 on the host), never as environment
# values that `docker inspect` would show: for each NAME_FILE given, NAME is read from it
# here, in the process that runs wowlab.
set -eu
for name in WOWLAB_SECRET_KEY WOWLAB_METRICS_TOKEN WOWLAB_DATABASE_PASSWORD; do
  eval "file=\${${name}_FILE:-}"
  if [ -n "$file" ]; then
    value=$(cat "$file")
    export "$name=$value"
  fi
done
if [ -n "${WOWLAB_DATABASE_PASSWORD:-}" ]; then
  # postgresql://USER:PASSWORD@HOST/DB, the password quoted for a URL.
  quoted=$(python3 -c 'import os, urllib.parse; print(urllib.parse.quote(os.environ["WOWLAB_DATABASE_PASSWORD"], safe=""))')
  export WOWLAB_DATABASE_URL="postgresql://${WOWLAB_DATABASE_USER}:${quoted}@${WOWLAB_DATABASE_HOST}/${WOWLAB_DATABASE_NAME}"
  unset WOWLAB_DATABASE_PASSWORD
fi
exec "$@"
