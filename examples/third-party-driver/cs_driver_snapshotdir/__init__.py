"""An example third-party graph driver: layers are full directory copies (``snapshotdir``)."""
