"""The web chat of ``embodia serve``: a presentation layer beside :mod:`embodia.console` over the same chat session.

Nothing imports it but ``embodia.commands.serve``; it needs the ``web`` extra (gradio).
"""
