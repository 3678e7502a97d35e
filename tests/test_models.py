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


def test_fast_refuses_bad_widths_and_training_epochs():
    for bad in ("x", 0, True):
        with pytest.raises(ModelError, match="model 'fast': width must be a positive number"):
            create_model("fast", width=bad)
    for bad in (-1, 1.5, "2", False):
        with pytest.raises(ModelError, match="model 'fast': whiten_bias_epochs must be a whole number"):
            create_model("fast", whiten_bias_epochs=bad)
    for bad in ([16, 96], [16, 96, 0], [16, 96.0, 96], "16,96,96"):
        with pytest.raises(ModelError, match="model 'fast': widths must list three channel counts"):
            create_model("fast", widths=bad)
    for bad in ([1, 2], [1, -1, None], [1, 2.5, None], 3):
        with pytest.raises(ModelError, match="model 'fast': group_epochs must list three whole numbers"):
            create_model("fast", group_epochs=bad)
    with pytest.raises(ModelError, match="model 'fast': give width .* or widths .*, not both"):
        create_model("fast", width=0.5, widths=[16, 80, 96])
    assert [g[0].out_channels for g in create_model("fast", widths=[16, 80, 96]).groups] == [16, 80, 96]
    model = create_model("fast", width=0.25, whiten_bias_epochs=2)
    trained = []
    for epoch in (1, 2, 3):
        model.start_epoch(epoch)
        trained.append(model.whiten.bias.requires_grad)
    assert trained == [True, True, False]


def test_unknown_model_and_bad_arguments_are_model_errors():
    with pytest.raises(ModelError, match="unknown model 'sed' \\(did you mean 'seed'\\?\\)"):
        create_model("sed")
    with pytest.raises(ModelError, match="'seed'.*unexpected keyword argument 'widht'"):
        create_model("seed", widht=2)
    assert {"seed", "resnet18", "fast"} <= set(list_models())


def test_seedlike_divisor_shrinks_every_conv_layer_and_the_512_cap_alike():
    from cifarlab.models.seedlike import seedlike

    model = seedlike(conv=7, fc=1, dropout=0.0, batchnorm=False, divisor=8)
    convs = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [4, 8, 16, 32, 64, 64, 64]  # 32, 64, ..., 512, 512, 512, each divided by 8
    # 9*3*4+4 + 9*4*8+8 + 9*8*16+16 + 9*16*32+32 + 9*32*64+64 + 2*(9*64*64+64) + (64*2*2*10+10), by hand
    assert sum(p.numel() for p in model.parameters()) == 112 + 296 + 1168 + 4640 + 18496 + 2 * 36928 + 2570
