"""embodia: embodied agents — LLM planner (RAFA), VLA policies, learned world models."""

__version__ = "0.1.0"


def main() -> None:
    """The ``embodia`` command. Ctrl-C while torch and the packages are still importing exits 130 without a
    traceback; once a command runs, click's own handling applies ("Aborted!"; ``embodia eval`` stops its workers)."""
    try:
        from embodia.cli import app
    except KeyboardInterrupt:
        print("\nstopped (Ctrl-C)")
        raise SystemExit(130) from None
    app()
