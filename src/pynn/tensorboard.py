"""TensorBoard event files written directly: TFRecord framing (length, masked
CRC-32C, payload, masked CRC-32C) around ``Event`` protocol buffers holding
scalar ``Summary`` values. No TensorFlow or tensorboard package is needed to
write them; ``tensorboard --logdir`` reads them."""
import os
import socket
import struct
import time

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1   # CRC-32C (Castagnoli), reflected
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1   # int64 fields: negative numbers as two's complement, as protobuf does
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    return _varint((number << 3) | wire_type) + payload


def _bytes_field(number: int, data: bytes) -> bytes:
    return _field(number, 2, _varint(len(data)) + data)


def event(step=0, wall_time=None, scalars=None, file_version=None) -> bytes:
    """One serialized ``tensorflow.Event``: wall_time (1, double), step (2, int64),
    file_version (3, string) or summary (5) with one value (tag 1, simple_value 2) per scalar."""
    msg = _field(1, 1, struct.pack("<d", time.time() if wall_time is None else wall_time))
    msg += _field(2, 0, _varint(int(step)))
    if file_version is not None:
        msg += _bytes_field(3, file_version.encode())
    if scalars:
        summary = b"".join(_bytes_field(1, _bytes_field(1, tag.encode()) + _field(2, 5, struct.pack("<f", value)))
                           for tag, value in scalars.items())
        msg += _bytes_field(5, summary)
    return msg


def record(data: bytes) -> bytes:
    """TFRecord framing of one payload."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data))


class EventFileWriter:
    """Append scalar events to a new ``events.out.tfevents.*`` file in ``logdir``."""

    def __init__(self, logdir):
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.pynn"
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "wb")
        self._file.write(record(event(file_version="brain.Event:2")))
        self._file.flush()

    def scalars(self, step, values):
        self._file.write(record(event(step=step, scalars={k: float(v) for k, v in values.items()})))
        self._file.flush()

    def close(self):
        self._file.close()
