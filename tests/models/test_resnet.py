"""ResNet-18 builder: torchvision's layer names and shapes, no weights."""

from __future__ import annotations

import pytest
import torch

from snn.models import MODELS, create_model, resnet18


def expected_state_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision's resnet18 state dict, written out from the architecture."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    bn("bn1", 64)
    in_ch = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{stage}.{block}"
            shapes[f"{p}.conv1.weight"] = (width, in_ch, 3, 3)
            bn(f"{p}.bn1", width)
            shapes[f"{p}.conv2.weight"] = (width, width, 3, 3)
            bn(f"{p}.bn2", width)
            if block == 0 and stage > 1:
                shapes[f"{p}.downsample.0.weight"] = (width, in_ch, 1, 1)
                bn(f"{p}.downsample.1", width)
            in_ch = width
    shapes["fc.weight"] = (1000, 512)
    shapes["fc.bias"] = (1000,)
    return shapes


def test_state_dict_matches_torchvision_layout():
    model = resnet18()
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == expected_state_shapes()
    # torchvision's documented parameter count for resnet18
    assert sum(p.numel() for p in model.parameters()) == 11_689_512


def test_same_shapes_as_torchvision_when_available():
    try:
        from torchvision.models import resnet18 as tv_resnet18
    except Exception as err:  # broken or missing torchvision
        pytest.skip(f"torchvision unavailable ({type(err).__name__}: {err})")
    ours = {k: v.shape for k, v in resnet18().state_dict().items()}
    theirs = {k: v.shape for k, v in tv_resnet18(weights=None).state_dict().items()}
    assert ours == theirs


def test_feature_map_sizes_and_output():
    model = resnet18(num_classes=10).eval()
    sizes = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: sizes.__setitem__(name, tuple(o.shape[1:]))
        )
        for name in ("maxpool", "layer1", "layer2", "layer3", "layer4")
    ]
    with torch.no_grad():
        out = model(torch.rand(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert out.shape == (1, 10)
    assert sizes == {
        "maxpool": (64, 56, 56), "layer1": (64, 56, 56), "layer2": (128, 28, 28),
        "layer3": (256, 14, 14), "layer4": (512, 7, 7),
    }


def test_initialisation_is_he_normal_and_bn_identity():
    torch.manual_seed(0)
    model = resnet18()
    w = model.layer3[0].conv2.weight  # fan_out = 256 * 9
    assert w.std().item() == pytest.approx((2 / (256 * 9)) ** 0.5, rel=0.05)
    assert torch.all(model.layer3[0].bn2.weight == 1) and torch.all(model.layer3[0].bn2.bias == 0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registry_builds_untrained_models(name):
    model = create_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="resnet18"):
        create_model("resnet1000")
    from snn.models import ResNet

    with pytest.raises(ValueError, match="four positive"):
        ResNet((2, 2, 2))
    with pytest.raises(ValueError, match="positive"):
        resnet18(num_classes=0)
