#!/usr/bin/env bash
# Rebuild the bundled sample data in examples/data/ from documentation that Debian packages install.
#
#   sample.warc.gz     wget crawl (WARC) of the Debian FAQ and the New Maintainers' Guide in 12 languages,
#                      served by python3 -m http.server on 127.0.0.1 over /usr/share/doc
#   sample.warc.wet.gz WET conversion records: resiliparse plain-text extraction of the WARC's HTML
#   sample.jsonl.zst   Pile-style jsonl.zst of texts from /usr/share/common-licenses and /usr/share/doc
#
# Usage (Debian 12, as root or with sudo for apt-get): examples/make_sample.sh [--no-apt]
# Needs: wget, python3 with fastwarc/resiliparse/warcio/zstandard (the project's dev environment).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT_DIR:-$HERE/data}"  # OUT_DIR=/elsewhere to try it without touching the bundled files
PY="${PYTHON:-python3}"
PACKAGES=(
  debian-faq debian-faq-de debian-faq-fr debian-faq-it debian-faq-ja debian-faq-nl debian-faq-pt
  debian-faq-ru debian-faq-zh-cn
  maint-guide maint-guide-de maint-guide-es maint-guide-fr maint-guide-it maint-guide-ja maint-guide-ru
  maint-guide-vi maint-guide-zh-cn
)

if [[ "${1:-}" != "--no-apt" ]]; then
  SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends wget "${PACKAGES[@]}"
fi

mkdir -p "$OUT"
WORK="$(mktemp -d)"
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(cd /usr/share/doc && exec "$PY" -m http.server --bind 127.0.0.1 "$PORT" >"$WORK/server.log" 2>&1) &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do
  "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/')" 2>/dev/null && break
  sleep 0.2
done

BASE="http://127.0.0.1:$PORT"
URLS=("$BASE/debian/FAQ/index.html" "$BASE/maint-guide/html/index.en.html")
for l in de fr it ja nl pt ru zh-cn; do URLS+=("$BASE/debian/FAQ/$l/index.$l.html"); done
for l in de es fr it ja ru vi zh-cn; do URLS+=("$BASE/maint-guide-$l/html/index.$l.html"); done
# Two links that answer 404 and a directory listing, so the reader's status/skip paths meet real records.
URLS+=("$BASE/debian/FAQ/missing.html" "$BASE/maint-guide-fr/")

# --no-parent keeps each start URL's crawl inside its own folder; --page-requisites brings css/png.
# wget exits 8 when some URL answered an error (the 404s above): that is expected.
rm -f "$OUT/sample.warc.gz"
(cd "$WORK" && wget --recursive --level=3 --no-parent --page-requisites --no-verbose \
  --warc-file="$WORK/sample" --warc-header="operator: curator examples/make_sample.sh" \
  --directory-prefix="$WORK/site" "${URLS[@]}") || [[ $? == 8 ]]
mv "$WORK/sample.warc.gz" "$OUT/sample.warc.gz"

"$PY" "$HERE/make_sample.py" wet "$OUT/sample.warc.gz" "$OUT/sample.warc.wet.gz"
"$PY" "$HERE/make_sample.py" jsonl "$OUT/sample.jsonl.zst"
ls -l "$OUT"
