#!/bin/sh
# Creates the anchorage system user and group the service runs as.
set -e
if ! getent group anchorage >/dev/null 2>&1; then
	if command -v addgroup >/dev/null 2>&1 && ! command -v groupadd >/dev/null 2>&1; then
		addgroup -S anchorage
	else
		groupadd --system anchorage
	fi
fi
if ! getent passwd anchorage >/dev/null 2>&1; then
	if command -v adduser >/dev/null 2>&1 && ! command -v useradd >/dev/null 2>&1; then
		adduser -S -D -H -h /var/lib/anchorage -s /sbin/nologin -G anchorage anchorage
	else
		useradd --system --gid anchorage --home-dir /var/lib/anchorage --no-create-home \
			--shell /usr/sbin/nologin anchorage
	fi
fi
exit 0
