"""Airflow integration for starload: an operator wrapping the ``starload`` CLI."""

from starload_airflow.operators import (
    EXIT_CODE_MEANINGS,
    NO_RETRY_EXIT_CODES,
    StarloadOperator,
    exception_for_exit_code,
)

__version__ = "0.1.0"

__all__ = [
    "EXIT_CODE_MEANINGS",
    "NO_RETRY_EXIT_CODES",
    "StarloadOperator",
    "exception_for_exit_code",
]
