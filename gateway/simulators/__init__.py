"""Contract-faithful vendor simulators: Loop Live, Streamloop and Livepush in one aiohttp app.

The demo, the tests and the benchmarks stand on these; `/_sim/` steers them (see docs/simulators.md).
"""

from .app import create_app
from .clock import SimClock
from .config import SimulatorConfig
from .state import SIM_STATE, SimState

__all__ = ["SIM_STATE", "SimClock", "SimState", "SimulatorConfig", "create_app"]
