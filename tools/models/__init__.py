"""Models that several layers load: the embedded SmolLM2 (``smollm2``: the planner's default LLM and
HybridVLA's pretrained backbone) and base-model fingerprints for LoRA weights (``fingerprint``)."""
