from __future__ import annotations

import json
import re
from pathlib import Path

from omnistream.journey.model import journey_json_schema

ROOT = Path(__file__).resolve().parents[3]


def test_published_schema_matches_the_model() -> None:
    published = json.loads((ROOT / "docs" / "journey.schema.json").read_text())
    assert published == journey_json_schema(), (
        "regenerate: python -c 'import json; from omnistream.journey.model import "
        "journey_json_schema as s; print(json.dumps(s(), indent=2, sort_keys=True))' "
        "> docs/journey.schema.json"
    )
    assert {"send", "wait", "wait_for", "branch", "split", "update_profile", "exit"} <= set(
        re.findall(r'"const": "(\w+)"', json.dumps(published))
    )


def test_the_pure_core_does_no_io_and_reads_no_clock() -> None:
    files = [
        *(ROOT / "omnistream" / "journey").glob("*.py"),
        ROOT / "omnistream/policies/quiet_hours.py",
    ]
    forbidden = re.compile(
        r"^\s*(from|import)\s+(faust|aiokafka|redis|aiohttp|requests|httpx)\b"
        r"|datetime\.now|time\.time\(|date\.today|utcnow",
        re.MULTILINE,
    )
    offenders = [str(f) for f in files if forbidden.search(f.read_text())]
    assert offenders == []
