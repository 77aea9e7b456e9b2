#!/usr/bin/env bash
# Makes sure nats-server (the NATS baseline of the paper harness) is installed: installs the Debian package when it is
# missing and this is root on a machine with apt-get; fails with a clear message otherwise.
set -euo pipefail

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ] && [ ! -x /usr/bin/nats-server ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "nats-server not found: installing the Debian package nats-server" >&2
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server
        # The package enables a system-wide service on 0.0.0.0:4222; the harness starts its own server on loopback
        # only, so the service is switched off again.
        if command -v systemctl >/dev/null 2>&1; then
            systemctl disable --now nats-server >/dev/null 2>&1 || true
        fi
    else
        echo "nats-server is missing and cannot be installed here: install the Debian package nats-server" >&2
        exit 1
    fi
fi

path="$(command -v nats-server || true)"
for candidate in /usr/sbin/nats-server /usr/bin/nats-server; do
    if [ -z "$path" ] && [ -x "$candidate" ]; then
        path="$candidate"
    fi
done
if [ -z "$path" ]; then
    echo "nats-server is missing and cannot be installed here: install the Debian package nats-server" >&2
    exit 1
fi

echo "nats-server: $path"
"$path" --version
