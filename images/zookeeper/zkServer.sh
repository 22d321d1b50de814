#!/bin/bash
# `zkServer.sh status`, as the readiness probe calls it: succeeds when the server answers
# the `srvr` four-letter word with its mode.
[ "${1:-}" = status ] || { echo "only 'status' is supported here" >&2; exit 2; }
exec 3<>/dev/tcp/127.0.0.1/2181 || exit 1
printf srvr >&3
grep -q '^Mode: ' <&3
