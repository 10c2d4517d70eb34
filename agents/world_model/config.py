"""Configs of the shared world model and the imagination actor-critic, with presets.

Values of `paper` follow DreamerV2's DMC configuration (Hafner et al. 2021, `configs.yaml`, `dmc_vision`):
deter 200, 32x32 discrete latents, batch 16x50, model lr 3e-4, actor/critic lr 8e-5, entropy 1e-4,
horizon 15, free nats 1, KL balance 0.8, gamma 0.99, lambda 0.95, no discount head (`pred_discount:
False`: DMC episodes end only at the time limit) (DESIGN.md §7; docs/fidelity/dreamerv2.md).
Methods with other values (CoWorld, Vid2Act, WPT) override fields on top of a preset.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from collectors.errors import OwbenchError, unknown

C = TypeVar("C")


# The small DreamerV2 of the CPU learning checks (benchmark/dreamer_check.py) and of the `quick` behaviour agent
# (agents/behaviour.py): DreamerConfig "smoke" plus these fields; few updates, so larger learning rates
SMALL_MODEL: dict[str, Any] = {"depth": 16, "deter": 96, "hidden": 96, "stoch": 16, "classes": 16, "wm.units": 96,
                               "wm.layers": 2, "behavior.units": 96, "behavior.layers": 2, "horizon": 10,
                               "target_update": 50, "wm.lr": 1e-3, "actor_lr": 4e-4, "critic_lr": 4e-4}

# The `quick` preset: that small model at batch 8 x 16, no discount head (DMC), exactly what `owbench check` runs
# for the world-model methods: it learns walker_downhill offline from 3,000 updates (docs/learning_checks.md)
QUICK_MODEL: dict[str, Any] = {**SMALL_MODEL, "discount_head": False, "batch_size": 8, "seq_len": 16}


@dataclass(frozen=True)
class WorldModelConfig:
    """Encoder + RSSM + decoder + reward/discount heads (DreamerV2 world model)."""

    image_size: int = 64  # square input images, a power of two >= 16
    depth: int = 48  # channels of the first conv layer; doubled at every stage
    deter: int = 200  # GRU deterministic state h_t
    hidden: int = 200  # width of the RSSM's MLP layers
    stoch: int = 32  # number of categorical latents (or Gaussian dims when classes == 0)
    classes: int = 32  # classes per categorical latent; 0 selects Gaussian latents
    min_std: float = 0.1  # floor of the Gaussian latent std (classes == 0)
    units: int = 400  # width of the reward/discount MLP heads
    layers: int = 4  # depth of the MLP heads
    action_dim: int = 0  # padded action input (WPT); 0 = the environment's action dim
    reward_head: bool = True  # False for reward-free pretraining (Vid2Act sources, WPT)
    discount_head: bool = True  # predict the continuation flag (1 - is_terminal)
    prior_heads: int = 1  # K prior heads p_k(z_t | h_t); K > 1: LOMPO's ensemble, one drawn per timestep
    extra_heads: tuple[tuple[str, int], ...] = ()  # named MLP heads on the feature, (name, out_dim)
    kl_scale: float = 1.0  # beta of the KL term
    kl_balance: float = 0.8  # alpha: weight of the prior side of the KL (DreamerV2 Eq. 2)
    free_nats: float = 1.0  # KL below this many nats is not penalised
    image_scale: float = 1.0  # weight of the image log-likelihood
    reward_scale: float = 1.0  # weight of the reward log-likelihood
    discount_scale: float = 1.0  # weight of the discount log-likelihood
    lr: float = 3e-4  # model learning rate
    eps: float = 1e-5  # Adam epsilon
    weight_decay: float = 1e-6  # decoupled weight decay
    grad_clip: float = 100.0  # global gradient-norm clip
    conv_amp: bool = True  # bfloat16 autocast around the conv encoder and decoder alone, where bfloat16 is
    #                        native (CPU or GPU; the RSSM, heads and behaviour stay float32; `amp` / `cpu_amp`
    #                        cover everything)


@dataclass(frozen=True)
class BehaviorConfig:
    """Actor-critic trained on imagined rollouts of the world model (DreamerV2 §2.3)."""

    horizon: int = 15  # imagination horizon H
    gamma: float = 0.99  # discount factor
    lambda_: float = 0.95  # lambda of the lambda-return
    units: int = 400  # actor / critic MLP width
    layers: int = 4  # actor / critic MLP depth
    actor_lr: float = 8e-5
    critic_lr: float = 8e-5
    eps: float = 1e-5  # Adam epsilon
    weight_decay: float = 1e-6  # decoupled weight decay
    grad_clip: float = 100.0
    actor_entropy: float = 1e-4  # eta: entropy regulariser (DreamerV2 Eq. 6)
    actor_grad_mix: float = 0.0  # rho: 0 = dynamics backpropagation (DMC), 1 = REINFORCE (Atari)
    min_std: float = 0.1  # floor of the actor's std
    init_std: float = 0.0  # shift of the actor's std before its sigmoid (DreamerV2 0: std 1.1 at init)
    target_update: int = 100  # copy the critic into the target critic every this many updates


@dataclass(frozen=True)
class DreamerConfig:
    """Everything an imagination-based agent needs; the DreamerV2 baseline's `Config`."""

    wm: WorldModelConfig = WorldModelConfig()
    behavior: BehaviorConfig = BehaviorConfig()
    batch_size: int = 16  # sequences per batch
    seq_len: int = 50  # timesteps per sequence
    amp: bool = True  # bfloat16 autocast on GPUs with native bfloat16 (Ampere+; float32 on older ones)
    cpu_amp: bool = False  # bfloat16 autocast on CPUs with native bfloat16 (AVX512-BF16/AMX); opt-in
    channels_last: bool = True  # channels-last memory format for the conv nets

    @property
    def image_size(self) -> int:
        return self.wm.image_size

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "DreamerConfig":
        """`smoke` (tests, well under a second per update on CPU), `quick` (the learning checks' small model
        at 32 px: ~0.3 s an update on one CPU thread), `paper` (DreamerV2's DMC values), `code`
        (dreamer-torch's DMC config: depth 32, deter 200, Gaussian stoch 50, reward head of 2 layers, no
        discount head, reward scale 2, no weight decay, actor init_std 1.0). Overrides name any field, nested
        ones by their own name (`deter=64`) or dotted (`wm.deter=64`)."""
        smoke = cls(WorldModelConfig(image_size=32, depth=8, deter=32, hidden=32, stoch=4, classes=4, units=32,
                                     layers=1, conv_amp=False),  # tiny convs: casts cost more than they save
                    BehaviorConfig(horizon=5, units=32, layers=1, target_update=2), batch_size=4, seq_len=8)
        presets = {
            "smoke": smoke,
            "quick": with_overrides(smoke, QUICK_MODEL),
            "paper": cls(WorldModelConfig(discount_head=False)),
            # the PyTorch DreamerV2 port CoWorld and Vid2Act build on (dreamer-torch, dmc config: reward_scale 2,
            # weight_decay 0 for every optimiser)
            "code": cls(WorldModelConfig(depth=32, stoch=50, classes=0, layers=2, discount_head=False, reward_scale=2.0,
                                         weight_decay=0.0),
                        BehaviorConfig(layers=4, weight_decay=0.0, init_std=1.0)),
        }
        if name not in presets:
            raise unknown("preset", name, presets)
        return with_overrides(presets[name], overrides)


