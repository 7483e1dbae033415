"""U-Net shapes on odd sizes, zero-initialised output, conditioning on noise labels."""

import pytest
import torch

from precipdiff.nn.unet import UNet


@pytest.mark.parametrize(
    ("kwargs", "size"),
    [
        ({}, (37, 53)),
        ({"channel_mult": (1, 2, 2, 4), "attn_levels": (2, 3), "num_res_blocks": 2}, (37, 53)),
        ({}, (3, 5)),  # smaller than the padding multiple: replicate padding
        ({"channel_mult": (1,), "attn_levels": ()}, (7, 9)),
    ],
)
def test_output_shape_any_size(kwargs, size):
    net = UNet(3, 1, base_channels=8, **kwargs)
    out = net(torch.randn(2, 3, *size), torch.randn(2))
    assert out.shape == (2, 1, *size)


def test_untrained_output_is_zero_and_gradients_reach_the_output_layer():
    net = UNet(2, 1, base_channels=8)
    x = torch.randn(2, 2, 16, 16)
    out = net(x, torch.zeros(2))
    assert out.abs().max().item() == 0.0
    out.sum().backward()
    assert net.out[-1].bias.grad.abs().item() > 0


def test_noise_label_changes_the_output():
    torch.manual_seed(0)
    net = UNet(2, 1, base_channels=8)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(1, 2, 12, 12)
    assert not torch.allclose(net(x, torch.tensor([0.0])), net(x, torch.tensor([1.0])))


def test_bad_attention_level_is_named():
    with pytest.raises(ValueError, match="attn_levels"):
        UNet(2, 1, channel_mult=(1, 2), attn_levels=(2,))
