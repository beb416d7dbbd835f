"""The scenario's JSON Schema (draft-07, what yaml-language-server validates against), generated
from the models: one grammar, so the schema cannot drift from the validator.

For editors: completion and squiggles through a first line
`# yaml-language-server: $schema=<path to the output of harness schema>`. The validator stays
the authority for the cross-field rules (which nodes and links exist, times within the run).
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from ._model import Scenario


class _Draft7(GenerateJsonSchema):
    """Pydantic's generator without per-field titles (noise in an editor's hover)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def scenario_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema(by_alias=True, schema_generator=_Draft7, mode="validation")
    schema.pop("title", None)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "channel-chaos-harness scenario",
        **schema,
    }
