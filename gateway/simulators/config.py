"""How the simulated vendors behave: the credential they accept and how fast their clocks run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SimulatorConfig:
    token: str = "sim-token"  # the one bearer token every simulated vendor accepts
    preparing_seconds: float = 2.0  # Streamloop: preparing -> activating
    activating_seconds: float = 2.0  # Streamloop: activating -> active
    stopping_seconds: float = 1.0  # Streamloop: stopping -> stopped
    recording_delay_seconds: float = 1.0  # Loop call: ended -> recording ready
    streamloop_rate_limit_per_minute: int = 600
