"""Host ports for the local engine: a free one to pick, and a check that the model's published ports are free."""

from __future__ import annotations

import socket

from infra.model import EnvironmentModel
from infra.settings import CONFIG_NAMESPACE
from infra.settings_problems import SettingsError, SettingsProblem


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def taken_port_problems(model: EnvironmentModel) -> list[SettingsProblem]:
    """One problem per port the model publishes that something on this host already holds."""
    problems = []
    for _service, port in model.published_ports():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((port.host_ip, port.host_port))
            except OSError:
                problems.append(
                    SettingsProblem(
                        f"{CONFIG_NAMESPACE}:{port.setting}",
                        f"{port.host_ip}:{port.host_port} is already in use on this host",
                        "a free port",
                    )
                )
    return problems


def check_ports_free(model: EnvironmentModel) -> None:
    """Fail before creating anything when a published host port is already taken."""
    problems = taken_port_problems(model)
    if problems:
        raise SettingsError(f"stack '{model.stack}' (local engine)", problems)
