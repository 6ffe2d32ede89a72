"""Safe expressions for pass/fail rules and derived values (simpleeval: no `eval`, no imports,
no attribute access to dunders, bounded power and string sizes)."""

from __future__ import annotations

import ast
from typing import Any

from pydantic import Field, field_validator
from simpleeval import EvalWithCompoundTypes

from gateway.workflow.errors import FieldError
from gateway.workflow.steps.base import Step, StepContext, StepFields

FUNCTIONS: dict[str, Any] = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "len": len,
    "any": any,
    "all": all,
    "sum": sum,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
}
CONSTANTS = frozenset({"True", "False", "None", "true", "false"})


class ExpressionFields(StepFields):
    expression: str = Field(min_length=1, description="e.g. `top == 'good' and confidence > 0.8`")
    variables: dict[str, Any] = Field(
        default_factory=dict, description="names usable in the expression: literals or selectors"
    )

    @field_validator("expression")
    @classmethod
    def _parses(cls, expression: str) -> str:
        try:
            ast.parse(expression.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"invalid expression: {exc.msg} at column {exc.offset}") from None
        return expression.strip()


class Expression(Step[ExpressionFields]):
    """Evaluates `expression` over `variables`; outputs `result`."""

    type_names = ("expression",)
    fields_model = ExpressionFields

    def __init__(self, name: str, fields: ExpressionFields, context: StepContext) -> None:
        super().__init__(name, fields, context)
        tree = ast.parse(fields.expression, mode="eval")
        called = {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        unknown_calls = called - FUNCTIONS.keys()
        if unknown_calls:
            raise FieldError(
                "expression",
                f"unknown function {sorted(unknown_calls)[0]!r} in expression "
                f"(allowed: {', '.join(sorted(FUNCTIONS))})",
            )
        bound = {
            node.id
            for comprehension in ast.walk(tree)
            if isinstance(comprehension, ast.comprehension)
            for node in ast.walk(comprehension.target)
            if isinstance(node, ast.Name)
        }
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - called - bound
        unknown = names - fields.variables.keys() - CONSTANTS
        if unknown:
            known = ", ".join(sorted(fields.variables)) or "none"
            raise FieldError(
                "expression",
                f"unknown name {sorted(unknown)[0]!r} in expression (variables: {known})",
            )
        self._parsed = EvalWithCompoundTypes(functions=FUNCTIONS).parse(fields.expression)

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"result"})

    def run(self, fields: ExpressionFields) -> dict[str, Any]:
        names = {"true": True, "false": False, **fields.variables}
        evaluator = EvalWithCompoundTypes(names=names, functions=FUNCTIONS)
        return {"result": evaluator.eval(fields.expression, previously_parsed=self._parsed)}
