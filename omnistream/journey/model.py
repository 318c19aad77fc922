"""The journey language: pydantic models of what authors write in journeys/*.yaml.

A journey is a trigger, entry rules and a graph of steps (a tagged union on ``type``, step ids as
edges). Models are strict (``extra="forbid"``) and frozen; conditions and templates are compiled
while the file is validated, so an invalid expression is an error with a file and line, never a
surprise at 3 a.m. Graph checks (targets, reachability, loops) live in ``checks.py``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from omnistream.domain.commands import Category
from omnistream.journey.attributes import AttributeChanged
from omnistream.journey.expr import Expr, compile_expr
from omnistream.journey.schedule import Schedule
from omnistream.journey.targeting import Targeting
from omnistream.journey.types import (
    BEST,
    CHANNELS,
    ChainEntry,
    Channel,
    Condition,
    Duration,
    EventType,
    SignedDuration,
    StepId,
    TemplateText,
    parse_duration,
)
from omnistream.policies.quiet_hours import QuietHours, SendWindow, TimeOfDay, Weekday

__all__ = [
    "BEST",
    "CHANNELS",
    "BranchStep",
    "Catalog",
    "ComputedDuration",
    "Condition",
    "Duration",
    "EngagementFallback",
    "Entry",
    "EventMatch",
    "ExitStep",
    "FlexDuration",
    "Goal",
    "Journey",
    "Policies",
    "SendStep",
    "SplitStep",
    "Step",
    "Trigger",
    "UpdateProfileStep",
    "WaitForStep",
    "WaitStep",
    "duration_of",
    "journey_json_schema",
    "parse_duration",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MAX_DURATION: Final = timedelta(days=3660)
"""Longest wait or delay, literal or computed (ten years)."""
_COMPUTED = re.compile(r"^\s*(days|hours|minutes)\((.+)\)\s*$", re.DOTALL)
_UNIT_SECONDS: Final = {"days": 86400, "hours": 3600, "minutes": 60}


class ComputedDuration:
    """A duration computed per customer: ``days(event.properties.course_days - 3)``.

    The unit function wraps one expression (same compiler and limits as conditions) that must
    give a number; a 60-day course then waits 57 days and a 30-day one 27, in one journey. The
    value is checked when it is used (positive, at most ``MAX_DURATION``) because only the
    event knows it: ``evaluate`` returns the reason instead of raising, so a bad order makes
    the engine end that instance with ``bad_duration``, never the worker.
    """

    __slots__ = ("expr", "source", "unit")

    def __init__(self, source: str, unit: str, expr: Expr) -> None:
        self.source = source
        self.unit = unit
        self.expr = expr

    def evaluate(self, ctx: Mapping[str, Any]) -> timedelta | str:
        """The duration for this context, or why there is none."""
        value = self.expr.value(ctx)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{self.source} gave {value!r}, not a number"
        seconds = value * _UNIT_SECONDS[self.unit]
        if not math.isfinite(seconds) or seconds <= 0:
            return f"{self.source} gave {value!r}: the duration must be positive"
        if seconds > MAX_DURATION.total_seconds():
            return f"{self.source} gave {value!r}: durations are limited to ten years"
        return timedelta(seconds=round(seconds))

    def __repr__(self) -> str:
        return f"ComputedDuration({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComputedDuration) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def _flexible_duration(value: Any) -> timedelta | ComputedDuration:
    """``27d`` (a constant) or ``days(EXPR)`` / ``hours(EXPR)`` / ``minutes(EXPR)``."""
    if isinstance(value, ComputedDuration):
        return value
    match = _COMPUTED.match(value) if isinstance(value, str) else None
    if match is not None:
        return ComputedDuration(value.strip(), match.group(1), compile_expr(match.group(2)))
    try:
        parsed = parse_duration(value)
    except ValueError:
        raise ValueError(
            f"expected a duration like '27d' or '1d12h', or a computed one like "
            f"'days(event.properties.course_days - 3)', got {value!r}"
        ) from None
    if parsed <= timedelta(0):
        raise ValueError("the duration must be positive")
    if parsed > MAX_DURATION:
        raise ValueError("durations are limited to ten years")
    return parsed


def _serialize_flexible(value: timedelta | ComputedDuration) -> str:
    if isinstance(value, ComputedDuration):
        return value.source
    return f"{int(value.total_seconds())}s"


FlexDuration = Annotated[
    timedelta | ComputedDuration,
    PlainValidator(_flexible_duration),
    PlainSerializer(_serialize_flexible),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(-?(\d+[wdhms])+|\s*(days|hours|minutes)\(.+\)\s*)$",
            "examples": ["27d", "days(event.properties.course_days - 3)"],
        }
    ),
]
"""A constant duration or a computed one (``ComputedDuration``)."""


def duration_of(value: timedelta | ComputedDuration, ctx: Mapping[str, Any]) -> timedelta | str:
    """The duration for ``ctx``: constants as they are, computed ones evaluated (or a reason)."""
    return value.evaluate(ctx) if isinstance(value, ComputedDuration) else value


class EventMatch(_Strict):
    """An event type and an optional condition on it (``event`` is the incoming event)."""

    event: EventType
    when: Condition | None = None


def _event_match(value: Any) -> Any:
    return {"event": value} if isinstance(value, str) else value


Match = Annotated[EventMatch, BeforeValidator(_event_match)]


class Goal(EventMatch):
    """Conversion: counted (``journey_goal``) and, unless ``exit: false``, ends the instance."""

    exit: bool = True


class DateTrigger(_Strict):
    """A date in a profile trait (``birthday: 1990-05-17``), at a local time of day."""

    trait: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
    at: TimeOfDay = Field(default="09:00", validate_default=True)
    yearly: bool = True
    offset: SignedDuration = Field(default=timedelta(0), description="e.g. '-7d': a week before.")


class Trigger(_Strict):
    """What starts the journey: an event, an event plus a delay, a profile date, or entering a
    segment (journeys/segments.yaml) when an event changes the profile."""

    event: EventType | None = None
    when: Condition | None = Field(default=None, description="Over event and profile.")
    after: FlexDuration | None = Field(
        default=None,
        description="Enter this long after the (latest) matching event; 'days(EXPR)' computes "
        "it from the event and profile.",
    )
    repeat: int = Field(default=0, ge=0, le=100, description="Enter again every `after`.")
    date: DateTrigger | None = None
    segment_entered: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="Enter when an event moves the profile into this segment (segments.yaml).",
    )
    attribute_changed: AttributeChanged | None = Field(
        default=None,
        description="Enter when an event changes a profile value: {path: profile.traits.tier, "
        "from: silver, to: gold} (from/to optional; a list means any of).",
    )
    schedule: Schedule | None = Field(
        default=None,
        description="A scheduled or recurring broadcast: {weekly: thu, at: '18:00'} or "
        "{on: '2026-12-24', at: '10:00'}, at that local time in each customer's zone.",
    )
    audience: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="A broadcast's audience: a segment of journeys/segments.yaml.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        kinds = [
            k
            for k in (
                self.event,
                self.date,
                self.segment_entered,
                self.schedule,
                self.attribute_changed,
            )
            if k is not None
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a trigger needs exactly one of 'event' or 'date' (or 'segment_entered', "
                "'schedule', 'attribute_changed')"
            )
        if self.audience is not None and self.schedule is None:
            raise ValueError("'audience' goes with a 'schedule' trigger")
        if self.after is not None and self.event is None:
            raise ValueError("'after' goes with an 'event' trigger")
        if self.after is None and self.repeat:
            raise ValueError("'repeat' needs 'after'")
        return self


class Entry(_Strict):
    """Who may enter, how often, and the control (holdout) group."""

    reentry: Literal["always", "never", "cooldown"] = "always"
    cooldown: Duration | None = None
    max_instances: int = Field(default=1, ge=1, le=100)
    instance_key: Condition | None = Field(
        default=None,
        description="Per-item instances: an expression over the triggering event naming the "
        "item (course, cart, booking); one live instance per value, max_instances in all.",
    )
    audience: Condition | None = None
    control_percent: float = Field(default=0.0, ge=0.0, le=100.0)

    @model_validator(mode="after")
    def _cooldown(self) -> Entry:
        if (self.reentry == "cooldown") != (self.cooldown is not None):
            raise ValueError("reentry: cooldown goes together with a 'cooldown' duration")
        return self


class PolicyOverride(_Strict):
    """Per-journey quiet hours / send window; ``null`` switches a policy off for the journey."""

    quiet_hours: QuietHours | None = None
    send_window: SendWindow | None = None


class Policies(_Strict):
    """journeys/policies.yaml: the defaults every journey gets."""

    default_timezone: str = "UTC"
    quiet_hours: QuietHours | None = None
    send_window: SendWindow | None = None
    channel_costs: dict[Channel, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Price of one message per channel, e.g. {sms: 0.05, email: 0.0001}: cost "
        "per send, per conversion and per journey in the journey stats (docs/journey-events.md).",
    )
    cost_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217.")

    @field_validator("default_timezone")
    @classmethod
    def _real_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    def merged(self, override: PolicyOverride | None) -> Policies:
        if override is None:
            return self
        update = {name: getattr(override, name) for name in override.model_fields_set}
        return self.model_copy(update=update)


class MessageTemplate(_Strict):
    subject: TemplateText | None = None
    body: TemplateText
    data: dict[str, TemplateText] = Field(default_factory=dict)


class EngagementFallback(_Strict):
    """No open/click/goal within a channel's window -> send again on the next channel.

    ``within`` is the window of every channel without its own entry in ``windows``
    (``{mobile_push: 6h, email: 2d}``): a cheap push earns a short wait, an email a longer one.
    A channel's window starts when the channel agent reports the message sent on it.
    """

    within: Duration | None = None
    windows: dict[Channel, Duration] = Field(default_factory=dict)
    events: tuple[EventType, ...] = ("message_opened", "message_clicked")

    @model_validator(mode="after")
    def _some_window(self) -> EngagementFallback:
        if self.within is None and not self.windows:
            raise ValueError("an engagement fallback needs 'within' or 'windows'")
        return self

    def window(self, channel: str) -> timedelta:
        """How long to wait for engagement with a message sent on ``channel``."""
        window = self.windows.get(channel, self.within)
        assert window is not None  # _some_window and SendStep._windows_cover_the_chain
        return window


class Migrate(_Strict):
    """Opt-in migration: instances of an older version parked at one of ``from`` continue at
    this step of the current version when their wait ends (``migrate: true`` = this step id)."""

    from_steps: tuple[StepId, ...] = Field(alias="from", min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


OUTCOME_EDGES: Final = ("on_sent", "on_opened", "on_clicked", "on_failed", "on_no_engagement")
"""Send-step edges by outcome; an outcome without its edge follows ``next``."""


class _Step(_Strict):
    id: StepId
    description: str = ""
    migrate: Migrate | Literal[True] | None = Field(
        default=None,
        description="Move instances of older versions here: true, or {from: [old step ids]}.",
    )

    @property
    def migrates_from(self) -> tuple[str, ...]:
        """Step ids of older versions whose instances this step takes (``migrate``)."""
        if self.migrate is True:
            return (self.id,)
        return self.migrate.from_steps if self.migrate is not None else ()


class SendStep(_Step):
    type: Literal["send"]
    channels: tuple[ChainEntry, ...] = Field(min_length=1, description="Cheapest first.")
    category: Category = "marketing"
    content: dict[Channel, MessageTemplate]
    engagement_fallback: EngagementFallback | None = None
    together: bool = Field(
        default=False,
        description="Send on every channel at once, counted as one touch by the caps.",
    )
    expires: Duration | None = Field(default=None, description="Sets the send's not_after.")
    next: StepId | None = None
    on_sent: StepId | None = None
    on_opened: StepId | None = None
    on_clicked: StepId | None = None
    on_failed: StepId | None = None
    on_no_engagement: StepId | None = None

    @property
    def waits(self) -> bool:
        """Does the step park for an outcome (engagement window or delivery result)?"""
        return self.engagement_fallback is not None or bool(self.on_sent or self.on_failed)

    def edge(self, outcome: str) -> StepId | None:
        """The target of an outcome: its own edge (a click falls back to ``on_opened``), else
        ``next``."""
        target = getattr(self, f"on_{outcome}", None)
        if target is None and outcome == "clicked":
            target = self.on_opened
        return target if target is not None else self.next

    @model_validator(mode="after")
    def _outcome_edges(self) -> SendStep:
        fallback = self.engagement_fallback
        engagement = [
            e for e in ("on_opened", "on_clicked", "on_no_engagement") if getattr(self, e)
        ]
        if engagement and fallback is None:
            raise ValueError(f"{', '.join(engagement)} need(s) an engagement_fallback window")
        if self.together and (fallback is not None or self.on_sent or self.on_failed):
            raise ValueError("a 'together' send takes no engagement_fallback or outcome edges")
        if fallback is not None and fallback.within is None:
            uncovered = [c for c in self.channels if c != BEST and c not in fallback.windows]
            if uncovered:
                raise ValueError(f"no engagement window for channel(s) {', '.join(uncovered)}")
        if fallback is not None:
            extra = [c for c in fallback.windows if c not in self.channels]
            if extra:
                raise ValueError(f"engagement window for channel(s) not in the chain: {extra}")
        return self

    @model_validator(mode="after")
    def _content_per_channel(self) -> SendStep:
        real = [c for c in self.channels if c != BEST]
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("a channel appears twice in the chain")
        if not real:
            raise ValueError("'best' needs the channels to choose from after it")
        missing = [c for c in real if c not in self.content]
        if missing:
            raise ValueError(f"no content for channel(s) {', '.join(missing)}")
        extra = [c for c in self.content if c not in real]
        if extra:
            raise ValueError(f"content for channel(s) not in the chain: {', '.join(extra)}")
        return self


class WaitStep(_Step):
    """Wait a duration, until a local time (on some weekdays), or for a weekday window."""

    type: Literal["wait"]
    duration: FlexDuration | None = Field(
        default=None, description="'3d', or computed per customer: 'days(EXPR)'."
    )
    until: TimeOfDay | None = None
    days: tuple[Weekday, ...] | None = None
    window: SendWindow | None = None
    next: StepId | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> WaitStep:
        kinds = [k for k in (self.duration, self.until, self.window) if k is not None]
        if len(kinds) != 1:
            raise ValueError("a wait needs exactly one of 'duration', 'until' or 'window'")
        if self.days is not None and self.until is None:
            raise ValueError("'days' goes with 'until'")
        return self


class WaitForStep(_Step):
    type: Literal["wait_for"]
    event: EventType
    when: Condition | None = None
    timeout: Duration
    on_event: StepId | None = None
    on_timeout: StepId | None = None


class BranchCase(_Strict):
    when: Condition
    next: StepId | None = None


class BranchStep(_Step):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["branch"]
    branches: tuple[BranchCase, ...] = Field(min_length=1)
    otherwise: StepId | None = Field(default=None, alias="else")


class SplitPath(_Strict):
    name: StepId
    weight: int = Field(ge=0, le=10000)
    next: StepId | None = None


class SplitStep(_Step):
    type: Literal["split"]
    paths: tuple[SplitPath, ...] = Field(min_length=2)

    @field_validator("paths")
    @classmethod
    def _weights(cls, paths: tuple[SplitPath, ...]) -> tuple[SplitPath, ...]:
        if sum(p.weight for p in paths) <= 0:
            raise ValueError("split weights must add up to more than 0")
        return paths


Scalar = str | int | float | bool | None


class UpdateProfileStep(_Step):
    type: Literal["update_profile"]
    set: dict[str, Scalar] = Field(default_factory=dict)
    increment: dict[str, int | float] = Field(default_factory=dict)
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    next: StepId | None = None

    @model_validator(mode="after")
    def _something(self) -> UpdateProfileStep:
        if not (self.set or self.increment or self.add_tags or self.remove_tags):
            raise ValueError("update_profile needs set, increment, add_tags or remove_tags")
        if any(k.startswith("_") for k in (*self.set, *self.increment)):
            raise ValueError("trait names must not start with '_'")
        return self


class ExitStep(_Step):
    type: Literal["exit"]
    reason: StepId = "exit_step"


AnyStep = SendStep | WaitStep | WaitForStep | BranchStep | SplitStep | UpdateProfileStep | ExitStep
Step = Annotated[AnyStep, Field(discriminator="type")]
PAUSING: Final = (WaitStep, WaitForStep)


class Journey(_Strict):
    id: StepId
    name: str
    description: str = ""
    status: Literal["active", "paused", "draft"] = "active"
    trigger: Trigger
    entry: Entry = Field(default_factory=Entry)
    steps: tuple[Step, ...] = Field(min_length=1, description="The first step is the start.")
    exit_on: tuple[Match, ...] = ()
    goal: Goal | None = None
    vars: dict[str, Scalar] = Field(default_factory=dict)
    policies: PolicyOverride | None = None
    version: str = Field(default="", description="Set by the loader: hash of the file.")

    _by_id: dict[str, AnyStep] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _keyed_entry(self) -> Journey:
        """A per-item journey enters on the event that names the item, at once: a delayed or
        date trigger keeps one pending timer per journey, which would merge the items."""
        if self.entry.instance_key is not None and (
            self.trigger.event is None or self.trigger.after is not None
        ):
            raise ValueError(
                "entry.instance_key needs an event trigger without 'after' "
                "(put the delay in a wait step, e.g. duration: 'days(...)')"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._by_id.update((s.id, s) for s in self.steps)

    def step_by_id(self, step_id: str) -> AnyStep | None:
        return self._by_id.get(step_id)

    @property
    def first_step(self) -> AnyStep:
        return self.steps[0]


def journey_json_schema() -> dict[str, Any]:
    """JSON Schema of a journey file, for editor completion (docs/journey.schema.json)."""
    schema = Journey.model_json_schema(mode="validation")
    schema["properties"].pop("version", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://omnistream.dev/schemas/journey.json"
    schema["title"] = "omnistream journey"
    return schema


MAX_RETAINED_VERSIONS: Final = 20
"""Older versions of one journey a catalog keeps for pinned instances (the newest ones)."""


class Catalog:
    """All loaded journeys plus the indexes the engine's hot path needs.

    Most events match no journey: ``triggered_by`` / ``listened`` are dict and set lookups by
    event type, so a non-matching event costs a few hash probes, not a scan of every journey.
    """

    def __init__(
        self,
        journeys: dict[str, Journey] | None = None,
        policies: Policies | None = None,
        retained: dict[tuple[str, str], Journey] | None = None,
        targeting: Targeting | None = None,
    ) -> None:
        self.journeys: dict[str, Journey] = dict(journeys or {})
        self.policies = policies or Policies()
        self.targeting = targeting or Targeting(default_timezone=self.policies.default_timezone)
        """Segments and score settings the journeys were compiled with (segment triggers)."""
        self.retained: dict[tuple[str, str], Journey] = {
            key: old
            for key, old in (retained or {}).items()
            if key[0] in self.journeys and self.journeys[key[0]].version != key[1]
        }
        """Older versions, by (journey id, version), that pinned instances still run on."""
        immediate: dict[str, list[Journey]] = {}
        delayed: dict[str, list[Journey]] = {}
        self.listens: dict[str, frozenset[str]] = {}
        self.merged_policies: dict[str, Policies] = {}
        dated: list[Journey] = []
        by_segment: dict[str, list[Journey]] = {}
        changed: list[Journey] = []
        for journey in self.journeys.values():
            self.listens[journey.id] = _listened_types(journey)
            self.merged_policies[journey.id] = self.policies.merged(journey.policies)
            if journey.status != "active":
                continue
            trigger = journey.trigger
            if trigger.date is not None:
                dated.append(journey)
            elif trigger.segment_entered is not None:
                by_segment.setdefault(trigger.segment_entered, []).append(journey)
            elif trigger.attribute_changed is not None:
                changed.append(journey)
            elif trigger.event is not None:
                target = immediate if trigger.after is None else delayed
                target.setdefault(trigger.event, []).append(journey)
        self.immediate = {k: tuple(v) for k, v in immediate.items()}
        self.delayed = {k: tuple(v) for k, v in delayed.items()}
        self.dated = tuple(dated)
        self.scheduled = tuple(
            j for j in self.journeys.values() if j.status == "active" and j.trigger.schedule
        )
        """Active broadcast journeys (``schedule`` triggers), run by ``runtime/broadcasts.py``."""
        self.segment_triggers = {k: tuple(v) for k, v in by_segment.items()}
        """Segment name -> active journeys entered on it; empty: no profile is judged."""
        self.attribute_triggers = tuple(changed)
        """Active journeys with an ``attribute_changed`` trigger; empty: nothing is judged."""
        segments = self.targeting.segments
        self.trigger_targeting = dataclasses.replace(
            self.targeting, segments={k: segments[k] for k in by_segment if k in segments}
        )
        """``targeting`` narrowed to the triggering segments (compiled conditions: a segment
        using another one carries it), so the engine judges only those."""
        for (journey_id, _), old in self.retained.items():
            self.listens[journey_id] = self.listens[journey_id] | _listened_types(old)
        self.listened: frozenset[str] = frozenset().union(*self.listens.values())

    def journey_for(self, journey_id: str, version: str) -> Journey | None:
        """The journey an instance pinned to ``version`` runs on: that version while it is
        current or retained, else the current version (None if the journey is gone)."""
        return self.retained.get((journey_id, version)) or self.journeys.get(journey_id)

    def carry_over(self, previous: Catalog, keep: int = MAX_RETAINED_VERSIONS) -> Catalog:
        """This catalog, keeping ``previous``'s versions of journeys that still exist.

        Hot reload calls it (``runtime.catalog = new.carry_over(runtime.catalog)``) so people
        in flight stay on the version they entered. At most ``keep`` older versions per journey
        are kept, newest first; an instance on a dropped version moves to the current one at
        the same step id (as after a restart without the saved versions, ``journey/versions.py``).
        """
        return self.with_retained([*previous.journeys.values(), *previous.retained.values()], keep)

    def with_retained(self, older: Iterable[Journey], keep: int = MAX_RETAINED_VERSIONS) -> Catalog:
        """This catalog plus ``older`` versions (newest first) of the journeys it still has."""
        kept = dict(self.retained)
        count = Counter(journey_id for journey_id, _ in kept)
        for journey in older:
            key = (journey.id, journey.version)
            current = self.journeys.get(journey.id)
            if current is None or current.version == journey.version or key in kept:
                continue
            if count[journey.id] >= keep:
                continue
            count[journey.id] += 1
            kept[key] = journey
        return Catalog(self.journeys, self.policies, kept, self.targeting)

    def version_rows(self) -> list[tuple[str, str, str]]:
        """(journey, version, ``current`` | ``retained``) for every version this catalog runs:
        what the ``omnistream_journey_versions`` gauge shows."""
        rows = [(j.id, j.version, "current") for j in self.journeys.values()]
        rows += [(jid, version, "retained") for jid, version in self.retained]
        return sorted(rows)

    def triggered_by(self, event_type: str) -> tuple[Journey, ...]:
        """Active journeys an event of this type enters immediately."""
        return self.immediate.get(event_type, ())

    def only(self, journey_id: str) -> Catalog:
        """A catalog with just one journey (the simulator runs journeys one at a time)."""
        retained = {k: v for k, v in self.retained.items() if k[0] == journey_id}
        journeys = {journey_id: self.journeys[journey_id]}
        return Catalog(journeys, self.policies, retained, self.targeting)


def _listened_types(journey: Journey) -> frozenset[str]:
    types = {m.event for m in journey.exit_on}
    if journey.goal is not None:
        types.add(journey.goal.event)
    for step in journey.steps:
        if isinstance(step, WaitForStep):
            types.add(step.event)
        elif isinstance(step, SendStep) and step.engagement_fallback is not None:
            types.update(step.engagement_fallback.events)
    return frozenset(types)
