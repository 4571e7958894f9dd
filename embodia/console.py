"""Terminal rendering of the agent's steps with rich: thought, subgoal, tool call, result, achievements."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from agents.steps import ActionStep, FinalStep, PlanningStep, Step


class StepPrinter:
    """A step callback that streams every step to the terminal as it happens."""

    def __init__(self, console: Console | None = None, verbose: bool = False) -> None:
        self.console = console or Console()
        self.verbose = verbose
        self.achievements: list[str] = []

    def __call__(self, step: Step) -> None:
        if isinstance(step, PlanningStep):
            self._planning(step)
        elif isinstance(step, ActionStep):
            self._action(step)
        elif isinstance(step, FinalStep):
            self._final(step)

    def _planning(self, step: PlanningStep) -> None:
        c = self.console
        c.print(f"[bold cyan]#{step.index + 1} think[/] {escape(step.thought)}"
                f" [dim]({step.decision_ms:.0f} ms)[/]")
        if self.verbose:
            c.print("[dim]" + escape(step.state) + "[/]")
            for cand in step.candidates:
                llm = "" if cand.llm_logprob is None else f" llm={cand.llm_logprob:.2f}"
                c.print(f"[dim]   {cand.value:6.2f} critic={cand.critic:.1f}{llm}  {' → '.join(cand.future)}[/]")
        if step.error:
            c.print(f"[yellow]   note: {escape(step.error)}[/]")

    def _action(self, step: ActionStep) -> None:
        c = self.console
        colour = "green" if step.ok else "red"
        c.print(f"   [bold]act[/]({escape(str(step.arguments.get('skill')))}) [dim]predicted: "
                f"{escape(step.predicted)}[/]")
        c.print(f"   [{colour}]→ {escape(step.outcome)}[/] [dim]in {step.env_steps} env steps[/]")
        for name in step.achievements:
            if name not in self.achievements:
                self.achievements.append(name)
        if step.achievements:
            c.print(f"   [bold magenta]★ {', '.join(step.achievements)}[/]"
                    f" [dim](so far: {', '.join(self.achievements)})[/]")
        if step.reflection:
            c.print(f"   [yellow]reflect: {escape(step.reflection)}[/]")

    def _final(self, step: FinalStep) -> None:
        colour = "green" if step.success else "red"
        verdict = "done" if step.success else "failed"
        self.console.print(f"[bold {colour}]{verdict}:[/] {escape(step.goal)} — {escape(step.reason)} "
                           f"[dim]({step.env_steps} env steps, {step.decisions} decisions)[/]")
