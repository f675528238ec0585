#!/usr/bin/env bash
# Installs what AITIP needs on a fresh Debian machine: system packages (only when missing),
# the project venv with the platform installed editable, and the pinned configurable-http-proxy.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# As root, users get Linux accounts of their own and their servers run this venv's interpreter: it must be
# one every account can execute (not, say, a pyenv build under /root, mode 0700).
separate_accounts() {
  [ "$(id -u)" -eq 0 ] && case "${AITIP_SHARED_ACCOUNT:-}" in 1|true|yes|on) return 1;; *) return 0;; esac
}
others_can_run() {
  "$1" - <<'PY' 2>/dev/null
import os, stat, sys
for path in (os.path.realpath(sys.executable), os.path.realpath(os.path.dirname(os.__file__))):
    parts = path.split(os.sep)
    for end in range(2, len(parts) + 1):
        mode = os.stat(os.sep.join(parts[:end])).st_mode
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            sys.exit(1)
    if not os.stat(path).st_mode & stat.S_IROTH:
        sys.exit(1)
PY
}
pick_python() {
  local candidates=(python3.13 python3.12 python3.11 python3)
  if separate_accounts; then
    candidates=(/usr/bin/python3.13 /usr/bin/python3.12 /usr/bin/python3.11 /usr/bin/python3 "${candidates[@]}")
  fi
  for candidate in "${candidates[@]}"; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null &&
       { ! separate_accounts || others_can_run "$candidate"; }; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

apt_install() {
  if [ "$#" -eq 0 ]; then return 0; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "aitip bootstrap: please install: $*" >&2; exit 1
  fi
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "aitip bootstrap: installing Debian packages: $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

case "${1:-all}" in
  python|all)
    if ! pick_python >/dev/null; then need_apt+=(python3 python3-venv python3-dev); fi
    command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
    command -v git >/dev/null 2>&1 || need_apt+=(git)
    # Debian's Chromium drives the dashboards' browser tests (Playwright never downloads a browser).
    command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
    # Chinese glyphs for the pages in 中文 (the browser tests' screenshots would show empty boxes without them).
    { command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh | grep -q .; } || need_apt+=(fonts-noto-cjk)
    # Pango for WeasyPrint, which prints evaluation reports to PDF (the Chinese ones with the fonts above).
    [ "$(ldconfig -p 2>/dev/null | grep -oE 'libpango(ft2)?-1\.0\.so\.0' | sort -u | wc -l)" -eq 2 ] ||
      need_apt+=(libpango-1.0-0 libpangoft2-1.0-0)
    # pdftoppm draws report pages as pictures, for the tests that look at them.
    command -v pdftoppm >/dev/null 2>&1 || need_apt+=(poppler-utils)
    apt_install "${need_apt[@]}"
    python_bin=$(pick_python)
    if [ -x .venv/bin/python ] && separate_accounts && ! others_can_run .venv/bin/python; then
      echo "aitip bootstrap: .venv's interpreter cannot be run by users' accounts; recreating it with $python_bin"
      rm -rf .venv
    fi
    if [ ! -x .venv/bin/python ]; then
      echo "aitip bootstrap: creating .venv with $python_bin"
      "$python_bin" -m venv .venv
    fi
    .venv/bin/python -m pip install -q --upgrade pip
    extras="dev,k8s,ray"
    # PyTorch for the CPU example notebook: opt-in, since outside machines with a local wheel it is GBs.
    if [ "${AITIP_WITH_TORCH:-0}" = "1" ]; then extras="$extras,torch"; fi
    .venv/bin/python -m pip install -q -e ".[$extras]"
    ;;&
  node|all)
    if ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
    npm ci --no-audit --no-fund --loglevel=error
    ;;
esac
