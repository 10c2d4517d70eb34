"""Dataset qualities (DESIGN.md §4): which behaviour policy makes each episode and with what noise."""
from __future__ import annotations

from dataclasses import dataclass

from collectors.errors import unknown

# WPT's recipe for imperfect demonstrations: Gaussian action noise, sigma cycling per episode.
NOISE_SCHEDULE = (0.1, 0.3, 0.5, 1.0, 2.0)
# CoWorld's "medium" level: 1/3 of the expert reference return.
MEDIUM_FRACTION = 1.0 / 3.0


@dataclass(frozen=True)
class Quality:
    """One dataset quality."""

    name: str
    description: str
    # Policies the quality draws on: "random", "medium" (frozen at 1/3 expert) or "expert".
    policies: tuple[str, ...]
    noisy: bool = False  # per-episode Gaussian action noise from NOISE_SCHEDULE
    replay: bool = False  # the dataset IS the behaviour agent's replay buffer while it trains
    # recipe version, the `-v<N>` of dataset ids: bumped whenever a change makes the same command collect other
    # data, so datasets of two recipes never share an id (2: the behaviour SAC's stop check evaluates on seeds
    # apart from the benchmark's evaluation seeds, which moves where medium-level training stops)
    version: int = 1


QUALITIES = {q.name: q for q in (
    Quality("random", "uniform random actions in [-1, 1]^A", ("random",)),
    Quality("medium-replay", "the whole replay buffer of a state-based SAC agent trained online from scratch "
            "until its evaluation return first reaches 1/3 of the expert reference (CoWorld)", ("medium",),
            replay=True, version=2),
    Quality("medium", "episodes of the frozen SAC policy at 1/3 of the expert reference", ("medium",), version=2),
    Quality("expert", "episodes of the expert policy (Meta-World: scripted; DMC: SAC trained to convergence)",
            ("expert",)),
    Quality("noisy-expert", "expert + Gaussian action noise, sigma cycling 0.1, 0.3, 0.5, 1.0, 2.0 per episode, "
            "clipped to [-1, 1] (WPT)", ("expert",), noisy=True),
    Quality("medium-expert", "alternating episodes of the medium and the expert policy (D4RL's mix)",
            ("medium", "expert"), version=2),
)}


def get_quality(name: str) -> Quality:
    """Look up a quality by name, with a close-match suggestion on typos."""
    if name not in QUALITIES:
        raise unknown("quality", name, QUALITIES, f"choose one of {', '.join(QUALITIES)}")
    return QUALITIES[name]


def episode_policy(quality: Quality, episode: int) -> str:
    """Which policy acts in episode `episode` (0-based)."""
    return quality.policies[episode % len(quality.policies)]


def episode_noise(quality: Quality, episode: int) -> float:
    """Action-noise sigma of episode `episode`: cycles through NOISE_SCHEDULE for noisy qualities."""
    return NOISE_SCHEDULE[episode % len(NOISE_SCHEDULE)] if quality.noisy else 0.0
