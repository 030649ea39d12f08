"""The platform's AWS retry policy for Amazon-provider operators (see :mod:`aiops.core.aws`).

An operator's hook normally takes ``botocore_config`` as given and ignores the connection's
``config_kwargs`` when one is set, so setting the policy at DAG parse time would either hard-code
it or hit the metadata DB while parsing. :class:`AwsRetryPolicy` resolves it when the hook is built
(in the worker): default policy, then the connection's ``config_kwargs``, then the operator's own
``botocore_config``.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.operators.ssm import SsmRunCommandOperator

from aiops.core import aws


class AwsRetryPolicy:
    """Mixin for ``AwsBaseOperator`` subclasses (list it first)."""

    aws_conn_id: str | None
    botocore_config: dict[str, Any] | None

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = super()._hook_parameters  # type: ignore[misc]
        return {**params, "config": aws.botocore_config(self.aws_conn_id, self.botocore_config)}


class SsmRunCommand(AwsRetryPolicy, SsmRunCommandOperator):
    """``SsmRunCommandOperator`` with the platform's retry policy."""
