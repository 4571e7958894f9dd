"""CLI commands that live in their own modules; ``embodia/cli.py`` registers each with one line."""
