"""Networks of the world model: conv encoder, transposed-conv decoder, MLP heads, action distribution.

The conv stacks follow DreamerV2: 4x4 stride-2 valid convolutions with `depth * 2**i` channels
(64 -> 31 -> 14 -> 6 -> 2 for 64x64 images; one stage fewer per halving of the image size) and a
decoder from a 1x1 map with 5/5/6/6 kernels (sizes 1 -> 5 -> 13 -> 30 -> 64).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def conv_stages(image_size: int) -> int:
    """Number of stride-2 stages for a square image (64 -> 4, 32 -> 3)."""
    stages = int(math.log2(image_size)) - 2
    if image_size < 16 or 2 ** (stages + 2) != image_size:
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    return stages


def normalize_image(image: Tensor) -> Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-0.5, 0.5]."""
    return image.movedim(-1, -3).float() / 255.0 - 0.5


class Encoder(nn.Module):
    """uint8 images (..., H, W, C) -> embeddings (..., embed_dim); C = 3, or 3k for k stacked frames."""

    def __init__(self, image_size: int, depth: int, channels_last: bool = True, channels: int = 3):
        super().__init__()
        stages = conv_stages(image_size)
        chans = [channels] + [depth * 2**i for i in range(stages)]
        self.convs = nn.Sequential(*[m for i in range(stages) for m in (nn.Conv2d(chans[i], chans[i + 1], 4, 2), nn.ELU())])
        self.channels_last = channels_last
        self.embed_dim = chans[-1] * 2 * 2

    def forward(self, image: Tensor) -> Tensor:
        lead = image.shape[:-3]
        x = normalize_image(image.reshape(-1, *image.shape[-3:]))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.convs(x).flatten(1).reshape(*lead, self.embed_dim)


class Decoder(nn.Module):
    """Features (..., F) -> mean image (..., 3, H, W) in the normalised [-0.5, 0.5] space."""

    def __init__(self, feat_dim: int, image_size: int, depth: int, channels_last: bool = True):
        super().__init__()
        stages = conv_stages(image_size)
        sizes = [image_size]
        for _ in range(stages):  # invert out = 2 * (in - 1) + kernel, ending at a 1x1 map
            sizes.insert(0, math.ceil(sizes[0] / 2) - 2)
        assert sizes[0] == 1, f"decoder sizes {sizes} do not start at 1x1"
        kernels = [sizes[i + 1] - 2 * (sizes[i] - 1) for i in range(stages)]
        chans = [32 * depth] + [depth * 2 ** (stages - 2 - i) for i in range(stages - 1)] + [3]
        self.linear = nn.Linear(feat_dim, chans[0])
        layers: list[nn.Module] = []
        for i in range(stages):
            layers.append(nn.ConvTranspose2d(chans[i], chans[i + 1], kernels[i], 2))
            if i < stages - 1:
                layers.append(nn.ELU())
        self.deconvs = nn.Sequential(*layers)
        self.channels_last = channels_last
        self.image_size = image_size

    def forward(self, feat: Tensor) -> Tensor:
        lead = feat.shape[:-1]
        x = self.linear(feat.reshape(-1, feat.shape[-1]))
        # the first transposed conv sees a 1x1 map: it is a matmul with its weight (~50x faster on CPU)
        first = self.deconvs[0]
        x = (x @ first.weight.flatten(1)).unflatten(1, first.weight.shape[1:]) + first.bias[:, None, None]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.deconvs[1:](x)
        return x.reshape(*lead, 3, self.image_size, self.image_size)


class MLP(nn.Module):
    """`layers` hidden ELU layers of `units`, then a linear output of `out_dim` (squeezed when 1).
    With `fp32_out` the output layer runs in float32 even under autocast (values and rewards of a few
    hundred would be rounded to whole numbers in bfloat16)."""

    def __init__(self, in_dim: int, out_dim: int, units: int, layers: int, fp32_out: bool = False):
        super().__init__()
        dims = [in_dim] + [units] * layers
        body = [m for i in range(layers) for m in (nn.Linear(dims[i], dims[i + 1]), nn.ELU())]
        self.net = nn.Sequential(*body, nn.Linear(dims[-1], out_dim))
        self.out_dim, self.fp32_out = out_dim, fp32_out

    def forward(self, x: Tensor) -> Tensor:
        if self.fp32_out:
            hidden = self.net[:-1](x)
            with torch.autocast(hidden.device.type, enabled=False):
                out = self.net[-1](hidden.float())
        else:
            out = self.net(x)
        return out.squeeze(-1) if self.out_dim == 1 else out


class ActionDist:
    """DreamerV2's DMC actor distribution: a Normal with mean tanh(mu) and std
    2 * sigmoid((s + init_std) / 2) + min_std, sampled and clipped to [-1, 1] with a straight-through
    gradient (the "safe truncated normal" of the PyTorch ports); its mode is the mean. `init_std` 0
    (DreamerV2's DistLayer) starts the std at 1 + min_std; dreamer-torch's 1.0 at 1.25 + min_std."""

    def __init__(self, raw: Tensor, min_std: float, init_std: float = 0.0):
        mean, std = raw.chunk(2, -1)
        self.mean = torch.tanh(mean)
        self.std = 2 * torch.sigmoid((std + init_std) / 2) + min_std
        # no argument validation: its `if not valid.all()` is a host sync on CUDA per construction (30 per
        # paper-preset update, scripts/gpu_check.sh), and mean / std are finite by construction
        self.normal = torch.distributions.Normal(self.mean, self.std, validate_args=False)

    def rsample(self) -> Tensor:
        x = self.normal.rsample()
        return x + (x.clamp(-1 + 1e-6, 1 - 1e-6) - x).detach()

    def mode(self) -> Tensor:
        return self.mean

    def log_prob(self, action: Tensor) -> Tensor:
        return self.normal.log_prob(action).sum(-1)

    def entropy(self) -> Tensor:
        return self.normal.entropy().sum(-1)


def bernoulli_nll(logits: Tensor, target: Tensor) -> Tensor:
    """-log p(target) of a Bernoulli with `logits` (no reduction)."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none")


class Optimizer:
    """AdamW with global-norm gradient clipping over one group of modules (DreamerV2's `Optimizer`)."""

    def __init__(self, modules: list[nn.Module], lr: float, eps: float, weight_decay: float, clip: float):
        self.params = [p for m in modules for p in m.parameters()]
        self.opt = torch.optim.AdamW(self.params, lr=lr, eps=eps, weight_decay=weight_decay)
        self.clip = clip

    def step(self, loss: Tensor) -> Tensor:
        """Backpropagate `loss`, clip, step; returns the pre-clip gradient norm."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        return norm
