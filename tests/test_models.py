"""The model registry and the shipped networks."""

import pytest
import torch

from cifarlab.errors import ModelError
from cifarlab.models import create_model, list_models


def _params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_seed_network_has_the_writeups_parameter_count():
    assert _params(create_model("seed")) == 2_753_546


def test_seed_network_layer_order_is_conv_relu_bn():
    names = [n for n, _ in create_model("seed").named_children()]
    assert names[:6] == ["conv1", "relu1", "bn1", "conv2", "relu2", "bn2"]
    assert names.index("dropout") == names.index("conv5") - 1
    assert names[-7:] == ["pool", "flatten", "fc1", "relu_fc1", "fc2", "relu_fc2", "fc3"]


def test_seed_ablations_change_exactly_what_they_say():
    no_bn = create_model("seed", batchnorm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in no_bn.modules())
    assert _params(no_bn) == 2_753_546 - 2 * (32 + 64 + 128 + 256 + 512)
    assert not any(isinstance(m, torch.nn.Dropout) for m in create_model("seed", dropout=0).modules())


def test_resnet18_is_the_usual_cifar_variant():
    model = create_model("resnet18")
    assert _params(model) == 11_173_962
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", ["seed", "resnet18", "fast"])
def test_every_model_maps_a_batch_to_ten_logits(name):
    assert create_model(name)(torch.randn(3, 3, 32, 32)).shape == (3, 10)


def test_fast_width_knob_scales_the_network():
    small, big = create_model("fast", width=0.25), create_model("fast", width=1.0)
    assert _params(small) < _params(big) / 8


def test_fast_whitening_decorrelates_patches():
    torch.manual_seed(0)
    mix = torch.randn(3, 3)
    images = torch.einsum("ij,njhw->nihw", mix, torch.randn(200, 3, 32, 32))  # correlated channels
    model = create_model("fast", width=0.25)
    model.init_from_data(images)
    out = model.whiten(images)[:, :12].permute(1, 0, 2, 3).reshape(12, -1)
    cov = torch.cov(out)
    assert torch.allclose(cov, torch.eye(12), atol=0.1)
    assert not model.whiten.weight.requires_grad


@pytest.mark.parametrize("args, message", [
    ({"width": "x"}, "argument 'width' must be a number, got 'x'"),
    ({"width": 0}, "argument 'width' must be positive, got 0.0"),
    ({"width": True}, "argument 'width' must be a number, got True"),
    ({"whiten_bias_epochs": -1}, "argument 'whiten_bias_epochs' must not be negative, got -1"),
    ({"whiten_bias_epochs": 1.5}, "argument 'whiten_bias_epochs' must be an integer or null, got 1.5"),
    ({"whiten_bias_epochs": "2"}, "argument 'whiten_bias_epochs' must be an integer or null, got '2'"),
    ({"whiten_bias_epochs": False}, "argument 'whiten_bias_epochs' must be an integer or null, got False"),
    ({"widths": [16, 96]}, "argument 'widths' must list three channel counts, one per group, got [16, 96]"),
    ({"widths": [16, 96, 0]}, "argument 'widths[2]' must be positive, got 0"),
    ({"widths": [16, 96.5, 96]}, "argument 'widths[1]' must be an integer, got 96.5"),
    ({"widths": "16,96,96"}, "argument 'widths' must be a list or null, got '16,96,96'"),
    ({"group_epochs": [1, 2]}, "argument 'group_epochs' must list three numbers of epochs or nulls, one per group, "
                                 "got [1, 2]"),
    ({"group_epochs": [1, -1, None]}, "argument 'group_epochs[1]' must not be negative, got -1"),
    ({"group_epochs": [1, 2.5, None]}, "argument 'group_epochs[1]' must be an integer or null, got 2.5"),
    ({"group_epochs": 3}, "argument 'group_epochs' must be a list or null, got 3"),
    ({"width": 0.5, "widths": [16, 80, 96]}, "give width (0.5) or widths ([16, 80, 96]), not both"),
])
def test_fast_refuses_bad_widths_and_training_epochs(args, message):
    with pytest.raises(ModelError) as info:
        create_model("fast", **args)
    assert str(info.value) == f"model 'fast': {message}"


def test_fast_widths_and_training_epochs():
    assert [g[0].out_channels for g in create_model("fast", widths=[16, 80, 96]).groups] == [16, 80, 96]
    # a whole number written as a float counts, as it does in a config
    assert [g[0].out_channels for g in create_model("fast", widths=(16, 80.0, 96)).groups] == [16, 80, 96]
    model = create_model("fast", width=0.25, whiten_bias_epochs=2)
    trained = []
    for epoch in (1, 2, 3):
        model.start_epoch(epoch)
        trained.append(model.whiten.bias.requires_grad)
    assert trained == [True, True, False]


def test_unknown_model_and_bad_arguments_are_model_errors():
    with pytest.raises(ModelError, match="unknown model 'sed' \\(did you mean 'seed'\\?\\)"):
        create_model("sed")
    with pytest.raises(ModelError, match=r"^model 'seed': unknown argument 'widht' \(did you mean 'width'\?\); "
                                         r"arguments: width, dropout, batchnorm, num_classes, divisor$"):
        create_model("seed", widht=2)
    with pytest.raises(ModelError, match="^model 'seed': unknown argument 'conv'; "):  # the seed has five
        create_model("seed", conv=4)
    with pytest.raises(ModelError, match="^model 'seedlike': argument 'divisor' must be positive, got 0$"):
        create_model("seedlike", divisor=0)
    assert {"seed", "resnet18", "fast"} <= set(list_models())


def test_seedlike_divisor_shrinks_every_conv_layer_and_the_512_cap_alike():
    from cifarlab.models.seedlike import seedlike

    model = seedlike(conv=7, fc=1, dropout=0.0, batchnorm=False, divisor=8)
    convs = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [4, 8, 16, 32, 64, 64, 64]  # 32, 64, ..., 512, 512, 512, each divided by 8
    # 9*3*4+4 + 9*4*8+8 + 9*8*16+16 + 9*16*32+32 + 9*32*64+64 + 2*(9*64*64+64) + (64*2*2*10+10), by hand
    assert sum(p.numel() for p in model.parameters()) == 112 + 296 + 1168 + 4640 + 18496 + 2 * 36928 + 2570
