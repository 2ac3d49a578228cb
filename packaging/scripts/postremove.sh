#!/bin/sh
# Remove keeps configuration and data; purge (deb) deletes them and the user.
set -e
if [ "$1" = "purge" ]; then
	rm -rf /etc/anchorage /var/lib/anchorage /var/log/anchorage
	if getent passwd anchorage >/dev/null 2>&1; then
		userdel anchorage >/dev/null 2>&1 || true
	fi
	if getent group anchorage >/dev/null 2>&1; then
		groupdel anchorage >/dev/null 2>&1 || true
	fi
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
