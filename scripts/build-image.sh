#!/usr/bin/env bash
# Builds the rask image FROM scratch with buildah (or podman): TAG defaults to
# localhost/rask:latest, the image the Kubernetes manifests name. The image
# holds the release binary ($RASK_BINARY, default target/release/rask, built
# if missing), the shared libraries it links, the host's CA certificates and
# an empty /tmp; nothing is pulled.
#
#   bash scripts/build-image.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-localhost/rask:latest}
binary=${RASK_BINARY:-target/release/rask}
if [ ! -x "$binary" ]; then
  cargo build --release -p rask-cli
fi
if command -v buildah >/dev/null; then
  build=(buildah bud --pull=never)
elif command -v podman >/dev/null; then
  build=(podman build --pull=never)
else
  echo "build-image.sh: neither buildah nor podman is installed (apt-get install buildah)" >&2
  exit 1
fi

# A context of our own per build: builds may run side by side.
context=$(mktemp -d "${TMPDIR:-/tmp}/rask-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
root=$context/root
mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/etc/ssl/certs"
chmod 1777 "$root/tmp"
cp "$binary" "$root/usr/local/bin/rask"
# Debug information stays out of the image (it is most of the binary).
if command -v strip >/dev/null; then strip --strip-debug "$root/usr/local/bin/rask"; fi
# The loader and every library ldd resolves, at the paths the binary asks for.
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
# The user the image runs as, for tools that look it up.
printf 'root:x:0:0::/root:/nonexistent\nrask:x:65532:65532::/tmp:/nonexistent\n' >"$root/etc/passwd"
printf 'root:x:0:\nrask:x:65532:\n' >"$root/etc/group"
cp image/Containerfile "$context/Containerfile"

"${build[@]}" --tag "$tag" --file "$context/Containerfile" "$context"
