#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks need, only when missing.
set -euo pipefail
need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/bin/chromium ] || need+=(chromium)          # browser tests (Playwright, executable_path)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)  # CJK glyphs in page screenshots
command -v wrk >/dev/null || need+=(wrk)               # load generator for the serving benchmarks
command -v redis-server >/dev/null || need+=(redis-server)  # Celery broker in the production-shape test
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
