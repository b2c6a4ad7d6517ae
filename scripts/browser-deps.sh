#!/usr/bin/env bash
# Headless browser tests need Debian's chromium and a CJK font (without one, Chinese renders as boxes).
# Installs them with apt-get when missing and we are allowed to (root); otherwise says what to install.
set -u
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qi "noto.*cjk" || need+=(fonts-noto-cjk)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "browser tests need: ${need[*]} (sudo apt-get install ${need[*]}); they will be skipped"
fi
exit 0
