"""Interpreting SAE latents: examples from top activations, explainers, scorers, dashboards, steering.

`saeflow.latents` collects the contexts; `examples` turns them into text examples; `explainers` (token
patterns, offline) and `llm` (OpenAI-compatible endpoint or a local transformers chat model) write
explanations; `scorers` score them (detection, fuzzing, embedding, always beside a shuffled-explanation
control); `dashboard` writes static HTML; `steering` adds decoder directions during generation.
"""
