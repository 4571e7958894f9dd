"""Prompt templates (Jinja2) and their loader: the only place prompt text lives."""
