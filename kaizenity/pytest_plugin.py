"""pytest plugin: the `kaizenity_stack` fixture (filled in with the local engine)."""
