#!/usr/bin/env bash
# The Debian package as a platform engineer gets it (scripts/make-deb.sh):
# lintian finds nothing to report, its file list is the expected one, the
# systemd unit passes `systemd-analyze verify`, and the packaged binary,
# extracted with dpkg-deb -x, serves the demo inventory and answers
# /api/v1/gpu/health with 200.
#   tests/packaging/package_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="$(cd "${1:?usage: package_test.sh BUILD_DIR}" && pwd)"
work="$(mktemp -d)"
daemon=""
cleanup() {
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

deb="$(nice -n 10 bash "$root/scripts/make-deb.sh" "$build_dir" "$work" | tail -n1)"
ok "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

# lintian: no errors, warnings or info tags (pedantic and experimental ones aside).
if command -v lintian >/dev/null; then
  if lintian --fail-on error,warning,info --info "$deb"; then
    ok "lintian reports nothing"
  else
    bad "lintian (above)"
  fi
else
  bad "lintian is not installed (scripts/install-deps.sh installs it)"
fi

# The file list: what `cmake --install` lays out plus Debian's doc files,
# and the CUDA guard library where the build has one (src/guard).
dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' | grep -v '^$' | LC_ALL=C sort > "$work/files"
cat > "$work/expected" <<'LIST'
/etc
/etc/gpurm
/etc/gpurm/gpu_config.yaml
/usr
/usr/bin
/usr/bin/gpurm
/usr/lib
/usr/lib/systemd
/usr/lib/systemd/system
/usr/lib/systemd/system/gpurm.service
/usr/share
/usr/share/bash-completion
/usr/share/bash-completion/completions
/usr/share/bash-completion/completions/gpurm
/usr/share/doc
/usr/share/doc/gpurm
/usr/share/doc/gpurm/changelog.gz
/usr/share/doc/gpurm/copyright
/usr/share/gpurm
/usr/share/gpurm/examples
/usr/share/gpurm/examples/cluster-3node.yaml
/usr/share/gpurm/examples/dgx-h100.yaml
/usr/share/gpurm/grafana
/usr/share/gpurm/grafana/gpurm-dashboard.json
/usr/share/man
/usr/share/man/man1
/usr/share/man/man1/gpurm.1.gz
/usr/share/zsh
/usr/share/zsh/vendor-completions
/usr/share/zsh/vendor-completions/_gpurm
LIST
if [ -f "$build_dir/libgpurm_cuda_guard.so" ]; then
  printf '%s\n' /usr/lib/gpurm /usr/lib/gpurm/libgpurm_cuda_guard.so >> "$work/expected"
fi
LC_ALL=C sort -o "$work/expected" "$work/expected"
if diff -u "$work/expected" "$work/files"; then
  ok "file list ($(wc -l < "$work/files") entries)"
else
  bad "file list differs from the expected one (diff above: - expected, + packaged)"
fi
dpkg-deb -f "$deb" Depends | grep -q adduser && ok "depends on adduser (postinst creates the user)" ||
  bad "Depends lacks adduser"
[ "$(dpkg-deb -I "$deb" conffiles)" = /etc/gpurm/gpu_config.yaml ] &&
  ok "/etc/gpurm/gpu_config.yaml is a conffile" || bad "conffiles: $(dpkg-deb -I "$deb" conffiles)"

# The postinst, run with stand-ins for the commands it calls (each logs its
# arguments): on a machine without the user and groups it creates the system
# user gpurm and the groups video and render; where they exist it creates
# nothing (idempotent, as on an upgrade).
dpkg-deb -e "$deb" "$work/control"
mkdir -p "$work/stubs"
for command in adduser addgroup deb-systemd-helper deb-systemd-invoke systemctl; do
  printf '#!/bin/sh\necho "%s $*" >> "$STUB_LOG"\n' "$command" > "$work/stubs/$command"
done
# getent: every name is missing unless STUB_EXISTS=1.
printf '#!/bin/sh\n[ "$STUB_EXISTS" = 1 ]\n' > "$work/stubs/getent"
chmod +x "$work/stubs"/*
STUB_LOG="$work/fresh.log" STUB_EXISTS=0 PATH="$work/stubs:$PATH" sh "$work/control/postinst" configure
grep -qx 'adduser --system --group --home /var/lib/gpurm --no-create-home --gecos gpurm GPU resource manager gpurm' "$work/fresh.log" &&
  grep -qx 'addgroup --system video' "$work/fresh.log" && grep -qx 'addgroup --system render' "$work/fresh.log" &&
  ok "postinst on a fresh machine: creates the system user gpurm and the groups video, render" ||
  bad "postinst on a fresh machine ran: $(tr '\n' ';' < "$work/fresh.log")"
STUB_LOG="$work/upgrade.log" STUB_EXISTS=1 PATH="$work/stubs:$PATH" sh "$work/control/postinst" configure 0.0.9
if grep -q '^add' "$work/upgrade.log"; then
  bad "postinst where the user exists ran: $(tr '\n' ';' < "$work/upgrade.log")"
else
  ok "postinst where the user and groups exist: creates nothing"
fi
grep -q "deb-systemd-helper update-state gpurm.service\|deb-systemd-helper enable gpurm.service" "$work/fresh.log" &&
  ok "postinst registers gpurm.service with deb-systemd-helper" || bad "postinst: no deb-systemd-helper call"

extracted="$work/root"
dpkg-deb -x "$deb" "$extracted"
unit="$extracted/usr/lib/systemd/system/gpurm.service"

# The unit: systemd's own checker (unknown keys, bad values, missing
# executables, a Documentation= man page that does not open), where any
# complaint, warnings included, fails. It checks the packaged unit with one
# change: ExecStart names the extracted binary instead of /usr/bin/gpurm,
# which is not installed here; `man gpurm(1)` finds the packaged man page
# through MANPATH. (--root= would need a whole systemd tree in the package.)
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$work/unit"
  sed "s|^ExecStart=/usr/bin/gpurm |ExecStart=$extracted/usr/bin/gpurm |" "$unit" > "$work/unit/gpurm.service"
  if MANPATH="$extracted/usr/share/man:" systemd-analyze verify "$work/unit/gpurm.service" > "$work/verify.log" 2>&1 &&
     ! grep -q . "$work/verify.log"; then
    ok "systemd-analyze verify gpurm.service"
  else
    cat "$work/verify.log"
    bad "systemd-analyze verify gpurm.service"
  fi
else
  bad "systemd-analyze is not installed (scripts/install-deps.sh installs systemd)"
fi
# systemd's own rating of the sandbox (0 = locked down .. 10 = exposed):
# at most 2.5, "OK", with the GPU device nodes, /sys and the network open.
if command -v systemd-analyze >/dev/null; then
  exposure="$(systemd-analyze security --offline=true "$work/unit/gpurm.service" 2>&1 | tail -n1)"
  if systemd-analyze security --offline=true --threshold=25 "$work/unit/gpurm.service" > /dev/null 2>&1; then
    ok "systemd-analyze security: ${exposure#→ }"
  else
    bad "systemd-analyze security: ${exposure#→ }, over 2.5"
  fi
fi
for directive in 'User=gpurm' 'ExecReload=/bin/kill -HUP $MAINPID' 'ProtectSystem=strict' \
                 'ProtectHome=yes' 'NoNewPrivileges=yes' 'StateDirectory=gpurm' 'LogsDirectory=gpurm' \
                 'SupplementaryGroups=video render' 'DeviceAllow=char-nvidia* rw' 'DevicePolicy=closed' \
                 'SystemCallFilter=@system-service'; do
  grep -qxF "$directive" "$unit" && ok "unit: $directive" || bad "unit lacks '$directive'"
done
grep -qx 'ExecStart=/usr/bin/gpurm serve --config /etc/gpurm/gpu_config.yaml --data-dir /var/lib/gpurm --log-dir /var/log/gpurm' "$unit" &&
  ok "unit: ExecStart runs the packaged binary on /etc/gpurm/gpu_config.yaml" || bad "unit: ExecStart: $(grep ExecStart= "$unit")"

# The same install step under another prefix (`make install PREFIX=/opt/gpurm`):
# the configuration under the prefix, and the unit running that binary on it.
DESTDIR="$work/opt" cmake --install "$build_dir" --prefix /opt/gpurm > /dev/null
[ -f "$work/opt/opt/gpurm/etc/gpurm/gpu_config.yaml" ] && [ -x "$work/opt/opt/gpurm/bin/gpurm" ] &&
  ok "--prefix /opt/gpurm: bin/gpurm and etc/gpurm/gpu_config.yaml under the prefix" ||
  bad "--prefix /opt/gpurm: $(cd "$work/opt" && find . -type f | sort | tr '\n' ' ')"
grep -qx 'ExecStart=/opt/gpurm/bin/gpurm serve --config /opt/gpurm/etc/gpurm/gpu_config.yaml --data-dir /var/lib/gpurm --log-dir /var/log/gpurm' \
  "$work/opt/opt/gpurm/lib/systemd/system/gpurm.service" &&
  ok "--prefix /opt/gpurm: the unit's ExecStart follows the prefix" ||
  bad "--prefix /opt/gpurm: $(grep ExecStart= "$work/opt/opt/gpurm/lib/systemd/system/gpurm.service" || true)"

# The packaged binary serves the demo inventory with the packaged config.
bin="$extracted/usr/bin/gpurm"
"$bin" --version | grep -q "^gpurm $(head -n1 "$root/VERSION") (commit " && ok "$("$bin" --version)" ||
  bad "--version: $("$bin" --version)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --config "$extracted/etc/gpurm/gpu_config.yaml" \
  --inventory "$extracted/usr/share/gpurm/examples/cluster-3node.yaml" \
  --listen "127.0.0.1:$port" --data-dir "$work/state" --log-dir "$work/logs" > "$work/serve.log" 2>&1 &
daemon=$!
status=""
for _ in $(seq 1 300); do  # Up to 30 s for the daemon to start.
  status=$(curl -s -o "$work/health.json" -w '%{http_code}' "http://127.0.0.1:$port/api/v1/gpu/health" || true)
  [ "$status" = 200 ] && break
  sleep 0.1
done
if [ "$status" = 200 ]; then
  ok "packaged binary: GET /api/v1/gpu/health = 200 ($(tr -d '\n' < "$work/health.json" | cut -c1-120))"
else
  cat "$work/serve.log"
  bad "packaged binary: GET /api/v1/gpu/health = '$status'"
fi
nodes=$(curl -s "http://127.0.0.1:$port/api/v1/gpu/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_nodes"])' || true)
[ "$nodes" = 3 ] && ok "packaged binary: /status has the demo's 3 nodes" || bad "/status total_nodes = '$nodes'"
exit "$fail"
