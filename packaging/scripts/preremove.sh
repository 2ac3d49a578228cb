#!/bin/sh
# Stops the service before its binary goes (not on an upgrade).
set -e
case "$1" in
	upgrade|1) exit 0 ;;
esac
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl stop anchorage >/dev/null 2>&1 || true
elif command -v rc-service >/dev/null 2>&1; then
	rc-service anchorage stop >/dev/null 2>&1 || true
fi
exit 0
