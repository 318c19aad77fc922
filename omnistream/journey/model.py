"""The journey language: pydantic models of what authors write in journeys/*.yaml."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from omnistream.domain.commands import Category, Message

__all__ = ["Catalog", "ExitStep", "Journey", "SendStep", "Step", "Trigger"]

_STEP_ID = r"^[a-z][a-z0-9_]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Strict):
    event: str = Field(description="Event type that starts the journey, e.g. `cart_updated`.")


class SendStep(_Strict):
    id: str = Field(pattern=_STEP_ID)
    type: Literal["send"]
    channels: tuple[str, ...] = Field(min_length=1, description="Fallback chain, cheapest first.")
    category: Category = "marketing"
    content: dict[str, Message]
    next: str | None = None

    @model_validator(mode="after")
    def _content_per_channel(self) -> SendStep:
        missing = [c for c in self.channels if c not in self.content]
        if missing:
            raise ValueError(f"no content for channel(s) {', '.join(missing)}")
        return self


class ExitStep(_Strict):
    id: str = Field(pattern=_STEP_ID)
    type: Literal["exit"]


Step = Annotated[SendStep | ExitStep, Field(discriminator="type")]


class Journey(_Strict):
    id: str = Field(pattern=_STEP_ID)
    name: str
    description: str = ""
    status: Literal["active", "paused", "draft"] = "active"
    trigger: Trigger
    steps: tuple[Step, ...] = Field(min_length=1)
    version: str = Field(default="", description="Set by the loader: hash of the file.")

    def step_by_id(self, step_id: str) -> SendStep | ExitStep | None:
        for step in self.steps:
            if step.id == step_id:
                return step
        return None


class Catalog(_Strict):
    """All loaded journeys, indexed by the event type that triggers them."""

    journeys: dict[str, Journey] = Field(default_factory=dict)

    def triggered_by(self, event_type: str) -> list[Journey]:
        return [
            j
            for j in self.journeys.values()
            if j.status == "active" and j.trigger.event == event_type
        ]
