#!/usr/bin/env bash
# Builds the Debian package of gpurm from the install step of a configured
# and built tree: `cmake --install --strip` into a staging directory with
# prefix /usr, plus the package's metadata (packaging/debian) and dpkg-deb.
#   scripts/make-deb.sh [BUILD_DIR] [OUT_DIR]    (defaults: build, BUILD_DIR)
# Prints the path of the .deb on its last line. Reproducible: file dates and
# the changelog's date are SOURCE_DATE_EPOCH's (default: the commit's).
set -euo pipefail
umask 022
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$(cd "${1:-$root/build}" && pwd)"
out_dir="$(mkdir -p "${2:-$build_dir}" && cd "${2:-$build_dir}" && pwd)"

version="$(head -n1 "$root/VERSION")"
arch="$(dpkg --print-architecture)"
commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stage="$work/gpurm_${version}_${arch}"

DESTDIR="$stage" cmake --install "$build_dir" --prefix /usr --strip >/dev/null

doc="$stage/usr/share/doc/gpurm"
mkdir -p "$doc"
install -m 0644 "$root/packaging/debian/copyright" "$doc/copyright"
sed -e "s/@VERSION@/$version/g" -e "s/@COMMIT@/$commit/g" \
    -e "s/@DATE@/$(date -u -R -d "@$SOURCE_DATE_EPOCH")/g" \
    "$root/packaging/debian/changelog.in" | gzip -9n > "$doc/changelog.gz"  # A native package's name.
gzip -9n "$stage/usr/share/man/man1/gpurm.1"

mkdir -p "$stage/DEBIAN"
for script in postinst prerm postrm; do
  install -m 0755 "$root/packaging/debian/$script" "$stage/DEBIAN/$script"
done
(cd "$stage" && find etc -type f -printf '/%p\n' | sort) > "$stage/DEBIAN/conffiles"

# Runtime dependencies from the shared libraries the binaries link
# (dpkg-shlibdeps reads them from debian/control of a source tree).
mkdir -p "$work/src/debian"
printf 'Source: gpurm\n\nPackage: gpurm\nArchitecture: any\n' > "$work/src/debian/control"
executables=$(cd "$stage" && find usr -type f \( -path 'usr/bin/*' -o -name '*.so*' \) -printf "-e$stage/%p ")
# shellcheck disable=SC2086  # one argument per executable
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O $executables | sed -n 's/^shlibs:Depends=//p')

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
    -e "s/@SHLIBS_DEPENDS@/$shlibs/" "$root/packaging/debian/control.in" > "$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort | xargs md5sum) \
  > "$stage/DEBIAN/md5sums"

find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb="$out_dir/gpurm_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
