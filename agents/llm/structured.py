"""JSON-schema outputs from models that cannot be trusted to produce them.

Generate, pull out the first JSON object, validate with `jsonschema`; on failure feed the error
back and retry a bounded number of times. Bad model output never raises: the caller gets
`value=None` plus every error and raw reply, to record in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import jsonschema

from agents.llm.base import LLM, Messages


@dataclass
class StructuredResult:
    value: dict | None
    attempts: int
    errors: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.value is not None


def extract_json_object(text: str) -> dict:
    """The first decodable JSON object in `text` (models wrap JSON in prose and code fences)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise ValueError("no JSON object found in the reply")


def _skeleton(schema: dict) -> object:
    """An example-shaped placeholder for `schema`.

    Small models copy a raw JSON schema back verbatim, but fill in an example of the wanted shape well.
    """
    if "enum" in schema:
        return f"<one of {' | '.join(json.dumps(v) for v in schema['enum'])}>"
    if "properties" in schema:
        return {key: _skeleton(sub) for key, sub in schema["properties"].items()}
    if schema.get("type") == "array":
        return [_skeleton(schema.get("items", {}))]
    kind = schema.get("type")
    return f"<{' or '.join(kind) if isinstance(kind, list) else kind or 'value'}>"


def _instruction(schema: dict) -> str:
    return f"Reply with only a JSON object of this form: {json.dumps(_skeleton(schema))}"


def generate_json(
    llm: LLM, messages: Messages, schema: dict, *, retries: int = 2, max_tokens: int = 256
) -> StructuredResult:
    """Ask for a JSON object matching `schema`; up to `retries` more attempts with the error fed back."""
    jsonschema.validators.validator_for(schema).check_schema(schema)  # a bad schema is a programming error
    validator = jsonschema.validators.validator_for(schema)(schema)
    convo = [*messages[:-1], {**messages[-1], "content": f"{messages[-1]['content']}\n\n{_instruction(schema)}"}]
    result = StructuredResult(value=None, attempts=0)
    for _ in range(retries + 1):
        result.attempts += 1
        reply = llm.generate(convo, max_tokens=max_tokens, schema=schema)
        result.raw.append(reply)
        try:
            value = extract_json_object(reply)
            validator.validate(value)
        except (ValueError, jsonschema.ValidationError) as err:
            error = err.message if isinstance(err, jsonschema.ValidationError) else str(err)
            result.errors.append(error)
            convo = [
                *convo,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": f"That reply was invalid: {error}. {_instruction(schema)}"},
            ]
            continue
        result.value = value
        return result
    return result
