"""embodia: embodied agents — LLM planner (RAFA), VLA policies, learned world models."""
__version__ = "0.1.0"
