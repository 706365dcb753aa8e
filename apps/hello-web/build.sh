#!/usr/bin/env bash
# Builds hello-web's image from Debian's busybox-static with Docker and saves it as an image
# archive, the file that travels as the TUF target named in archy.toml (`image.target`).
#
#   apt-get install -y busybox-static   # provides /bin/busybox
#   apps/hello-web/build.sh [--no-update]
#
# Writes dist/hello-web-<version>.tar next to this script and prints the image id `docker load`
# will produce. Every build has a new id (the image config records the build time), so unless
# --no-update is given the script writes the id into archy.toml's `image_id`: publish the
# manifest and the archive of the same build together. Env: BUSYBOX (default /bin/busybox),
# DOCKER (default docker).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}
docker=${DOCKER:-docker}
update=1
case "${1:-}" in
  "") ;;
  --no-update) update=0 ;;
  *) echo "usage: $0 [--no-update]" >&2; exit 2 ;;
esac

if [ ! -x "$busybox" ]; then
  echo "error: $busybox not found; install it with: apt-get install -y busybox-static" >&2
  exit 1
fi
if ! "$busybox" httpd --help >/dev/null 2>&1 && ! "$busybox" --list 2>/dev/null | grep -x httpd >/dev/null; then
  echo "error: $busybox has no httpd applet" >&2
  exit 1
fi

manifest="$here/archy.toml"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$manifest")
target=$(sed -n 's/^image = { target = "\([^"]*\)".*/\1/p' "$manifest")
if [ -z "$version" ] || [ -z "$target" ]; then
  echo "error: cannot read version and image target from $manifest" >&2
  exit 1
fi
tag="archy.local/hello-web:$version"

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/Dockerfile" "$context/Dockerfile"
cp "$busybox" "$context/busybox"
cp -R "$here/www" "$context/www"

"$docker" build --quiet --tag "$tag" "$context" >/dev/null
image_id=$("$docker" image inspect --format '{{.Id}}' "$tag")

mkdir -p "$here/dist"
archive="$here/dist/$(basename "$target")"
"$docker" save --output "$archive" "$tag"

if [ "$update" = 1 ]; then
  sed -i "s/image_id = \"sha256:[0-9a-f]*\"/image_id = \"$image_id\"/" "$manifest"
  grep -q "image_id = \"$image_id\"" "$manifest" || { echo "error: could not update image_id in $manifest" >&2; exit 1; }
fi

echo "archive  $archive"
echo "target   $target"
echo "sha256   $(sha256sum "$archive" | cut -d' ' -f1)"
echo "image_id $image_id"
