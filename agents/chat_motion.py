"""``/motion PHRASE`` in chat: correct an RT-H policy in language (``vla.rth``; RT-H §4 "corrections").

The typed phrase replaces the motion the policy would predict for its next ``override_steps`` actions. If a
skill already ran in this world the corrected steps run at once, on that skill's instruction (the person
steers the task in progress); before any skill the correction waits for the next one. Each corrected step
is shown, and the rows acted under it are appended to ``<session>/interventions/`` as an episode dataset
(``vla.rth.corrections.write_interventions``) that ``embodia finetune vla --interventions`` learns from.
A phrase outside the policy's vocabulary runs nothing and offers the closest phrases; skills that are not
RT-H get a reply naming the policy that supports ``/motion``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tools.envs.crafter import ACTION_NAMES

if TYPE_CHECKING:
    from agents.chat import ChatReply, ChatSession

USAGE = "/motion PHRASE, e.g. /motion move left, /motion face the tree, /motion do"


def rth_policy(session: ChatSession) -> Any | None:
    """The RT-H policy behind the session's ``act`` tool, or None when its skills are something else."""
    policy = getattr(session.agent.tools["act"].runner, "policy", None)
    return policy if hasattr(policy, "override") else None


def motion_command(session: ChatSession, arg: str) -> Iterator[ChatReply]:
    """React to ``/motion arg``: override, run and log the corrected steps, or say why not."""
    from agents.chat import ChatReply
    from vla.rth.corrections import UnknownMotionError, resolve_motion

    policy = rth_policy(session)
    if policy is None:
        yield ChatReply(f"/motion corrects an RT-H policy's language motions, but this chat's skills are "
                        f"{session.config.skills!r}. Start it with --skills rth (or an RT-H checkpoint folder) to "
                        "correct motions.")
        return
    if not arg.strip():
        last = f" Last motion: '{policy.last_motion}'." if policy.last_motion else ""
        yield ChatReply(f"Usage: {USAGE}.{last} Motions: {', '.join(policy.config.motions)}.")
        return
    try:
        phrase = resolve_motion(arg, policy.config.motions)
    except UnknownMotionError as exc:
        session.log.write("motion", text=arg[:200], rejected=True, suggestions=exc.suggestions)
        yield ChatReply(f"'{arg.strip()}' is not a motion this RT-H policy knows; closest: "
                        f"{', '.join(exc.suggestions)}. Nothing was executed.")
        return
    steps = policy.override(phrase)
    instruction = policy.last_instruction
    if not instruction:
        session.log.write("motion", phrase=phrase, steps=steps, pending=True)
        yield ChatReply(f"Motion override: '{phrase}' replaces the predicted motion for the next {steps} steps "
                        "of the next skill.")
        return
    lines, world = [], session.env.unwrapped
    for number in range(1, steps + 1):
        kept = len(policy.interventions)
        action = int(policy.act(world.observe(), instruction))
        row = policy.interventions[-1] if len(policy.interventions) > kept else None
        _, _, terminated, _, _ = session.env.step(action)
        said = f" (predicted '{row.predicted}')" if row is not None and row.predicted != row.motion else ""
        lines.append(f"step {number}: motion '{policy.last_motion}'{said} -> {ACTION_NAMES[action]}")
        if terminated:
            lines.append("the episode ended")
            break
    policy.clear_override()
    written = flush_interventions(session)
    session.log.write("motion", phrase=phrase, steps=len(lines), instruction=instruction, file=written)
    yield ChatReply(f"Motion override '{phrase}' on '{instruction}':\n" + "\n".join(lines))


def flush_interventions(session: ChatSession) -> str | None:
    """Append the corrected steps kept by the session's RT-H policy to ``<session>/interventions/``."""
    from vla.rth.corrections import INTERVENTIONS_DIR, write_interventions

    policy = rth_policy(session)
    if policy is None or not policy.interventions:
        return None
    path = write_interventions(session.out_dir / INTERVENTIONS_DIR, policy.interventions)
    policy.interventions.clear()
    return str(path)