def with_overrides(config: C, overrides: dict[str, Any]) -> C:
    """Replace fields of a (nested) frozen config. A key is a field of `config`, a dotted path
    (`wm.deter`) or the unique name of a field of a nested config (`deter`)."""
    for key, value in overrides.items():
        config = _replace_path(config, _resolve(config, key), value)
    return config


def _resolve(config: Any, key: str) -> list[str]:
    path = key.split(".")
    if len(path) > 1 or key in _field_names(config):
        _check_path(config, path, key)
        return path
    owners = [f for f in _field_names(config)
              if dataclasses.is_dataclass(getattr(config, f)) and key in _field_names(getattr(config, f))]
    if len(owners) == 1:
        return [owners[0], key]
    if len(owners) > 1:
        raise OwbenchError(f"override {key!r} is ambiguous; write one of {', '.join(o + '.' + key for o in owners)}")
    names = list(_field_names(config)) + [f"{o}.{n}" for o in _field_names(config)
                                          if dataclasses.is_dataclass(getattr(config, o))
                                          for n in _field_names(getattr(config, o))]
    raise unknown("config field", key, names, f"fields of {type(config).__name__}")


def _check_path(config: Any, path: list[str], key: str) -> None:
    node = config
    for name in path:
        if not dataclasses.is_dataclass(node) or name not in _field_names(node):
            raise unknown("config field", key, _field_names(config), f"fields of {type(config).__name__}")
        node = getattr(node, name)


def _replace_path(config: Any, path: list[str], value: Any) -> Any:
    head, *rest = path
    new = _replace_path(getattr(config, head), rest, value) if rest else value
    return dataclasses.replace(config, **{head: new})


def _field_names(config: Any) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(config))
