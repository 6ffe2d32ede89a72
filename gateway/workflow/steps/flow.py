"""Flow control: skip downstream steps when a condition is false (e.g. no part in view)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gateway.workflow.steps.base import StepContext
from gateway.workflow.steps.expression import Expression, ExpressionFields


class ContinueIfFields(ExpressionFields):
    next_steps: list[str] = Field(
        min_length=1, description="steps (names or $steps.<name>) that run only when true"
    )


class ContinueIf(Expression):
    """Evaluates `expression`; when false the `next_steps`, and every step reading them, are
    skipped and their outputs are None. Outputs `continue`."""

    type_names = ("continue_if",)
    fields_model = ContinueIfFields  # type: ignore[assignment]  # a subclass of its fields
    reference_fields = frozenset({"next_steps"})

    def __init__(self, name: str, fields: ExpressionFields, context: StepContext) -> None:
        super().__init__(name, fields, context)
        assert isinstance(fields, ContinueIfFields)
        self._gated = frozenset(step.removeprefix("$steps.") for step in fields.next_steps)

    def gated_steps(self) -> frozenset[str]:
        return self._gated

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"continue"})

    def run(self, fields: ExpressionFields) -> dict[str, Any]:
        return {"continue": bool(super().run(fields)["result"])}
