#!/usr/bin/env bash
# The main job, end to end, on a local store: layers in, image, container, mount, diff out.
set -euo pipefail
CS=${CS:-containers-storage}
STORE=${DEMO_STORE:-$PWD/.demo-store}
cs() { "$CS" --graph "$STORE/graph" --run "$STORE/run" --storage-driver vfs "$@"; }

echo "== store in $STORE"
rm -rf "$STORE"; mkdir -p "$STORE/src/etc"
echo "hello from a layer" > "$STORE/src/etc/motd"
tar -C "$STORE/src" -cf "$STORE/layer.tar" etc

base=$(cs create-layer --name demo-base | head -n1)
echo "created base layer $base"
top=$(cs import-layer --name demo-top --file "$STORE/layer.tar" "$base" | head -n1)
echo "imported layer $top from layer.tar"
image=$(cs create-image --name demo/image:latest "$top" | head -n1)
echo "created image $image"
container=$(cs create-container --name demo-ctr demo/image:latest | head -n1)
echo "created container $container"
mnt=$(cs mount demo-ctr)
echo "container mounted at $mnt: $(cat "$mnt/etc/motd")"
cs unmount demo-ctr
cs diff -u demo-top > "$STORE/out.tar"
if cmp -s "$STORE/layer.tar" "$STORE/out.tar"; then echo "diff of demo-top reproduces layer.tar byte for byte"; else echo "diff differs!"; exit 1; fi
echo "== layers"; cs layers
echo "== images"; cs images
echo "== containers"; cs containers
cs status 2>&1
