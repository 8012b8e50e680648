"""Asking the selector model (selection/judge.py builds the question and reads the answer): litellm
for a real model, the replay file for `replay:PATH` (its first action's thought and command are the
answer, its `cost` the call's cost)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from solver_core.agent.models import check_model_kwargs
from solver_core.models import ModelSpec

JUDGE_TIMEOUT_S = 120


@dataclass(frozen=True)
class Answer:
    text: str
    cost_usd: float


class ModelJudge:
    """Calls one model once with the judge's question."""

    def __init__(self, model_spec: Callable[[str], ModelSpec], timeout_s: float = JUDGE_TIMEOUT_S) -> None:
        self._model_spec = model_spec
        self._timeout_s = timeout_s

    def ask(self, model: str, question: str) -> Answer:
        spec = self._model_spec(model)
        if spec.is_replay:
            from solver_core.agent.replay import load_replay_actions

            actions = load_replay_actions(spec.name.split(":", 1)[1])
            if not actions:
                return Answer("", 0.0)
            first = actions[0]
            return Answer(f"{first.thought}\n{first.command}".strip(), first.cost)
        import litellm

        check_model_kwargs(spec.model_kwargs)
        response = litellm.completion(
            model=spec.name,
            messages=[{"role": "user", "content": question}],
            timeout=self._timeout_s,
            **spec.model_kwargs,
        )
        text = str(response.choices[0].message.content or "")
        return Answer(text, _cost(spec, response))


def _cost(spec: ModelSpec, response: Any) -> float:
    """The registry's prices when it has them, else litellm's; a model no one prices costs nothing."""
    usage = getattr(response, "usage", None)
    if usage is not None and spec.input_cost_per_token is not None and spec.output_cost_per_token is not None:
        return float(
            usage.prompt_tokens * spec.input_cost_per_token + usage.completion_tokens * spec.output_cost_per_token
        )
    import litellm

    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # litellm does not know the model's prices
        return 0.0
