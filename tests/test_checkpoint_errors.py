"""A checkpoint whose weights do not fit the model: the one-line error says what mismatched, whole
(before: torch's multi-line message cut at 160 or 300 characters, often mid-name)."""
import pytest

torch = pytest.importorskip("torch")

from mnetcost.deploy.evaluate import Run, run_model  # noqa: E402
from mnetcost.errors import MnetcostError  # noqa: E402
from mnetcost.nn.models import build_model  # noqa: E402
from mnetcost.nn.training import TrainConfig, state_mismatch  # noqa: E402


def test_a_wider_checkpoint_names_the_first_shapes_and_counts_the_rest():
    model = build_model("base", alpha=0.25, delta=1)
    wider = build_model("base", alpha=0.5, delta=1).state_dict()
    text = state_mismatch(model, wider)
    # every conv, BatchNorm and the classifier's weight: all but fc.bias and the BatchNorm batch counters
    changed = sum(1 for key, value in model.state_dict().items() if wider[key].shape != value.shape)
    assert text == (f"{changed} of {len(model.state_dict())} weights have another shape (conv1.conv.weight: "
                    f"16×3×3×3 in the file, 8×3×3×3 in the model, conv1.bn.weight: 16 in the file, 8 in the model "
                    f"and {changed - 2} more)")
    assert state_mismatch(model, model.state_dict()) is None


def test_missing_and_foreign_weights_are_named():
    model = build_model("base", alpha=0.25, delta=1)
    state = dict(model.state_dict())
    del state["fc.weight"], state["fc.bias"]
    state["head.weight"] = torch.zeros(2)
    assert state_mismatch(model, state) == ("2 of the model's weights are missing (fc.weight, fc.bias); "
                                            "1 weights are not the model's (head.weight)")
    assert state_mismatch(model, [1, 2]) == "the file holds a list, not a dict of weights"


def test_evaluate_and_export_say_it_in_one_whole_line(tmp_path):
    config = TrainConfig(variant="base", alpha=0.25, delta=1, classes=10, resolution=[32, 32])
    run = Run(path=tmp_path / "r", stored={}, config=config, checkpoint="best", epoch=3,
              state=build_model("base", alpha=0.5, delta=1).state_dict())
    with pytest.raises(MnetcostError) as error:
        run_model(run)
    message = str(error.value)
    assert "\n" not in message and message.startswith(
        f"{tmp_path / 'r' / 'best.pt'}: the weights do not fit the run's model (base α=0.25 δ=1, 10 classes): ")
    assert message.endswith(" more)")  # the count of the rest: nothing cut off
