"""An emulator of the OpenAI Files + Batches API, for tests and demos (docs/emulator.md).

    from runner.emulator import Emulator, EmulatorConfig, Faults
    emu = Emulator(state_dir=None, config=EmulatorConfig.instant())   # a WSGI app
"""

from __future__ import annotations

from .app import Emulator, EmulatorCrashed
from .config import EmulatorConfig
from .faults import Faults, FileDamage, HttpFault
from .server import RunningServer, start_in_thread

__all__ = ["Emulator", "EmulatorConfig", "EmulatorCrashed", "Faults", "FileDamage", "HttpFault",
           "RunningServer", "start_in_thread"]
