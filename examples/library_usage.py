"""Using containers-storage for Python as a library.

    .venv/bin/python examples/library_usage.py /tmp/example-store
"""

from __future__ import annotations

import io
import sys
import tarfile

from cs_core import load_options, open_store


def layer_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"hello from the library\n"
        info = tarfile.TarInfo("etc/motd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main(root: str) -> int:
    store = open_store(load_options(graph_root=f"{root}/graph", run_root=f"{root}/run", driver="vfs"))
    layer = store.create_layer(names=["lib-layer"], diff=io.BytesIO(layer_tar()))
    image = store.create_image(layer.id, names=["example/lib:latest"])
    container = store.create_container(image.id, names=["lib-ctr"])
    path = store.mount(container.id)
    with open(f"{path}/etc/motd", encoding="utf-8") as fh:
        print(f"{container.id[:12]} sees: {fh.read().strip()}")
    store.unmount(container.id)
    print(f"layer {layer.id[:12]} diff digest {store.layer(layer.id).uncompressed_digest}")
    store.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/example-store"))
