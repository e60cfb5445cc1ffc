"""The codec's private stages behind :mod:`deltaglider.codec`; nothing here is public."""
