"""TFRecord framing without TensorFlow: a stream of records, each CRC32C-checked.

A record is ``uint64 length, uint32 masked crc32c(length), bytes data, uint32 masked
crc32c(data)`` (little-endian); :func:`read_tfrecords` yields the ``data`` of each record.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from nas.errors import BenchmarkError

_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_HEADER = struct.Struct("<QI")  # uint64 length, uint32 masked crc of the length
_FOOTER = struct.Struct("<I")  # uint32 masked crc of the data
_FIXED32 = struct.Struct("<I")


def _crc32c():
    from nas.optional import need

    return need("crc32c", "official", "verifying NAS-Bench-101 TFRecord files").crc32c


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: CRC32C of ``data``, rotated right by 15 bits plus a constant."""
    crc = _crc32c()(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


def _check_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise BenchmarkError(f"{what} {str(path)!r} does not exist")
    if not path.is_file():
        raise BenchmarkError(f"{what} {str(path)!r} is not a file")
    return path


# -- TFRecord framing ---------------------------------------------------------------------------
def _iter_tfrecords(path: Path, verify: bool) -> Iterator[tuple[int, bytes]]:
    """(byte offset of the record, record data) for every record of a TFRecord file."""
    crc = _crc32c() if verify else None
    name = str(path)
    try:
        f = open(path, "rb", buffering=1 << 20)
    except OSError as err:
        raise BenchmarkError(f"cannot open TFRecord file {name!r}: {err.strerror or err}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        offset = 0
        read = f.read
        unpack_header = _HEADER.unpack
        unpack_footer = _FOOTER.unpack
        while True:
            header = read(12)
            if not header:
                return
            if len(header) < 12:
                if offset == 0:
                    raise BenchmarkError(
                        f"TFRecord file {name!r} is not a TFRecord file: only {len(header)} bytes, "
                        "less than one 12-byte record header"
                    )
                raise BenchmarkError(
                    f"TFRecord file {name!r} is truncated: {len(header)} stray bytes at byte offset "
                    f"{offset}, where a 12-byte record header should start"
                )
            length, length_crc = unpack_header(header)
            if crc is not None:
                c = crc(header[:8])
                if length_crc != (((c >> 15) | (c << 17)) + _MASK_DELTA) & _U32:
                    what = "is not a TFRecord file" if offset == 0 else "is corrupt"
                    raise BenchmarkError(
                        f"TFRecord file {name!r} {what}: length checksum mismatch in the record "
                        f"header at byte offset {offset}"
                    )
            end = offset + 12 + length + 4
            if end > size:
                what = "is not a TFRecord file" if offset == 0 and not verify else "is truncated"
                raise BenchmarkError(
                    f"TFRecord file {name!r} {what}: the record at byte offset {offset} claims "
                    f"{length} bytes of data but the file ends at byte {size}"
                )
            data = read(length)
            footer = read(4)
            if len(data) < length or len(footer) < 4:  # the file shrank while we read it
                raise BenchmarkError(f"TFRecord file {name!r} is truncated in the record at byte offset {offset}")
            if crc is not None:
                c = crc(data)
                if unpack_footer(footer)[0] != (((c >> 15) | (c << 17)) + _MASK_DELTA) & _U32:
                    raise BenchmarkError(
                        f"TFRecord file {name!r} is corrupt: data checksum mismatch in the record "
                        f"at byte offset {offset}"
                    )
            yield offset, data
            offset = end


def read_tfrecords(path: str | os.PathLike, verify: bool = True) -> Iterator[bytes]:
    """Yield the raw records of a TFRecord file, streaming it (never read whole).

    Each record is framed as ``uint64 length (LE)``, ``uint32 masked CRC32C of the 8 length bytes``,
    ``data``, ``uint32 masked CRC32C of data``. With ``verify`` (the default) both checksums are
    checked; a mismatch or a truncated file raises :class:`BenchmarkError` naming the file and the
    byte offset of the bad record.
    """
    path = _check_file(path, "TFRecord file")
    for _, data in _iter_tfrecords(path, verify):
        yield data
