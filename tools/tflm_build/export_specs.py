"""Write the int8 .tflite files of a few paper configurations (a synthetic model, calibrated on synthetic
images: the arena does not depend on the weights) for ``build.py arena`` to measure, as ``mnetcost
crosscheck --runtime tflm`` writes them. Needs the ``[tflite]`` extra.

    python tools/tflm_build/export_specs.py OUT_DIR base:0.25:1 mp3:0.5:2 ...
"""
import sys
from pathlib import Path

from mnetcost.calculator.resolver import resolve
from mnetcost.deploy import tflite as TL


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for config in sys.argv[2:]:
        variant, alpha, delta = config.split(":")
        network = resolve(variant, float(alpha), int(delta))
        source = TL.synthetic_source(network, images=8)
        with TL.silenced():
            model = TL.keras_model(source.model)
        raw = TL.convert(model, TL.nhwc(source.normalization.apply(source.train_images)))
        path = out / f"{variant}-a{alpha}-d{delta}.tflite"
        path.write_bytes(TL.canonical(raw, network))
        print(path, path.stat().st_size, flush=True)


if __name__ == "__main__":
    main()
