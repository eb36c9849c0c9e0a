"""Everything one simulator app remembers, behind one typed app key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .clock import SimClock
from .config import SimulatorConfig
from .faults import FaultBook
from .livepush.store import LivepushStore
from .loop.store import LoopStore
from .stats import RequestStats
from .streamloop.idempotency import IdempotencyStore
from .streamloop.ratelimit import FixedWindowLimiter
from .streamloop.store import StreamloopStore


@dataclass
class SimState:
    config: SimulatorConfig
    clock: SimClock
    stats: RequestStats
    faults: FaultBook
    loop: LoopStore
    streamloop: StreamloopStore
    streamloop_idempotency: IdempotencyStore
    streamloop_limiter: FixedWindowLimiter
    livepush: LivepushStore

    @classmethod
    def fresh(cls, config: SimulatorConfig, clock: SimClock | None = None) -> SimState:
        clock = clock or SimClock()
        return cls(
            config=config,
            clock=clock,
            stats=RequestStats(),
            faults=FaultBook(),
            loop=LoopStore(),
            streamloop=StreamloopStore(config),
            streamloop_idempotency=IdempotencyStore(),
            streamloop_limiter=FixedWindowLimiter(config.streamloop_rate_limit_per_minute),
            livepush=LivepushStore(),
        )

    def reset(self) -> None:
        """Back to how `create_app` left things: no data, no faults, no counts, real time."""
        self.faults.clear()
        self.stats.clear()
        self.clock.restore()
        self.loop = LoopStore()
        self.streamloop = StreamloopStore(self.config)
        self.streamloop_idempotency = IdempotencyStore()
        self.streamloop_limiter = FixedWindowLimiter(self.config.streamloop_rate_limit_per_minute)
        self.livepush = LivepushStore()


SIM_STATE = web.AppKey("sim_state", SimState)


def sim_state(request: web.Request) -> SimState:
    return request.config_dict[SIM_STATE]
