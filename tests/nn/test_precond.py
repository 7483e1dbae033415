"""EDM Table 1 preconditioning against hand-computed numbers."""


import pytest
import torch

from precipdiff.nn.precond import EDMPrecond


class _Recorder(torch.nn.Module):
    """F ≡ 1; remembers what it was called with."""

    def forward(self, x, noise_labels):
        self.x, self.noise_labels = x.clone(), noise_labels.clone()
        return torch.ones_like(x[:, :1])


@pytest.mark.parametrize(
    ("sigma", "sigma_data", "c_skip", "c_out", "c_in", "c_noise"),
    [
        (1.0, 0.5, 0.2, 0.4472135955, 0.894427191, 0.0),  # 0.25/1.25, 0.5/√1.25, 1/√1.25, ln1/4
        (2.0, 1.0, 0.2, 0.894427191, 0.4472135955, 0.1732867951),  # 1/5, 2/√5, 1/√5, ln2/4
    ],
)
def test_coefficients_match_table_1(sigma, sigma_data, c_skip, c_out, c_in, c_noise):
    net = _Recorder()
    D = EDMPrecond(net, sigma_data)
    x = torch.full((2, 1, 3, 4), 3.0)
    cond = torch.full((2, 2, 3, 4), -7.0)
    out = D(x, torch.tensor([sigma, sigma]), cond)
    torch.testing.assert_close(out, torch.full_like(x, c_skip * 3.0 + c_out))  # F ≡ 1
    torch.testing.assert_close(net.x[:, :1], torch.full_like(x, c_in * 3.0))  # c_in x in the x slot
    torch.testing.assert_close(net.x[:, 1:], cond)  # cond concatenated unscaled
    torch.testing.assert_close(net.noise_labels, torch.full((2,), c_noise))


def test_scalar_sigma_broadcasts_over_batch():
    net = _Recorder()
    out = EDMPrecond(net, 0.5)(torch.zeros(3, 1, 2, 2), 1.0, torch.zeros(3, 1, 2, 2))
    assert out.shape == (3, 1, 2, 2) and net.noise_labels.shape == (3,)
