"""Job tasks. Importing this package registers every task, in the API process and in workers alike."""

import importlib

TASK_MODULES: tuple[str, ...] = ("deepvis", "projections", "audits")


def register_all() -> None:
    for name in TASK_MODULES:
        importlib.import_module(f"server.tasks.{name}")
