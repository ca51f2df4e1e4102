"""An emulator of the OpenAI Files + Batches API, for tests and demos (docs/emulator.md).

    from runner.emulator import Emulator, EmulatorConfig, Faults
    emu = Emulator(state_dir=None, config=EmulatorConfig.instant())   # a WSGI app
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Emulator, EmulatorCrashed
    from .config import EmulatorConfig
    from .faults import Faults, FileDamage, HttpFault
    from .server import RunningServer, start_in_thread

# Loaded on first use (PEP 562): `batchrun --help` lists the emulator command without
# loading the emulator itself.
_HOMES = {"Emulator": "app", "EmulatorCrashed": "app", "EmulatorConfig": "config",
          "Faults": "faults", "FileDamage": "faults", "HttpFault": "faults",
          "RunningServer": "server", "start_in_thread": "server"}
__all__ = ["Emulator", "EmulatorConfig", "EmulatorCrashed", "Faults", "FileDamage", "HttpFault",
           "RunningServer", "start_in_thread"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
