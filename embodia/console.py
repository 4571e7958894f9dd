"""Terminal rendering of the agent's steps with rich: thought, subgoal, tool call, result, achievements."""

from __future__ import annotations

from rich.console import Console

from agents.steps import ActionStep, FinalStep, PlanningStep, StepCallbacks
from embodia.text import user_text as escape  # the one escaper: markup and control characters


class StepPrinter(StepCallbacks):
    """Step callbacks, keyed by step type, that stream every step to the terminal as it happens."""

    def __init__(self, console: Console | None = None, verbose: bool = False) -> None:
        super().__init__({PlanningStep: self._planning, ActionStep: self._action, FinalStep: self._final})
        self.console = console or Console()
        self.verbose = verbose
        self.achievements: list[str] = []

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
