"""The emulator as a provider: batchrun's own app, in-process behind the SDK's transport,
in the dialect the project asks for. It is optional weight, imported only here."""

from __future__ import annotations

from typing import Any

import httpx2

from ..project import ProjectContext

ORIGIN = "http://emulator.batchrun.invalid"


def emulator(project: ProjectContext, emulator_speed: str | None) -> tuple[Any, Any, float]:
    """The emulator keeping its state in the provider's state directory, an HTTP client
    whose transport calls it, and a poll interval to match its speed."""
    from ..emulator import Emulator, EmulatorConfig

    cfg = project.config.provider
    speed = emulator_speed or cfg.emulator_speed
    config = EmulatorConfig.instant() if speed == "instant" else EmulatorConfig.demo()
    app = Emulator(state_dir=project.state_dir / "server", config=config)
    http = httpx2.Client(transport=httpx2.WSGITransport(app=app))
    return app, http, min(cfg.poll_interval, 0.05 if speed == "instant" else 1.0)
