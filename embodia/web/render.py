"""What the page shows, as text: the agent's steps as collapsible chat messages, the status panel,
memory, the skill library and a saved episode's log.

Everything a user, model or env wrote goes through :func:`safe` first: Gradio renders markdown (and
sanitises HTML), so untrusted text is HTML-escaped and its markdown punctuation backslashed -- it shows
literally and cannot restyle the page or add links.
"""

from __future__ import annotations

import html
import re
from typing import Any

from agents.chat import ChatReply
from agents.memory import Memory
from agents.steps import ActionStep, FinalStep, PlanningStep, Step
from tools.envs.crafter import ACHIEVEMENTS, ITEM_NAMES
from tools.skills.specs import SKILLS

_MARKDOWN = re.compile(r"([\\`*_\[\]#|~])")  # what would format, link or make a table
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
Message = dict[str, Any]


def safe(value: object, limit: int | None = 2000) -> str:
    """``value`` shown literally in Gradio markdown, cut to ``limit`` characters (saying how many were cut)."""
    text = str(value)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit} more characters)"
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else "", text)
    return _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))


def _fold(title: str, content: str) -> Message:
    """An assistant message Gradio shows collapsed under ``title`` (metadata title = collapsible)."""
    return {"role": "assistant", "content": content or "—", "metadata": {"title": title, "status": "done"}}


def user_message(line: str) -> Message:
    return {"role": "user", "content": safe(line)}


def messages_for(item: Step | ChatReply) -> list[Message]:
    """The chat messages of one streamed item: a step folds, a reply is plain text."""
    if isinstance(item, ChatReply):
        return [{"role": "assistant", "content": safe(item.text, 4000)}]
    if isinstance(item, PlanningStep):
        chosen = " → ".join(item.chosen.future) if item.chosen is not None else "nothing"
        lines = [f"**thought:** {safe(item.thought) or '—'}", f"**chosen future:** {safe(chosen)}"]
        lines += [f"- {c.value:.2f} (critic {c.critic:.1f}"
                  f"{'' if c.llm_logprob is None else f', llm {c.llm_logprob:.2f}'}) {safe(' → '.join(c.future))}"
                  for c in item.candidates[:6]]
        if item.imagined:
            lines.append(f"**imagined:** success {item.imagined.get('success_prob', 0):.0%}")
        for veto in item.vetoed:
            lines.append(f"**revised:** {safe(veto)}")
        if item.error:
            lines.append(f"**note:** {safe(item.error)}")
        first = safe(item.chosen.first) if item.chosen is not None else "no option"
        return [_fold(f"#{item.index + 1} think → {first} ({item.decision_ms:.0f} ms)", "\n".join(lines))]
    if isinstance(item, ActionStep):
        skill = safe(item.arguments.get("skill", item.tool))
        lines = [f"**tool call:** {safe(item.tool)}({skill})", f"**predicted:** {safe(item.predicted)}",
                 f"**outcome:** {safe(item.outcome)} ({item.env_steps} env steps)"]
        if item.achievements:
            lines.append(f"**unlocked:** {safe(', '.join(item.achievements))}")
        if item.imagined:
            agreed = item.imagined.get("agreed")
            lines.append(f"**imagined vs real:** predicted {item.imagined.get('predicted_success', 0):.0%}, "
                         f"{'agreed' if agreed else 'disagreed'}")
        if item.error:
            lines.append(f"**error:** {safe(item.error)}")
        found = [_fold(f"act({skill}) → {'ok' if item.ok else 'failed'}", "\n".join(lines))]
        if item.reflection:
            found.append(_fold("reflect", safe(item.reflection)))
        return found
    if isinstance(item, FinalStep):
        verdict = "done" if item.success else "failed"
        return [_fold(f"{verdict}: {safe(item.goal)}",
                      f"{safe(item.reason)} ({item.env_steps} env steps, {item.decisions} decisions)")]
    return []


def status_markdown(world: Any, busy: bool = False) -> str:
    """Vitals, inventory and achievements of the world now."""
    inventory = world.inventory
    vitals = " · ".join(f"{n} {inventory[n]}/9" for n in ITEM_NAMES[:4])
    items = ", ".join(f"{inventory[n]} {n}" for n in ITEM_NAMES[4:] if inventory[n] > 0) or "nothing"
    unlocked = ", ".join(n for n in ACHIEVEMENTS if world.achievements[n] > 0) or "none yet"
    state = "working…" if busy else "idle"
    return (f"**vitals:** {vitals}  \n**inventory:** {items}  \n**achievements:** {unlocked}  \n"
            f"**env steps:** {world.steps} · {state}")


def memory_rows(memory: Memory, limit: int = 200) -> list[list[Any]]:
    """The latest ``limit`` memory records, newest first: [kind, step, goal, text]."""
    return [[r.kind, r.step, r.goal, r.text] for r in reversed(memory.records[-limit:])]


def skill_rows() -> list[list[str]]:
    """The skill library the planner chooses from: name, needs, uses up, gives, description."""
    def fmt(items: dict[str, int]) -> str:
        return ", ".join(f"{n} {k}" for k, n in items.items())

    return [[s.name, fmt(s.requires) + (f"; near {', '.join(s.near)}" if s.near else ""), fmt(s.consumes),
             fmt(s.gives), s.description] for s in SKILLS.values()]


def log_markdown(records: list[dict[str, Any]], limit: int = 400) -> str:
    """A saved episode's log as readable lines: requests, decisions, tool calls and how it ended."""
    lines: list[str] = []
    for r in records:
        kind = r.get("type")
        if kind in ("user", "goal"):
            lines.append(f"**{kind}:** {safe(r.get('text', r.get('request', '')), 300)}")
        elif kind == "PlanningStep":
            chosen = (r.get("chosen") or {}).get("future") or []
            lines.append(f"- #{r.get('index', 0) + 1} think: {safe(r.get('thought', ''), 300)} → "
                         f"{safe(' → '.join(chosen))}")
        elif kind == "ActionStep":
            lines.append(f"- act({safe((r.get('arguments') or {}).get('skill', r.get('tool', '')))}): "
                         f"predicted {safe(r.get('predicted', ''), 200)}; got {safe(r.get('outcome', ''), 200)}")
            if r.get("reflection"):
                lines.append(f"  - reflect: {safe(r['reflection'], 300)}")
        elif kind == "FinalStep":
            lines.append(f"**{'done' if r.get('success') else 'failed'}:** {safe(r.get('goal', ''))} — "
                         f"{safe(r.get('reason', ''), 300)}")
        elif kind == "summary":
            lines.append(f"**summary:** success {r.get('success')}, {r.get('env_steps', 0)} env steps, "
                         f"achievements {safe(', '.join(r.get('achievements') or []) or 'none')}")
    cut = len(lines) - limit
    return "\n".join(lines[-limit:]) + (f"\n\n({cut} earlier lines not shown)" if cut > 0 else "") or "(empty log)"
