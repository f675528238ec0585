#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers for the catalog tests. Under CI=true a missing server is
# installed and started from Debian's packages; elsewhere the PostgreSQL tests skip with a reason.
set -uo pipefail
url="${AITIP_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
reachable() { .venv/bin/python - "$url" <<'PY'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception as exc:
    print(f"postgres not reachable at {sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}
reachable 2>/dev/null && exit 0
if [ "${CI:-}" != "true" ]; then
  echo "aitip: PostgreSQL not reachable; its tests will skip (set CI=true to install/start it)."
  exit 0
fi
if [ -n "${AITIP_TEST_POSTGRES_URL:-}" ]; then
  reachable; exit $?
fi
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  conf=$(ls -d /etc/postgresql/*/main | head -1)
  sed -i 's/^\(local\|host\)\(.*\)\(peer\|scram-sha-256\|md5\)$/\1\2trust/' "$conf/pg_hba.conf"
fi
pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
for _ in $(seq 1 30); do reachable 2>/dev/null && exit 0; sleep 1; done
reachable
