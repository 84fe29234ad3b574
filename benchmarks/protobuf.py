"""A hand-written decoder of the protobuf wire format, for NAS-Bench-101's ``ModelMetrics``
messages (so neither protobuf nor TensorFlow is needed)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

_U32 = 0xFFFFFFFF
_DOUBLE = struct.Struct("<d")
_FIXED32 = struct.Struct("<I")


# -- protobuf wire format -----------------------------------------------------------------------
class _WireError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _WireError("varint longer than 10 bytes")


def _fields(buf: bytes, pos: int = 0) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a protobuf message from byte ``pos`` on.

    Wire type 0 gives the varint (int), 1 the 8 raw bytes, 2 the length-delimited bytes, 5 the 4
    raw bytes. Groups (wire types 3 and 4) do not occur in NAS-Bench-101 and are an error.
    """
    end = len(buf)
    try:
        while pos < end:
            key, pos = _varint(buf, pos)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise _WireError("field number 0")
            if wire == 0:
                value, pos = _varint(buf, pos)
            elif wire == 1:
                value = buf[pos : pos + 8]
                pos += 8
            elif wire == 2:
                n, pos = _varint(buf, pos)
                value = buf[pos : pos + n]
                pos += n
            elif wire == 5:
                value = buf[pos : pos + 4]
                pos += 4
            else:
                raise _WireError(f"unsupported wire type {wire}")
            if pos > end:
                raise _WireError("message ends inside a field")
            yield number, wire, value
    except IndexError:
        raise _WireError("message ends inside a varint") from None


_EVAL_NAMES = ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
_EVAL_FIELDS = {number: name for number, name in enumerate(_EVAL_NAMES, start=1)}
# Fast path: fields 1..5 written in order as doubles, i.e. keys 0x09 0x11 0x19 0x21 0x29 each
# followed by 8 bytes (what protobuf serializers emit); anything after them is decoded generically.
_EVAL_KEYS = bytes((number << 3) | 1 for number in range(1, 6))
_EVAL_PREFIX = struct.Struct("<" + "xd" * 5)


def _decode_evaluation(buf: bytes) -> dict[str, Any]:
    if buf[0 : _EVAL_PREFIX.size : 9] == _EVAL_KEYS and len(buf) >= _EVAL_PREFIX.size:
        out: dict[str, Any] = dict(zip(_EVAL_NAMES, _EVAL_PREFIX.unpack_from(buf)))
        start = _EVAL_PREFIX.size
        if start == len(buf):
            return out
    else:
        out, start = {}, 0
    for number, wire, value in _fields(buf, start):
        name = _EVAL_FIELDS.get(number)
        if name is not None:
            if wire != 1:
                raise _WireError(f"EvaluationData.{name} has wire type {wire}, expected 1 (double)")
            out[name] = _DOUBLE.unpack(value)[0]
        elif number == 6:
            if wire != 2:
                raise _WireError(f"EvaluationData.checkpoint_path has wire type {wire}, expected 2")
            out["checkpoint_path"] = value.decode("utf-8", "replace")
    return out


def decode_model_metrics(buf: bytes, final_only: bool = False) -> dict[str, Any]:
    """Decode NAS-Bench-101's ``ModelMetrics`` protobuf (``nasbench/lib/model_metrics.proto``).

    ``ModelMetrics { repeated EvaluationData evaluation_data = 1; int32 trainable_parameters = 2;
    double total_time = 3; }`` and ``EvaluationData { double current_epoch = 1; double
    training_time = 2; double train_accuracy = 3; double validation_accuracy = 4; double
    test_accuracy = 5; string checkpoint_path = 6; }``. Returns ``{"evaluation_data": [dict, ...],
    "trainable_parameters": int, "total_time": float}``; fields absent from the message are absent
    from the dicts (proto2 optional). Unknown fields are skipped. With ``final_only`` the list
    holds only the last evaluation (the final one; the official files hold step 0, halfway and
    final) and the others are skipped undecoded. Raises ``ValueError`` on a malformed message.
    """
    evaluations: list[Any] = []
    out: dict[str, Any] = {"evaluation_data": evaluations}
    for number, wire, value in _fields(buf):
        if number == 1:
            if wire != 2:
                raise _WireError(f"ModelMetrics.evaluation_data has wire type {wire}, expected 2")
            evaluations.append(value)
        elif number == 2:
            if wire != 0:
                raise _WireError(f"ModelMetrics.trainable_parameters has wire type {wire}, expected 0")
            value &= _U32  # int32: negative values are sign-extended to 64 bits on the wire
            out["trainable_parameters"] = value - (1 << 32) if value >= 1 << 31 else value
        elif number == 3:
            if wire != 1:
                raise _WireError(f"ModelMetrics.total_time has wire type {wire}, expected 1")
            out["total_time"] = _DOUBLE.unpack(value)[0]
    if final_only:
        del evaluations[:-1]
    evaluations[:] = [_decode_evaluation(e) for e in evaluations]
    return out


def _final_run(buf: bytes) -> tuple[dict[str, Any] | None, int | None]:
    """(last evaluation, trainable_parameters) of a ModelMetrics message, the importer's hot path.

    Walks the top level directly while it sees only the three fields of the proto (keys 0x0a,
    0x10, 0x19); anything else falls back to :func:`decode_model_metrics`.
    """
    pos, end = 0, len(buf)
    last = None
    params = None
    try:
        while pos < end:
            key = buf[pos]
            if key == 0x0A:  # evaluation_data, length-delimited
                n = buf[pos + 1]
                if n < 0x80:
                    start = pos + 2
                else:
                    n, start = _varint(buf, pos + 1)
                pos = start + n
                last = (start, pos)
            elif key == 0x10:  # trainable_parameters, varint
                params, pos = _varint(buf, pos + 1)
            elif key == 0x19:  # total_time, double
                pos += 9
            else:
                raise _WireError("unexpected key")
    except (IndexError, _WireError):
        pos = end + 1
    if pos != end or (params is not None and params >= 1 << 31):
        metrics = decode_model_metrics(buf, final_only=True)
        evaluations = metrics["evaluation_data"]
        return (evaluations[0] if evaluations else None), metrics.get("trainable_parameters")
    return (None if last is None else _decode_evaluation(buf[last[0] : last[1]])), params
