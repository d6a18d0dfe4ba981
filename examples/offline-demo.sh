#!/usr/bin/env bash
# Offline showcase of dtabctl on linkerd's hello-world dtab: how a request
# for /svc/world is routed by the base dtab, and how one l5d-dtab override
# stages world-v2 for that request only. Usage: examples/offline-demo.sh DTABCTL
set -euo pipefail
dtabctl=${1:-build/bin/dtabctl}

base='/srv => /#/io.l5d.fs; /host => /srv; /svc => /host'
override='/host/world => /srv/world-v2'

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "The base dtab, in canonical form:"
step "$dtabctl" fmt dtab "$base"
echo
echo "Production traffic: /svc/world binds to world (v1)."
step "$dtabctl" delegate --dtab "$base" /svc/world
echo
echo "A request carrying 'l5d-dtab: $override' binds base ++ override:"
step "$dtabctl" delegate --dtab "$base; $override" /svc/world
echo
echo "Other services are untouched by the override:"
step "$dtabctl" delegate --dtab "$base; $override" /svc/hello
echo
echo "Why: the delegation tree, as linkerd's /delegator.json shows it:"
step "$dtabctl" explain --dtab "$base; $override" /svc/world
echo
echo "Mistakes are caught with Finagle's messages (exit status 2):"
"$dtabctl" fmt dtab '/host/world => /srv/world v2' 2>&1 || echo "(exit $?)"
