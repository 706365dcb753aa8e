#!/usr/bin/env bash
# Builds this app's image from the `image/` folder with Docker and saves it as an image archive
# in dist/, the file that travels as the TUF target named in archy.toml (`image.target`).
# The image starts from Debian's statically linked busybox, so it builds and runs without any
# container registry:
#
#   apt-get install -y busybox-static   # provides /bin/busybox
#   ./build.sh [--no-update]
#
# Every build has a new image id (the image config records the build time), so unless
# --no-update is given the script writes the id into archy.toml's `image_id`: test, sign and
# publish the manifest and the archive of the same build together. Env: BUSYBOX (default
# /bin/busybox), DOCKER (default docker).
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

manifest="$here/archy.toml"
id=$(sed -n 's/^id = "\(.*\)"$/\1/p' "$manifest")
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$manifest")
target=$(sed -n 's/^image = { target = "\([^"]*\)".*/\1/p' "$manifest" | head -n 1)
if [ -z "$id" ] || [ -z "$version" ] || [ -z "$target" ]; then
  echo "error: cannot read id, version and image target from $manifest" >&2
  exit 1
fi
tag="archy.local/$id:$version"

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp -R "$here/image/." "$context/"
cp "$busybox" "$context/busybox"

# No network for the build: RUN steps need none, and an engine without its default bridge
# (`--bridge none`) could not give one.
"$docker" build --quiet --network none --tag "$tag" "$context" >/dev/null
image_id=$("$docker" image inspect --format '{{.Id}}' "$tag")

mkdir -p "$here/dist"
archive="$here/dist/$(basename "$target")"
"$docker" save --output "$archive" "$tag"

if [ "$update" = 1 ]; then
  sed -i "s/image_id = \"sha256:[0-9a-f]*\"/image_id = \"$image_id\"/g" "$manifest"
  grep -q "image_id = \"$image_id\"" "$manifest" || { echo "error: could not update image_id in $manifest" >&2; exit 1; }
fi

echo "archive  $archive"
echo "target   $target"
echo "sha256   $(sha256sum "$archive" | cut -d' ' -f1)"
echo "image_id $image_id"
