"""TensorFlow Lite Micro's Python interpreter in a child process (``python -m mnetcost.deploy.tflm_worker``).

TFLM aborts the whole process on some inputs (an arena too small for a kernel, a degenerate
quantization), so the parent (:mod:`mnetcost.deploy.tflite`) runs it here and reads the result:

``allocations FILE ARENA``        load, invoke once on a zero image, print the RecordingMicroAllocator's
                                  records as JSON on stdout (TFLM prints them on file descriptor 2).
``accepts FILE ARENA``            exit 0 when the interpreter allocates and invokes in ARENA bytes, 3 if not.
``predict FILE ARENA IN OUT``     the int8 outputs (``OUT``, .npy) for the int8 NHWC images in ``IN`` (.npy).
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile

import numpy as np

REJECTED = 3  # exit status: the interpreter refused the arena or the model
LINE = re.compile(r"\[RecordingMicroAllocator\] (.*)")
TOTAL = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
RECORD = re.compile(r"'(.+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+) ")


def interpreter(path: str, arena: int):
    import tflite_micro

    return tflite_micro.runtime.Interpreter.from_file(path, arena_size=arena)


def parse_allocations(text: str) -> dict:
    """The printed records as {"total": n, "head": n, "tail": n, "records": {name: {used, requested, count}}}."""
    found: dict = {"records": {}}
    for line in text.splitlines():
        match = LINE.search(line)
        if not match:
            continue
        body = match.group(1)
        total = TOTAL.match(body)
        if total:
            found[total.group(1)] = int(total.group(2))
            continue
        record = RECORD.match(body)
        if record:
            found["records"][record.group(1)] = {"used": int(record.group(2)), "requested": int(record.group(3)),
                                                 "count": int(record.group(4))}
    return found


def _zero_input(it) -> np.ndarray:
    details = it.get_input_details(0)
    return np.zeros(tuple(details["shape"]), dtype=details["dtype"])


def allocations(path: str, arena: int) -> dict:
    it = interpreter(path, arena)
    it.set_input(_zero_input(it), 0)
    it.invoke()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            it.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        text = sink.read().decode("utf-8", "replace")
    return {**parse_allocations(text), "printed": text}


def predict(path: str, arena: int, images: np.ndarray) -> np.ndarray:
    it = interpreter(path, arena)
    outputs = []
    for image in images:
        it.set_input(image[None], 0)
        it.invoke()
        outputs.append(np.asarray(it.get_output(0)).reshape(-1))
    return np.stack(outputs) if outputs else np.zeros((0, 0), dtype=np.int8)


def main(argv: list[str]) -> int:
    mode, path, arena = argv[0], argv[1], int(argv[2])
    try:
        if mode == "allocations":
            print(json.dumps(allocations(path, arena)))
        elif mode == "accepts":
            it = interpreter(path, arena)
            it.set_input(_zero_input(it), 0)
            it.invoke()
        elif mode == "predict":
            np.save(argv[4], predict(path, arena, np.load(argv[3])))
        else:
            print(f"unknown mode {mode!r}", file=sys.stderr)
            return 2
    except (RuntimeError, ValueError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return REJECTED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
