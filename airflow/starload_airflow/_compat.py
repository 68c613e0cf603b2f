"""Imports that moved between Airflow 2.8+ and Airflow 3 (Task SDK)."""

from __future__ import annotations

try:  # Airflow 3
    from airflow.sdk import BaseOperator
except ImportError:  # Airflow 2
    from airflow.models import BaseOperator  # type: ignore[no-redef]

try:  # Airflow 3
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 2
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
    )

try:  # Airflow 3.1+
    from airflow.sdk import BaseHook
except ImportError:
    try:  # Airflow 2
        from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    except ImportError:  # Airflow 3.0
        from airflow.sdk.bases.hook import BaseHook  # type: ignore[no-redef]

try:  # Airflow 3
    from airflow.sdk.log import mask_secret
except ImportError:  # Airflow 2
    from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "BaseHook",
    "BaseOperator",
    "mask_secret",
]
