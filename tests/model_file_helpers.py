"""Independent readings of a .tflite file for the importer's tests: the schema's object API (ModelT), a
reading path the importer does not use."""
from __future__ import annotations

import math
from pathlib import Path

from mnetcost.calculator.importers import tflite as IT


def object_model(path):
    """The file through the schema's object API (ModelT): another reading path than the importer's."""
    fb = IT.schema()
    data = Path(path).read_bytes()
    return fb, fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))


def weight_counts(path) -> tuple[int, int]:
    """(multiply-accumulates, weights + biases) of the conv, depthwise and fully connected operators, from
    the weight tensors' shapes and each output's size."""
    fb, model = object_model(path)
    sub = model.subgraphs[0]
    macs = params = 0
    for op in sub.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin not in (fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.DEPTHWISE_CONV_2D,
                           fb.BuiltinOperator.FULLY_CONNECTED):
            continue
        weights = [int(d) for d in sub.tensors[op.inputs[1]].shape]
        output = [int(d) for d in sub.tensors[op.outputs[0]].shape]
        data = [int(d) for d in sub.tensors[op.inputs[0]].shape]
        if builtin == fb.BuiltinOperator.FULLY_CONNECTED:
            macs += math.prod(weights) * (math.prod(data) // weights[-1])
        else:  # each weight is used once per output position
            macs += math.prod(weights) * output[1] * output[2]
        params += math.prod(weights)
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            params += math.prod(int(d) for d in sub.tensors[op.inputs[2]].shape)
    return macs, params
