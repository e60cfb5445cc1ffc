"""The engine's stages, behind :mod:`deltaglider.engine` (whose ``DeltaStore`` wires them); see
docs/architecture.md for the path of an upload and a download through them."""
