"""MAIRA-2-style study: SAE latents of a radiology-report LM, explained, scored and steered (issue 12)."""
