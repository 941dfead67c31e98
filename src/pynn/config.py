"""Process-wide defaults under Keras' names (``keras.config``): the image data format
that conv, pooling and resizing layers use when ``data_format=None``."""

_IMAGE_DATA_FORMAT = "channels_last"
_FORMATS = ("channels_last", "channels_first")


def image_data_format():
    """The default ``data_format`` of image layers: "channels_last" (pynn's native layout) unless set.

    Example:
        >>> import pynn
        >>> pynn.config.image_data_format()
        'channels_last'
    """
    return _IMAGE_DATA_FORMAT


def set_image_data_format(data_format):
    """Set the default ``data_format`` of layers built afterwards ("channels_last" or "channels_first").

    Example:
        >>> import pynn
        >>> pynn.config.set_image_data_format("channels_first")
        >>> pynn.layers.Conv2D(4, 3).data_format
        'channels_first'
        >>> pynn.config.set_image_data_format("channels_last")
    """
    global _IMAGE_DATA_FORMAT
    if data_format not in _FORMATS:
        raise ValueError(f"set_image_data_format: expected one of {list(_FORMATS)}, got {data_format!r}")
    _IMAGE_DATA_FORMAT = data_format
