#!/usr/bin/env bash
# report-check.sh: render an sgdyn report in headless Chromium and fail on a
# missing image, a JavaScript error, a figure with no data, or a reference to
# the network; save a screenshot of the first screen.
#
#   scripts/report-check.sh RUN_DIR|REPORT_DIR|PAGE.html [SCREENSHOT.png]
#
# The screenshot defaults to report-check.png in the current directory.
# Chromium: Debian's `chromium` (apt-get install -y chromium), or $CHROMIUM.
# Not part of `go test` (CI does not install a browser).
set -euo pipefail

usage() { echo "usage: scripts/report-check.sh RUN_DIR|REPORT_DIR|PAGE.html [SCREENSHOT.png]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
target=$1
shot=${2:-report-check.png}

if [ -f "$target" ]; then
	page=$target
elif [ -f "$target/report/index.html" ]; then
	page=$target/report/index.html
elif [ -f "$target/index.html" ]; then
	page=$target/index.html
else
	echo "report-check: no index.html in $target or $target/report" >&2
	exit 2
fi
chrome=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$chrome" ]; then
	echo "report-check: chromium not found (apt-get install -y chromium, or set CHROMIUM)" >&2
	exit 2
fi

fail=0
# A report must work from file:// with no network: no external address.
if grep -Eo '(src|href|url\()[= ]*["'"'"']?(https?:)?//[^"'"'"' )>]*' "$page" >/dev/null; then
	echo "FAIL external reference:"
	grep -Eo '(src|href|url\()[= ]*["'"'"']?(https?:)?//[^"'"'"' )>]*' "$page" | sort -u | sed 's/^/  /'
	fail=1
fi

work=$(mktemp -d)
profile=$(mktemp -d)
trap 'rm -rf "$work" "$profile"' EXIT
# Check a copy (the page and its figures/), with a checker script injected
# right after <head> so that it sees the errors of every later script.
srcdir=$(cd "$(dirname "$page")" && pwd)
mkdir "$work/page"
if [ -d "$srcdir/figures" ]; then cp -r "$srcdir/figures" "$work/page/"; fi
checked=$work/page/$(basename "$page")
cat >"$work/checker.html" <<'EOF'
<script>
window.__reportCheck = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  if (t && t !== window && (t.src || t.href)) { window.__reportCheck.push('failed to load: ' + (t.getAttribute('src') || t.getAttribute('href'))); return; }
  window.__reportCheck.push('javascript error: ' + e.message + ' (line ' + e.lineno + ')');
}, true);
window.addEventListener('load', function () {
  var bad = window.__reportCheck.slice(), imgs = document.images;
  for (var i = 0; i < imgs.length; i++) {
    var m = imgs[i], src = m.getAttribute('src');
    if (!m.complete || m.naturalWidth === 0) bad.push('missing image: ' + src);
    var p = m.getAttribute('data-points');
    if (p !== null && parseInt(p, 10) === 0) bad.push('figure with no data: ' + src);
  }
  // Sort every sortable table by every column, both ways: a script error
  // shows up in the list above.
  var heads = document.querySelectorAll('table.sortable th');
  try { for (var j = 0; j < heads.length; j++) { heads[j].click(); heads[j].click(); } }
  catch (err) { bad.push('javascript error while sorting: ' + err); }
  var out = document.createElement('pre');
  out.id = 'report-check';
  out.textContent = (bad.length ? 'FAIL ' + bad.length + '\n' + bad.join('\n') : 'OK') +
    '\nimages ' + imgs.length + ', sortable columns ' + heads.length;
  document.body.appendChild(out);
});
</script>
EOF
awk -v f="$work/checker.html" '{print} !done && /<head/ {while ((getline l < f) > 0) print l; done = 1}' "$page" >"$checked"

flags=(--headless --no-sandbox --disable-gpu --disable-quic --disable-background-networking
	--disable-component-update --disable-sync --no-first-run --user-data-dir="$profile")
"$chrome" "${flags[@]}" --enable-logging=stderr --v=0 --virtual-time-budget=10000 --dump-dom \
	"file://$checked" >"$work/dom.html" 2>"$work/console.log" || true
status=$(sed -n '/<pre id="report-check">/,/<\/pre>/p' "$work/dom.html" | sed 's/<[^>]*>//g')
if [ -z "$status" ]; then
	echo "FAIL the page did not finish loading in Chromium (no check result); its log:"
	tail -n 20 "$work/console.log" | sed 's/^/  /'
	fail=1
else
	echo "$status"
	case $status in OK*) ;; *) fail=1 ;; esac
fi
# Console errors the checker could not see (e.g. in the checker itself).
if grep -E 'Uncaught|SyntaxError' "$work/console.log" >/dev/null; then
	echo "FAIL console errors:"
	grep -E 'Uncaught|SyntaxError' "$work/console.log" | sed 's/^/  /'
	fail=1
fi

# The first screen, as a reader sees it.
"$chrome" "${flags[@]}" --hide-scrollbars --window-size=1280,900 --virtual-time-budget=15000 \
	--screenshot="$(cd "$(dirname "$shot")" && pwd)/$(basename "$shot")" "file://$srcdir/$(basename "$page")" >/dev/null 2>&1 || true
if [ -s "$shot" ]; then
	echo "screenshot $shot"
else
	echo "FAIL no screenshot written"
	fail=1
fi
[ $fail -eq 0 ] && echo "report-check: OK $page" || echo "report-check: FAILED $page"
exit $fail
